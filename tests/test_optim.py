"""Our optimizers follow torch.optim's update rules step for step."""

import pytest
import torch

from seqfunc import optim

CASES = [
    ("sgd", lambda: optim.sgd(0.05), lambda p: torch.optim.SGD(p, lr=0.05)),
    (
        "sgd-momentum",
        lambda: optim.sgd(0.05, 0.9),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9),
    ),
    (
        "nesterov",
        lambda: optim.sgd(0.05, 0.9, nesterov=True),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
    ),
    ("adam", lambda: optim.adam(1e-2), lambda p: torch.optim.Adam(p, lr=1e-2)),
    (
        "adamw",
        lambda: optim.adamw(1e-2, weight_decay=0.1),
        lambda p: torch.optim.AdamW(p, lr=1e-2, weight_decay=0.1),
    ),
    ("radam", lambda: optim.radam(1e-2), lambda p: torch.optim.RAdam(p, lr=1e-2)),
]


CASES.append(
    (
        "adamw-betas",
        lambda: optim.adamw(1e-2, 0.8, 0.99, weight_decay=0.1),
        lambda p: torch.optim.AdamW(p, lr=1e-2, betas=(0.8, 0.99), weight_decay=0.1),
    )
)


@pytest.mark.parametrize("flat", [False, True], ids=["per-leaf", "flatten"])
@pytest.mark.parametrize("name, ours, theirs", CASES, ids=[c[0] for c in CASES])
def test_matches_torch_optim(name, ours, theirs, flat):
    """Per leaf, and through ``optim.flatten`` (one vector for all leaves): the same steps."""
    gen = torch.Generator().manual_seed(0)
    start = {"w": torch.randn(5, 3, generator=gen), "b": torch.randn(3, generator=gen)}
    params = dict(start)
    torch_params = [torch.nn.Parameter(start["w"].clone()), torch.nn.Parameter(start["b"].clone())]
    opt, topt = (optim.flatten(ours()) if flat else ours()), theirs(torch_params)
    state = opt.init(params)
    for _ in range(12):  # RAdam switches to its adaptive rule after step 5
        grads = {"w": torch.randn(5, 3, generator=gen), "b": torch.randn(3, generator=gen)}
        updates, state = opt.update(grads, state, params)
        params = optim.apply_updates(params, updates)
        torch_params[0].grad, torch_params[1].grad = grads["w"].clone(), grads["b"].clone()
        topt.step()
    torch.testing.assert_close(params["w"], torch_params[0].detach(), atol=2e-5, rtol=1e-5)
    torch.testing.assert_close(params["b"], torch_params[1].detach(), atol=2e-5, rtol=1e-5)


def test_inputs_are_not_mutated():
    params = {"w": torch.ones(3)}
    opt = optim.adam(0.1)
    state = opt.init(params)
    grads = {"w": torch.ones(3)}
    optim.apply_updates(params, opt.update(grads, state, params)[0])
    assert torch.equal(params["w"], torch.ones(3)) and torch.equal(grads["w"], torch.ones(3))


def test_clip_by_global_norm():
    clip = optim.clip_by_global_norm(1.0)
    grads = {"a": torch.tensor([3.0, 0.0]), "b": torch.tensor([4.0])}
    clipped, _ = clip.update(grads, clip.init(grads))
    assert float(optim.global_norm(clipped)) == pytest.approx(1.0, rel=1e-5)
    small = {"a": torch.tensor([0.3])}
    assert torch.equal(clip.update(small, ())[0]["a"], small["a"])


def test_global_norm_compiled_equals_eager():
    """Compiled, the norm is taken over the concatenated leaves instead of per leaf."""
    gen = torch.Generator().manual_seed(3)
    w, b, c = (
        torch.randn(7, 5, generator=gen),
        torch.randn(4, generator=gen),
        torch.randn(2, 3, 2, generator=gen),
    )
    tree = {"w": w, "layers": [b, c]}
    want = torch.sqrt(sum((leaf.double() ** 2).sum() for leaf in (w, b, c)))
    for fn in (optim.global_norm, torch.compile(optim.global_norm, dynamic=False)):
        torch.testing.assert_close(fn(tree).double(), want, rtol=1e-6, atol=0)


def test_schedules():
    s = optim.warmup_cosine(1.0, 10, 110, end=0.1)
    at = lambda i: float(s(torch.tensor(i)))
    assert at(0) == 0.0 and at(5) == pytest.approx(0.5) and at(10) == pytest.approx(1.0)
    assert (
        at(60) == pytest.approx(0.55)
        and at(110) == pytest.approx(0.1)
        and at(500) == pytest.approx(0.1)
    )
    decay = optim.step_decay(1.0, 10, 0.95)
    assert float(decay(torch.tensor(25))) == pytest.approx(0.95**2)
    assert float(optim.constant(0.3)(torch.tensor(7))) == pytest.approx(0.3)
