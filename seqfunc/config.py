"""Config helpers: frozen attrs classes validated at construction.

A bad field fails when the config is built, and the message names the field::

    >>> Seq2SeqTransformerConfig(vocab_size=16, pad_id=14, d_model=30, heads=4)
    ConfigError: d_model=30 must be divisible by heads=4
"""

from __future__ import annotations

import json
import math
import types
import typing
from typing import Any, TypeVar

import attrs
import torch

from seqfunc.errors import ConfigError  # re-exported from here too

__all__ = [
    "ConfigError",
    "positive",
    "non_negative",
    "probability",
    "dropout_field",
    "member_value_fields",
    "MEMBER_VALUE",
    "one_of",
    "check_divisible",
    "to_dict",
    "from_dict",
    "typed_fields",
    "parse_value",
]

T = TypeVar("T")


def _check(predicate, requirement: str, *, finite: bool = False):
    """A validator: ``predicate(value)`` must hold (None passes); with ``finite`` a float must
    also be finite (``inf`` passes ``> 0`` but is no learning rate or size)."""

    def validator(instance, attribute, value):
        if value is None:
            return
        if finite and isinstance(value, float) and not math.isfinite(value):
            requirement_here = f"a finite number {requirement}"
        elif isinstance(value, bool) or not predicate(value):
            requirement_here = requirement
        else:
            return
        raise ConfigError(
            f"{type(instance).__name__}.{attribute.name}={value!r}: must be {requirement_here}"
        )

    return validator


positive = _check(lambda v: isinstance(v, (int, float)) and v > 0, "> 0", finite=True)
non_negative = _check(lambda v: isinstance(v, (int, float)) and v >= 0, ">= 0", finite=True)
probability = _check(lambda v: isinstance(v, (int, float)) and 0 <= v < 1, "in [0, 1)")

#: Metadata key of a model field that the members of one vmapped sweep job may hold apart
#: because it changes no shape (a dropout rate): inside their step the field is each member's
#: 0-d tensor, so the model must use it only in tensor arithmetic, never in Python tests.
MEMBER_VALUE = "seqfunc.member_value"


def _rate(instance, attribute, value):
    """:data:`probability`, except that a tensor passes: a member's rate inside a vmapped step,
    checked as a number when that member's config was built."""
    if not isinstance(value, torch.Tensor):
        probability(instance, attribute, value)


def dropout_field(default: float):
    """A dropout rate field: in [0, 1), and a :data:`MEMBER_VALUE` (sweeps vmap over it)."""
    return attrs.field(default=default, validator=_rate, metadata={MEMBER_VALUE: True})


def member_value_fields(config_cls: type) -> tuple[str, ...]:
    """The fields of an attrs config class that members of one vmapped job may hold apart."""
    return tuple(f.name for f in attrs.fields(config_cls) if f.metadata.get(MEMBER_VALUE))


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
    """Build ``cls`` from a dict: unknown fields and values of the wrong type are named with
    ``where`` they came from (:func:`typed_fields`), then the class's validators run."""
    fields = typed_fields(cls, data, where=where)
    try:
        return cls(**fields)
    except TypeError as exc:  # e.g. a missing required field
        raise ConfigError(f"{where}: {exc}") from None


def typed_fields(cls: type, data: dict[str, Any], *, where: str = "config") -> dict[str, Any]:
    """``data`` checked against the fields of the attrs class ``cls`` and converted to their
    annotated types, for every config alike (train, model, dataset options).

    Text (from the command line: ``-m d_model=64``) is parsed by the field's type: ``int``,
    ``float``, ``bool`` (only ``true/false/1/0/yes/no``), ``str``, ``X | None`` (``none`` or
    ``null`` for None), ``Literal[...]``, lists and tuples (JSON, or ``a,b`` for strings);
    fields without an annotation take JSON when it parses, else the text. A value of the wrong type raises
    :class:`ConfigError` naming the field and the expected type; unknown names list the known
    ones."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of fields, got {type(data).__name__}")
    known = [a.name for a in attrs.fields(cls)]
    unknown = sorted(str(k) for k in set(data) - set(known))
    if unknown:
        raise ConfigError(
            f"{where}: unknown field(s) {', '.join(unknown)} for {cls.__name__}; "
            f"known fields: {', '.join(sorted(known))}"
        )
    hints = _field_types(cls)
    out = {}
    for name, value in data.items():
        try:
            out[name] = parse_value(value, hints.get(name, Any))
        except _WrongType as exc:
            raise ConfigError(f"{where}: {cls.__name__}.{name}={value!r}: must be {exc}") from None
    return out


def _field_types(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # an annotation that does not resolve: those fields stay untyped
        return {a.name: a.type for a in attrs.fields(cls) if not isinstance(a.type, str)}


class _WrongType(Exception):
    """The expected type, in words ("an int", "a boolean (true/false/1/0/yes/no)")."""


TRUE_WORDS = ("true", "1", "yes")
FALSE_WORDS = ("false", "0", "no")
NONE_WORDS = ("none", "null")


def parse_value(value: Any, tp: Any) -> Any:
    """``value`` as type ``tp`` (see :func:`typed_fields`); raises ``_WrongType``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or tp is None or isinstance(tp, (str, typing.TypeVar)):
        return _json_or_text(value)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if type(None) in args and (value is None or _word(value) in NONE_WORDS):
            return None
        if isinstance(value, str) and str in options:
            return value
        for option in options:
            try:
                return parse_value(value, option)
            except _WrongType:
                pass
        described = " or ".join(
            [_describe(o) for o in options] + (["none"] if type(None) in args else [])
        )
        raise _WrongType(described)
    if origin is typing.Literal:
        for choice in args:
            if value == choice or (isinstance(value, str) and value == str(choice)):
                return choice
        raise _WrongType(f"one of {', '.join(map(str, args))}")
    if origin in (list, tuple) or tp in (list, tuple):
        items = _json_or_text(value) if isinstance(value, str) else value
        if isinstance(items, str) and args and args[0] is str:  # text items: "q,v"
            items = [item.strip() for item in items.split(",")]
        if not isinstance(items, (list, tuple)):
            raise _WrongType(_describe(tp))
        if args and (origin is list or (len(args) == 2 and args[1] is Ellipsis)):
            items = [parse_value(v, args[0]) for v in items]
        return (tuple if (origin or tp) is tuple else list)(items)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        if _word(value) in TRUE_WORDS or _word(value) in FALSE_WORDS:
            return _word(value) in TRUE_WORDS
        raise _WrongType(_describe(bool))
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise _WrongType(_describe(int))
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise _WrongType(_describe(float))
    if tp is str:
        if isinstance(value, str):
            return value
        raise _WrongType(_describe(str))
    if tp is dict or origin is dict:
        mapping = _json_or_text(value) if isinstance(value, str) else value
        if not isinstance(mapping, dict):
            raise _WrongType(_describe(dict))
        return mapping
    return _json_or_text(value)  # another type: the class's own converter/validator decides


def _describe(tp: Any) -> str:
    return (
        {
            int: "an int",
            float: "a number",
            str: "a string",
            dict: "a JSON object",
            bool: "a boolean (true/false/1/0/yes/no)",
        }.get(tp)
        or {list: "a JSON list", tuple: "a JSON list"}.get(typing.get_origin(tp) or tp)
        or f"a {tp}"
    )


def _word(value: Any) -> str | None:
    return value.strip().lower() if isinstance(value, str) else None


def _json_or_text(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value
