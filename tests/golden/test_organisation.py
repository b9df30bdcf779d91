"""The tangent modes of `golden.contract.organisation`: which lane organisation each names."""

import pytest

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.organisation import parallel_sources


@pytest.mark.parametrize("mode, k, sources", [("exact", 4, None), ("toper", 4, None), ("toper-parallel", 4, 5),
                                              ("toper-parallel-3", 4, 3), ("toper-parallel-5", 4, 5)])
def test_parallel_sources_of_each_tangent_mode(mode, k, sources):
    assert parallel_sources(mode, k) == sources


@pytest.mark.parametrize("mode, message", [
    ("toper-parallel-0", "unknown tangent mode"), ("toper-parallel-x", "unknown tangent mode"),
    ("toper-parallel-03", "unknown tangent mode"), ("parallel", "unknown tangent mode"),
    ("toper-parallel-6", "only K \\+ 1 = 5 candidates"),
])
def test_bad_tangent_modes_are_rejected(mode, message):
    with pytest.raises(DpfmError, match=message):
        parallel_sources(mode, 4)
