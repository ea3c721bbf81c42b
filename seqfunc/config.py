"""Config helpers: frozen attrs classes validated at construction.

A bad field fails when the config is built, and the message names the field::

    >>> Seq2SeqTransformerConfig(vocab_size=16, pad_id=14, d_model=30, heads=4)
    ConfigError: d_model=30 must be divisible by heads=4
"""

from __future__ import annotations

from typing import Any, TypeVar

import attrs

from seqfunc.errors import ConfigError  # re-exported from here too

__all__ = ["ConfigError", "positive", "non_negative", "probability", "one_of", "check_divisible", "to_dict", "from_dict"]

T = TypeVar("T")


def _check(predicate, requirement: str):
    def validator(instance, attribute, value):
        if value is None:
            return
        if isinstance(value, bool) or not predicate(value):
            raise ConfigError(
                f"{type(instance).__name__}.{attribute.name}={value!r}: must be {requirement}"
            )

    return validator


positive = _check(lambda v: isinstance(v, (int, float)) and v > 0, "> 0")
non_negative = _check(lambda v: isinstance(v, (int, float)) and v >= 0, ">= 0")
probability = _check(lambda v: isinstance(v, (int, float)) and 0 <= v < 1, "in [0, 1)")


def one_of(options):
    """Validator: the value must be one of ``options`` (the message lists them)."""
    options = tuple(options)
    return _check(lambda v: v in options, f"one of {', '.join(map(str, options))}")


def check_divisible(config: Any, field: str, by: str) -> None:
    """Raise ConfigError unless ``config.<field>`` is a multiple of ``config.<by>``
    (e.g. ``d_model`` by ``heads``); call it from ``__attrs_post_init__``."""
    value, divisor = getattr(config, field), getattr(config, by)
    if value % divisor:
        raise ConfigError(
            f"{type(config).__name__}: {field}={value} must be divisible by {by}={divisor}"
        )


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config (nested attrs classes become dicts)."""
    return attrs.asdict(config)


def from_dict(cls: type[T], data: dict[str, Any], *, where: str = "config") -> T:
    """Build ``cls`` from a dict, naming unknown fields and ``where`` they came from."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of fields, got {type(data).__name__}")
    known = {a.name for a in attrs.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(
            f"{where}: unknown field(s) {', '.join(unknown)} for {cls.__name__}; "
            f"known fields: {', '.join(sorted(known))}"
        )
    try:
        return cls(**data)
    except TypeError as exc:  # e.g. a missing required field
        raise ConfigError(f"{where}: {exc}") from None
