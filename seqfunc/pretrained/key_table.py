"""A declarative mapping between a Hugging Face state dict and a seqfunc parameter tree.

A table is a list of :class:`Rule` s, one per layer, each pairing a Hugging Face module name
with a seqfunc tree path; ``{i}`` stands for a layer number on both sides, and a rule covers
the ``weight`` and ``bias`` beneath it::

    Rule("model.layers.{i}.self_attn.q_proj", "layers.{i}.attn.q")
    Rule("transformer.h.{i}.attn.c_attn", "layers.{i}.attn.qkv", transpose=True)

``transpose``: the Hugging Face weight is stored ``(d_in, d_out)`` (GPT-2's ``Conv1D``); the
seqfunc tree keeps every dense weight ``(d_out, d_in)``. Both directions of every import and
export go through :meth:`KeyTable.to_ours` and :meth:`KeyTable.to_hf`, so a new architecture
is a new table, never new code.
"""

from __future__ import annotations

import re

import attrs

LEAVES = ("weight", "bias")


def _pattern(template: str) -> re.Pattern:
    """``"a.{i}.b"`` -> a regex matching ``a.<digits>.b.weight`` / ``.bias``."""
    body = re.escape(template).replace(r"\{i\}", r"(?P<i>\d+)")
    return re.compile(rf"{body}\.(?P<leaf>{'|'.join(LEAVES)})")


@attrs.frozen
class Rule:
    hf: str
    ours: str
    transpose: bool = False

    def match_hf(self, name: str) -> str | None:
        """The seqfunc path of Hugging Face tensor ``name``, or None if this rule is not it."""
        return _rewrite(_pattern(self.hf), self.ours, name)

    def match_ours(self, name: str) -> str | None:
        """The Hugging Face name of seqfunc path ``name``, or None if this rule is not it."""
        return _rewrite(_pattern(self.ours), self.hf, name)


def _rewrite(pattern: re.Pattern, template: str, name: str) -> str | None:
    found = pattern.fullmatch(name)
    if found is None:
        return None
    layer = found.groupdict().get("i")
    target = template if layer is None else template.replace("{i}", layer)
    return f"{target}.{found['leaf']}"


@attrs.frozen
class KeyTable:
    """The rules of one architecture, plus Hugging Face tensors that are not parameters."""

    rules: tuple[Rule, ...]
    #: regexes of Hugging Face tensors to skip on import (buffers such as a causal mask)
    ignored: tuple[str, ...] = ()
    #: the prefix the base model's names carry inside the ``...ForCausalLM`` one, which a
    #: folder saved from the base model lacks (GPT-2's ``transformer.``)
    base_prefix: str = ""

    def to_ours(self, hf_name: str) -> tuple[str, bool] | None:
        """``(seqfunc path, transpose)`` of a Hugging Face tensor, None for one no rule maps."""
        for name in dict.fromkeys([hf_name, self.base_prefix + hf_name]):
            for rule in self.rules:
                ours = rule.match_hf(name)
                if ours is not None:
                    return ours, rule.transpose and ours.endswith(".weight")
        return None

    def to_hf(self, our_name: str) -> tuple[str, bool]:
        """``(Hugging Face name, transpose)`` of a seqfunc path; KeyError if no rule maps it."""
        for rule in self.rules:
            hf = rule.match_ours(our_name)
            if hf is not None:
                return hf, rule.transpose and hf.endswith(".weight")
        raise KeyError(our_name)

    def is_ignored(self, hf_name: str) -> bool:
        return any(re.search(pattern, hf_name) for pattern in self.ignored)
