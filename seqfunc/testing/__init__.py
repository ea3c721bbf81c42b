"""Property-based checks of the spec's invariants, public for plugin authors.

``run_checks(ModelClass)`` runs every invariant that applies to the model's task kinds on a tiny
config and returns a :class:`Report` (``seqfunc check MODEL`` prints it). The pieces are public
too, for tests of your own: :func:`probe_dataset` (a stand-in dataset to size a model),
:mod:`seqfunc.testing.strategies` (Hypothesis strategies for inputs of any task kind) and the
``check_*`` functions of :mod:`seqfunc.testing.invariants`.
"""

from seqfunc.testing import strategies
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
    "strategies", "INVARIANTS", "INVARIANT_NAMES", "assert_close", "check_batch",
    "check_causal", "check_compiled", "check_determinism", "check_padding", "check_permutation",
    "check_vmap", "FIELDS", "Field", "ProbeDataset", "check_config", "probe_dataset", "Report",
    "Result", "falsify", "run_checks", "fake_distribution",
]
