"""The tensors of a Hugging Face folder, read lazily: names and shapes from the headers, each
tensor's bytes only when it is asked for.

Formats, in order of preference: ``model.safetensors``, a sharded
``model.safetensors.index.json`` (its ``weight_map`` names the shard of every tensor), and
``pytorch_model.bin`` (or its sharded index), read with ``torch.load(weights_only=True)``: a
pickle that holds anything but tensors and plain containers is refused, never run.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import torch

from seqfunc.errors import CheckpointError

SAFETENSORS, SAFETENSORS_INDEX = "model.safetensors", "model.safetensors.index.json"
PICKLE, PICKLE_INDEX = "pytorch_model.bin", "pytorch_model.bin.index.json"


class WeightFolder:
    """``names()``, ``shape(name)`` and ``get(name)`` over a folder's weight files."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self._where: dict[str, Path] = {}  # tensor name -> its file
        self._open: dict[Path, object] = {}  # safetensors handles / loaded pickles
        for single, index in ((SAFETENSORS, SAFETENSORS_INDEX), (PICKLE, PICKLE_INDEX)):
            if (self.folder / single).is_file():
                self._index_file(self.folder / single)
                break
            if (self.folder / index).is_file():
                self._index_shards(self.folder / index)
                break
        else:
            raise CheckpointError(
                f"{self.folder}: no weights ({SAFETENSORS}, {SAFETENSORS_INDEX}, {PICKLE} "
                f"or {PICKLE_INDEX})"
            )

    def _index_shards(self, index: Path) -> None:
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{index}: not a shard index ({exc})") from None
        for shard in sorted(set(weight_map.values())):
            if not (self.folder / shard).is_file():
                raise CheckpointError(f"{index}: names shard {shard}, which is missing")
        for name, shard in weight_map.items():
            self._where[name] = self.folder / shard

    def _index_file(self, path: Path) -> None:
        for name in self._handle(path).keys():
            self._where[name] = path

    def _handle(self, path: Path):
        """An open safetensors file (memory-mapped) or the dict of a weights-only pickle."""
        if path not in self._open:
            self._open[path] = (
                _open_safetensors(path) if path.suffix == ".safetensors" else (_load_pickle(path))
            )
        return self._open[path]

    def names(self) -> list[str]:
        return list(self._where)

    def shape(self, name: str) -> tuple[int, ...]:
        handle = self._handle(self._where[name])
        if isinstance(handle, dict):
            return tuple(handle[name].shape)
        return tuple(handle.get_slice(name).get_shape())

    def get(self, name: str) -> torch.Tensor:
        path = self._where[name]
        handle = self._handle(path)
        try:
            return handle[name] if isinstance(handle, dict) else handle.get_tensor(name)
        except KeyError:
            raise CheckpointError(f"{path}: the index puts {name} here, but it is not") from None

    def source(self, name: str) -> Path:
        return self._where[name]


def _open_safetensors(path: Path):
    from safetensors import safe_open

    try:
        return safe_open(str(path), framework="pt", device="cpu")
    except Exception as exc:  # the Rust side raises its own error types
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None


def _load_pickle(path: Path) -> dict:
    try:  # memory-mapped where the format allows (torch.save's zip files)
        mmap = zipfile.is_zipfile(path)
        state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as exc:
        raise CheckpointError(
            f"{path}: refused: not a weights-only pickle of tensors ({_pickle_problem(exc)}); "
            "nothing in it was run"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: not a dict of tensors")
    return state


def _pickle_problem(exc: Exception) -> str:
    """What ``torch.load(weights_only=True)`` refused, in a few words."""
    text = str(exc)
    found = re.search(r"(?:Unsupported global: GLOBAL|unsupported GLOBAL) (\S+)", text)
    if found:
        return f"it calls {found[1]}"
    found = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
    if found:
        return found[1].strip()[:120]
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first[:120]
