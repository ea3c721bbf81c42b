"""Property-based checks of the spec's invariants, public for plugin authors.

``run_checks(ModelClass)`` runs every invariant that applies to the model's task kinds on a tiny
config and returns a :class:`Report` (``seqfunc check MODEL`` prints it). The pieces are public
too, for tests of your own: :func:`probe_dataset` (a stand-in dataset to size a model),
:mod:`seqfunc.testing.strategies` (Hypothesis strategies for inputs of any task kind) and the
``check_*`` functions of :mod:`seqfunc.testing.invariants`.

``check_dataset(DatasetClass)`` is the dataset half (``seqfunc check --dataset NAME``): the
checks of :mod:`seqfunc.testing.datasets`, with the same :class:`Report`.
"""

from seqfunc.testing import strategies
from seqfunc.testing.datasets import (
    DATASET_CHECK_NAMES,
    DATASET_CHECKS,
    check_dataset,
    missing_attributes,
)
from seqfunc.testing.distributions import fake_distribution
from seqfunc.testing.invariants import (
    INVARIANT_NAMES,
    INVARIANTS,
    assert_close,
    check_batch,
    check_causal,
    check_compiled,
    check_determinism,
    check_padding,
    check_permutation,
    check_vmap,
)
from seqfunc.testing.probe import FIELDS, Field, ProbeDataset, check_config, probe_dataset
from seqfunc.testing.runner import Report, Result, falsify, run_checks

__all__ = [
    "strategies",
    "INVARIANTS",
    "INVARIANT_NAMES",
    "assert_close",
    "check_batch",
    "check_causal",
    "check_compiled",
    "check_determinism",
    "check_padding",
    "check_permutation",
    "check_vmap",
    "FIELDS",
    "Field",
    "ProbeDataset",
    "check_config",
    "probe_dataset",
    "Report",
    "Result",
    "falsify",
    "run_checks",
    "fake_distribution",
    "check_dataset",
    "DATASET_CHECKS",
    "DATASET_CHECK_NAMES",
    "missing_attributes",
]
