"""A run folder on disk: one writer (the process of rank 0, holding the folder's lock:
runs/lock.py), every process a reader.

    .lock               the writer's lock (pid, host, start time of the process holding it)
    config.json         the full config (re-running it reproduces the run)
    metrics.jsonl       one JSON object per line: step, split, loss, metrics (strict JSON:
                        a NaN or Inf is written as null, runs/jsonl.py)
    curves.png          loss and accuracy curves (needs matplotlib)
    checkpoints/        the newest ``keep_checkpoints`` checkpoints (runs/checkpoint.py)
    params.safetensors, opt_state.safetensors, state.json   the final state, once finished
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from seqfunc.config import from_dict, to_dict
from seqfunc.errors import CheckpointError, CheckpointMismatch
from seqfunc.runs import checkpoint, files
from seqfunc.runs.config import TrainConfig
from seqfunc.runs.init_from import resolved_init_from, stored_init_from
from seqfunc.runs.jsonl import strict_line
from seqfunc.serialization import read_json, save_params, save_tree, write_json


class RunFolder:
    """``writer=False`` (ranks other than 0) reads the folder and never changes it."""

    def __init__(self, path: str | os.PathLike, *, writer: bool = True):
        self.path = Path(path)
        self.checkpoints = self.path / files.CHECKPOINTS
        self.writer = writer

    def __str__(self) -> str:
        return str(self.path)

    # -- config ---------------------------------------------------------------------------

    def saved_config(self) -> TrainConfig:
        """The TrainConfig of ``config.json``; a clear error if this is not a run folder."""
        if not (self.path / files.CONFIG).is_file():
            raise CheckpointError(f"{self.path}: not a run folder (no config.json)")
        data = read_json(self.path / files.CONFIG)
        if not isinstance(data, dict) or not isinstance(data.get("train"), dict):
            raise CheckpointError(f'{self.path / files.CONFIG}: no "train" section')
        train = dict(data["train"])
        train["init_from"] = resolved_init_from(train.get("init_from"), self.path)
        return from_dict(TrainConfig, train, where=f"{self.path / files.CONFIG} train")

    def refuse_overwrite(self) -> None:
        if self.writer and (self.path / files.CONFIG).exists():
            raise CheckpointError(
                f"{self.path} already holds a run; resume it with "
                f"`seqfunc train --resume {self.path}` or choose another --out"
            )

    def config_record(self, cfg: TrainConfig, dataset, model) -> dict:
        """What this folder's ``config.json`` holds for this config, dataset and model
        (``init_from`` relative to the folder: runs/init_from.py)."""
        train = {**to_dict(cfg), "init_from": stored_init_from(cfg.init_from, self.path)}
        return {
            "train": train,
            "dataset": {"name": cfg.dataset, "config": to_dict(dataset.config)},
            "model": {"name": cfg.model, "config": to_dict(model.config)},
        }

    def write_config(self, cfg: TrainConfig, dataset, model, *, artifacts: bool = True) -> None:
        """``config.json`` and, with ``artifacts``, what the dataset learned from its data
        (vocabulary, tokenizers, class names), written first: a folder with a config.json
        has them. A resume passes ``artifacts=False``: it reads them, never rewrites them;
        config.json is rewritten only if it changes (e.g. a longer ``--steps``)."""
        if not self.writer:
            return
        if artifacts and hasattr(dataset, "save_artifacts"):
            dataset.save_artifacts(self.path)
        record = self.config_record(cfg, dataset, model)
        path = self.path / files.CONFIG
        try:
            unchanged = path.is_file() and read_json(path) == json.loads(
                json.dumps(record, default=str)
            )
        except CheckpointError:
            unchanged = False
        if not unchanged:
            write_json(path, record)

    # -- checkpoints ----------------------------------------------------------------------

    def write_checkpoint(self, step: int, params, opt_state, state: dict, keep: int) -> Path:
        if not self.writer:
            return self.checkpoints / checkpoint.folder_name(step)
        folder = checkpoint.write(self.checkpoints, step, params, opt_state, state)
        checkpoint.prune(self.checkpoints, keep)
        return folder

    def latest_checkpoint(
        self, params_template, opt_template, *, device=None, log: Callable[[str], None] = print
    ):
        """``(folder, params, opt_state, state)`` of the newest complete checkpoint, or None.

        Damaged ones (truncated, corrupted, unfinished) are reported naming the file, set
        aside as ``damaged-step-N`` and the next older one is tried. One that is whole but
        does not fit the templates raises :class:`CheckpointMismatch` (its ``folder`` set)
        and is left as it is."""
        for step in reversed(checkpoint.checkpoint_steps(self.checkpoints)):
            folder = self.checkpoints / checkpoint.folder_name(step)
            try:
                return (
                    folder,
                    *checkpoint.read(folder, params_template, opt_template, device=device),
                )
            except CheckpointMismatch as exc:  # whole, written for another model: not damage
                exc.folder = folder
                raise
            except (CheckpointError, OSError) as exc:  # OSError: set aside by the writer meanwhile
                if not self.writer:
                    continue
                aside = checkpoint.set_aside(folder)
                log(f"damaged checkpoint: {exc}; set aside as {aside.name}, trying an older one")
        return None

    def last_checkpoint_path(self) -> Path | None:
        steps = checkpoint.checkpoint_steps(self.checkpoints)
        return self.checkpoints / checkpoint.folder_name(steps[-1]) if steps else None

    def write_final(self, params, opt_state, state: dict) -> None:
        if not self.writer:
            return
        save_params(self.path / files.PARAMS, params)
        save_tree(self.path / files.OPT_STATE, opt_state)
        write_json(self.path / files.STATE, state)


class MetricsLog:
    """``metrics.jsonl``: one JSON object per line (strict JSON: a non-finite number is
    written as ``null``; :attr:`records` keeps it as written), each flushed as written. Opened at
    a line count (a checkpoint's), it drops the lines written after it, so a resumed run's file
    reads as if the run had never stopped."""

    def __init__(
        self,
        path: Path,
        keep_lines: int = 0,
        *,
        writer: bool = True,
        tensorboard: Path | None = None,
    ):
        """``tensorboard``: also write every record as TensorBoard scalars into this folder
        (:mod:`seqfunc.runs.tensorboard`)."""
        self.path, self.writer, self.lines, self.records = path, writer, keep_lines, []
        self.events = None
        if not writer:  # records kept in memory only
            return
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True) if path.exists() else []
        if len(lines) < keep_lines:
            raise CheckpointError(
                f"{path}: {len(lines)} lines, the checkpoint expects {keep_lines}"
            )
        self.records = [json.loads(line) for line in lines[:keep_lines]]
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(lines[:keep_lines])
        self.lines = keep_lines
        if tensorboard is not None:
            from seqfunc.runs.tensorboard import TensorBoardLog

            steps = [r["step"] for r in self.records if isinstance(r.get("step"), int)]
            self.events = TensorBoardLog(tensorboard, purge_step=max(steps) + 1 if steps else None)

    def write(self, record: dict) -> None:
        self.records.append(record)
        self.lines += 1
        if not self.writer:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(strict_line(record) + "\n")
        if self.events is not None:
            self.events.write(record)

    def close(self) -> None:
        if self.events is not None:
            self.events.close()
            self.events = None
