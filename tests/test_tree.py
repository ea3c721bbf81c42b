import torch

from seqfunc import tree


def _tree():
    return {"a": torch.ones(2, 3), "b": [torch.zeros(4), {"c": torch.arange(5.0)}]}


def test_count_map_leaves():
    t = _tree()
    assert tree.tree_count(t) == 6 + 4 + 5
    doubled = tree.tree_map(lambda x: x * 2, t)
    assert torch.equal(doubled["b"][1]["c"], torch.arange(5.0) * 2)
    assert len(tree.tree_leaves(t)) == 3


def test_stack_unstack_roundtrip():
    trees = [tree.tree_map(lambda x, i=i: x + i, _tree()) for i in range(3)]
    stacked = tree.tree_stack(trees)
    assert stacked["a"].shape == (3, 2, 3)
    back = tree.tree_unstack(stacked)
    for original, restored in zip(trees, back):
        for x, y in zip(tree.tree_leaves(original), tree.tree_leaves(restored)):
            assert torch.equal(x, y)


def test_flatten_dict_names():
    flat = tree.flatten_dict(_tree())
    assert sorted(flat) == ["a", "b.0", "b.1.c"]
    assert tree.unflatten_dict({"x.y": 1, "x.z": 2}) == {"x": {"y": 1, "z": 2}}


def test_ravel_tree_roundtrip_gives_views():
    t = _tree()
    flat, unravel = tree.ravel_tree(t)
    assert flat.shape == (tree.tree_count(t),)
    back = unravel(flat * 3)
    for x, y in zip(tree.tree_leaves(t), tree.tree_leaves(back)):
        assert y.shape == x.shape and torch.equal(y, x * 3)
    views = unravel(flat)
    views["b"][1]["c"][0] = 42.0  # the leaves share the vector's storage
    assert 42.0 in flat


def test_ravel_tree_rejects_mixed_dtypes():
    import pytest

    with pytest.raises(ValueError, match="dtype"):
        tree.ravel_tree({"a": torch.ones(2), "b": torch.ones(2, dtype=torch.float64)})


def test_unravel_keeps_structure_order_and_shapes():
    """The generated unravel (dicts, lists, tuples; int keys; 0-d, 1-d and 3-d leaves) and
    the generic one (other containers, here a namedtuple) give back the same tree spec."""
    from collections import namedtuple

    Pair = namedtuple("Pair", "left right")
    trees = [
        {
            "z": torch.ones(()),
            3: [torch.arange(6.0).view(1, 2, 3), (torch.zeros(4), torch.ones(2, 2))],
        },
        {"pair": Pair(torch.ones(3), torch.zeros(2, 1))},
    ]
    for t in trees:
        flat, unravel = tree.ravel_tree(t)
        back = unravel(flat)
        assert tree.tree_flatten(back)[1] == tree.tree_flatten(t)[1]
        for x, y in zip(tree.tree_leaves(t), tree.tree_leaves(back)):
            assert y.shape == x.shape and torch.equal(x, y)
