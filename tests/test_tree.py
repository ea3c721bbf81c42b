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
