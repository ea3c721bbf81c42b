"""The names of the files and folders of a run folder (:mod:`seqfunc.runs.folder`), of its
checkpoints (:mod:`seqfunc.runs.checkpoint`) and of a folder of members (a sweep's, an
ensemble's): one place for every name the host writes or reads."""

#: the full config of a run (dataset, model and training sections)
CONFIG = "config.json"
#: one JSON record per line: step, split, loss, metrics
METRICS = "metrics.jsonl"
#: loss and accuracy curves
CURVES = "curves.png"
#: the checkpoint folders, ``step-NNNNNNNN`` each
CHECKPOINTS = "checkpoints"
#: the parameters, keyed by dotted path (safetensors)
PARAMS = "params.safetensors"
#: the optimizer state's leaves, numbered in flattening order (safetensors)
OPT_STATE = "opt_state.safetensors"
#: the run's progress (:class:`seqfunc.runs.state.Progress`), written last when it finishes
STATE = "state.json"
#: a checkpoint's sizes and checksums, written last
MANIFEST = "manifest.json"
#: TensorBoard's events
EVENTS = "tensorboard"
#: the writer's lock
LOCK = ".lock"
#: the run folders of the members of an ensemble or a sweep
MEMBERS = "members"

# a sweep folder (seqfunc.runs.sweep_folder): its members' run folders are under MEMBERS
#: the sweep's description (base config, grid, seeds, --max-members)
SWEEP = "sweep.json"
#: one line per member, then one per grid point
SWEEP_SUMMARY = "sweep.jsonl"
#: validation curves per grid point; final metric against each value
SWEEP_PLOT = "sweep.png"
#: the checkpoints of each vmapped job while it trains
JOBS = "jobs"
