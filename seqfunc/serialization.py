"""Files of parameters and records: tensors go to safetensors (loading runs no code), the rest
to JSON; every file is written atomically (temp file + rename), so a crash never leaves half a
file. The run folder's layout on top of these is :mod:`seqfunc.runs.folder`."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from seqfunc.errors import CheckpointError, CheckpointMismatch, SeqfuncError  # noqa: F401
from seqfunc.tree import flatten_dict, tree_flatten, tree_unflatten


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path`` (same folder, so the rename is atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | os.PathLike, data: Any) -> None:
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=True)
            f.write("\n")

    atomic_write(path, write)


def read_json(path: str | os.PathLike, *, error: type[SeqfuncError] = CheckpointError) -> Any:
    """The JSON value in ``path``; a missing or malformed file raises ``error`` in one line
    naming the file (and the line): a dataset's files raise :class:`~seqfunc.errors.DataError`,
    a run folder's :class:`~seqfunc.errors.CheckpointError`."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise error(f"{path}: not found") from None
    except json.JSONDecodeError as exc:
        raise error(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None


def _contiguous_cpu(tree: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # cloned: leaves may be views of one vector (the flat step's params), and safetensors
    # refuses tensors that share memory
    return {
        k: v.detach().to("cpu").clone(memory_format=torch.contiguous_format)
        for k, v in tree.items()
    }


def params_tensors(params: dict) -> dict[str, torch.Tensor]:
    """Params as the flat ``{dotted path: tensor}`` dict safetensors stores
    (``encoder.layers.0.attn.qkv.weight``), on the CPU and contiguous."""
    return _contiguous_cpu(flatten_dict(params))


def tree_tensors(tree: Any) -> dict[str, torch.Tensor]:
    """Any pytree of tensors (e.g. optimizer state), leaves numbered in flattening order."""
    leaves, _ = tree_flatten(tree)
    return _contiguous_cpu({str(i): leaf for i, leaf in enumerate(leaves)})


def params_from_tensors(flat: dict[str, torch.Tensor], template: dict, *, where: str) -> dict:
    """The inverse of :func:`params_tensors` into the structure of ``template`` (e.g.
    ``model.init(key)``); names and shapes must match exactly, and a mismatch
    (:class:`~seqfunc.errors.CheckpointMismatch`) names the keys."""
    expected = flatten_dict(template)
    missing, unexpected = sorted(set(expected) - set(flat)), sorted(set(flat) - set(expected))
    if missing or unexpected:
        raise CheckpointMismatch(
            f"{where}: parameters do not match the model: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    for name, value in expected.items():
        if tuple(flat[name].shape) != tuple(value.shape):
            raise CheckpointMismatch(
                f"{where}: {name} has shape {tuple(flat[name].shape)}, the model expects "
                f"{tuple(value.shape)}"
            )
    leaves, spec = tree_flatten(template)
    if any(a is not b for a, b in zip(leaves, expected.values())):  # orders must agree
        raise CheckpointError("internal: pytree and dotted-name flattening orders differ")
    return tree_unflatten([flat[name] for name in expected], spec)


def tree_from_tensors(flat: dict[str, torch.Tensor], template: Any, *, where: str) -> Any:
    """The inverse of :func:`tree_tensors` into the structure of ``template``."""
    leaves, spec = tree_flatten(template)
    if sorted(flat, key=int) != [str(i) for i in range(len(leaves))]:
        raise CheckpointMismatch(f"{where}: {len(flat)} tensors, expected {len(leaves)}")
    for i, leaf in enumerate(leaves):
        if tuple(flat[str(i)].shape) != tuple(leaf.shape):
            raise CheckpointMismatch(
                f"{where}: tensor {i} has shape {tuple(flat[str(i)].shape)}, "
                f"expected {tuple(leaf.shape)}"
            )
    return tree_unflatten([flat[str(i)] for i in range(len(leaves))], spec)


def _load_file(path, device) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(path), device=str(device or "cpu"))
    except FileNotFoundError:
        raise CheckpointError(f"{path}: not found") from None
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None


def save_params(path: str | os.PathLike, params: dict) -> None:
    """Params as safetensors, keyed by dotted path (:func:`params_tensors`)."""
    flat = params_tensors(params)
    atomic_write(path, lambda tmp: save_file(flat, tmp))


def load_params(path: str | os.PathLike, template: dict, *, device=None) -> dict:
    """Load into the structure of ``template`` (e.g. ``model.init(key)``); names and shapes
    must match exactly, and a mismatch names the keys."""
    return params_from_tensors(_load_file(path, device), template, where=str(path))


def save_tree(path: str | os.PathLike, tree: Any) -> None:
    """Any pytree of tensors (e.g. optimizer state), leaves numbered in flattening order."""
    flat = tree_tensors(tree)
    atomic_write(path, lambda tmp: save_file(flat, tmp))


def load_tree(path: str | os.PathLike, template: Any, *, device=None) -> Any:
    return tree_from_tensors(_load_file(path, device), template, where=str(path))
