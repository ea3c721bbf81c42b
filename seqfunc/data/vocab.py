"""Token <-> id vocabulary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import torch

UNK = "<unk>"


class Vocab:
    """An ordered list of tokens; ``vocab[token]`` gives its id (``<unk>``'s id when unknown).

    >>> v = Vocab.d2l(list("1234567890+-"), reserved_tokens=["<eos>", "<pad>", "<bos>"])
    >>> v.idx_to_token[:3], v["<pad>"], len(v)
    (['+', '-', '0'], 14, 16)
    """

    def __init__(self, tokens: Sequence[str], *, unk: str | None = UNK):
        if len(set(tokens)) != len(tokens):
            dupes = sorted(t for t, n in Counter(tokens).items() if n > 1)
            raise ValueError(f"Vocab: duplicate tokens {dupes[:10]}")
        if unk is not None and unk not in tokens:
            raise ValueError(f"Vocab: unknown-token marker {unk!r} is not among the tokens")
        self.idx_to_token: list[str] = list(tokens)
        self.token_to_idx: dict[str, int] = {t: i for i, t in enumerate(tokens)}
        self.unk = unk

    @classmethod
    def d2l(
        cls,
        tokens: Iterable[str] = (),
        *,
        min_freq: int = 0,
        reserved_tokens: Sequence[str] = (),
    ) -> Vocab:
        """d2l's ``Vocab`` ordering: the set of ``<unk>``, reserved and frequent tokens, sorted."""
        counts = Counter(tokens)
        kept = [t for t, n in counts.items() if n >= min_freq]
        return cls(sorted(set([UNK, *reserved_tokens, *kept])))

    def __len__(self) -> int:
        return len(self.idx_to_token)

    def __contains__(self, token: str) -> bool:
        return token in self.token_to_idx

    def __getitem__(self, tokens):
        if isinstance(tokens, (list, tuple)):
            index = self.token_to_idx  # known tokens without a method call each
            return [index[t] if t in index else self[t] for t in tokens]
        if tokens in self.token_to_idx:
            return self.token_to_idx[tokens]
        if self.unk is None:
            raise KeyError(f"token {tokens!r} is not in the vocabulary and it has no <unk>")
        return self.token_to_idx[self.unk]

    def to_tokens(self, ids) -> list[str] | str:
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        if isinstance(ids, (list, tuple)):
            return [self.idx_to_token[int(i)] for i in ids]
        return self.idx_to_token[int(ids)]

    def unknown(self, tokens: Iterable[str]) -> list[str]:
        """The tokens (in order, without repeats) that this vocabulary does not hold."""
        return list(dict.fromkeys(t for t in tokens if t not in self.token_to_idx))

    def to_json(self) -> dict:
        return {"tokens": self.idx_to_token, "unk": self.unk}

    @classmethod
    def from_json(cls, data: dict) -> Vocab:
        return cls(data["tokens"], unk=data.get("unk", UNK))

    def __eq__(self, other) -> bool:
        return isinstance(other, Vocab) and self.idx_to_token == other.idx_to_token

    def __repr__(self) -> str:
        return f"Vocab({len(self)} tokens: {self.idx_to_token[:8]}{'...' if len(self) > 8 else ''})"
