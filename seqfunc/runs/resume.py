"""What a resume checks before it writes anything: the checkpoint it continues from was
written for the run this config builds, and the run is not asked to end before the step it
has reached. A checkpoint that does not fit is a mismatch, not damage: the resume stops and
names what differs; nothing in the run folder is renamed or rewritten."""

from __future__ import annotations

from pathlib import Path

from seqfunc.errors import CheckpointMismatch, ConfigError
from seqfunc.runs import checkpoint
from seqfunc.runs.config import RESUMABLE_CHANGES
from seqfunc.runs.init_from import stored_init_from
from seqfunc.runs.state import Progress

#: The key of a checkpoint's state.json that records the run's config.json as it was written.
CONFIG_KEY = "config"

HOW_TO_GO_ON = (
    "restore config.json and the data file as they were, resume with the saved "
    "config (no flags but --steps/--epochs), or start a new run with another --out"
)


def changes(old: dict, new: dict, prefix: str = "") -> list[str]:
    """``field old -> new`` for every leaf that differs between two config.json records
    (nested sections as dotted names); the training fields a resume may change are left out."""
    out = []
    for key in sorted(old.keys() | new.keys()):
        name = f"{prefix}{key}"
        if prefix.endswith("train.") and key in RESUMABLE_CHANGES:  # a member's too
            continue
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += changes(a, b, f"{name}.")
        elif a != b:
            out.append(f"{name} {a!r} -> {b!r}")
    return out


def check_config(run, record: dict, found_in: Path, saved: dict, folders) -> None:
    """Refuse when the config this resume builds (``record``, laid out as config.json)
    differs from the one the checkpoint ``found_in`` was written with (``saved``);
    ``folders``: each member's run folder, where its record's ``init_from`` is relative to."""
    differing = changes(_normalised(stored_init_froms(saved, folders)), _normalised(record))
    if differing:
        raise CheckpointMismatch(
            f"--resume {run}: config.json differs from the config {found_in.name} was written "
            f"with: {', '.join(differing[:6])}{' ...' if len(differing) > 6 else ''}; nothing "
            f"was changed: {HOW_TO_GO_ON}"
        )


def mismatch(run, folder: Path, exc: CheckpointMismatch, record: dict) -> CheckpointMismatch:
    """The one-line refusal for a checkpoint whose tensors do not fit the model built now:
    the config fields that differ when the checkpoint records its config, else the tensor."""
    try:
        saved = checkpoint.read_state(folder).get(CONFIG_KEY)
    except Exception:  # the tensor's message still says what differs
        saved = None
    differing = changes(_normalised(saved), _normalised(record)) if isinstance(saved, dict) else []
    what = f"config.json changed ({', '.join(differing[:6])}) and " if differing else ""
    return CheckpointMismatch(
        f"--resume {run}: {what}the checkpoint does not fit the model this config builds: "
        f"{exc}; it is whole and left as it is (a changed model config or vocabulary); "
        f"nothing was changed: {HOW_TO_GO_ON}"
    )


def check_length(run, at: Progress, total_steps: int, found_in: Path) -> None:
    """Refuse a resume that would end before the step the run has reached."""
    if at.step > total_steps:
        raise ConfigError(
            f"--resume {run}: the run has reached step {at.step} ({found_in.name}); a run of "
            f"{total_steps} steps would end before it: give --steps {at.step} or more (nothing "
            "was changed)"
        )


def stored_init_froms(record: dict, folders) -> dict:
    """``record`` (one run's, or ``{"member NNN": record}``) with each member's ``init_from``
    as its folder's config.json stores it now: an older checkpoint's absolute path becomes
    relative (runs/init_from.py), so that it compares equal to the record built now."""
    if "train" in record or len(folders) == 1:
        return _stored_init_from(record, folders[0])
    return {
        key: _stored_init_from(value, folder)
        for (key, value), folder in zip(record.items(), folders)
    }


def _stored_init_from(record, folder) -> dict:
    train = record.get("train") if isinstance(record, dict) else None
    if not isinstance(train, dict) or not isinstance(train.get("init_from"), str):
        return record
    if not Path(train["init_from"]).is_absolute():
        return record
    stored = stored_init_from(train["init_from"], folder.path)
    return {**record, "train": {**train, "init_from": stored}}


def _normalised(record) -> dict:
    """A record as JSON reads it back (tuples as lists), so that a record built in this
    process and one read from disk compare equal."""
    import json

    return json.loads(json.dumps(record, default=str)) if isinstance(record, dict) else {}
