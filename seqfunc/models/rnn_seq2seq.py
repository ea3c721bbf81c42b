"""The recurrent encoder-decoder of assignment 001 (part 2, after Sutskever et al. 2014).

    src (b, s) -> source embedding -> dropout -> L-layer RNN/LSTM/GRU encoder
                                                      | its state at each row's last real token
    tgt_in (b, t) -> target embedding -> dropout -> L-layer decoder (starts from that state)
                                                      -> linear -> logits (b, t, tgt_vocab)

The source reaches the decoder only through the encoder's final state (no attention). As in
the seed: separate embedding tables for source and target, dropout on the embedded inputs of
both, no dropout between recurrent layers, and every parameter drawn from U(-0.08, 0.08)
(the seed's ``init_weights``; ``init_scale``).

**Teacher forcing.** With ``train=True`` and ``teacher_forcing < 1`` the decoder runs one step
at a time: at step ``i > 0`` its input is the ground truth ``tgt_in[:, i]`` with probability
``teacher_forcing`` (one draw per step for the whole batch, as the seed's
``random.random() < teacher_forcing_ratio``, but from the explicit key) and otherwise the argmax
of its own logits at step ``i - 1``. With ``teacher_forcing = 1`` or ``train=False``
(evaluation, :mod:`seqfunc.inference.decode`) the whole ``tgt_in`` is fed in one fused call. Dropout
masks over the target embeddings are drawn once for the whole ``(b, t, embedding)`` block, so
the step-by-step decoder with every step teacher-forced computes exactly the fused call.

Decoding API as :class:`~seqfunc.models.seq2seq_transformer.Seq2SeqTransformer`:
``encode(params, src) -> {"h": (b, L, H)[, "c": (b, L, H)]}`` (batch on axis 0, so beam search
can repeat it per hypothesis) and ``decode(params, context, tgt_in) -> (b, t, V)``.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
import torch

from seqfunc import nn, rng
from seqfunc.config import ConfigError, dropout_field, from_dict, non_negative, one_of, positive
from seqfunc.models.encoder_decoder import EncoderDecoder, seq2seq_sizes
from seqfunc.nn.recurrent import init_recurrent, recurrent
from seqfunc.tree import tree_flatten, tree_unflatten

CELLS = ("lstm", "gru", "rnn")


def _ratio(instance, attribute, value):
    """Validator: a probability that may be 1 (``probability`` excludes 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ConfigError(
            f"{type(instance).__name__}.{attribute.name}={value!r}: must be in [0, 1]"
        )


@attrs.frozen
class RNNSeq2SeqConfig:
    vocab_size: int = attrs.field(validator=positive)
    pad_id: int = attrs.field(validator=non_negative)
    #: Size of a separate target vocabulary (translation); None: the target uses the source's
    #: ids (the target still has its own embedding table, as in the seed).
    tgt_vocab_size: int | None = attrs.field(default=None, validator=positive)
    embedding: int = attrs.field(default=256, validator=positive)  # source and target
    hidden: int = attrs.field(default=256, validator=positive)  # encoder and decoder
    layers: int = attrs.field(default=2, validator=positive)  # encoder and decoder
    dropout: float = dropout_field(0.5)  # on embedded inputs
    cell: str = attrs.field(default="lstm", validator=one_of(CELLS))
    #: probability that a decoder step is fed the ground truth while training (1.0: always)
    teacher_forcing: float = attrs.field(default=0.5, validator=_ratio)
    #: every parameter is drawn from U(-init_scale, init_scale)
    init_scale: float = attrs.field(default=0.08, validator=positive)

    def __attrs_post_init__(self):
        for field in ("vocab_size", "tgt_vocab_size"):
            size = getattr(self, field)
            if size is not None and self.pad_id >= size:
                raise ConfigError(
                    f"RNNSeq2SeqConfig.pad_id={self.pad_id}: must be < {field}={size} "
                    "(source and target are both padded with it)"
                )

    @property
    def target_vocab(self) -> int:
        return self.tgt_vocab_size or self.vocab_size


class RNNSeq2Seq(EncoderDecoder):
    """``apply(params, src (b, s), tgt_in (b, t)) -> logits (b, t, tgt_vocab)``.

    Stateless: the instance holds only its config; the parameters are the tree :meth:`init`
    returns: ``{"embed", "tgt_embed": {"weight": (V, E)}, "encoder", "decoder": [per layer
    torch-named RNN weights], "predict": {"weight": (V_tgt, H), "bias": (V_tgt,)}}``.
    """

    name: ClassVar[str] = "rnn-seq2seq"
    task_kinds: ClassVar[tuple[str, ...]] = ("seq2seq",)
    #: torch's recurrent kernels have no vmap batching rule: no sweeps or vmapped ensembles.
    vmappable: ClassVar[bool] = False
    Config: ClassVar[type] = RNNSeq2SeqConfig
    #: ``seqfunc check``: two layers so the state hand-over is checked per layer; the default
    #: teacher_forcing (0.5) makes the determinism check run the step-by-step decoder.
    check_options: ClassVar[dict] = {"embedding": 8, "hidden": 16, "layers": 2}
    exempt: ClassVar[dict] = {
        "vmap_equals_loop": "torch's fused recurrent kernels (aten::lstm/gru/rnn_tanh) have no "
        "vmap batching rule",
    }

    def __init__(self, config: RNNSeq2SeqConfig):
        self.config = config

    @classmethod
    def config_for(cls, dataset, **overrides) -> RNNSeq2SeqConfig:
        """A config sized for a seq2seq dataset (vocabularies and padding id from it)."""
        return from_dict(
            RNNSeq2SeqConfig, {**seq2seq_sizes(dataset), **overrides}, where="model options"
        )

    # -- parameters ------------------------------------------------------------------------
    def init(self, key: rng.KeyArray) -> dict:
        """Every leaf from U(-init_scale, init_scale), as the seed's ``init_weights`` applied
        to all of ``model.named_parameters()``; the layouts are the layers' own."""
        c = self.config
        # the layers' own init on the meta device gives the tree's layout without drawing it
        k_emb, k_tgt, k_enc, k_dec, k_out = rng.split(rng.key(0, device="meta"), 5)
        layout = {
            "embed": nn.init_embedding(k_emb, c.vocab_size, c.embedding),
            "tgt_embed": nn.init_embedding(k_tgt, c.target_vocab, c.embedding),
            "encoder": init_recurrent(k_enc, c.cell, c.embedding, c.hidden, c.layers),
            "decoder": init_recurrent(k_dec, c.cell, c.embedding, c.hidden, c.layers),
            "predict": nn.init_linear(k_out, c.hidden, c.target_vocab),
        }
        leaves, spec = tree_flatten(layout)
        return tree_unflatten(
            [
                rng.uniform(k, leaf.shape, low=-c.init_scale, high=c.init_scale)
                for k, leaf in zip(rng.split(key, len(leaves)), leaves)
            ],
            spec,
        )

    # -- encoder ---------------------------------------------------------------------------
    def source_lengths(self, src: torch.Tensor) -> torch.Tensor:
        """``src (b, s)`` -> ``(b,)``: one past each row's last non-pad token (0 if all pad)."""
        positions = torch.arange(1, src.shape[1] + 1, device=src.device)
        return torch.where(src != self.config.pad_id, positions, 0).amax(dim=1)

    def encode(
        self,
        params: dict,
        src: torch.Tensor,
        *,
        key: rng.KeyArray | None = None,
        train: bool = False,
    ) -> dict:
        """``src (b, s)`` -> context ``{"h": (b, L, H)}`` (plus ``"c"`` for an LSTM): the
        encoder's state after each row's last non-pad token (zeros for an all-pad row)."""
        c = self.config
        if src.ndim != 2:
            raise ValueError(
                f"encode: src must be (batch, length) ids, got shape {tuple(src.shape)}"
            )
        x = nn.dropout(nn.embedding(params["embed"], src), c.dropout, key=key, train=train)
        return _final_states(c.cell, params["encoder"], x, self.source_lengths(src), c.hidden)

    # -- decoder ---------------------------------------------------------------------------
    def teacher_flags(self, key: rng.KeyArray, steps: int) -> torch.Tensor:
        """``(steps,)`` bool: whether decoder step ``i`` is fed the ground truth (one draw per
        step, True with probability ``teacher_forcing``; entry 0 is unused: step 0 reads
        ``<bos>``)."""
        return rng.bernoulli(key, float(self.config.teacher_forcing), (steps,))

    def _embedding_mask(self, key, tgt_in: torch.Tensor, table: torch.Tensor, train: bool):
        """Dropout on the target embeddings as a ``(b, t, E)`` multiplier (0 or 1/(1-rate)),
        drawn for the whole block, so the fused and the step-by-step decoders drop the same
        entries; None when nothing is dropped."""
        if not nn.dropout_active(self.config.dropout, train):
            return None
        ones = torch.ones((*tgt_in.shape, table.shape[1]), dtype=table.dtype, device=table.device)
        return nn.dropout(ones, self.config.dropout, key=key, train=True)

    def decode(
        self,
        params: dict,
        context: dict,
        tgt_in: torch.Tensor,
        *,
        key: rng.KeyArray | None = None,
        train: bool = False,
    ) -> torch.Tensor:
        """``tgt_in (b, t)`` (``<bos>`` + prefix) and an :meth:`encode` context -> logits
        ``(b, t, tgt_vocab)``. Teacher-forced in one fused call unless ``train`` and
        ``teacher_forcing < 1``: then step by step (:meth:`decode_steps`, the steps fed the
        ground truth drawn by :meth:`teacher_flags`)."""
        if tgt_in.ndim != 2 or tgt_in.shape[1] == 0:
            raise ValueError(
                f"decode: tgt_in must be (batch, length >= 1) ids, got shape {tuple(tgt_in.shape)}"
            )
        ratio = self.config.teacher_forcing
        if train and ratio < 1:
            if key is None:
                raise ValueError(
                    f"teacher forcing (train=True, teacher_forcing={ratio}) draws which steps "
                    "see the ground truth from a key, but no key was given: pass "
                    "key=seqfunc.rng.key(seed), or call it with train=False"
                )
            k_drop, k_teacher = rng.split(key)
            teacher = self.teacher_flags(k_teacher, tgt_in.shape[1])
            return self.decode_steps(params, context, tgt_in, teacher, key=k_drop, train=train)
        k_drop = None if key is None else rng.split(key)[0]
        y = nn.embedding(params["tgt_embed"], tgt_in)
        mask = self._embedding_mask(k_drop, tgt_in, params["tgt_embed"]["weight"], train)
        if mask is not None:
            y = y * mask
        out, _ = recurrent(self.config.cell, params["decoder"], y, _from_context(context))
        return nn.linear(params["predict"], out)

    def decode_steps(
        self,
        params: dict,
        context: dict,
        tgt_in: torch.Tensor,
        teacher: torch.Tensor,
        *,
        key: rng.KeyArray | None = None,
        train: bool = False,
    ) -> torch.Tensor:
        """The step-by-step decoder: ``tgt_in (b, t)`` and ``teacher (t,)`` bool -> logits
        ``(b, t, tgt_vocab)``. Step 0 reads ``tgt_in[:, 0]``; step ``i > 0`` reads
        ``tgt_in[:, i]`` where ``teacher[i]``, else the argmax of step ``i - 1``'s logits (no
        gradient flows through that choice). ``key``/``train``: embedding dropout, the same
        mask the fused :meth:`decode` draws from the same key."""
        mask = self._embedding_mask(key, tgt_in, params["tgt_embed"]["weight"], train)
        state = _from_context(context)
        teacher = teacher.to(tgt_in.device)
        token, outputs = tgt_in[:, 0], []
        for i in range(tgt_in.shape[1]):
            if i > 0:
                token = torch.where(teacher[i], tgt_in[:, i], outputs[-1][:, 0].detach().argmax(-1))
            y = nn.embedding(params["tgt_embed"], token[:, None])
            if mask is not None:
                y = y * mask[:, i : i + 1]
            out, state = recurrent(self.config.cell, params["decoder"], y, state)
            outputs.append(nn.linear(params["predict"], out))
        return torch.cat(outputs, dim=1)


def _final_states(
    cell: str, layers: list, x: torch.Tensor, lengths: torch.Tensor, hidden: int
) -> dict:
    """Run the stack over ``x (b, s, E)`` and return each row's state after its first
    ``lengths[row]`` steps as a context ``{"h": (b, L, H)[, "c"]}`` (zeros where 0).

    ``pack_padded_sequence`` would do this in one call, but torch's packed recurrent kernels
    fail under ``torch.func.grad`` (the trainer's transform; "Cannot access data pointer of
    Tensor that doesn't have storage", torch 2.13), and running the padded batch and
    gathering each row's output at its length recovers ``h`` but not an LSTM's cell state.
    So this packs by hand: rows sorted longest first, the stack runs in segments that end at
    each distinct length, each segment on only the rows still running (the state carried
    over), and a row's state is taken where its segment ends. The FLOPs of packing (no step
    on padding), one fused call per distinct length (at most ``s``; few when batches are
    bucketed), and plain slicing that ``grad`` and ``torch.compile`` (a graph break at the
    ``tolist``) handle. Measured (forward + backward under ``torch.func.grad``, 2 LSTM layers,
    E = H = 256, batch 64, one thread, two runs on a loaded 2-core machine): 0.83-0.87x the
    time of one fused call over the whole padded batch (which would give the wrong state)
    with 15 distinct lengths in 20 columns, 0.81-0.87x with 34 in 50 columns.
    """
    order = torch.argsort(lengths, descending=True, stable=True)
    x, lens = x[order], sorted(lengths.tolist(), reverse=True)
    pieces = []  # states of the rows ending at each length, shortest rows first
    empty = lens.count(0)
    if empty:
        zeros = x.new_zeros(empty, len(layers), hidden)
        pieces.append({"h": zeros, "c": zeros} if cell == "lstm" else {"h": zeros})
    state, start = None, 0
    for end in sorted(set(lens) - {0}):
        running = sum(n >= end for n in lens)  # the first `running` sorted rows
        if state is not None:
            state = [
                tuple(t[:, :running] for t in s) if isinstance(s, tuple) else s[:, :running]
                for s in state
            ]
        _, state = recurrent(cell, layers, x[:running, start:end], state)
        done = running - lens.count(end)
        pieces.append({k: v[done:] for k, v in _to_context(state).items()})
        start = end
    by_length = {k: torch.cat([p[k] for p in reversed(pieces)]) for k in pieces[0]}
    return {k: v[torch.argsort(order)] for k, v in by_length.items()}


def _to_context(state: list) -> dict:
    """:func:`recurrent`'s per-layer state -> ``{"h": (b, L, H)[, "c": (b, L, H)]}``."""
    if isinstance(state[0], tuple):  # LSTM: (h, c) per layer, each (1, b, H)
        return {
            "h": torch.cat([h for h, _ in state]).transpose(0, 1),
            "c": torch.cat([c for _, c in state]).transpose(0, 1),
        }
    return {"h": torch.cat(state).transpose(0, 1)}


def _from_context(context: dict) -> list:
    """The inverse of :func:`_to_context`: per layer ``(h, c)`` or ``h``, each ``(1, b, H)``."""
    h = context["h"].transpose(0, 1)
    layers = range(h.shape[0])
    if "c" in context:
        c = context["c"].transpose(0, 1)
        return [(h[i : i + 1].contiguous(), c[i : i + 1].contiguous()) for i in layers]
    return [h[i : i + 1].contiguous() for i in layers]
