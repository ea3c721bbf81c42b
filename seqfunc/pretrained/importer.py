"""``seqfunc import``: a Hugging Face folder -> a seqfunc run folder.

The folder is data, never code: ``config.json`` is read as JSON (``auto_map`` and other
pointers to modelling code are ignored, and the log says so), weights come from safetensors or
a weights-only pickle (:mod:`seqfunc.pretrained.reader`), the tokenizer from
``tokenizer.json``. The run folder holds ``config.json`` (the ``pretrained`` dataset and the
model), ``params.safetensors`` and ``tokenizer.json``; it is written beside its destination
and renamed into place, so it is whole or absent.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import save_file

from seqfunc import registry
from seqfunc.config import from_dict, to_dict
from seqfunc.data.pretrained_tokenizer import (
    TOKENIZER_FILE,
    PretrainedTokenizerConfig,
    PretrainedTokenizerDataset,
    read_tokenizer,
)
from seqfunc.errors import CheckpointError, ConfigError
from seqfunc.pretrained.architectures import architecture_for_hf
from seqfunc.pretrained.convert import params_from_hf
from seqfunc.pretrained.reader import WeightFolder
from seqfunc.runs import files
from seqfunc.runs.files import PARAMS
from seqfunc.serialization import read_json, write_json
from seqfunc.tree import flatten_dict

#: ``--dtype`` values: None keeps each tensor's stored dtype
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
#: config.json fields that point at modelling code shipped with a folder
CODE_FIELDS = ("auto_map", "custom_pipelines")


def read_hf_model(folder: Path, *, log: Callable[[str], None] = print):
    """``(architecture, model, config dict)`` of a Hugging Face folder's ``config.json``."""
    where = str(folder / "config.json")
    hf = read_json(folder / "config.json")
    if not isinstance(hf, dict):
        raise ConfigError(f"{where}: not a JSON object")
    for field in CODE_FIELDS:
        if field in hf:
            log(f"{where}: {field} ignored: no code from the folder runs")
    arch = architecture_for_hf(hf, where)
    model_cls = registry.get_model(arch.model)
    model = model_cls(from_dict(model_cls.Config, arch.from_hf(hf, where, log), where=where))
    return arch, model, hf


def import_folder(
    folder: str | os.PathLike,
    out: str | os.PathLike,
    *,
    dtype: str | None = None,
    byte_tokenizer: bool = False,
    log: Callable[[str], None] = print,
) -> Path:
    """Write the run folder ``out`` from the Hugging Face folder ``folder``; returns ``out``.
    ``dtype``: a key of :data:`DTYPES` to cast every tensor to (default: as stored).
    ``byte_tokenizer``: with no ``tokenizer.json``, UTF-8 bytes are the tokens."""
    folder, out = Path(folder), Path(out)
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: no such folder")
    if out.exists():
        raise CheckpointError(f"{out} already exists; choose another --out")
    if dtype is not None and dtype not in DTYPES:
        raise ConfigError(f"--dtype {dtype}: must be one of {', '.join(DTYPES)}")
    arch, model, hf = read_hf_model(folder, log=log)
    dataset = _dataset(folder, model, byte_tokenizer, eos_ids(hf))
    weights = WeightFolder(folder)
    params = params_from_hf(weights, arch.table, model, dtype=DTYPES.get(dtype))
    flat = flatten_dict(params)
    record = {
        "dataset": {"name": dataset.name, "config": to_dict(dataset.config)},
        "model": {"name": arch.model, "config": to_dict(model.config)},
        "source": {"format": "hf", "architectures": hf["architectures"]},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        dataset.save_artifacts(staging)
        save_file(flat, str(staging / PARAMS))
        write_json(staging / files.CONFIG, record)
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    n = sum(t.numel() for t in flat.values())
    kinds = sorted({str(t.dtype).removeprefix("torch.") for t in flat.values()})
    log(f"imported {arch.model} ({n:,} parameters, {'/'.join(kinds)}) into {out}")
    return out


def eos_ids(hf: dict) -> tuple[int, ...]:
    """The end-of-sequence ids of a Hugging Face config: ``eos_token_id`` (an id, a list of
    ids or absent)."""
    eos = hf.get("eos_token_id")
    ids = eos if isinstance(eos, list) else [eos]
    return tuple(i for i in ids if isinstance(i, int) and not isinstance(i, bool))


def _dataset(
    folder: Path, model, byte_tokenizer: bool, eos: tuple[int, ...]
) -> PretrainedTokenizerDataset:
    context = model.config.context
    if (folder / TOKENIZER_FILE).is_file():
        return PretrainedTokenizerDataset(
            PretrainedTokenizerConfig(context=context, eos_ids=eos),
            tokenizer=read_tokenizer(folder / TOKENIZER_FILE),
        )
    if not byte_tokenizer:
        raise CheckpointError(
            f"{folder}: no {TOKENIZER_FILE} (pass --byte-tokenizer to use UTF-8 bytes as tokens)"
        )
    if model.config.vocab_size < 256:
        raise ConfigError(
            f"--byte-tokenizer: the model has {model.config.vocab_size} tokens, bytes need 256"
        )
    return PretrainedTokenizerDataset(
        PretrainedTokenizerConfig(tokenizer="bytes", context=context, eos_ids=eos)
    )
