"""Minimal dataset plugins: the required part of seqfunc's dataset contract, nothing more.

Each class has ``name``, ``task``, ``Config`` (a frozen attrs class), ``splits``, ``config``,
``num_examples(split)``, ``batches(split, batch_size, *, epoch=0, drop_last=None)`` and the
attributes its task kind requires (docs/plugins.md). Batches are a function of
``(config, split, epoch)``: a generator seeded from them draws every example.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import torch

SPLIT_SEEDS = {"train": 0, "val": 1}


def _generator(seed: int, split: str, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + SPLIT_SEEDS[split] * 10_007 + epoch)


class _Minimal:
    """What all three share: the config, the splits and the batching."""

    splits: ClassVar[tuple[str, ...]] = ("train", "val")
    sizes: ClassVar[dict[str, int]] = {"train": 512, "val": 64}

    def __init__(self, config=None):
        self.config = config or self.Config()

    def num_examples(self, split: str) -> int:
        return self.sizes[split]

    def batches(
        self, split: str, batch_size: int, *, epoch: int = 0, drop_last: bool | None = None
    ):
        """Training batches all have ``batch_size`` rows (the last partial one is dropped);
        validation batches cover every example. The same ``epoch`` gives the same batches."""
        n = self.sizes[split]
        examples = self.examples(
            _generator(self.config.seed, split, epoch if split == "train" else 0), n
        )
        drop = split == "train" if drop_last is None else drop_last
        stop = n - n % batch_size if drop else n
        for start in range(0, stop, batch_size):
            yield {k: v[start : start + batch_size] for k, v in examples.items()}


@attrs.frozen
class ReverseConfig:
    digits: int = 4
    seed: int = 0


class MinimalReverse(_Minimal):
    """seq2seq: ``src`` four digits (b, 4), ``tgt_in`` <bos> + reversed (b, 5), ``tgt_out``
    reversed + <eos> (b, 5)."""

    name: ClassVar[str] = "min-reverse"
    task: ClassVar[str] = "seq2seq"
    Config: ClassVar[type] = ReverseConfig
    pad_id, bos_id, eos_id = 0, 1, 2
    source_vocab = target_vocab = ["<pad>", "<bos>", "<eos>", *"0123456789"]

    def examples(self, gen: torch.Generator, n: int) -> dict[str, torch.Tensor]:
        src = torch.randint(3, 13, (n, self.config.digits), generator=gen)
        target = src.flip(1)
        bos = torch.full((n, 1), self.bos_id)
        eos = torch.full((n, 1), self.eos_id)
        return {
            "src": src,
            "tgt_in": torch.cat([bos, target], 1),
            "tgt_out": torch.cat([target, eos], 1),
        }

    def encode_source(self, text: str) -> list[int]:
        if not text or not all(c in "0123456789" for c in text):
            raise ValueError(f"expected digits, got {text!r}")
        return [self.source_vocab.index(c) for c in text]


@attrs.frozen
class CountConfig:
    context: int = 16
    seed: int = 0


class MinimalCount(_Minimal):
    """language_model: ``inputs`` (b, context) counting mod 8 from a random start with a random
    stride, ``targets`` the same shifted by one."""

    name: ClassVar[str] = "min-count"
    task: ClassVar[str] = "language_model"
    Config: ClassVar[type] = CountConfig
    vocab = [str(i) for i in range(8)]

    def examples(self, gen: torch.Generator, n: int) -> dict[str, torch.Tensor]:
        start = torch.randint(0, 8, (n, 1), generator=gen)
        stride = torch.randint(1, 4, (n, 1), generator=gen)
        seq = (start + stride * torch.arange(self.config.context + 1)) % 8
        return {"inputs": seq[:, :-1], "targets": seq[:, 1:]}


@attrs.frozen
class OrderConfig:
    max_len: int = 6
    seed: int = 0


class MinimalOrder(_Minimal):
    """classification: ``tokens`` (b, max_len) of ids 1..9, ``label`` 1 when the first is
    larger than the last."""

    name: ClassVar[str] = "min-order"
    task: ClassVar[str] = "classification"
    Config: ClassVar[type] = OrderConfig
    pad_id = 0
    vocab = ["<pad>", *"123456789"]
    classes = ["no", "yes"]

    def examples(self, gen: torch.Generator, n: int) -> dict[str, torch.Tensor]:
        tokens = torch.randint(1, 10, (n, self.config.max_len), generator=gen)
        return {"tokens": tokens, "label": (tokens[:, 0] > tokens[:, -1]).long()}
