"""Starting a run from another run's parameters (``init_from``): full fine-tuning, or LoRA
adapters over the frozen parameters (``lora_rank``).

The model and its config come from the ``init_from`` run folder (a trained seqfunc run or one
``seqfunc import`` wrote); model options may change what leaves the shapes alone (dropout),
and anything that would change a shape is refused. The model that :func:`starting_model`
returns is an ordinary model whose ``init`` gives the starting parameters (full fine-tuning)
or a fresh adapter tree (LoRA), so the step, the loop, members and checkpoints are those of
any run. A LoRA run's folder holds the adapters; its base stays referenced by ``init_from``.

In memory ``init_from`` is a path as the process sees it; a run's ``config.json`` stores it
relative to the run folder (:func:`stored_init_from`), so that the run and its base moved
together (a ``runs/`` tree copied elsewhere) still find each other, and reading resolves it
against the folder (:func:`resolved_init_from`). An absolute path, as older runs stored it,
reads as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs
import torch

from seqfunc import registry, rng
from seqfunc.config import typed_fields
from seqfunc.errors import CheckpointError, ConfigError
from seqfunc.models.lora import LoRAModel
from seqfunc.serialization import read_json
from seqfunc.tree import flatten_dict, tree_map


def stored_init_from(init_from: str | None, folder: str | os.PathLike) -> str | None:
    """``init_from`` as the ``config.json`` in ``folder`` stores it: relative to ``folder``
    (absolute only where no relative path exists, e.g. another drive on Windows)."""
    if init_from is None:
        return None
    target, base = Path(init_from).resolve(), Path(folder).resolve()
    try:
        return Path(os.path.relpath(target, base)).as_posix()
    except ValueError:
        return str(target)


def resolved_init_from(stored: str | None, folder: str | os.PathLike) -> str | None:
    """The ``init_from`` a ``config.json`` in ``folder`` stores, as a path this process
    opens: relative ones against ``folder``, absolute ones (older runs) as they are."""
    if stored is None:
        return None
    return str((Path(folder) / stored).resolve())


class InitializedModel:
    """``model`` whose ``init(key)`` returns (a copy of) ``params``, whatever the key; every
    other attribute is the model's."""

    def __init__(self, model, params: dict):
        self.base_model = model
        self.params = params

    def init(self, key: rng.KeyArray) -> dict:
        return tree_map(torch.clone, self.params)

    def __getattr__(self, name: str):
        return getattr(self.base_model, name)


def source_model_name(path: str | Path) -> str:
    """The model name in the ``config.json`` of the run folder ``path``."""
    where = Path(path) / "config.json"
    if not where.is_file():
        raise CheckpointError(f"init_from {path}: not a run folder (no config.json)")
    try:
        return read_json(where)["model"]["name"]
    except (KeyError, TypeError):
        raise CheckpointError(f"{where}: no model name") from None


def artifacts_of(path: str | Path, dataset: str) -> Path | None:
    """The ``init_from`` run folder when its dataset is ``dataset``: fine-tuning then reads
    that run's vocabulary or tokenizer, so that the ids mean what they meant to the model."""
    record = read_json(Path(path) / "config.json") if Path(path, "config.json").is_file() else {}
    return Path(path) if record.get("dataset", {}).get("name") == dataset else None


def starting_model(cfg, dataset, device=None):
    """The model of a run with ``cfg.init_from`` (see the module's docstring), checked against
    ``cfg``'s model name and options and ``dataset``'s vocabulary; ``device``: where the
    starting parameters go."""
    from seqfunc.runs.load import load_run

    path = Path(cfg.init_from)
    name = source_model_name(path)
    if cfg.model != name:
        raise ConfigError(
            f"init_from {path}: its model is {name!r}, not {cfg.model!r} "
            f"(drop --model, or pass --model {name})"
        )
    source = load_run(path, device=device or "cpu")
    base_model, params = source.model, source.params
    if isinstance(base_model, LoRAModel):  # a LoRA run: start from its merged weights
        base_model, params = base_model.base_model, base_model.merged(params)
    model_cls = registry.get_model(name)
    overrides = typed_fields(model_cls.Config, dict(cfg.model_options), where="model options")
    model = model_cls(attrs.evolve(base_model.config, **overrides))
    _check_shapes(model, params, overrides, path)
    _check_vocabulary(model, model_cls, dataset, cfg.dataset, path)
    if cfg.lora_rank is None:
        return InitializedModel(model, params)
    return LoRAModel(
        model, params, rank=cfg.lora_rank, alpha=cfg.lora_alpha, targets=cfg.lora_targets
    )


def check_lora_config(cfg) -> None:
    if cfg.lora_rank is not None and cfg.init_from is None:
        raise ConfigError(
            "lora_rank: LoRA adapts the parameters of another run; pass --init-from RUN"
        )


def _check_shapes(model, params: dict, overrides: dict, path: Path) -> None:
    from seqfunc.runs.load import parameter_template

    wanted = {k: tuple(v.shape) for k, v in flatten_dict(parameter_template(model)).items()}
    have = {k: tuple(v.shape) for k, v in flatten_dict(params).items()}
    if wanted != have:
        options = ", ".join(f"{k}={v!r}" for k, v in overrides.items()) or "none"
        raise ConfigError(
            f"init_from {path}: model options ({options}) change the shapes of its "
            "parameters; the model comes from the run, drop the options that resize it"
        )


def _check_vocabulary(model, model_cls, dataset, dataset_name: str, path: Path) -> None:
    have = getattr(model.config, "vocab_size", None)
    wanted = getattr(model_cls.config_for(dataset), "vocab_size", None)
    if have != wanted:
        raise ConfigError(
            f"init_from {path}: the model has a vocabulary of {have} tokens, dataset "
            f"{dataset_name!r} has {wanted}; fine-tune on data with the run's tokenizer"
        )


def lora_run_model(train: dict, model, folder: str | os.PathLike, device=None):
    """The model of the LoRA run ``folder``: ``model`` (built from its config) adapted over
    the parameters of its ``init_from``; ``train``: its config's "train"."""
    from seqfunc.runs.load import load_run

    base = load_run(resolved_init_from(train["init_from"], folder), device=device or "cpu")
    params = base.params
    if isinstance(base.model, LoRAModel):
        params = base.model.merged(params)
    return LoRAModel(
        model,
        params,
        rank=int(train["lora_rank"]),
        alpha=float(train.get("lora_alpha", 16.0)),
        targets=tuple(train.get("lora_targets", ("q", "v"))),
    )
