"""The toper RTL equals the golden toper, group by group, over K and tangent widths (sim/tb_toper.py)."""

import pytest
from amaranth.hdl import Const

from dpfm.golden.contract.formats import Fmt
from dpfm.hw.toper import Toper
from dpfm.sim.runner import run_cocotb

pytestmark = pytest.mark.iverilog
ID_BITS = 8


def run_toper(toper, tmp_path, k, t_fmt, testcase=None, groups=24, seed=1):
    params = {"k": k, "t": [t_fmt.bits, t_fmt.frac], "id_bits": ID_BITS, "groups": groups, "seed": seed}
    return run_cocotb(toper, name="toper", test_module="dpfm.sim.tb_toper", build_dir=tmp_path, params=params,
                      testcase=testcase, seed=seed)


@pytest.mark.parametrize("k, t_fmt", [
    (1, Fmt(16, 12)), (2, Fmt(16, 12)), (3, Fmt(12, 8)), (8, Fmt(16, 12)), (8, Fmt(12, 8)), (16, Fmt(16, 12)),
])
def test_toper_matches_golden(tmp_path, k, t_fmt):
    run_toper(Toper(k, t_fmt, ID_BITS), tmp_path, k, t_fmt, seed=k).check()


class TieFlippedToper(Toper):
    """MUTANT for the test below only: on equal magnitudes the higher id wins (the contract says lower)."""

    def ranks_above(self, e_value, e_id, e_demoted, c_value, c_id, c_demoted, opposite):
        e_mag, c_mag = abs(e_value), abs(c_value)
        return (e_mag > c_mag) | ((e_mag == c_mag) & (e_id > c_id))


def test_tie_mutant_is_caught(tmp_path):
    """The tie testbench must fail on an RTL that breaks the tie rule: proof that it can fail."""
    t_fmt = Fmt(16, 12)
    result = run_toper(TieFlippedToper(4, t_fmt, ID_BITS), tmp_path, 4, t_fmt, testcase="ties")
    assert set(result.tests) == {"ties"}
    assert not result.passed, "the tie testbench passed on a toper with the tie rule reversed"


class UndemotingToper(Toper):
    """MUTANT for the test below only: the comparator ignores the dither flags (plain top-K, section 3.3)."""

    def ranks_above(self, e_value, e_id, e_demoted, c_value, c_id, c_demoted, opposite):
        return super().ranks_above(e_value, e_id, Const(0, 1), c_value, c_id, Const(0, 1), opposite)


def test_demotion_mutant_is_caught(tmp_path):
    """The demotion testbench must fail on a toper that carries the flags but does not rank by them."""
    t_fmt = Fmt(16, 12)
    result = run_toper(UndemotingToper(4, t_fmt, ID_BITS), tmp_path, 4, t_fmt, testcase="demotion")
    assert set(result.tests) == {"demotion"}
    assert not result.passed, "the demotion testbench passed on a toper that ignores the dither flags"
