"""The activation unit's model `golden.activation` (docs/ARITHMETIC.md section 3.4): its tables, their
addressing, and the slots of one transaction."""

import numpy as np
import pytest

from dpfm.golden.activation import (activation_luts, activation_slots, activation_value, lut_bin_centres,
                                   lut_index, lut_offset)
from dpfm.golden.activation_functions import activate
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import Fmt, HwFormats
from dpfm.golden.fixedpoint import SatCounter, quantize

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

    def r(p):
        return (p + (1 << 11)) >> 12

    assert a == int(F[lut_index(z, FMTS)]) + r(d * -32)   # z = 0.5 is its bin's low edge, 32 raw below the centre

    expect = [(r(d * 4096), 2), None, (r(d * 1), 6) if r(d) else None, (r(d * -300), 4)]
    assert out == expect


def test_activation_slots_drop_values_that_round_to_zero():
    # relu below 0: slope 0, every slot becomes invalid
    a, out = activation_slots(-(1 << 12), [(4096, 2), (-7, 3)], "relu", FMTS)
    assert a == 0 and out == [None, None]


def test_lut_offset_is_the_distance_to_the_bin_centre_and_zero_where_the_index_clamps():
    assert [lut_offset(z, FMTS) for z in (0, 31, 32, 63, 64, -1, -64)] == [-32, -1, 0, 31, -32, 31, -32]
    wide = HwFormats.parse("x=s16.10,t=s16.12,g=s32.22,lut_bits=5")   # z reaches beyond [-8, 8)
    assert lut_offset(-(8 << 10) - 1, wide) == 0 and lut_offset(8 << 10, wide) == 0
    assert lut_offset(-(8 << 10), wide) == -256 and lut_offset((8 << 10) - 1, wide) == 255
    full = HwFormats.parse("lut_bits=16")   # one raw value per bin: nothing to interpolate
    assert lut_offset(12345, full) == 0 and np.array_equal(lut_offset(Z_RAW[:9], full), np.zeros(9))
    assert np.array_equal(lut_offset(Z_RAW, FMTS)[::977], [lut_offset(int(z), FMTS) for z in Z_RAW[::977]])


@pytest.mark.parametrize("kind", ["sigmoid", "tanh"])
def test_the_interpolated_value_is_within_one_lsb_where_the_nearest_entry_is_not(kind):
    """Moving along the table's slope brings a within 1.1 LSB of f(z) (two roundings of half an LSB, F's and
    the correction's, plus the curvature's 0.1 at most), where the entry at the bin centre alone is 8 (sigmoid)
    to 32 (tanh) LSB off."""
    F, D = activation_luts(kind, FMTS)
    exact = activate(kind, Z)[0]
    a = activation_value(Z_RAW, F, D, FMTS) / 4096
    assert np.abs(a - exact).max() <= 1.1 / 4096 < np.abs(F[lut_index(Z_RAW, FMTS)] / 4096 - exact).max() / 6


def test_the_interpolated_value_saturates_and_counts_at_the_format_edge():
    """At the default formats no table takes `a` out of format x, but the contract clamps and counts where one
    does: an entry one LSB below the largest value with slope 1.0."""
    n = 1 << FMTS.lut_bits
    F, D = np.full(n, FMTS.x.max_raw - 1), np.full(n, 1 << FMTS.x.frac)
    sat = SatCounter()
    z = np.arange(0, 64)                  # one bin: offsets -32 .. 31
    a = activation_value(z, F, D, FMTS, sat)
    assert a.max() == FMTS.x.max_raw and sat.count == 30   # offsets 2 .. 31 pass the largest value


# --- activation LUTs -------------------------------------------------------------------------------------

Z_RAW = np.arange(-8 << 12, 8 << 12, dtype=np.int64)  # every representable z in [-8, 8)
Z = Z_RAW / 4096.0


def test_lut_index_formula_and_clamping():
    assert lut_index(0, FMTS) == 512
    assert lut_index(-1, FMTS) == 511          # arithmetic shift floors
    assert lut_index(63, FMTS) == 512 and lut_index(64, FMTS) == 513   # bins are 1/64 wide
    assert lut_index(-8 << 12, FMTS) == 0
    assert lut_index(FMTS.x.min_raw, FMTS) == 0
    assert lut_index(FMTS.x.max_raw, FMTS) == 1023
    idx = lut_index(Z_RAW, FMTS)
    assert np.array_equal(idx[::977], [lut_index(int(z), FMTS) for z in Z_RAW[::977]])
    assert np.array_equal(np.bincount(idx), np.full(1024, 64))


def test_lut_index_at_full_resolution_is_identity_offset():
    f = HwFormats(lut_bits=16)  # shift 0
    assert lut_index(0, f) == 1 << 15
    assert lut_index(-5, f) == (1 << 15) - 5


def test_bin_centres_lie_inside_their_bins():
    c = lut_bin_centres(FMTS)
    assert np.array_equal(lut_index(quantize(c, FMTS.x), FMTS), np.arange(1024))


SLOPE_BOUNDS = {"sigmoid": (0.25, 0.0963), "tanh": (1.0, 0.7699), "relu": (1.0, 0.0)}  # max|f'|, max|f''|


def _float_f(kind, z):
    if kind == "sigmoid":
        s = 1 / (1 + np.exp(-z))
        return s, s * (1 - s)
    if kind == "tanh":
        return np.tanh(z), 1 - np.tanh(z) ** 2
    return np.maximum(z, 0), (z >= 0).astype(float)


@pytest.mark.parametrize("kind", ["sigmoid", "tanh", "relu"])
def test_lut_accuracy_against_float(kind):
    """Error <= (max slope) * (half a bin) + half an x LSB, for every representable z in [-8, 8)."""
    F, D = activation_luts(kind, FMTS)
    idx = lut_index(Z_RAW, FMTS)
    f, df = _float_f(kind, Z)
    half_bin, half_lsb = 16 / 1024 / 2, 2.0 ** -13
    s1, s2 = SLOPE_BOUNDS[kind]
    assert np.max(np.abs(F[idx] / 4096 - f)) <= s1 * half_bin + half_lsb
    assert np.max(np.abs(D[idx] / 4096 - df)) <= s2 * half_bin + half_lsb


@pytest.mark.parametrize("kind", ["sigmoid", "tanh", "relu"])
def test_lut_shapes_monotonic_and_read_only(kind):
    F, D = activation_luts(kind, FMTS)
    assert F.shape == D.shape == (1024,) and F.dtype == D.dtype == np.int64
    assert np.all(np.diff(F) >= 0)
    with pytest.raises(ValueError):
        F[0] = 1


@pytest.mark.parametrize("kind", ["sigmoid", "tanh"])
def test_lut_slope_is_unimodal_and_symmetric(kind):
    _, D = activation_luts(kind, FMTS)
    assert np.all(np.diff(D[:512]) >= 0) and np.all(np.diff(D[512:]) <= 0)
    assert np.max(np.abs(D - D[::-1])) <= 1


def test_lut_saturates_in_a_narrow_x_format():
    f = HwFormats(x=Fmt(8, 4), t=Fmt(8, 4), g=Fmt(16, 8), lut_bits=8)
    F, _ = activation_luts("relu", f)
    assert F[-1] == 127  # 7.97 does not fit s8.4 (max 7.9375)


@pytest.mark.parametrize("kind", ["identity", "softmax"])
def test_lut_rejects_kinds_without_a_table(kind):
    with pytest.raises(DpfmError):
        activation_luts(kind, FMTS)
