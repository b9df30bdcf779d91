"""The gradient unit's model `golden.update` (docs/ARITHMETIC.md section 3.5), by hand."""

from dpfm.golden.contract.formats import Fmt, HwFormats
from dpfm.golden.fixedpoint import SatCounter
from dpfm.golden.update import accumulate_output_gradient

FMTS = HwFormats()
ONE = 1 << 12


def test_delta_times_each_valid_slot_into_its_id():
    """a = 0.75, y = 0, c = 2: e = 0.75, delta = 1.5; slots add delta * v at frac x + t = g."""
    G = [0, 0, 0]
    accumulate_output_gradient(G, 3 * ONE // 4, 0, [(ONE, 2), None, (-ONE // 2, 0)], 2 * ONE, FMTS)
    assert G == [-(3 * ONE // 2) * (ONE // 2), 0, (3 * ONE // 2) * ONE]


def test_error_delta_and_accumulator_saturate_and_count_in_order():
    """Narrow formats: a - y leaves x, c * e leaves x, and the second slot of one id clamps G (the first
    slot's sum is seen by the second, as the hardware's read after write)."""
    fmts = HwFormats(x=Fmt(8, 4), t=Fmt(8, 4), g=Fmt(12, 8), lut_bits=8)
    sat = SatCounter()
    G = [0]
    accumulate_output_gradient(G, 127, -127, [(127, 0), (127, 0)], 2 << 4, fmts, sat)
    # e = sat(254) = 127 (1), delta = sat(round(32 * 127 / 16)) = 127 (2), G: 127 * 127 = 16129 -> 2047 (3),
    # then 2047 + 16129 -> 2047 (4)
    assert G == [2047]
    assert sat.count == 4
