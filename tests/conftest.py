"""Shared test helpers."""

import os
from pathlib import Path

import pytest
import torch
from hypothesis import settings

# `HYPOTHESIS_PROFILE=ci` (set by .ci/run) draws the same examples on every run, so CI passes or
# fails on the code, not on luck; by default each run explores new examples.
settings.register_profile("ci", derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

#: ../shared/data next to the repository (present on the project's machines and CI).
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_file(relative: str) -> Path:
    """A file of the shared datasets, or skip the test saying what is missing."""
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"shared dataset file not found: {path}")
    return path


@pytest.fixture(autouse=True)
def _deterministic_threads():
    # Small tensors: one thread is faster and removes reduction-order noise between runs.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``cuda`` skip, with the reason, where there is no CUDA device."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device (benchmarks/gpu_check.py runs these on a GPU)")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
