"""``seqfunc export --format hf``: a seqfunc run folder -> a Hugging Face folder
(``config.json``, ``model.safetensors``, ``tokenizer.json`` when the run has one) that
``transformers``' ``from_pretrained`` loads. Written beside its destination and renamed into
place."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from safetensors.torch import save_file

from seqfunc.errors import CheckpointError
from seqfunc.pretrained.architectures import architecture_for_model
from seqfunc.pretrained.convert import params_to_hf
from seqfunc.serialization import write_json


def export_run(
    run_path: str | os.PathLike,
    out: str | os.PathLike,
    *,
    merge: bool = False,
    log: Callable[[str], None] = print,
) -> Path:
    """Write the Hugging Face folder ``out`` from the run folder ``run_path``. ``merge``: a
    LoRA run's adapters are merged into its base weights (a LoRA run needs it)."""
    from seqfunc.models.lora import LoRAModel
    from seqfunc.runs.load import load_run

    out = Path(out)
    if out.exists():
        raise CheckpointError(f"{out} already exists; choose another --out")
    run = load_run(run_path)
    model, params = run.model, run.params
    if isinstance(model, LoRAModel):
        if not merge:
            raise CheckpointError(
                f"{run_path} holds LoRA adapters; pass --merge to write them merged into "
                "the weights of its init_from run"
            )
        model, params = model.base_model, model.merged(params)
    arch = architecture_for_model(run.config["model"]["name"])
    hf_config = arch.to_hf(model.config)
    tensors = params_to_hf(params, arch.table, tied=model.config.tie_weights)
    dtypes = {t.dtype for t in tensors.values()}
    hf_config["torch_dtype"] = (
        str(dtypes.pop()).removeprefix("torch.") if len(dtypes) == 1 else ("float32")
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        save_file(tensors, str(staging / "model.safetensors"), metadata={"format": "pt"})
        write_json(staging / "config.json", hf_config)
        tokenizer = getattr(run.dataset, "tokenizer", None)
        if tokenizer is not None and hasattr(tokenizer, "to_str"):
            (staging / "tokenizer.json").write_text(tokenizer.to_str(), encoding="utf-8")
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    log(f"exported {arch.model} as {hf_config['architectures'][0]} into {out}")
    return out
