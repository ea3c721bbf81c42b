"""What a run depends on: :class:`TrainConfig`, and which of its fields a resume may change."""

from __future__ import annotations

import attrs

from seqfunc.config import non_negative, one_of, positive, probability, to_dict
from seqfunc.errors import ConfigError
from seqfunc.precision import PRECISIONS

OPTIMIZERS = ("adam", "adamw", "radam", "sgd")
SCHEDULES = ("constant", "warmup_cosine", "step")


@attrs.frozen
class TrainConfig:
    """Everything a run depends on. ``steps`` wins over ``epochs`` when both are set."""

    dataset: str = "formula"
    model: str = "transformer"
    dataset_options: dict = attrs.field(factory=dict)
    model_options: dict = attrs.field(factory=dict)
    steps: int | None = attrs.field(default=None, validator=positive)
    epochs: int | None = attrs.field(default=None, validator=positive)
    batch_size: int = attrs.field(default=128, validator=positive)
    optimizer: str = attrs.field(default="adam", validator=one_of(OPTIMIZERS))
    lr: float = attrs.field(default=1e-3, validator=positive)
    schedule: str = attrs.field(default="warmup_cosine", validator=one_of(SCHEDULES))
    warmup_steps: int = attrs.field(default=100, validator=non_negative)
    lr_end: float = attrs.field(default=0.0, validator=non_negative)
    step_size: int = attrs.field(default=1, validator=positive)  # schedule "step": decay period
    gamma: float = attrs.field(default=0.95, validator=positive)  # schedule "step": decay factor
    momentum: float = attrs.field(default=0.0, validator=non_negative)
    b1: float = attrs.field(default=0.9, validator=probability)  # Adam's betas
    b2: float = attrs.field(default=0.999, validator=probability)
    weight_decay: float = attrs.field(default=0.01, validator=non_negative)
    clip_norm: float | None = attrs.field(default=1.0, validator=positive)
    seed: int = 0
    device: str = "cpu"
    compile: bool | None = None  # None: on for CUDA, off for the CPU
    trim_padding: bool = False  # cut the positions every row pads off each batch (seq2seq)
    eval_every: int | None = attrs.field(default=None, validator=positive)
    eval_batch_size: int = attrs.field(default=500, validator=positive)
    #: evaluate on the first N validation batches during training (None: all); the final
    #: evaluation is whole unless ``final_eval_batches`` bounds it too
    eval_batches: int | None = attrs.field(default=None, validator=positive)
    final_eval_batches: int | None = attrs.field(default=None, validator=positive)
    log_every: int = attrs.field(default=50, validator=positive)
    examples: int = attrs.field(default=3, validator=non_negative)  # samples printed per evaluation
    #: write a checkpoint every N steps (None: at every evaluation); always at the end
    checkpoint_every: int | None = attrs.field(default=None, validator=positive)
    keep_checkpoints: int = attrs.field(default=2, validator=positive)
    #: stop after this many non-finite updates in a row (each one is skipped)
    max_nonfinite: int = attrs.field(default=5, validator=positive)
    #: also write the metrics as TensorBoard events into RUN/tensorboard (needs tensorboard)
    tensorboard: bool = False
    #: the dtype the forward and backward compute in; parameters and optimizer state stay
    #: fp32 (fp16 adds a dynamic loss scale to the optimizer)
    precision: str = attrs.field(default="fp32", validator=one_of(tuple(PRECISIONS)))
    #: micro-batches a batch is cut into, run one after another for one update (gradient
    #: accumulation: the batch's gradient at a micro-batch's memory)
    accumulate: int = attrs.field(default=1, validator=positive)
    #: a run folder (trained or imported) whose model, model config and parameters this run
    #: starts from: full fine-tuning, or LoRA with ``lora_rank``
    init_from: str | None = None
    #: LoRA: train adapters of this rank on the ``init_from`` parameters, which stay frozen
    lora_rank: int | None = attrs.field(default=None, validator=positive)
    #: LoRA: the adapters' product is scaled by ``lora_alpha / lora_rank``
    lora_alpha: float = attrs.field(default=16.0, validator=positive)
    #: LoRA: the modules whose 2-D weights get adapters (the last parts of their names)
    lora_targets: tuple[str, ...] = ("q", "v")
    #: with several processes (--nproc, torchrun): each keeps and updates only its slice of
    #: the optimizer state (ZeRO-1); the same parameters to float rounding. One process: no-op
    shard_optimizer: bool = False


#: Fields a resumed run may change: the length of the run, and options that do not change
#: the parameters it ends with.
RESUMABLE_CHANGES = frozenset(
    {
        "steps",
        "epochs",
        "eval_batch_size",
        "examples",
        "checkpoint_every",
        "keep_checkpoints",
        "max_nonfinite",
        "final_eval_batches",
        "tensorboard",
        "shard_optimizer",
    }
)


def check_resume_config(saved: TrainConfig, requested: TrainConfig, where: str) -> None:
    """Refuse a resume whose config differs from the saved one in a field that changes the
    result; the message names every such field with both values."""
    old, new = to_dict(saved), to_dict(requested)
    differing = sorted(
        k
        for k in old.keys() | new.keys()
        if k not in RESUMABLE_CHANGES and old.get(k) != new.get(k)
    )
    if differing:
        changes = ", ".join(f"{k} {old.get(k)!r} -> {new.get(k)!r}" for k in differing)
        raise ConfigError(
            f"{where}: a resumed run keeps its config; these fields differ: {changes} "
            f"(only {', '.join(sorted(RESUMABLE_CHANGES))} may change; start a new run instead)"
        )


def check_accumulate(cfg: TrainConfig, world: int = 1) -> None:
    """Refuse more micro-batches than a process's rows of a batch, before the run starts."""
    rows = cfg.batch_size // world
    if cfg.accumulate > rows:
        per = f" ({world} processes: {rows} rows each)" if world > 1 else ""
        raise ConfigError(
            f"accumulate={cfg.accumulate}: a batch of {cfg.batch_size} rows{per} cannot be cut "
            f"into {cfg.accumulate} micro-batches; raise batch_size or lower accumulate"
        )
