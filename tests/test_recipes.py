"""Every built-in dataset's recipe (``train_defaults``, per-model ``model_recipes``) resolves to
a valid training config whose model options are fields of the model it names: the README's
one-word commands (``seqfunc train shakespeare``...) cannot fail on a stale recipe."""

import attrs
import pytest

from seqfunc import registry
from seqfunc.cli import build_parser
from seqfunc.cli.train import resolve_config

BUILT_IN = sorted(e.name for e in registry.entries("datasets") if e.dist == "seqfunc")


def _commands():
    for name in BUILT_IN:
        yield name, []
        for model in getattr(registry.get_dataset(name), "model_recipes", {}):
            yield name, ["--model", model]


@pytest.mark.parametrize(
    "dataset, extra", list(_commands()), ids=lambda v: " ".join(v) if isinstance(v, list) else v
)
def test_recipe_is_a_valid_config(dataset, extra):
    cfg = resolve_config(build_parser().parse_args(["train", dataset, *extra]))
    recipe = getattr(registry.get_dataset(dataset), "train_defaults", {})
    for field, value in recipe.items():
        if field not in ("model", "model_options", "dataset_options") and not extra:
            assert getattr(cfg, field) == value, field
    model_fields = {f.name for f in attrs.fields(registry.get_model(cfg.model).Config)}
    assert set(cfg.model_options) <= model_fields, cfg.model_options
