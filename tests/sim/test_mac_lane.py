"""The MAC lane RTL equals the golden hardware-exact neuron, over K and formats (sim/tb_mac_lane.py)."""

import pytest
from dpfm.golden.contract.formats import HwFormats
from dpfm.hw.mac_lane import DIRECT, MacLane
from dpfm.sim.runner import run_cocotb

pytestmark = pytest.mark.iverilog
ID_BITS = 8
NARROW = "x=s12.8,w=s12.8,t=s12.8,g=s24.16,lut_bits=8"
#: (K, formats) cases both lanes are checked over (tests/sim/test_parallel_lane.py adds its own large K).
LANE_CASES = [
    (1, "x=s16.12,w=s16.12,t=s16.12"),
    (2, NARROW),
    (3, "x=s16.12,w=s16.12,t=s12.8,g=s32.20"),
    (8, "x=s16.12,w=s16.12,t=s16.12"),
]


@pytest.mark.parametrize("k, fmts", LANE_CASES + [(16, NARROW)])
def test_mac_lane_matches_golden(tmp_path, k, fmts):
    fmts = HwFormats.parse(fmts)
    params = {"k": k, "fmts": str(fmts), "id_bits": ID_BITS, "neurons": 40, "seed": k}
    run_cocotb(MacLane(k, fmts, ID_BITS), name="mac_lane", test_module="dpfm.sim.tb_mac_lane", build_dir=tmp_path,
               params=params, seed=k).check()


class DirectLastMacLane(MacLane):
    """MUTANT for the test below only: the direct candidate goes into the toper after the slot candidates
    (the contract puts it first; the order decides ties and evictions)."""

    def sources(self):
        return list(range(self.k)) + [DIRECT]


def test_candidate_order_mutant_is_caught(tmp_path):
    """The MAC lane testbench must fail on a lane that emits the candidates in the wrong order."""
    fmts = HwFormats()
    params = {"k": 3, "fmts": str(fmts), "id_bits": ID_BITS, "neurons": 40, "seed": 3}
    result = run_cocotb(DirectLastMacLane(3, fmts, ID_BITS), name="mac_lane", test_module="dpfm.sim.tb_mac_lane",
                        build_dir=tmp_path, params=params, testcase="matches_golden")
    assert set(result.tests) == {"matches_golden"}
    assert not result.passed, "the MAC lane testbench passed on a lane with the candidate order reversed"
