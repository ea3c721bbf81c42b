"""seqfunc.testing and `seqfunc check`: the strategies draw valid inputs, the invariants catch
the leaky fixtures (plugins/seqfunc-leaky) with a shrunk counterexample, and every built-in
model passes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import ClassVar

import attrs
import pytest
import torch
from hypothesis import given, settings

from seqfunc import nn, registry, rng
from seqfunc.cli import main
from seqfunc.models import Seq2SeqTransformer
from seqfunc.models.gpt import GPT
from seqfunc.testing import (
    FIELDS,
    check_causal,
    check_padding,
    fake_distribution,
    probe_dataset,
    run_checks,
    strategies,
)

REPO = Path(__file__).resolve().parents[1]
LEAKY = REPO / "plugins" / "seqfunc-leaky"
GRU = REPO / "plugins" / "seqfunc-gru"


@pytest.fixture
def leaky(tmp_path, monkeypatch):
    """The leaky fixtures registered as if `pip install plugins/seqfunc-leaky` had run."""
    fake_distribution(
        tmp_path,
        "seqfunc-leaky",
        "0.1.0",
        {
            "seqfunc.models": {
                "leaky-causal": "seqfunc_leaky:FutureLeakTransformer",
                "leaky-padding": "seqfunc_leaky:PaddingLeakTransformer",
            }
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.syspath_prepend(str(LEAKY))
    monkeypatch.delenv(registry.DISABLE_ENV, raising=False)
    yield
    sys.modules.pop("seqfunc_leaky", None)


# -- strategies ----------------------------------------------------------------------------------
@pytest.mark.parametrize("task", sorted(FIELDS))
@settings(max_examples=25, deadline=None)
@given(data=strategies.st.data())
def test_model_inputs_are_valid_for_every_task_kind(task, data):
    probe = probe_dataset(task)
    inputs = data.draw(strategies.model_inputs(probe))
    assert list(inputs) == [f.name for f in probe.fields]
    batch = {x.shape[0] for x in inputs.values()}
    assert len(batch) == 1
    for field in probe.fields:
        x = inputs[field.name]
        assert x.dtype == torch.long and x.dim() == 2
        real = x != probe.pad_id
        assert bool(real[:, 0].all()), "every row starts with a real token"
        # padding only trails: once a row is padded it stays padded
        assert bool((real.int().diff(dim=1) <= 0).all())
        if field.starts_with_bos:
            assert bool((x[:, 0] == probe.bos_id).all())
        if not field.padded:
            assert bool(real.all())


# -- the invariants on hand-made cases -------------------------------------------------------------
def _tiny(model_cls=Seq2SeqTransformer, **overrides):
    from seqfunc.testing import check_config

    model = model_cls(check_config(model_cls, "seq2seq", **overrides))
    return model, model.init(rng.key(0))


def test_check_functions_accept_a_correct_model_and_reject_a_leaky_one(leaky):
    from seqfunc_leaky import FutureLeakTransformer, PaddingLeakTransformer

    probe = probe_dataset("seq2seq")
    src = torch.tensor([[4, 5, probe.pad_id]])
    tgt_in = torch.tensor([[probe.bos_id, 6, 7]])
    causal_case = {
        "inputs": {"src": src, "tgt_in": tgt_in},
        "field": "tgt_in",
        "cut": 1,
        "later_tokens": [[8, 9]],
    }
    padding_case = {"inputs": {"src": src, "tgt_in": tgt_in}, "field": "src", "extra_pads": 2}
    check_causal(*_tiny(), probe, causal_case)
    check_padding(*_tiny(), probe, padding_case)
    with pytest.raises(AssertionError, match="positions < 1 changed"):
        check_causal(*_tiny(FutureLeakTransformer), probe, causal_case)
    with pytest.raises(AssertionError, match="<pad> column"):
        check_padding(*_tiny(PaddingLeakTransformer), probe, padding_case)


# -- seqfunc check on the leaky fixtures: fails, with a counterexample ------------------------------
@pytest.mark.parametrize(
    "model, invariant", [("leaky-causal", "causal"), ("leaky-padding", "padding_invariance")]
)
def test_check_fails_a_leaky_model_with_a_shrunk_counterexample(leaky, capsys, model, invariant):
    code = main(
        [
            "check",
            model,
            "--no-compile",
            "--only",
            invariant,
            "--only",
            "batch_invariance",
            "--examples",
            "10",
        ]
    )
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 1
    summary = json.loads(lines[-1])
    assert summary == {
        "model": model,
        "passed": ["batch_invariance"],
        "failed": [invariant],
        "skipped": summary["skipped"],
    }
    fail = lines.index(next(l for l in lines if l.startswith(f"FAIL  {invariant}")))
    counterexample = lines[fail + 1].strip()
    assert counterexample.startswith("counterexample: src=[[")
    # shrunk: a single example with a one-token (or <bos>-only) target
    assert "tgt_in=[[" in counterexample and "]], [" not in counterexample


# -- declarations: position_free, exempt, check_options -------------------------------------------
@attrs.frozen
class BagConfig:
    vocab_size: int
    pad_id: int
    num_classes: int
    d_model: int = 8


class BagOfEmbeddings:
    """Mean of the real tokens' embeddings -> linear: order-free by construction."""

    name: ClassVar[str] = "bag"
    task_kinds: ClassVar[tuple[str, ...]] = ("classification",)
    Config: ClassVar[type] = BagConfig
    position_free: ClassVar[dict] = {}
    exempt: ClassVar[dict] = {"determinism": "shown elsewhere (testing the exempt hook)"}

    def __init__(self, config):
        self.config = config

    @classmethod
    def config_for(cls, dataset, **overrides):
        return BagConfig(len(dataset.vocab), dataset.pad_id, len(dataset.classes), **overrides)

    def init(self, key):
        k_emb, k_out = rng.split(key)
        c = self.config
        return {
            "embed": nn.init_embedding(k_emb, c.vocab_size, c.d_model),
            "out": nn.init_linear(k_out, c.d_model, c.num_classes),
        }

    def apply(self, params, tokens, *, key=None, train=False):
        real = (tokens != self.config.pad_id).float()[..., None]  # (b, t, 1)
        pooled = (nn.embedding(params["embed"], tokens) * real).sum(1) / real.sum(1)
        return nn.linear(params["out"], pooled)


def test_declared_position_free_adds_permutation_and_exempt_skips(capsys):
    report = run_checks(BagOfEmbeddings, compile=False, max_examples=10)
    assert report.ok, report.summary()
    assert "permutation_invariance" in report.passed
    assert (
        report["determinism"].status == "skip"
        and "testing the exempt hook" in report["determinism"].reason
    )
    assert report["causal"].reason == "a classification model has no causal input"


class PositionalBag(BagOfEmbeddings):
    """Claims position_free but mixes in positions before a nonlinearity: order matters."""

    def apply(self, params, tokens, *, key=None, train=False):
        real = (tokens != self.config.pad_id).float()[..., None]
        x = torch.tanh(nn.add_sinusoidal(nn.embedding(params["embed"], tokens)))
        return nn.linear(params["out"], (x * real).sum(1) / real.sum(1))


class PadCountingBag(BagOfEmbeddings):
    """Averages over every position, <pad> included: padding changes the prediction."""

    def apply(self, params, tokens, *, key=None, train=False):
        return nn.linear(params["out"], nn.embedding(params["embed"], tokens).mean(1))


def test_a_model_claiming_position_free_wrongly_fails_permutation():
    report = run_checks(
        PositionalBag, only=["permutation_invariance", "padding_invariance"], max_examples=10
    )
    assert report.failed == ["permutation_invariance"] and report.passed == ["padding_invariance"]


def test_a_classifier_counting_pads_fails_padding_reproducibly():
    first = run_checks(PadCountingBag, only=["padding_invariance"], max_examples=10)
    again = run_checks(PadCountingBag, only=["padding_invariance"], max_examples=10)
    result = first["padding_invariance"]
    assert result.status == "fail" and result.counterexample.startswith("tokens=[[")
    assert result.counterexample == again["padding_invariance"].counterexample  # derandomized


class OffsetHeadGPT(GPT):
    """A head that is not the output layer ``apply`` uses: ``head(features) != apply``."""

    def apply(self, params, tokens, *, key=None, train=False):
        return GPT.head(self, params, self.features(params, tokens, key=key, train=train))

    def head(self, params, features):
        return GPT.head(self, params, features) + 1e-2


def test_a_head_that_is_not_applys_output_layer_fails_head_of_features():
    wrong = run_checks(OffsetHeadGPT, only=["head_of_features"], max_examples=3)
    assert wrong.failed == ["head_of_features"], wrong.summary()
    assert "head(features(inputs)) != apply(inputs)" in wrong["head_of_features"].error
    assert run_checks(GPT, only=["head_of_features"], max_examples=3).passed == ["head_of_features"]


def test_eager_equals_compiled_on_a_tiny_model():
    report = run_checks(BagOfEmbeddings, only=["eager_equals_compiled"], max_examples=2)
    assert report.passed == ["eager_equals_compiled"], report.summary()


def test_a_model_that_breaks_the_compiled_graph_fails_eager_equals_compiled():
    """A call dynamo cannot trace (a query of the CPU's features, as attention kernels make to
    pick a form) splits the compiled function into pieces, slower than eager: the invariant
    names it even though the outputs agree."""

    class CapabilityQueryingBag(BagOfEmbeddings):
        def apply(self, params, tokens, *, key=None, train=False):
            if torch.backends.cpu.get_cpu_capability() == "no such CPU":
                tokens = tokens + 1
            return super().apply(params, tokens, key=key, train=train)

    report = run_checks(CapabilityQueryingBag, only=["eager_equals_compiled"], max_examples=2)
    assert report.failed == ["eager_equals_compiled"], report.summary()
    assert "not traced whole" in report["eager_equals_compiled"].error


def test_gpt_with_the_dot_kernel_compiles_whole():
    """The built-in attention picks its compiled form (broadcast or matmul products, by the
    CPU's vector width) without breaking the graph."""
    report = run_checks(GPT, only=["eager_equals_compiled"], max_examples=2)
    assert report.passed == ["eager_equals_compiled"], report.summary()


def test_a_model_that_cannot_be_built_fails_every_check_without_crashing():
    class Unbuildable(BagOfEmbeddings):
        check_options: ClassVar[dict] = {"d_model": "eight"}

        def init(self, key):
            raise RuntimeError("cannot init")

    report = run_checks(Unbuildable, compile=False, max_examples=2)
    assert report.failed and all(
        "building the check model failed" in r.error for r in report.results if r.status == "fail"
    )


# -- the example model plugin passes ----------------------------------------------------------------
def test_gru_plugin_passes(monkeypatch):
    monkeypatch.syspath_prepend(str(GRU))
    from seqfunc_gru import GRUSeq2Seq

    report = run_checks(GRUSeq2Seq, compile=False, max_examples=8)
    assert report.ok, report.summary()
    assert report.skipped == ["permutation_invariance", "eager_equals_compiled", "head_of_features"]


# -- every built-in model passes --------------------------------------------------------------------
BUILTIN_MODELS = [e.name for e in registry.entries("models") if e.dist == registry.OWN_DIST]


@pytest.mark.parametrize("name", BUILTIN_MODELS)
def test_builtin_model_passes_seqfunc_check(name, capsys):
    code = main(["check", name, "--no-compile", "--examples", "6"])
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert code == 0, captured.out + captured.err
    summary = json.loads(lines[-1])
    assert summary["failed"] == [], "\n".join(lines)
    assert summary["model"] == name and summary["passed"]
