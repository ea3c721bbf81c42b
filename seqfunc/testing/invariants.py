"""The invariants of the spec, each a pair: a Hypothesis strategy drawing a *case* and a check
``check(model, params, probe, case)`` that raises :class:`AssertionError` when it fails.

Every check is written against :data:`seqfunc.testing.probe.FIELDS` (which inputs are padded,
causal, unordered), so one definition serves every task kind and every model.

=======================  =========================================================================
``causal``               changing the tokens of a causal input from position ``cut`` on leaves the
                         outputs at positions ``< cut`` unchanged
``padding_invariance``   appending ``<pad>`` columns to a padded input leaves the outputs at the
                         real positions unchanged
``permutation_invariance``  with the model's ``position_free`` config, permuting the real tokens
                         of an unordered input leaves the output unchanged
``batch_invariance``     each example alone gives the same output as inside the batch
``vmap_equals_loop``     ``vmap`` of ``apply`` over stacked params (eval, and train with one key
                         per member) equals a Python loop over the members
``determinism``          ``init(key)`` and ``apply(..., key, train=True)`` repeat bit for bit;
                         another key gives other params
``eager_equals_compiled``  ``torch.compile(apply)`` gives the eager outputs, traced whole (no
                         graph break: a step in pieces runs slower than eagerly)
``head_of_features``     for a model with ``features`` and ``head``: ``head(features(x))``
                         equals ``apply(x)``
=======================  =========================================================================
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import attrs
import torch
from hypothesis import strategies as st

from seqfunc import rng
from seqfunc.compiled import compile_fn
from seqfunc.testing.probe import Field, ProbeDataset
from seqfunc.testing.strategies import model_inputs, real_length
from seqfunc.tree import tree_leaves, tree_stack

ATOL = 1e-4
RTOL = 1e-4


def assert_close(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    """Raise AssertionError naming ``what``, the largest difference and where it is."""
    if actual.shape != expected.shape:
        raise AssertionError(f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}")
    actual, expected = actual.detach().float(), expected.detach().float()
    if torch.allclose(actual, expected, atol=ATOL, rtol=RTOL, equal_nan=True):
        return
    diff = (actual - expected).abs().nan_to_num(float("inf"))
    index = tuple(int(i) for i in torch.unravel_index(diff.argmax(), diff.shape))
    raise AssertionError(f"{what}: max |difference| {float(diff.max()):.3g} at index {index}")


def _apply(model, params, probe: ProbeDataset, inputs: dict, **kwargs) -> torch.Tensor:
    with torch.no_grad():
        return model.apply(params, *(inputs[f.name] for f in probe.fields), **kwargs)


def _fields(probe: ProbeDataset, flag: str) -> list[Field]:
    return [f for f in probe.fields if getattr(f, flag)]


# -- causal correctness -------------------------------------------------------------------------
def causal_cases(probe: ProbeDataset) -> st.SearchStrategy:
    @st.composite
    def cases(draw):
        inputs = draw(model_inputs(probe, min_len=2))
        field = draw(st.sampled_from(_fields(probe, "causal")))
        length = inputs[field.name].shape[1]
        cut = draw(st.integers(1, length - 1))
        b = inputs[field.name].shape[0]
        later = [
            draw(
                st.lists(
                    st.sampled_from(probe.token_ids), min_size=length - cut, max_size=length - cut
                )
            )
            for _ in range(b)
        ]
        return {"inputs": inputs, "field": field.name, "cut": cut, "later_tokens": later}

    return cases()


def check_causal(model, params, probe: ProbeDataset, case: dict) -> None:
    """Outputs at positions ``< cut`` of the causal input must not see its tokens at ``>= cut``."""
    inputs, name, cut = case["inputs"], case["field"], case["cut"]
    changed = dict(inputs)
    changed[name] = inputs[name].clone()
    changed[name][:, cut:] = torch.tensor(case["later_tokens"], dtype=torch.long)
    before = _apply(model, params, probe, inputs)[:, :cut]
    after = _apply(model, params, probe, changed)[:, :cut]
    assert_close(
        after, before, f"outputs at positions < {cut} changed when {name}[:, {cut}:] changed"
    )


# -- padding invariance -------------------------------------------------------------------------
def padding_cases(probe: ProbeDataset) -> st.SearchStrategy:
    return st.fixed_dictionaries(
        {
            "inputs": model_inputs(probe),
            "field": st.sampled_from([f.name for f in _fields(probe, "padded")]),
            "extra_pads": st.integers(1, 3),
        }
    )


def check_padding(model, params, probe: ProbeDataset, case: dict) -> None:
    """Appending ``<pad>`` columns to a padded input must leave the outputs alone."""
    inputs, name, extra = case["inputs"], case["field"], case["extra_pads"]
    padded = dict(inputs)
    pads = torch.full((inputs[name].shape[0], extra), probe.pad_id, dtype=torch.long)
    padded[name] = torch.cat([inputs[name], pads], dim=1)
    before = _apply(model, params, probe, inputs)
    after = _apply(model, params, probe, padded)
    field = next(f for f in probe.fields if f.name == name)
    if field.causal:  # the output grew with this input: compare the original positions
        after = after[:, : inputs[name].shape[1]]
    assert_close(
        after, before, f"output changed when {extra} <pad> column(s) were appended to {name}"
    )


# -- permutation invariance without positions ---------------------------------------------------
def permutation_cases(probe: ProbeDataset) -> st.SearchStrategy:
    @st.composite
    def cases(draw):
        inputs = draw(model_inputs(probe))
        field = next(f for f in probe.fields if f.unordered)  # first unordered input
        orders = [
            draw(st.permutations(range(real_length(row, probe, field))))
            for row in inputs[field.name]
        ]
        return {"inputs": inputs, "field": field.name, "orders": orders}

    return cases()


def check_permutation(model, params, probe: ProbeDataset, case: dict) -> None:
    """Permuting the real tokens of an unordered input must leave the output alone."""
    inputs, name = case["inputs"], case["field"]
    permuted = dict(inputs)
    permuted[name] = inputs[name].clone()
    for i, order in enumerate(case["orders"]):
        permuted[name][i, : len(order)] = inputs[name][i, list(order)]
    before = _apply(model, params, probe, inputs)
    after = _apply(model, params, probe, permuted)
    assert_close(after, before, f"output changed when the tokens of {name} were permuted")


# -- batch invariance ---------------------------------------------------------------------------
def batch_cases(probe: ProbeDataset) -> st.SearchStrategy:
    return st.fixed_dictionaries({"inputs": model_inputs(probe, min_batch=2)})


def check_batch(model, params, probe: ProbeDataset, case: dict) -> None:
    """Each example alone must give its row of the batched output."""
    inputs = case["inputs"]
    batched = _apply(model, params, probe, inputs)
    b = next(iter(inputs.values())).shape[0]
    for i in range(b):
        alone = _apply(model, params, probe, {k: v[i : i + 1] for k, v in inputs.items()})
        assert_close(
            batched[i : i + 1], alone, f"example {i} alone differs from its row in the batch"
        )


# -- vmap over stacked params ---------------------------------------------------------------------
def vmap_cases(probe: ProbeDataset) -> st.SearchStrategy:
    return st.fixed_dictionaries(
        {
            "inputs": model_inputs(probe, max_batch=2),
            "members": st.integers(2, 3),
            "seed": st.integers(0, 2**16),
        }
    )


def check_vmap(model, params, probe: ProbeDataset, case: dict) -> None:
    """``vmap(apply)`` over stacked params equals a loop, in eval and in train mode."""
    inputs, n = case["inputs"], case["members"]
    args = [inputs[f.name] for f in probe.fields]
    members = [model.init(k) for k in rng.split(rng.key(case["seed"]), n)]
    keys = rng.split(rng.key(case["seed"] + 1), n)
    stacked = tree_stack(members)

    def run(p, key, train):
        return model.apply(p, *args, key=key, train=train)

    with torch.no_grad():
        for train in (False, True):
            looped = torch.stack(
                [run(p, k if train else None, train) for p, k in zip(members, keys)]
            )
            if train:
                vmapped = torch.func.vmap(partial(run, train=True))(stacked, keys)
            else:
                vmapped = torch.func.vmap(lambda p: run(p, None, False))(stacked)
            assert_close(vmapped, looped, f"vmap over {n} stacked params != loop (train={train})")


# -- determinism under a key ----------------------------------------------------------------------
def determinism_cases(probe: ProbeDataset) -> st.SearchStrategy:
    return st.fixed_dictionaries({"inputs": model_inputs(probe), "seed": st.integers(0, 2**16)})


def check_determinism(model, params, probe: ProbeDataset, case: dict) -> None:
    """Same key -> bit-identical params and train-mode outputs; another key -> other params."""
    key = rng.key(case["seed"])
    first, again = model.init(key), model.init(key)
    if not all(torch.equal(a, b) for a, b in zip(tree_leaves(first), tree_leaves(again))):
        raise AssertionError("init(key) twice with the same key gave different params")
    other = model.init(rng.key(case["seed"] + 1))
    if all(torch.equal(a, b) for a, b in zip(tree_leaves(first), tree_leaves(other))):
        raise AssertionError("init with two different keys gave identical params")
    k_apply = rng.fold_in(key, 1)
    out = _apply(model, first, probe, case["inputs"], key=k_apply, train=True)
    out_again = _apply(model, first, probe, case["inputs"], key=k_apply, train=True)
    if not torch.equal(out, out_again):
        raise AssertionError("apply(..., key, train=True) twice with the same key differs")


# -- eager == compiled ----------------------------------------------------------------------------
COMPILED_WIDTH = 3  # one fixed, short input shape: compiles once, and unrolled loops stay small
_COMPILED: dict[int, tuple[Any, Callable]] = {}  # id(model) -> (model, compiled apply)


def compiled_cases(probe: ProbeDataset) -> st.SearchStrategy:
    return st.fixed_dictionaries({"inputs": model_inputs(probe, min_batch=2, width=COMPILED_WIDTH)})


def check_compiled(model, params, probe: ProbeDataset, case: dict) -> None:
    """``torch.compile(apply)`` must give the eager outputs (eval mode), and dynamo must trace
    it whole: a graph break splits a compiled step into pieces run one after another, slower
    than the eager step (a call dynamo cannot trace, such as a query of the CPU's features)."""
    args = [case["inputs"][f.name] for f in probe.fields]
    if id(model) not in _COMPILED:  # compile once per model; later cases reuse it
        # compile_fn: one shared lambda would run eagerly from the ninth model on
        compiled_apply = compile_fn(lambda p, *xs: model.apply(p, *xs), dynamic=False)
        with no_graph_breaks("compiled apply"), torch.no_grad():
            compiled_apply(params, *args)
        _COMPILED[id(model)] = (model, compiled_apply)
    compiled_apply = _COMPILED[id(model)][1]
    with torch.no_grad():
        compiled = compiled_apply(params, *args)
    assert_close(compiled, _apply(model, params, probe, case["inputs"]), "compiled apply != eager")


@contextlib.contextmanager
def no_graph_breaks(what: str) -> Iterator[None]:
    """Raise AssertionError, naming the reasons, if dynamo broke a graph inside the block (put
    the first call of a compiled function in it: later calls do not trace)."""
    from torch._dynamo.utils import counters

    before = collections.Counter(counters["graph_break"])
    yield
    breaks = collections.Counter(counters["graph_break"]) - before
    if breaks:
        reasons = "; ".join(reason.splitlines()[0][:160] for reason in breaks)
        raise AssertionError(
            f"{what} is not traced whole: {sum(breaks.values())} graph break(s): {reasons}"
        )


# -- the output layer split off ------------------------------------------------------------------
def head_cases(probe: ProbeDataset) -> st.SearchStrategy:
    return st.fixed_dictionaries({"inputs": model_inputs(probe)})


def check_head_of_features(model, params, probe: ProbeDataset, case: dict) -> None:
    """``head(params, features(params, *inputs)) == apply(params, *inputs)`` (eval mode), and
    ``head`` applies to any leading shape (evaluation flattens the positions)."""
    args = [case["inputs"][f.name] for f in probe.fields]
    with torch.no_grad():
        features = model.features(params, *args)
        flat = model.head(params, features.reshape(-1, features.shape[-1]))
        whole = model.head(params, features)
    expected = _apply(model, params, probe, case["inputs"])
    assert_close(whole, expected, "head(features(inputs)) != apply(inputs)")
    assert_close(
        flat.reshape(expected.shape),
        expected,
        "head on the flattened positions of features(inputs) != apply(inputs)",
    )


# -- the table ------------------------------------------------------------------------------------
@attrs.frozen
class Invariant:
    name: str
    cases: Callable[[ProbeDataset], st.SearchStrategy]
    check: Callable[[Any, Any, ProbeDataset, dict], None]
    #: the field flag an input must carry for the invariant to apply ("" = always applies)
    needs_field: str = ""
    #: config overrides the model must declare under this class attribute ("" = none)
    needs_declared: str = ""
    #: the optional model methods it checks, all needed for it to apply
    needs_methods: tuple[str, ...] = ()
    slow: bool = False  # compiles: skippable with --no-compile
    max_examples: int | None = None  # a cap for the costly ones


INVARIANTS: tuple[Invariant, ...] = (
    Invariant("causal", causal_cases, check_causal, needs_field="causal"),
    Invariant("padding_invariance", padding_cases, check_padding, needs_field="padded"),
    Invariant(
        "permutation_invariance",
        permutation_cases,
        check_permutation,
        needs_field="unordered",
        needs_declared="position_free",
    ),
    Invariant("batch_invariance", batch_cases, check_batch),
    Invariant("vmap_equals_loop", vmap_cases, check_vmap, max_examples=5),
    Invariant("determinism", determinism_cases, check_determinism),
    Invariant("eager_equals_compiled", compiled_cases, check_compiled, slow=True, max_examples=3),
    Invariant(
        "head_of_features", head_cases, check_head_of_features, needs_methods=("features", "head")
    ),
)
INVARIANT_NAMES = tuple(i.name for i in INVARIANTS)
