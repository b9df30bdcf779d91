"""The fast subset of `dpfm bench mutants` (host/bench/mutants.py): every named mutant whose tests are pure
Python must be killed, and every mutant's substitution must still match its source exactly once."""

import pytest

from dpfm.golden.contract.errors import DpfmError
from dpfm.host.bench.mutants import MUTANTS, applied, repo_root, run_mutants, scratch_copy, select, source_path


def test_every_mutant_still_applies(tmp_path):
    scratch_copy(repo_root(), tmp_path)
    for mutant in MUTANTS:
        original = source_path(tmp_path, mutant.path).read_text()
        with applied(tmp_path, mutant):
            assert source_path(tmp_path, mutant.path).read_text() != original
        assert source_path(tmp_path, mutant.path).read_text() == original, "the original is restored"


def test_a_stale_mutant_is_an_error(tmp_path):
    scratch_copy(repo_root(), tmp_path)
    mutant = MUTANTS[0]
    with applied(tmp_path, mutant):
        with pytest.raises(DpfmError, match=f"mutant {mutant.name} no longer applies"):
            with applied(tmp_path, mutant):
                pass


@pytest.mark.slow
def test_the_fast_mutants_are_all_killed():
    results = run_mutants(select(None, fast=True), timeout=600)
    survivors = [r["name"] for r in results if not r["killed"]]
    assert len(results) >= 9 and not survivors, f"mutants the tests do not kill: {survivors}"


def test_unknown_mutant_names_are_refused():
    with pytest.raises(DpfmError, match="unknown mutant"):
        select("no-such-mutant", fast=False)
