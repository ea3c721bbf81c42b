"""A config turned into things: dataset, model and task from the registry, and the run's
length in steps (its optimizer: :mod:`seqfunc.runs.optimizer`)."""

from __future__ import annotations

from pathlib import Path

from seqfunc import registry
from seqfunc.config import from_dict, typed_fields
from seqfunc.devices import resolve_device
from seqfunc.errors import ConfigError
from seqfunc.runs.config import TrainConfig
from seqfunc.runs.init_from import artifacts_of, check_lora_config, starting_model
from seqfunc.tasks import task_for


def build(cfg: TrainConfig, artifacts: Path | None = None):
    """Dataset, model, task and their configs from the registry, checked for compatibility.

    ``artifacts``: a run folder whose saved vocabulary, tokenizers or class names the dataset
    reads (``from_artifacts``) instead of building them from its data, as a resume does."""
    dataset_cls = registry.get_dataset(cfg.dataset)
    model_cls = registry.get_model(cfg.model)
    if dataset_cls.task not in model_cls.task_kinds:
        raise ConfigError(
            f"model {cfg.model!r} serves task kind(s) {', '.join(model_cls.task_kinds)} but "
            f"dataset {cfg.dataset!r} is a {dataset_cls.task!r} dataset"
        )
    dataset_config = from_dict(
        dataset_cls.Config, dict(cfg.dataset_options), where="dataset options"
    )
    if artifacts is None and cfg.init_from is not None:
        artifacts = artifacts_of(cfg.init_from, cfg.dataset)  # its vocabulary or tokenizer
    if artifacts is not None and hasattr(dataset_cls, "from_artifacts"):
        dataset = dataset_cls.from_artifacts(dataset_config, artifacts)
    else:
        dataset = dataset_cls(dataset_config)
    check_lora_config(cfg)
    if cfg.init_from is not None:  # the model and its parameters come from another run
        model = starting_model(cfg, dataset, resolve_device(cfg.device))
        return dataset, model, task_for(dataset)
    return dataset, model_cls(model_config(cfg, model_cls, dataset)), task_for(dataset)


def model_config(cfg: TrainConfig, model_cls, dataset):
    """``model_cls``'s config for ``dataset`` with ``cfg``'s model options."""
    overrides = typed_fields(model_cls.Config, dict(cfg.model_options), where="model options")
    return model_cls.config_for(dataset, **overrides)


def padding_trimmer(cfg: TrainConfig, task):
    """The task's ``trim_padding(batch) -> batch`` when the config asks for it, else None; a
    ConfigError for a task that cannot trim."""
    if not cfg.trim_padding:
        return None
    trim = getattr(task, "trim_padding", None)
    if trim is None:
        raise ConfigError(
            f"trim_padding=True: the {task.kind!r} task of dataset "
            f"{cfg.dataset!r} does not trim padding; drop the option"
        )
    return trim


def steps_per_epoch(dataset, batch_size: int) -> int:
    """Training batches in one epoch (datasets with bucketed batches say how many they make)."""
    if hasattr(dataset, "num_batches"):
        steps = dataset.num_batches("train", batch_size)
    else:
        steps = dataset.num_examples("train") // batch_size
    if steps == 0:
        raise ConfigError(
            f"batch_size={batch_size} is larger than the training split "
            f"({dataset.num_examples('train')} examples)"
        )
    return steps


def total_steps(cfg: TrainConfig, per_epoch: int) -> int:
    return cfg.steps or (cfg.epochs or 1) * per_epoch
