"""Checkpoints: a run's whole state in one folder, written so that a crash at any instant
leaves the previous complete checkpoint or the new complete one, never a mix.

    checkpoints/step-00001200/
        params.safetensors     the parameters, keyed by dotted path
        opt_state.safetensors  the optimizer state's leaves, numbered in flattening order
        state.json             the run's Progress (step, epoch, position, metrics lines...)
        manifest.json          size and sha256 of each file above; written last

A checkpoint is written into ``.tmp-step-N/`` (each file fsynced), then renamed into place;
on load, every file is checked against the manifest. A folder without a manifest, or whose
files disagree with it, is damaged: :func:`read` says which file and why.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
from pathlib import Path

from safetensors.torch import load, save

from seqfunc.errors import CheckpointError
from seqfunc.runs.files import MANIFEST, OPT_STATE, PARAMS, STATE
from seqfunc.serialization import (
    params_from_tensors,
    params_tensors,
    tree_from_tensors,
    tree_tensors,
)

_NAME = re.compile(r"^step-(\d{8,})$")


def folder_name(step: int) -> str:
    return f"step-{step:08d}"


def checkpoint_steps(root: Path) -> list[int]:
    """Steps of the checkpoint folders under ``root`` (complete or not), oldest first.

    Only folders named exactly as :func:`folder_name` names them count: a file, or a folder
    such as ``step-000000099`` (another spelling of step 99), is not a checkpoint and is
    ignored."""
    if not root.is_dir():
        return []
    steps = []
    for p in root.iterdir():
        m = _NAME.match(p.name)
        if m and p.name == folder_name(int(m.group(1))) and p.is_dir():
            steps.append(int(m.group(1)))
    return sorted(steps)


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write(root: Path, step: int, params, opt_state, state: dict) -> Path:
    """Write the checkpoint of ``step`` under ``root``; returns its folder.

    A full disk raises :class:`CheckpointError` saying so; the partial folder is removed and
    every earlier checkpoint is left as it was."""
    files = {
        PARAMS: save(params_tensors(params)),
        OPT_STATE: save(tree_tensors(opt_state)),
        STATE: json.dumps(state, indent=1, sort_keys=True).encode(),
    }
    manifest = {
        name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        for name, data in files.items()
    }
    files[MANIFEST] = json.dumps({"step": step, "files": manifest}, indent=1).encode()
    final = root / folder_name(step)
    tmp = root / f".tmp-{folder_name(step)}"
    root.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        for name, data in files.items():  # the manifest last
            _write_file(tmp / name, data)
        _fsync_dir(tmp)
        if final.exists():  # a damaged folder of the same step, set aside by the reader
            shutil.rmtree(final)
        os.replace(tmp, final)
        _fsync_dir(root)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if exc.errno == errno.ENOSPC:
            raise CheckpointError(
                f"{final}: no space left on device while writing the "
                "checkpoint; the run stopped, earlier checkpoints are intact"
            ) from None
        raise CheckpointError(
            f"{final}: cannot write the checkpoint ({exc.strerror or exc})"
        ) from None
    except BaseException:  # e.g. a second Ctrl-C: leave no partial folder behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _verified(folder: Path) -> dict[str, bytes]:
    """Every file of the checkpoint as bytes, checked against the manifest."""
    try:
        manifest = json.loads((folder / MANIFEST).read_bytes())
        expected = manifest["files"]
    except FileNotFoundError:
        raise CheckpointError(
            f"{folder / MANIFEST}: missing (the checkpoint was not finished)"
        ) from None
    except (ValueError, KeyError, TypeError):
        raise CheckpointError(f"{folder / MANIFEST}: not a checkpoint manifest") from None
    files = {}
    for name in (PARAMS, OPT_STATE, STATE):
        path = folder / name
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise CheckpointError(f"{path}: missing") from None
        want = expected.get(name, {})
        if len(data) != want.get("bytes"):
            raise CheckpointError(
                f"{path}: {len(data)} bytes, the manifest says {want.get('bytes')} (truncated?)"
            )
        if hashlib.sha256(data).hexdigest() != want.get("sha256"):
            raise CheckpointError(
                f"{path}: checksum differs from the manifest (the file is corrupted)"
            )
        files[name] = data
    return files


def read_state(folder: Path) -> dict:
    """The verified ``state.json`` of a checkpoint folder (its Progress, and the config it
    was written with where it records one)."""
    return json.loads(_verified(folder)[STATE])


def read(folder: Path, params_template, opt_template, *, device=None):
    """``(params, opt_state, state_dict)`` of a checkpoint folder, verified; the templates
    (a fresh init) give the structures. Raises :class:`CheckpointError` naming the bad file,
    :class:`~seqfunc.errors.CheckpointMismatch` for whole files that do not fit the templates."""
    files = _verified(folder)
    device = str(device or "cpu")
    try:
        params_flat = {k: v.to(device) for k, v in load(files[PARAMS]).items()}
        opt_flat = {k: v.to(device) for k, v in load(files[OPT_STATE]).items()}
    except Exception as exc:
        raise CheckpointError(f"{folder}: not readable safetensors ({exc})") from None
    params = params_from_tensors(params_flat, params_template, where=str(folder / PARAMS))
    opt_state = tree_from_tensors(opt_flat, opt_template, where=str(folder / OPT_STATE))
    return params, opt_state, json.loads(files[STATE])


def newest_params(root: Path, template, *, device=None):
    """``(folder, params)`` of the newest checkpoint under ``root`` that verifies, or None
    (damaged ones are skipped, not moved: this is a reader's view)."""
    for step in reversed(checkpoint_steps(root)):
        folder = root / folder_name(step)
        try:
            data = _verified(folder)[PARAMS]
            flat = {k: v.to(str(device or "cpu")) for k, v in load(data).items()}
        except CheckpointError:
            continue
        return folder, params_from_tensors(flat, template, where=str(folder / PARAMS))
    return None


def prune(root: Path, keep: int) -> None:
    """Delete all but the newest ``keep`` checkpoint folders."""
    for step in checkpoint_steps(root)[:-keep]:
        shutil.rmtree(root / folder_name(step), ignore_errors=True)


def set_aside(folder: Path) -> Path:
    """Rename a damaged checkpoint to ``damaged-step-N`` (kept for inspection, never loaded)."""
    target = folder.with_name(f"damaged-{folder.name}")
    n = 1
    while target.exists():
        target, n = folder.with_name(f"damaged-{folder.name}.{n}"), n + 1
    os.replace(folder, target)
    return target
