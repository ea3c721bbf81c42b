"""Experiments run by ``seqfunc experiment NAME``: each a module with ``add_arguments(parser)``
and ``run(args) -> exit code``, imported only when chosen."""

#: experiment name -> module path
EXPERIMENTS: dict[str, str] = {
    "classify": "seqfunc.experiments.classify",
    "depth": "seqfunc.experiments.depth",
    "attention-kind": "seqfunc.experiments.attention_kind",
    "add2digits": "seqfunc.experiments.add2digits",
}
