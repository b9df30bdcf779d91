"""The activation unit's model `golden.activation` (docs/ARITHMETIC.md section 3.4)."""

import pytest

from dpfm.golden.activation import activation_slots
from dpfm.golden.contract.formats import HwFormats
from dpfm.golden.fixedpoint import activation_luts, lut_index

FMTS = HwFormats()


def test_activation_slots_identity_passes_through():
    slots = [(5, 1), None, (0, 3)]
    assert activation_slots(-77, slots, "identity", FMTS) == (-77, slots)


@pytest.mark.parametrize("kind", ["sigmoid", "tanh", "relu"])
def test_activation_slots_scale_by_lut_slope(kind):
    F, D = activation_luts(kind, FMTS)
    z = 1 << 11  # 0.5
    d = int(D[lut_index(z, FMTS)])
    slots = [(4096, 2), None, (1, 6), (-300, 4)]
    a, out = activation_slots(z, slots, kind, FMTS)
    assert a == int(F[lut_index(z, FMTS)])

    def r(p):
        return (p + (1 << 11)) >> 12

    expect = [(r(d * 4096), 2), None, (r(d * 1), 6) if r(d) else None, (r(d * -300), 4)]
    assert out == expect


def test_activation_slots_drop_values_that_round_to_zero():
    # relu below 0: slope 0, every slot becomes invalid
    a, out = activation_slots(-(1 << 12), [(4096, 2), (-7, 3)], "relu", FMTS)
    assert a == 0 and out == [None, None]
