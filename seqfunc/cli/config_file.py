"""``seqfunc train --config FILE``: training, dataset and model fields from a JSON or TOML file.

The file may hold any subset of the fields (what it does not set comes from the dataset's
recipe and the defaults; command-line flags override it)::

    # my_run.toml
    dataset = "csv"              # TrainConfig fields at the top level ...
    steps = 500
    lr = 0.002

    [dataset]                    # ... dataset config fields (name = "csv" works here too)
    path = "reviews.csv"
    label_column = "stars"

    [model]                      # ... and model config fields (name = "baseline" too)
    d_model = 128

or the same in JSON (``{"dataset": {"name": "csv", "path": ...}, "steps": 500}``). A section
``[train]`` holds TrainConfig fields too, so a run's ``config.json`` works as a file (and then
it is complete: the recipe is not applied under it). Values are checked and converted by the
one mechanism every config uses (:func:`seqfunc.config.typed_fields`); an unknown field or a
value of the wrong type is a one-line :class:`ConfigError` naming the file.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from seqfunc.config import typed_fields
from seqfunc.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the dependency marker installs tomli there
    import tomli as tomllib

#: The file's sections for the dataset's and the model's own config fields.
SECTIONS = {"dataset": "dataset_options", "model": "model_options"}


def read_mapping(path: str | Path) -> dict:
    """A JSON (``.json``) or TOML (anything else ending in ``.toml``) file as a dict."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"--config {path}: {exc.strerror or exc}") from None
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(raw.decode("utf-8"))
        else:
            data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); use a .toml suffix for a TOML file"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected an object of fields, got {type(data).__name__}")
    return data


def read_config_file(path: str | Path) -> tuple[dict, bool]:
    """``(TrainConfig fields, complete)`` of a config file (see the module docstring).
    ``complete``: the file is a run's config (it has a ``train`` section)."""
    from seqfunc.runs.config import TrainConfig

    data = read_mapping(path)
    complete = isinstance(data.get("train"), dict)
    fields = dict(data.pop("train", None) or {})
    for section, options_field in SECTIONS.items():
        value = data.pop(section, None)
        if isinstance(value, dict):
            value = dict(value)
            if "config" in value and "name" in value:  # a run's config.json: {"name", "config"}
                value = {"name": value["name"]}
            if "name" in value:
                fields[section] = value.pop("name")
            fields[options_field] = {**fields.get(options_field, {}), **value}
        elif value is not None:
            fields[section] = value
    for options_field in SECTIONS.values():
        if isinstance(data.get(options_field), dict):
            fields[options_field] = {**fields.get(options_field, {}), **data.pop(options_field)}
    fields.update(data)
    if complete:  # a run's config.json: its init_from is relative to the run folder
        from seqfunc.runs.init_from import resolved_init_from

        fields["init_from"] = resolved_init_from(fields.get("init_from"), Path(path).parent)
    return typed_fields(TrainConfig, fields, where=str(path)), complete
