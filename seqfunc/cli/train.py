"""``seqfunc train [DATASET] [--model MODEL] [options]``: train and evaluate, save a run folder."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import attrs

from seqfunc.cli.options import parse_assignment
from seqfunc.config import from_dict, typed_fields

# Shortcut flags for model options; "layers" fans out to whichever layer counts a model has.
MODEL_SHORTCUTS = {"d_model": "d_model", "heads": "heads", "d_ff": "d_ff", "dropout": "dropout"}
LAYER_FIELDS = ("layers", "encoder_layers", "decoder_layers", "num_layers")
#: A recipe's ``compile=True`` applies from this many ``--steps`` on: compiling the step takes
#: 30-60 s on 2 CPU cores, which a smoke run (``--steps 5``) never wins back. ``--compile``
#: compiles any run.
COMPILE_FROM_STEPS = 200


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "train",
        help="train a model on a dataset (default: the formula calculator)",
        description="Train a registered model on a registered dataset and save a run folder "
        "(config.json, metrics.jsonl, curves.png, checkpoints/, params.safetensors). "
        "Ctrl-C or SIGTERM writes a checkpoint and stops; --resume RUN continues it.",
    )
    p.add_argument("dataset", nargs="?", default=None, help="dataset name (default: formula)")
    p.add_argument("--model", default=None, help="model name (default: the dataset's default)")
    p.add_argument("--out", type=Path, default=None, help="run folder (default: runs/NAME-TIME)")
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="a JSON or TOML file of training fields with [dataset] and [model] "
        "sections, any subset (or an earlier run's config.json); flags override it",
    )
    p.add_argument(
        "--print-config",
        action="store_true",
        help="print the resolved config (JSON, usable as --config) and exit",
    )
    p.add_argument(
        "--resume",
        type=Path,
        default=None,
        metavar="RUN",
        help="continue the run folder RUN from its newest complete checkpoint, with "
        "its saved config (flags may extend --steps/--epochs)",
    )
    p.add_argument(
        "--recipe",
        default=None,
        help="one of the dataset's named recipes instead of its default one "
        "(e.g. wikitext2 --recipe seed)",
    )
    g = p.add_argument_group("training")
    g.add_argument("--steps", type=int)
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float, help="peak learning rate")
    g.add_argument("--optimizer", choices=("adam", "adamw", "radam", "sgd"))
    g.add_argument("--schedule", choices=("constant", "warmup_cosine", "step"))
    g.add_argument("--warmup-steps", type=int)
    g.add_argument("--clip-norm", type=float)
    g.add_argument("--seed", type=int)
    g.add_argument("--device", help="cpu, cuda, cuda:1, mps ...")
    g.add_argument(
        "--compile",
        dest="compile",
        action="store_true",
        default=None,
        help="compile the train step (default: on for CUDA, off for CPU)",
    )
    g.add_argument("--no-compile", dest="compile", action="store_false")
    g.add_argument("--eval-every", type=int)
    g.add_argument(
        "--eval-batches",
        type=int,
        metavar="N",
        help="evaluate on the first N validation batches during training "
        "(the final evaluation stays whole)",
    )
    g.add_argument("--examples", type=int, metavar="N", help="samples printed per evaluation")
    g.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="N",
        help="write a checkpoint every N steps (default: at every evaluation)",
    )
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument(
        "--tensorboard",
        action="store_true",
        default=None,
        help="also log the metrics as TensorBoard events in RUN/tensorboard "
        "(pip install 'seqfunc[tensorboard]')",
    )
    d = p.add_argument_group("several processes (torch.distributed; see also torchrun)")
    d.add_argument(
        "--nproc",
        type=int,
        metavar="N",
        help="train data-parallel on N processes of this machine, launched by "
        "torch's launcher (torch.distributed.run); the global batch stays --batch-size",
    )
    d.add_argument(
        "--max-restarts",
        type=int,
        default=0,
        metavar="K",
        help="with --nproc: restart the group up to K times after a failure; it "
        "resumes from the last checkpoint",
    )
    m = p.add_argument_group("model size")
    m.add_argument("--d-model", type=int)
    m.add_argument("--heads", type=int)
    m.add_argument("--layers", type=int, help="layers (encoder and decoder each)")
    m.add_argument("--d-ff", type=int)
    m.add_argument("--dropout", type=float)
    p.add_argument(
        "--init-from",
        type=Path,
        default=None,
        metavar="RUN",
        help="fine-tune: start from the model and parameters of a run folder (trained or "
        "imported); with -t lora_rank=R, train LoRA adapters over them instead",
    )
    p.add_argument(
        "-t",
        "--train-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any training config field, e.g. -t weight_decay=0.1 -t b2=0.99",
    )
    p.add_argument(
        "-m",
        "--model-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any model config field, e.g. -m norm_first=true",
    )
    p.add_argument(
        "-d",
        "--data-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="any dataset config field, e.g. -d complexity=4",
    )
    p.set_defaults(func=run)


def resolve_config(args: argparse.Namespace):
    """TrainConfig = defaults < the dataset's recommended recipe < --config file < flags."""
    from seqfunc import registry
    from seqfunc.cli.config_file import read_config_file
    from seqfunc.runs import TrainConfig

    fields: dict = {}
    complete = False
    if args.config:
        fields, complete = read_config_file(args.config)
    dataset = args.dataset or fields.get("dataset") or TrainConfig().dataset
    dataset_cls = registry.get_dataset(dataset)
    recipe = dict(getattr(dataset_cls, "train_defaults", {}))
    if args.recipe is not None:
        named = getattr(dataset_cls, "recipes", {})
        if args.recipe not in named:
            from seqfunc.cli import UsageError

            known = ", ".join(named) or "none"
            raise UsageError(
                f"--recipe {args.recipe}: dataset {dataset!r} has no such recipe; "
                f"its recipes: {known}"
            )
        recipe = dict(named[args.recipe])
    if args.model in getattr(dataset_cls, "model_recipes", {}):  # a recipe for this model
        recipe = {**recipe, **dataset_cls.model_recipes[args.model], "model": args.model}
    if not (complete and fields.get("dataset") == dataset):
        fields = _over_recipe(
            recipe, fields, same_dataset=fields.get("dataset", dataset) == dataset
        )
    fields["dataset"] = dataset
    fields["model"] = args.model or fields.get("model") or TrainConfig().model
    init_from = _init_from(args, fields)
    if init_from is not None:  # the model and its options come from that run
        from seqfunc.runs.init_from import source_model_name

        fields["init_from"] = init_from
        fields["model"] = args.model or source_model_name(init_from)
        if not complete:
            fields["model_options"] = {}
    if recipe.get("model", fields["model"]) != fields["model"] and (
        fields.get("model_options") == recipe.get("model_options")
    ):
        fields["model_options"] = {}  # the recipe's model options are for the recipe's model
    flag_fields = {
        "steps": args.steps,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "optimizer": args.optimizer,
        "schedule": args.schedule,
        "warmup_steps": args.warmup_steps,
        "clip_norm": args.clip_norm,
        "seed": args.seed,
        "device": args.device,
        "compile": args.compile,
        "eval_every": args.eval_every,
        "eval_batches": args.eval_batches,
        "examples": args.examples,
        "checkpoint_every": args.checkpoint_every,
        "tensorboard": args.tensorboard,
    }
    fields.update({k: v for k, v in flag_fields.items() if v is not None})
    if (
        args.steps is not None
        and args.steps < COMPILE_FROM_STEPS
        and args.compile is None
        and not args.config
        and recipe.get("compile")
    ):
        fields["compile"] = None  # the default: compiled on CUDA, not on the CPU
    train_options = dict(parse_assignment(a) for a in args.train_option)
    fields.update(typed_fields(TrainConfig, train_options, where="train options"))
    if init_from is not None:
        fields["init_from"] = init_from  # resolved: a resume from elsewhere finds it
    if args.steps is not None and args.epochs is None:
        fields["epochs"] = None
    if args.epochs is not None and args.steps is None:
        fields["steps"] = None

    model_options = dict(fields.get("model_options", {}))
    model_cls = registry.get_model(fields["model"])
    model_fields = {a.name for a in attrs.fields(model_cls.Config)}
    for flag, name in MODEL_SHORTCUTS.items():
        if getattr(args, flag) is not None:
            model_options[name] = getattr(args, flag)
    if args.layers is not None:
        layer_fields = [name for name in LAYER_FIELDS if name in model_fields]
        if not layer_fields:
            from seqfunc.cli import UsageError

            raise UsageError(
                f"--layers: model {fields['model']!r} has no layer-count field; "
                f"its fields: {', '.join(sorted(model_fields))}"
            )
        model_options.update((name, args.layers) for name in layer_fields)
    model_options.update(parse_assignment(a) for a in args.model_option)
    data_options = dict(fields.get("dataset_options", {}))
    data_options.update(parse_assignment(a) for a in args.data_option)
    fields["model_options"] = typed_fields(model_cls.Config, model_options, where="model options")
    fields["dataset_options"] = typed_fields(
        dataset_cls.Config, data_options, where="dataset options"
    )
    return from_dict(TrainConfig, fields, where="train options")


def _init_from(args: argparse.Namespace, fields: dict) -> str | None:
    """The run to start from: ``--init-from``, ``-t init_from=``, or the config file's."""
    if getattr(args, "init_from", None) is not None:
        return str(Path(args.init_from).resolve())
    options = dict(parse_assignment(a) for a in args.train_option)
    if options.get("init_from") not in (None, "none", "null"):
        return str(Path(options["init_from"]).resolve())
    return fields.get("init_from")


def _over_recipe(recipe: dict, file_fields: dict, *, same_dataset: bool) -> dict:
    """A partial config file's fields over the dataset's recipe: its dataset and model
    options extend the recipe's (a model other than the recipe's starts from none of them).
    A file written for another dataset keeps only its training fields."""
    fields = dict(recipe)
    other_model = "model" in file_fields and file_fields["model"] != recipe.get("model")
    for key, value in file_fields.items():
        if key == "dataset" or (
            not same_dataset and key in ("model", "model_options", "dataset_options")
        ):
            continue
        if key == "dataset_options" or (key == "model_options" and not other_model):
            fields[key] = {**fields.get(key, {}), **value}
        else:
            fields[key] = value
    if other_model and same_dataset and "model_options" not in file_fields:
        fields["model_options"] = {}
    for length, other in (("steps", "epochs"), ("epochs", "steps")):  # the file's length wins
        if file_fields.get(length) is not None and other not in file_fields:
            fields[other] = None
    return fields


def print_config(cfg) -> None:
    """The resolved config as JSON, laid out as a run's ``config.json``: the training fields
    (with the dataset and model options given) and the dataset's whole config (for reading;
    ``--config`` reads the training fields back)."""
    import json

    from seqfunc import registry
    from seqfunc.config import from_dict, to_dict

    dataset_cls = registry.get_dataset(cfg.dataset)
    dataset_config = from_dict(dataset_cls.Config, cfg.dataset_options, where="dataset options")
    print(
        json.dumps(
            {
                "train": to_dict(cfg),
                "dataset": {"name": cfg.dataset, "config": to_dict(dataset_config)},
            },
            indent=2,
            default=str,
        )
    )


def run(args: argparse.Namespace) -> int:
    from seqfunc.errors import SeqfuncError
    from seqfunc.runs import distributed, files, fit

    if args.print_config:
        print_config(run_config(args)[0])
        return 0

    if args.nproc is not None:
        from seqfunc.cli.launch import launch

        return launch(args)
    cfg, out = run_config(args)
    ranks = distributed.init(cfg.device)
    try:
        out = distributed.broadcast(out, ranks)  # rank 0's default name on every rank
        # a group restarted by torchrun's agent continues the run the first attempt started
        resume = args.resume is not None or (
            distributed.restart_count() > 0 and (Path(out) / files.CONFIG).exists()
        )
        start = time.perf_counter()
        final = fit(cfg, out, resume=resume, progress=not args.no_progress, ranks=ranks)
    except SeqfuncError:  # the user's error (a held lock, a mismatch): reported as it is
        raise
    except RuntimeError as exc:
        if ranks is None:
            raise
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SeqfuncError(
            f"rank {ranks.rank}: the process group failed ({first}); with "
            "--max-restarts / torchrun's, the group restarts and resumes"
        ) from None
    finally:
        distributed.shutdown()
    if ranks is not None and not ranks.is_writer:
        return 0
    minutes = (time.perf_counter() - start) / 60
    print(f"\nrun folder: {out}  ({minutes:.1f} min)")
    summary = {k: v for k, v in final.items() if isinstance(v, float) and k != "elapsed_s"}
    print("validation: " + "  ".join(f"{k} {v:.4f}" for k, v in summary.items()))
    return 0


def run_config(args: argparse.Namespace):
    """``(TrainConfig, run folder)`` of a new run or of ``--resume RUN``."""
    if args.resume is not None:
        from seqfunc.cli import UsageError

        for flag, value in (
            ("--config", args.config),
            ("--out", args.out),
            ("DATASET", args.dataset),
        ):
            if value is not None:
                raise UsageError(
                    f"{flag} cannot be combined with --resume: the run folder "
                    "keeps its own config and place"
                )
        from seqfunc.runs import files

        if not (args.resume / files.CONFIG).is_file():
            raise UsageError(f"--resume {args.resume}: not a run folder (no config.json)")
        args.config, out = args.resume / files.CONFIG, args.resume
        return resolve_config(args), out
    cfg = resolve_config(args)
    return cfg, args.out or default_run_folder(cfg)


def default_run_folder(cfg) -> Path:
    return Path("runs") / f"{cfg.dataset}-{cfg.model}-{time.strftime('%Y%m%d-%H%M%S')}"
