"""A saved run folder, loaded back: config, dataset, model and parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
import torch

from seqfunc import registry, rng
from seqfunc.config import from_dict
from seqfunc.devices import resolve_device
from seqfunc.runs import checkpoint, files
from seqfunc.serialization import CheckpointError, load_params, read_json


@attrs.frozen
class Run:
    """A loaded run folder: ``load_run(path).predict(["some text"])``."""

    path: Path
    config: dict
    dataset: Any
    model: Any
    params: dict

    @property
    def task(self) -> str:
        """The task kind: ``"classification"``, ``"seq2seq"`` or ``"language_model"``."""
        return self.dataset.task

    def predict(self, texts, **options) -> list[dict]:
        """One prediction dict per text (a single string is one text), whatever the task
        kind: classification ``{"input", "label", "probabilities"}``, seq2seq
        ``{"input", "output"}``, language model ``{"input", "continuation"}``. Options:
        ``beam`` (seq2seq), ``tokens``, ``temperature``, ``top_k``, ``seed`` (language model),
        ``batch_size``; see :func:`seqfunc.inference.predict.predict`."""
        from seqfunc.inference.predict import predict

        return predict(self, texts, **options)


def load_run(
    path: str | Path, *, device: str | torch.device = "cpu", task: str | None = None
) -> Run:
    """Rebuild the dataset and model of a run folder written by :func:`seqfunc.runs.fit` and
    load its parameters (safetensors: no code runs on load). With ``task``, a run of another
    task kind is refused with a message naming both kinds."""
    path = Path(path)
    device = resolve_device(device, where="--device")
    if not path.is_dir():
        raise CheckpointError(f"{path}: no such run folder")
    config = read_json(path / files.CONFIG)
    try:
        dataset_cls = registry.get_dataset(config["dataset"]["name"])
        model_cls = registry.get_model(config["model"]["name"])
        dataset_config = config["dataset"]["config"]
        model_config = config["model"]["config"]
    except KeyError as exc:
        raise CheckpointError(f"{path / files.CONFIG}: missing field {exc}") from None
    if task is not None and dataset_cls.task != task:
        raise CheckpointError(f"{path} is a {dataset_cls.task!r} run; this needs a {task!r} run")
    dataset_config = from_dict(
        dataset_cls.Config, dataset_config, where=f"{path / files.CONFIG} dataset"
    )
    if hasattr(dataset_cls, "from_artifacts"):  # what fit saved with the run (e.g. tokenizers)
        dataset = dataset_cls.from_artifacts(dataset_config, path)
    else:
        dataset = dataset_cls(dataset_config)
    model = model_cls(
        from_dict(model_cls.Config, model_config, where=f"{path / files.CONFIG} model")
    )
    train = config.get("train") or {}
    if train.get("lora_rank") is not None and train.get("init_from"):  # adapters over a base
        from seqfunc.runs.init_from import lora_run_model

        model = lora_run_model(train, model, path, device)
    params = load_run_params(path, parameter_template(model), device=device)
    return Run(path, config, dataset, model, params)


def parameter_template(model) -> dict:
    """``model.init``'s tree for its structure and shapes, built on the meta device: no memory
    and no random draws, which matters for a pretrained model of billions of parameters. A
    model whose ``init`` needs real values (reads a tensor back) builds it for real."""
    try:
        with torch.device("meta"):
            return model.init(rng.key(0))
    except (RuntimeError, NotImplementedError, ValueError):  # e.g. .item() of a meta tensor
        return model.init(rng.key(0))


def load_run_params(path: Path, template: dict, *, device=None) -> dict:
    """The parameters of a run folder: the final ones of a finished run, else those of its
    newest complete checkpoint (a run that was interrupted, or is still training)."""
    if (path / files.PARAMS).exists():
        return load_params(path / files.PARAMS, template, device=device)
    found = checkpoint.newest_params(path / files.CHECKPOINTS, template, device=device)
    if found is None:
        raise CheckpointError(
            f"{path}: no parameters yet (no {files.PARAMS} and no complete checkpoint)"
        )
    return found[1]
