"""The dither generator and hash (golden/dither.py, docs/ARITHMETIC.md section 3d)."""

import numpy as np
import pytest

from dpfm.golden import dither
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import HwFormats
from dpfm.golden.contract.net import NetSpec, flatten, init_weights
from dpfm.golden.fixed_mlp import FixedModel


def _apply(cols, v):
    out, i = 0, 0
    while v:
        if v & 1:
            out ^= cols[i]
        v >>= 1
        i += 1
    return out


def _power(cols, e):
    """The generator's step map (columns = images of the unit vectors) to the power e, over GF(2)."""
    result = [1 << i for i in range(dither.BITS)]
    while e:
        if e & 1:
            result = [_apply(cols, c) for c in result]
        cols = [_apply(cols, c) for c in cols]
        e >>= 1
    return result


def test_the_generator_has_the_maximal_period():
    """The step is linear over GF(2); its order is 2**32 - 1 exactly when A**(2**32-1) = I and no
    A**((2**32-1)/q) = I for the primes q of 2**32 - 1 = 3 * 5 * 17 * 257 * 65537."""
    cols = [dither.step(1 << i) for i in range(dither.BITS)]
    identity = [1 << i for i in range(dither.BITS)]
    n = 2**32 - 1
    assert _power(cols, n) == identity
    for q in (3, 5, 17, 257, 65537):
        assert _power(cols, n // q) != identity


def test_state_zero_is_off_and_stays_off():
    masks, state = dither.masks(dither.OFF, 5)
    assert state == 0 and masks.tolist() == [0] * 5
    assert not dither.demoted(dither.hash_bits(np.arange(1 << 15), 0)).any()
    assert not dither.demoted(dither.hash_bits(np.arange(1 << 15), 0), direct=True).any()


def test_direct_candidates_are_demoted_when_either_hash_bit_is_set():
    """Hashes 0b00, 0b01, 0b10, 0b11: an inherited entry is demoted only by 0b11, a direct one by all but 0b00;
    `flags` is that, as the 0/1 the topers carry."""
    h = np.arange(4)
    assert dither.demoted(h).tolist() == [False, False, False, True]
    assert dither.demoted(h, direct=True).tolist() == [False, True, True, True]
    mask = 0b1_000000000000101 << 16 | 0b0_000000000000011     # ids 0..5 hash to 0b10 0b01 0b11 0b00 0b00 0b11
    assert dither.flags(np.arange(6), mask).tolist() == [0, 0, 1, 0, 0, 1]
    assert dither.flags(np.arange(6), mask, direct=np.arange(6) >= 3).tolist() == [0, 0, 1, 0, 0, 1]
    assert dither.flags(np.arange(6), mask, direct=True).tolist() == [1, 1, 1, 0, 0, 1]


def test_masks_are_the_states_in_order():
    masks, state = dither.masks(0x80000001, 3)
    assert masks.tolist() == [0x80000001, dither.step(0x80000001), dither.step(dither.step(0x80000001))]
    assert state == dither.step(int(masks[-1]))


def test_hash_is_parity_of_the_masked_id_plus_the_offset_bit():
    mask = 0b1_000000000000101 << 16 | 0b0_000000000000011
    # h0 = parity(id & 0b11) ^ 0, h1 = parity(id & 0b101) ^ 1
    assert [int(dither.hash_bits(i, mask)) for i in range(6)] == [0b10, 0b01, 0b11, 0b00, 0b00, 0b11]


def test_a_quarter_of_the_entries_are_demoted_independently():
    """Over consecutive generator states, each id is demoted a quarter of the time, and two ids (or one id
    in two consecutive neurons) are demoted together a sixteenth of the time."""
    masks, _ = dither.masks(dither.seed_state(0), 20000)
    d = dither.demoted(dither.hash_bits(np.array([3, 17, 60])[:, None], masks[None, :]))
    assert np.allclose(d.mean(axis=1), 0.25, atol=0.015)
    assert abs(np.mean(d[0] & d[1]) - 1 / 16) < 0.01
    assert abs(np.mean(d[1, 1:] & d[1, :-1]) - 1 / 16) < 0.01


def test_three_quarters_of_the_direct_entries_are_demoted_independently():
    masks, _ = dither.masks(dither.seed_state(1), 20000)
    d = dither.demoted(dither.hash_bits(np.array([3, 17, 60])[:, None], masks[None, :]), direct=True)
    assert np.allclose(d.mean(axis=1), 0.75, atol=0.015)
    assert abs(np.mean(d[0] & d[1]) - 9 / 16) < 0.015


@pytest.mark.parametrize("bad", [-1, 2**32, 1.5, True, "7"])
def test_a_bad_state_is_refused(bad):
    with pytest.raises(DpfmError, match="dither state"):
        dither.check_state(bad)


def test_seed_states_are_non_zero_and_differ():
    states = {dither.seed_state(s) for s in range(100)}
    assert len(states) == 100 and 0 not in states


def test_dither_changes_which_entries_the_hardware_model_keeps():
    """The same batch at K = 2 with the dither off and on: the gradients differ, and with it on the state
    steps once per neuron of every sample (a test that would pass with the hashes ignored cannot)."""
    spec = NetSpec((4, 5, 5, 1), ("sigmoid", "sigmoid", "identity"))
    rng = np.random.default_rng(0)
    flat = flatten(spec, init_weights(spec, rng, "glorot"))
    X, Y = rng.uniform(0, 1, (8, 4)), rng.uniform(0, 2, (8, 1))
    grads = []
    for state in (dither.OFF, dither.seed_state(0)):
        m = FixedModel(spec, 2, HwFormats(), "toper")
        m.dither_state = state
        grads.append(m.batch_gradient(m.quantize_weights(flat), m.quantize_inputs(X), m.quantize_inputs(Y)))
        assert m.dither_state == dither.masks(state, 8 * 11)[1]
    assert grads[0].tolist() != grads[1].tolist()


@pytest.mark.parametrize("n", [0, 1, 2, 31, 32, 33, 1000, 4097])
def test_advance_jumps_as_many_steps(n):
    state = 0x2545F491
    want = state
    for _ in range(n):
        want = dither.step(want)
    assert dither.advance(state, n) == want
    assert dither.advance(dither.OFF, n) == dither.OFF
