"""The entry-point registry: lazy listing, broken plugins isolated, collisions, the contract,
the autoload switch, and `seqfunc list` / `seqfunc train` on top of it.

Plugins are simulated with fake ``.dist-info`` folders on ``sys.path`` (no pip install)."""

from __future__ import annotations

import json
import sys
import textwrap

import pytest

from seqfunc import registry
from seqfunc.cli import main
from seqfunc.registry import RegistryError
from seqfunc.testing import fake_distribution

GOOD_MODULE = textwrap.dedent('''
    import attrs
    from seqfunc.models import Seq2SeqTransformer

    class TwinModel(Seq2SeqTransformer):
        """A seq2seq model registered under a name another distribution also uses."""

    @attrs.frozen
    class ClfConfig:
        vocab_size: int = 1

    class ClassifierOnly:
        name = "clf-only"
        task_kinds = ("classification",)
        Config = ClfConfig
        def __init__(self, config): self.config = config
        @classmethod
        def config_for(cls, dataset, **overrides): return ClfConfig(**overrides)
        def init(self, key): return {}
        def apply(self, params, tokens, *, key=None, train=False): return tokens

    class NoApply:
        task_kinds = ("seq2seq",)
        Config = ClfConfig
        @classmethod
        def config_for(cls, dataset, **overrides): return ClfConfig()
        def init(self, key): return {}
''')


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    """Four fake distributions: a good one, a twin of its name, one that raises on import and
    one whose class breaks the contract."""
    (tmp_path / "fake_good.py").write_text(GOOD_MODULE)
    (tmp_path / "fake_boom.py").write_text("raise ImportError('no module named torch_magic')\n")
    fake_distribution(
        tmp_path,
        "fake-good",
        "1.2.3",
        {
            "seqfunc.models": {
                "twin": "fake_good:TwinModel",
                "clf-only": "fake_good:ClassifierOnly",
                "no-apply": "fake_good:NoApply",
            },
        },
    )
    fake_distribution(
        tmp_path, "fake-other", "0.9", {"seqfunc.models": {"twin": "fake_good:TwinModel"}}
    )
    fake_distribution(
        tmp_path,
        "fake-boom",
        "0.0.1",
        {
            "seqfunc.models": {"boom": "fake_boom:Model"},
            "seqfunc.datasets": {"boom-data": "fake_boom:Data"},
        },
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv(registry.DISABLE_ENV, raising=False)
    yield tmp_path
    for name in ("fake_good", "fake_boom"):
        sys.modules.pop(name, None)


def test_builtins_register_through_the_same_entry_points():
    models = {e.name: e for e in registry.entries("models")}
    datasets = {e.name: e for e in registry.entries("datasets")}
    assert models["transformer"].dist == "seqfunc"
    assert datasets["formula"].value == "seqfunc.data.formula:FormulaDataset"
    assert registry.get_model("transformer").task_kinds == ("seq2seq",)


def test_listing_imports_no_plugin_code(plugins):
    names = {e.name for e in registry.entries("models")}
    assert {"twin", "boom", "clf-only"} <= names
    rows = registry.status("models", load=False)
    assert all(r.ok is None and not r.loaded and r.to_dict()["ok"] is None for r in rows)
    assert "fake_boom" not in sys.modules and "fake_good" not in sys.modules


def test_broken_plugin_is_reported_with_dist_version_and_error(plugins):
    rows = {r.entry.name: r for r in registry.status("models")}
    boom = rows["boom"]
    assert not boom.ok
    assert (boom.entry.dist, boom.entry.version) == ("fake-boom", "0.0.1")
    assert "ImportError: no module named torch_magic" in boom.error
    assert rows["transformer"].ok and rows["clf-only"].ok  # the others still load
    with pytest.raises(RegistryError, match=r"'boom' from fake-boom 0\.0\.1 .*torch_magic"):
        registry.get_model("boom")


def test_a_name_two_distributions_register_needs_its_qualified_name(plugins):
    with pytest.raises(RegistryError) as info:
        registry.get_model("twin")
    message = str(info.value)
    assert (
        "fake-good:twin (fake-good 1.2.3)" in message
        and "fake-other:twin (fake-other 0.9)" in message
    )
    assert registry.find("models", "fake-good:twin").dist == "fake-good"
    assert registry.find("models", "fake-other:twin").dist == "fake-other"
    assert registry.get_model("fake-other:twin").__name__ == "TwinModel"
    rows = [r for r in registry.status("models") if r.entry.name == "twin"]
    assert len(rows) == 2 and all(r.ambiguous and r.ok for r in rows)


def test_a_class_breaking_the_contract_is_refused_with_what_it_lacks(plugins):
    row = next(r for r in registry.status("models") if r.entry.name == "no-apply")
    assert not row.ok and "missing method 'apply'" in row.error
    with pytest.raises(
        RegistryError, match="does not follow the model contract: missing method 'apply'"
    ):
        registry.get_model("no-apply")


def test_autoload_switch_hides_third_party_entries_only(plugins, monkeypatch):
    monkeypatch.setenv(registry.DISABLE_ENV, "1")
    names = {e.name for e in registry.entries("models")}
    assert "transformer" in names and not names & {"twin", "boom", "clf-only"}
    with pytest.raises(RegistryError, match="no model called 'boom'"):
        registry.get_model("boom")


def test_unknown_names_list_the_known_ones():
    with pytest.raises(RegistryError, match=r"no model called 'nope'; known models: .*transformer"):
        registry.get_model("nope")
    with pytest.raises(RegistryError, match="unknown registry group"):
        registry.entries("optimizers")


def test_seqfunc_list_shows_origin_version_and_status(plugins, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    line = next(l for l in out.splitlines() if l.strip().startswith("boom "))
    assert "fake-boom 0.0.1" in line and "ERROR" in line and "torch_magic" in line
    assert any("fake-good:twin" in l and "fake-good 1.2.3" in l for l in out.splitlines())
    assert any(l.split()[:2] == ["transformer", "seqfunc"] and "ok" in l for l in out.splitlines())

    assert main(["list", "datasets", "--json"]) == 0
    rows = [json.loads(l) for l in capsys.readouterr().out.splitlines()]
    boom = next(r for r in rows if r["name"] == "boom-data")
    assert boom["ok"] is False and boom["dist"] == "fake-boom" and "ImportError" in boom["error"]
    assert next(r for r in rows if r["name"] == "formula")["task_kinds"] == ["seq2seq"]


def test_train_refuses_an_incompatible_pair_naming_both_kinds(plugins, capsys, tmp_path):
    code = main(
        ["train", "formula", "--model", "clf-only", "--steps", "1", "--out", str(tmp_path / "run")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "classification" in err and "seq2seq" in err and "clf-only" in err and "formula" in err


def test_train_with_a_broken_plugin_model_fails_in_one_line(plugins, capsys, tmp_path):
    code = main(
        ["train", "formula", "--model", "boom", "--steps", "1", "--out", str(tmp_path / "r")]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "fake-boom 0.0.1" in err
