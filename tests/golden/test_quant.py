"""Uniform-SYMM / Uniform-ASYMM quantizers (SPEC section 5): their defining properties."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.quant import asymm, asymm_codes, quantize_layers, symm, symm_codes

finite = st.floats(-100, 100, allow_nan=False, allow_infinity=False)
vectors = arrays(np.float64, st.integers(1, 40), elements=finite)


@settings(max_examples=200, deadline=None)
@given(vectors, st.integers(2, 12))
def test_symm_properties(x, n):
    m = np.max(np.abs(x))
    q = symm(x, n)
    levels = 2 ** (n - 1) - 1
    if m == 0:
        assert np.array_equal(q, x)
        return
    step = m / levels
    # half a step, plus one subnormal: with a subnormal range the grid itself is rounded to multiples of it
    assert np.max(np.abs(q - x)) <= step / 2 * (1 + 1e-9) + np.finfo(np.float64).smallest_subnormal
    codes = symm_codes(x, n, m)
    assert np.all(np.abs(codes) <= levels)
    assert np.array_equal(symm(-x, n), -q)                       # odd symmetry
    assert np.allclose(q[np.abs(x) == m], np.sign(x[np.abs(x) == m]) * m)   # the range end is exact
    assert len(np.unique(codes)) <= 2 ** n - 1
    assert np.allclose(symm(q, n), q)                            # idempotent


@settings(max_examples=200, deadline=None)
@given(vectors, st.integers(1, 12))
def test_asymm_properties(x, n):
    lo, hi = x.min(), x.max()
    q = asymm(x, n)
    if hi == lo:
        assert np.array_equal(q, x)
        return
    step = (hi - lo) / (2 ** n - 1)
    assert np.max(np.abs(q - x)) <= step / 2 * (1 + 1e-9)
    codes = asymm_codes(x, n, lo, hi)
    assert codes.min() == 0 and codes.max() == 2 ** n - 1
    assert q[np.argmin(x)] == lo and q[np.argmax(x)] == hi       # both ends exact
    assert lo <= q.min() and q.max() <= hi
    assert len(np.unique(q)) <= 2 ** n
    assert np.allclose(asymm(q, n), q)


def test_symm_zero_is_exact_and_asymm_zero_is_not():
    x = np.array([-1.0, 0.0, 0.3, 2.0])
    assert symm(x, 3)[1] == 0.0
    assert asymm(np.array([-1.0, 0.0, 2.5]), 2)[1] != 0.0   # grid -1, 1/6, 4/3, 2.5


def test_symm_known_values():
    # 3 bits: levels +-3, range 1.5 -> step 0.5
    assert symm(np.array([-1.5, -0.3, 0.25, 0.74, 1.0]), 3).tolist() == [-1.5, -0.5, 0.0, 0.5, 1.0]


def test_asymm_known_values():
    # 2 bits: 4 levels from 0 to 3
    assert asymm(np.array([0.0, 0.4, 1.6, 2.5, 3.0]), 2).tolist() == [0.0, 0.0, 2.0, 2.0, 3.0]


def test_explicit_range_clips():
    assert symm(np.array([5.0, -5.0]), 4, max_abs=1.0).tolist() == [1.0, -1.0]
    assert asymm(np.array([5.0, -5.0]), 4, lo=-1.0, hi=2.0).tolist() == [2.0, -1.0]


LAYERS = [(np.array([[0.1, -0.2], [0.3, 0.05]]), np.array([0.0, 0.01])),
          (np.array([[4.0, -1.0]]), np.array([0.5]))]


@pytest.mark.parametrize("scheme", ["symm", "asymm"])
def test_global_scope_shares_one_grid(scheme):
    out = quantize_layers(LAYERS, 3, scheme, "global")
    values = np.unique(np.concatenate([np.concatenate([W.ravel(), b]) for W, b in out]))
    assert len(values) <= (7 if scheme == "symm" else 8)
    # the small first layer collapses onto few levels of the shared grid
    assert len(np.unique(np.concatenate([out[0][0].ravel(), out[0][1]]))) <= 2


@pytest.mark.parametrize("scheme", ["symm", "asymm"])
def test_layer_scope_gives_each_layer_its_own_range(scheme):
    out = quantize_layers(LAYERS, 3, scheme, "layer")
    for (W, b), (Wq, bq) in zip(LAYERS, out):
        x = np.concatenate([W.ravel(), b])
        q = np.concatenate([Wq.ravel(), bq])
        if scheme == "symm":
            assert np.isclose(np.max(np.abs(q)), np.max(np.abs(x)))
        else:
            assert q.min() == x.min() and q.max() == x.max()
        assert Wq.shape == W.shape and bq.shape == b.shape


def test_quantize_layers_does_not_modify_its_input():
    before = [(W.copy(), b.copy()) for W, b in LAYERS]
    quantize_layers(LAYERS, 2, "asymm", "layer")
    assert all(np.array_equal(W, W0) and np.array_equal(b, b0) for (W, b), (W0, b0) in zip(LAYERS, before))


@pytest.mark.parametrize("kwargs, problem", [
    (dict(n_bits=1, scheme="symm"), "1 bits"),
    (dict(n_bits=0, scheme="asymm"), "0 bits"),
    (dict(n_bits=33), "33 bits"),
    (dict(n_bits=4.0), "4.0"),
    (dict(n_bits=4, scheme="log"), "unknown quantizer"),
    (dict(n_bits=4, scope="channel"), "unknown quantization scope"),
])
def test_quantize_layers_rejects_bad_settings(kwargs, problem):
    with pytest.raises(DpfmError, match=problem):
        quantize_layers(LAYERS, **kwargs)


def test_rejects_nan():
    with pytest.raises(DpfmError, match="NaN"):
        quantize_layers([(np.array([[np.nan]]), np.array([0.0]))], 4)
