"""Shared test helpers."""

import os
from pathlib import Path

import pytest
import torch
from hypothesis import settings

from seqfunc.data.text_files import data_root

# `HYPOTHESIS_PROFILE=ci` (set by .ci/run) draws the same examples on every run, so CI passes or
# fails on the code, not on luck; by default each run explores new examples.
settings.register_profile("ci", derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def shared_file(relative: str) -> Path:
    """A file of the public datasets ($SEQFUNC_DATA, or ../shared/data beside the checkout), or
    skip the test saying what is missing."""
    path = data_root() / relative
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
