"""The MAC lane's model `golden.mac_lane` (docs/ARITHMETIC.md sections 3.1 - 3.3): the candidates of a MAC
step and the neuron's primal."""

from dpfm.golden.contract.formats import Fmt, HwFormats
from dpfm.golden.fixedpoint import SatCounter
from dpfm.golden.mac_lane import MacLaneModel, indexed_mac_candidates, mac_candidates, neuron_primal

FMTS = HwFormats()


def test_mac_candidates_direct_first_then_slots_in_order_without_zeros():
    one = 1 << 12
    x_slots = [(one // 2, 7), None, (-one, 3), (1, 9)]  # w * 1 LSB rounds to 0 for |w| < 0.5
    cands = mac_candidates(w_raw=one // 4, wid=11, x_raw=3 * one // 2, x_slots=x_slots, fmts=FMTS)
    assert cands == [(3 * one // 2, 11), (one // 8, 7), (-one // 4, 3)]


def test_mac_candidates_round_half_up_and_saturate():
    sat = SatCounter()
    # w = 0.5 (2048), v = 1 LSB -> product 2048 / 2**24 = 0.5 LSB of t -> rounds up to 1
    assert mac_candidates(2048, 0, 0, [(1, 5)], FMTS, sat) == [(1, 5)]
    # w = 0.5, v = -1 LSB -> -0.5 LSB rounds half up to 0 -> dropped
    assert mac_candidates(2048, 0, 0, [(-1, 5)], FMTS, sat) == []
    big = FMTS.w.max_raw
    assert mac_candidates(big, 0, 0, [(FMTS.t.max_raw, 5)], FMTS, sat) == [(FMTS.t.max_raw, 5)]
    assert sat.count == 1


def test_mac_candidate_direct_term_converts_x_to_t_with_rounding():
    fmts = HwFormats(t=Fmt(16, 10), g=Fmt(32, 22))
    # x = 3 LSB (frac 12) -> 0.75 LSB of t -> rounds to 1; x = 2 LSB -> 0.5 LSB -> rounds up to 1
    assert mac_candidates(0, 4, 3, [], fmts) == [(1, 4)]
    assert mac_candidates(0, 4, 2, [], fmts) == [(1, 4)]
    assert mac_candidates(0, 4, -2, [], fmts) == []


def test_indexed_mac_candidates_tag_direct_0_and_slot_j_as_j_plus_1():
    slots = [(1 << 12, 7), None, (-(1 << 12), 9)]
    got = indexed_mac_candidates(1 << 12, 3, 2 << 12, slots, FMTS)
    assert got == [(0, 2 << 12, 3), (1, 1 << 12, 7), (3, -(1 << 12), 9)]
    assert [(v, i) for _, v, i in got] == mac_candidates(1 << 12, 3, 2 << 12, slots, FMTS)


def test_neuron_primal_sums_exactly_then_rounds_half_up_and_saturates():
    one = 1 << 12
    assert neuron_primal([(one, 0, 3, []), (one // 2, 1, 1, [])], FMTS) == 4        # 3 + 0.5 LSB rounds up
    assert neuron_primal([(one // 2, 0, -1, [])], FMTS) == 0                          # -0.5 LSB rounds up to 0
    assert neuron_primal([(one, 0, 5, []), (-one, 1, 5, [])], FMTS) == 0              # exact sum, no rounding per step
    sat = SatCounter()
    big = FMTS.w.max_raw
    assert neuron_primal([(big, 0, FMTS.x.max_raw, []), (big, 1, one, [])], FMTS, sat) == FMTS.x.max_raw
    assert sat.count == 1


def test_mac_lane_model_clears_its_toper_per_neuron_and_counts_every_clamp():
    """K = 1: the first neuron's two direct candidates evict one; the second neuron starts empty (its slot
    candidate is evicted); only the third neuron's z saturates."""
    one = 1 << 12
    sat = SatCounter()
    lane = MacLaneModel(1, FMTS, sat)
    assert lane.neuron([(one, 3, one, []), (one, 4, 2 * one, [])]) == (3 * one, [(2 * one, 4)])
    assert lane.evictions == 1
    assert lane.neuron([(one, 5, -one, [(7, 9)])]) == (-one, [(-one, 5)])
    assert lane.evictions == 2
    assert sat.count == 0
    big = FMTS.x.max_raw
    assert lane.neuron([(FMTS.w.max_raw, 6, big, []), (one, 7, one, [])]) == (big, [(big, 6)])
    assert sat.count == 1
