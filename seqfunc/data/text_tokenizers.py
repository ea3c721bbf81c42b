"""Text <-> ids for translation: word level (ours) or BPE (the ``tokenizers`` package).

Both are trained on the training split only, share the special ids ``<pad>`` 0, ``<bos>`` 1,
``<eos>`` 2, ``<unk>`` 3, and serialise to a JSON-able dict, so a run folder carries them and
``seqfunc translate`` needs no data file:

* :class:`WordTokenizer`: whitespace tokens of d2l-preprocessed text, the words seen at least
  ``min_freq`` times (by descending count); any other word is ``<unk>``;
* :class:`BpeTokenizer`: byte-pair merges learned to ``vocab_size`` entries (``pip install
  seqfunc[translate]``); words are rebuilt from their pieces on decoding.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable

from seqfunc.config import ConfigError
from seqfunc.data.vocab import Vocab

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)
_WORD_END = "</w>"


class WordTokenizer:
    """Whitespace words; ``encode("i lost .") -> [ids]`` (no ``<bos>``/``<eos>``)."""

    kind = "word"

    def __init__(self, vocab: Vocab):
        if tuple(vocab.idx_to_token[: len(SPECIALS)]) != SPECIALS:
            raise ValueError(f"WordTokenizer: the vocabulary must start with {SPECIALS}")
        self.vocab = vocab

    @classmethod
    def train(cls, texts: Iterable[str], *, min_freq: int = 2) -> WordTokenizer:
        counts = Counter(word for text in texts for word in text.split())
        for special in SPECIALS:
            counts.pop(special, None)
        words = sorted(
            (w for w, n in counts.items() if n >= min_freq), key=lambda w: (-counts[w], w)
        )
        return cls(Vocab([*SPECIALS, *words], unk=UNK))

    def __len__(self) -> int:
        return len(self.vocab)

    def encode(self, text: str) -> list[int]:
        return self.vocab[text.split()]

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(t for t in self.vocab.to_tokens(list(ids)) if t not in (PAD, BOS, EOS))

    def unknown_words(self, text: str) -> list[str]:
        return self.vocab.unknown(text.split())

    def to_json(self) -> dict:
        return {"kind": self.kind, "vocab": self.vocab.to_json()}

    @classmethod
    def from_json(cls, data: dict) -> WordTokenizer:
        return cls(Vocab.from_json(data["vocab"]))


def _require_tokenizers():
    try:
        import tokenizers
    except ImportError:
        raise ConfigError(
            "tokenizer='bpe' needs the tokenizers package: pip install 'seqfunc[translate]'"
        ) from None
    return tokenizers


class BpeTokenizer:
    """Byte-pair encoding over whitespace words (each word ends in an end-of-word marker, so
    :meth:`decode` restores the spaces)."""

    kind = "bpe"

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        ids = [tokenizer.token_to_id(t) for t in SPECIALS]
        if ids != list(range(len(SPECIALS))):
            raise ValueError(f"BpeTokenizer: special tokens must have ids 0..3, got {ids}")
        by_id = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
        self.vocab = Vocab([token for token, _ in by_id], unk=UNK)

    @classmethod
    def train(cls, texts: Iterable[str], *, vocab_size: int = 8000) -> BpeTokenizer:
        tk = _require_tokenizers()
        tokenizer = tk.Tokenizer(tk.models.BPE(unk_token=UNK, end_of_word_suffix=_WORD_END))
        tokenizer.pre_tokenizer = tk.pre_tokenizers.WhitespaceSplit()
        tokenizer.decoder = tk.decoders.BPEDecoder(suffix=_WORD_END)
        trainer = tk.trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=list(SPECIALS),
            end_of_word_suffix=_WORD_END,
            show_progress=False,
        )
        tokenizer.train_from_iterator(list(texts), trainer)
        return cls(tokenizer)

    def __len__(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text).ids

    def decode(self, ids: Iterable[int]) -> str:
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=True)

    def unknown_words(self, text: str) -> list[str]:
        """Words that contain a character the merges never saw (they get ``<unk>`` pieces)."""
        unk = self.tokenizer.token_to_id(UNK)
        return [w for w in dict.fromkeys(text.split()) if unk in self.tokenizer.encode(w).ids]

    def to_json(self) -> dict:
        return {"kind": self.kind, "tokenizer": json.loads(self.tokenizer.to_str())}

    @classmethod
    def from_json(cls, data: dict) -> BpeTokenizer:
        tk = _require_tokenizers()
        return cls(tk.Tokenizer.from_str(json.dumps(data["tokenizer"])))


TOKENIZERS = {"word": WordTokenizer, "bpe": BpeTokenizer}


def tokenizer_from_json(data: dict):
    try:
        return TOKENIZERS[data["kind"]].from_json(data)
    except KeyError as exc:
        raise ConfigError(f"tokenizer data: unknown or missing kind ({exc})") from None
