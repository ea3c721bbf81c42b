"""Parameters between the two layouts, through an architecture's key table: a Hugging Face
folder's tensors -> a seqfunc parameter tree (:func:`params_from_hf`) and back
(:func:`params_to_hf`). Every expected tensor is named, shape-checked and read one at a time."""

from __future__ import annotations

import torch

from seqfunc.errors import CheckpointError
from seqfunc.pretrained.key_table import KeyTable
from seqfunc.pretrained.reader import WeightFolder
from seqfunc.runs.load import parameter_template
from seqfunc.tree import flatten_dict, tree_flatten, tree_unflatten


def params_from_hf(
    weights: WeightFolder,
    table: KeyTable,
    model,
    *,
    dtype: torch.dtype | None = None,
) -> dict:
    """The seqfunc parameter tree of ``model`` from ``weights``. Tensors keep their stored
    dtype unless ``dtype`` is given. A tensor of the wrong shape, one missing, or one that no
    rule of ``table`` maps is one error naming it."""
    template = parameter_template(model)
    expected = {name: tuple(leaf.shape) for name, leaf in flatten_dict(template).items()}
    found: dict[str, tuple[str, bool]] = {}  # our path -> (HF name, transpose)
    unmapped = []
    for hf_name in weights.names():
        mapped = table.to_ours(hf_name)
        if mapped is None:
            if not table.is_ignored(hf_name):
                unmapped.append(hf_name)
            continue
        ours, transpose = mapped
        if ours in expected:
            found[ours] = (hf_name, transpose)
        elif not (ours.startswith("head.") and "head.weight" not in expected):
            unmapped.append(hf_name)  # a head beside tied weights is the embedding again
    if unmapped:
        raise CheckpointError(
            f"{weights.source(unmapped[0])}: {len(unmapped)} tensor(s) this architecture does "
            f"not have, e.g. {unmapped[:3]}"
        )
    missing = [name for name in expected if name not in found]
    if missing:
        hf_names = [table.to_hf(name)[0] for name in missing]
        raise CheckpointError(f"{weights.folder}: missing tensor(s) {hf_names[:5]}")
    flat = {}
    for ours, shape in expected.items():
        hf_name, transpose = found[ours]
        stored = weights.shape(hf_name)
        if (stored[::-1] if transpose else stored) != shape:
            want = shape[::-1] if transpose else shape
            raise CheckpointError(
                f"{weights.source(hf_name)}: {hf_name} has shape {stored}, the config says {want}"
            )
        tensor = weights.get(hf_name)
        if transpose:
            tensor = tensor.t().contiguous()
        flat[ours] = tensor if dtype is None else tensor.to(dtype)
    _, spec = tree_flatten(template)
    return tree_unflatten([flat[name] for name in expected], spec)


def params_to_hf(params: dict, table: KeyTable, *, tied: bool) -> dict[str, torch.Tensor]:
    """``{Hugging Face name: tensor}`` (contiguous, on the CPU) of a seqfunc parameter tree;
    with ``tied``, the head is the embedding and is not written."""
    out = {}
    for ours, tensor in flatten_dict(params).items():
        try:
            hf_name, transpose = table.to_hf(ours)
        except KeyError:
            raise CheckpointError(f"export: no Hugging Face name for parameter {ours}") from None
        tensor = tensor.detach().to("cpu")
        out[hf_name] = (tensor.t() if transpose else tensor).contiguous().clone()
    if tied:
        out.pop(table.to_hf("head.weight")[0], None)
    return out
