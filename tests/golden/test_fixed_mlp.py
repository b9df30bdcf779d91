"""The fixed-point trainer core: hardware-exact (toper) and exact top-K modes (docs/ARITHMETIC.md 3, 5, 6)."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from dpfm.golden import dither, dual
from dpfm.golden.activation import activation_luts, activation_slots, lut_index
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import Fmt, HwFormats
from dpfm.golden.contract.net import NetSpec, flatten, init_weights
from dpfm.golden.contract.organisation import parallel_sources
from dpfm.golden.fixed_mlp import FixedModel, _accumulate, _prune
from dpfm.golden.fixedpoint import SatCounter, quantize
from dpfm.golden.mac_lane import MacLaneModel
from dpfm.golden.parallel_lane import ParallelMacLaneModel
from dpfm.golden.toper import EMPTY_ID
from dpfm.golden.update import accumulate_output_gradient, direct_slots

# Narrow formats in which candidates, merges, z, deltas and G all saturate now and then.
NARROW = HwFormats(x=Fmt(10, 6), w=Fmt(10, 6), t=Fmt(9, 6), g=Fmt(14, 12), lr=Fmt(12, 14, signed=False),
                   lut_bits=8)


def literal_batch_gradient(spec, fmts, k, w_raw, X_raw, Y_raw, mode="toper", state=dither.OFF, exact_last=False):
    """Section 3 read literally: one lane model (`MacLaneModel`, or in the toper-parallel modes the
    `ParallelMacLaneModel` of section 3b), the activation model and the gradient unit's model, neuron after
    neuron, sample after sample, each neuron with the next dither mask from `state` (section 3d). With
    `exact_last` (3f) the output layer's lanes form no direct candidates and the gradient unit adds the
    neurons' `direct_slots` after their own."""
    sat = SatCounter()
    lane = (MacLaneModel(k, fmts, sat) if mode == "toper"
            else ParallelMacLaneModel(k, fmts, sat, parallel_sources(mode, k)))
    c = quantize(2.0 / spec.n_outputs, fmts.x)
    G = [0] * spec.n_params
    for x_row, y_row in zip(X_raw.tolist(), Y_raw.tolist()):
        a, slots = x_row, [[] for _ in x_row]
        last = spec.n_layers - 1
        for layer, act in enumerate(spec.activations):
            n_out, n_in = spec.layer_shape(layer)
            ids = spec.weight_ids(layer)
            inputs = list(zip(a, slots)) + [(1 << fmts.x.frac, [])]   # the bias step last
            out_a, out_slots, zs = [], [], []
            for u in range(n_out):
                steps = [(int(w_raw[ids[u, i]]), int(ids[u, i]), x, xs) for i, (x, xs) in enumerate(inputs)]
                z, z_slots = lane.neuron(steps, state, frozen=exact_last and layer == last)
                state = dither.step(state)
                av, s = activation_slots(z, z_slots, act, fmts, sat)
                out_a.append(av)
                out_slots.append(s)
                zs.append(z)
            layer_inputs = a
            a, slots = out_a, out_slots
        for o, y in enumerate(y_row):
            extra = []
            if exact_last:
                act = spec.activations[last]
                d = None if act == "identity" else int(activation_luts(act, fmts)[1][lut_index(zs[o], fmts)])
                extra = direct_slots(d, layer_inputs, int(spec.weight_ids(last)[o, 0]), fmts, sat)
            accumulate_output_gradient(G, a[o], y, slots[o] + extra, c, fmts, sat)
    return np.array(G), sat.count, lane.evictions


def random_case(spec, fmts, seed, batch=4, scale=1.0):
    rng = np.random.default_rng(seed)
    flat = flatten(spec, init_weights(spec, rng, "kaiming")) * scale
    m = FixedModel(spec, 3, fmts)
    X = rng.uniform(-2, 2, (batch, spec.n_inputs))
    Y = rng.uniform(-1, 1, (batch, spec.n_outputs))
    return m.quantize_weights(flat), m.quantize_inputs(X), m.quantize_inputs(Y)


CASES = [
    (NetSpec((3, 4, 2), ("sigmoid", "identity")), 3),
    (NetSpec((2, 3, 3, 2), ("tanh", "relu", "sigmoid")), 2),
    (NetSpec((4, 5, 5, 1), ("sigmoid", "sigmoid", "identity")), 8),
    (NetSpec((3, 2, 4, 3), ("identity", "tanh", "identity")), 5),
]


@pytest.mark.parametrize("mode", ["toper", "toper-parallel", "toper-parallel-2", "toper-parallel-3"])
@pytest.mark.parametrize("fmts", [HwFormats(), NARROW], ids=["default", "narrow"])
@pytest.mark.parametrize("spec, k", CASES)
@pytest.mark.parametrize("state", [dither.OFF, 0x9E3779B9], ids=["plain", "dither"])
@pytest.mark.parametrize("exact_last", [False, True], ids=["slots", "exact-last"])
def test_toper_mode_equals_literal_section_3(spec, k, fmts, mode, state, exact_last):
    """The vectorized hardware-exact models equal the per-neuron reading of the contract bit for bit:
    gradient, saturation count, evictions and the dither state after the batch (the narrow formats exercise
    every saturation point), with the output layer in the slots or exact (3f)."""
    total_sat = 0
    for seed in range(6):
        w, X, Y = random_case(spec, fmts, seed, scale=6.0 if fmts is NARROW else 1.0)
        m = FixedModel(spec, k, fmts, mode, exact_last=exact_last)
        m.dither_state = state
        G = m.batch_gradient(w, X, Y)
        G_ref, sat_ref, ev_ref = literal_batch_gradient(spec, fmts, k, w, X, Y, mode, state, exact_last)
        assert G.tolist() == G_ref.tolist()
        assert m.sat.count == sat_ref
        assert m.evictions == ev_ref
        assert m.dither_state == dither.masks(state, len(X) * sum(spec.sizes[1:]))[1]
        total_sat += sat_ref
    if fmts is NARROW:
        assert total_sat > 0


@pytest.mark.parametrize("act", ["sigmoid", "tanh", "relu", "identity"])
def test_toper_equals_exact_when_nothing_is_pruned(act):
    """Single layer, K >= n_in + 1: only direct candidates, all distinct, none dropped."""
    spec = NetSpec((4, 3), (act,))
    for seed in range(5):
        w, X, Y = random_case(spec, HwFormats(), seed, batch=7)
        hw, ex = FixedModel(spec, 5, tangent="toper"), FixedModel(spec, 5, tangent="exact")
        assert hw.batch_gradient(w, X, Y).tolist() == ex.batch_gradient(w, X, Y).tolist()
        assert hw.sat.count == ex.sat.count
        assert hw.evictions == ex.evictions == 0


def test_toper_prunes_when_k_is_small():
    spec = NetSpec((4, 3), ("sigmoid",))
    w, X, Y = random_case(spec, HwFormats(), 0, batch=2)
    m = FixedModel(spec, 2, tangent="toper")
    m.batch_gradient(w, X, Y)
    assert m.evictions == 2 * 3 * (5 - 2)  # 5 direct candidates per neuron, 2 cells


# --- exact mode against float forward mode ----------------------------------------------------------------

def float_gradient(spec, flat, X, Y):
    """Sum over samples of golden.dual's exact (K = full) forward-mode gradient."""
    G = np.zeros(spec.n_params)
    for x, y in zip(X, Y):
        for i, v in dual.network_loss(spec, flat, x, y, None).tangent.items():
            G[i] += v
    return G


@pytest.mark.parametrize("spec, atol", [
    (NetSpec((3, 4, 2), ("identity", "identity")), 2.0 ** -9),          # rounding only: 8 x LSBs over 5 samples
    (NetSpec((2, 3, 3, 2), ("identity", "identity", "identity")), 2.0 ** -9),
    (NetSpec((3, 4, 2), ("sigmoid", "identity")), 0.02),                 # + LUT bin error
    (NetSpec((2, 3, 3, 1), ("tanh", "sigmoid", "identity")), 0.02),
    (NetSpec((3, 3, 2), ("tanh", "sigmoid"), loss="bce"), 0.02),
])
def test_exact_full_mode_matches_float_forward_mode(spec, atol):
    rng = np.random.default_rng(1)
    flat = flatten(spec, init_weights(spec, rng, "kaiming"))
    X = rng.uniform(-1, 1, (5, spec.n_inputs))
    Y = rng.uniform(0, 1, (5, spec.n_outputs))
    m = FixedModel(spec, None, tangent="exact")
    G = m.batch_gradient(m.quantize_weights(flat), m.quantize_inputs(X), m.quantize_inputs(Y))
    ref = float_gradient(spec, m.quantize_weights(flat) / 4096, m.quantize_inputs(X) / 4096,
                         m.quantize_inputs(Y) / 4096)
    assert np.max(np.abs(G / 2.0 ** 24 - ref)) <= atol
    assert np.max(np.abs(ref)) > 10 * atol  # the comparison is not vacuous


def test_exact_mode_with_k_at_least_p_equals_full():
    spec = NetSpec((3, 4, 2), ("tanh", "sigmoid"))
    w, X, Y = random_case(spec, HwFormats(), 3)
    full = FixedModel(spec, None).batch_gradient(w, X, Y)
    assert FixedModel(spec, spec.n_params).batch_gradient(w, X, Y).tolist() == full.tolist()
    pruned = FixedModel(spec, 2)
    G = pruned.batch_gradient(w, X, Y)
    assert G.tolist() != full.tolist() and pruned.evictions > 0


@pytest.mark.parametrize("k", [1, 2, 4])
def test_exact_mode_single_layer_keeps_the_top_k_of_the_full_tangent(k):
    """One identity layer: each output's full tangent is its direct terms; with K it is their top K."""
    spec = NetSpec((5, 3), ("identity",))
    w, X, _ = random_case(spec, HwFormats(), 4, batch=6)
    _, full_v, _ = FixedModel(spec, None).output_tangents(w, X)
    _, v, ids = FixedModel(spec, k).output_tangents(w, X)
    for b in range(6):
        for o in range(3):
            nz = [(int(full_v[b, o, i]), i) for i in range(spec.n_params) if full_v[b, o, i]]
            top = sorted(nz, key=lambda e: (-abs(e[0]), e[1]))[:k]
            got = [(int(x), int(i)) for x, i in zip(v[b, o], ids[b, o]) if i != EMPTY_ID]
            assert sorted(got, key=lambda e: e[1]) == sorted(top, key=lambda e: e[1])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-20, 20), min_size=1, max_size=12), st.integers(1, 12),
       st.integers(0, 2**32 - 1), st.integers(0, 12))
def test_prune_keeps_k_highest_by_order_key(values, k, mask, base):
    """Exact mode's prune_K ranks by (not demoted, |v|, lower id) with each id's flag under the mask (ids from
    `base` on direct; mask 0: nothing demoted, the plain order key)."""
    T = np.array([values], dtype=np.int64)
    ids = np.arange(len(values))
    flags = dither.flags(ids, mask, direct=ids >= base)
    got, dropped = _prune(T, k, flags, 16)
    ranked = sorted(((v, i) for i, v in enumerate(values) if v != 0),
                    key=lambda e: (bool(flags[e[1]]), -abs(e[0]), e[1]))
    expect = np.zeros(len(values), dtype=np.int64)
    for v, i in ranked[:k]:
        expect[i] = v
    assert got[0].tolist() == expect.tolist()
    assert dropped == max(0, len(ranked) - k)


# --- batch semantics, loss, accumulation, SGD ---------------------------------------------------------------

@pytest.mark.parametrize("mode", ["exact", "toper"])
def test_batch_gradient_is_the_sum_of_sample_gradients(mode):
    spec = NetSpec((4, 5, 5, 1), ("sigmoid", "sigmoid", "identity"))
    w, X, Y = random_case(spec, HwFormats(), 5, batch=6)
    m = FixedModel(spec, 4, tangent=mode)
    G = m.batch_gradient(w, X, Y)
    parts = sum(m.batch_gradient(w, X[i:i + 1], Y[i:i + 1]) for i in range(6))
    assert G.tolist() == parts.tolist()


@pytest.mark.parametrize("mode", ["exact", "toper"])
def test_deterministic(mode):
    spec = NetSpec((3, 4, 2), ("tanh", "sigmoid"))
    w, X, Y = random_case(spec, NARROW, 6, scale=3.0)
    runs = []
    for _ in range(2):
        m = FixedModel(spec, 3, NARROW, mode)
        G = m.batch_gradient(w, X, Y)
        runs.append((G.tolist(), m.predict(w, X).tolist(), m.sat.count, m.evictions))
    assert runs[0] == runs[1]


def test_accumulate_saturates_in_order():
    g, sat = Fmt(8, 0), SatCounter()
    G = np.zeros(3, dtype=np.int64)
    _accumulate(G, np.array([0, 0, 0, 2]), np.array([100, 100, -100, 5]), g, sat)
    assert G.tolist() == [27, 0, 5]   # 100, 200 -> 127 (clamped), 27; not 100
    assert sat.count == 1
    _accumulate(G, np.array([1, 1]), np.array([-127, 120]), g, sat)
    assert G.tolist() == [27, -7, 5] and sat.count == 1


def test_mse_delta_and_gradient_by_hand():
    """identity 1->1 net: a = w x + b; G = delta * a' with delta = round(c * (a - y)), c = 2."""
    spec = NetSpec((1, 1), ("identity",))
    m = FixedModel(spec, 2, tangent="toper")
    w = np.array([2048, 1024])            # w = 0.5, b = 0.25
    X, Y = np.array([[4096]]), np.array([[0]])   # x = 1 -> a = 0.75, e = 0.75, delta = 1.5
    G = m.batch_gradient(w, X, Y)
    assert G.tolist() == [6144 * 4096, 6144 * 4096]   # delta * 1.0 for both, frac 24


def test_sgd_update_rounds_half_up_and_saturates():
    spec = NetSpec((1, 1), ("identity",))
    m = FixedModel(spec, 1)
    lr = 1 << (m.fmts.lr.frac - 1)             # 0.5
    # step = 0.5 * G; G = 3 LSB of w (3 << 12 at frac 24) -> 1.5 LSB -> 2; G = -3 LSB -> -1.5 -> -1
    w = m.sgd_update(np.array([0, 0]), np.array([3 << 12, -3 << 12]), lr)
    assert w.tolist() == [-2, 1]
    w = m.sgd_update(np.array([-32700, 5]), np.array([1 << 24, 0]), lr)   # -7.98 - 0.5 -> clamps
    assert w.tolist() == [-32767, 5] and m.sat.count == 1


def test_lr_raw():
    m = FixedModel(NetSpec((1, 1), ("identity",)), 1)
    assert m.lr_raw(0.01, 10) == 8      # 0.001 * 2**13 = 8.192
    assert m.lr_raw(64.0, 10) == 52429  # 6.4 * 2**13 = 52428.8, the largest rate of digits' grid
    for lr, batch in [(1e-9, 10), (0.5, 0), (-0.1, 1), (float("nan"), 1), (8.0, 1)]:
        with pytest.raises(DpfmError):
            m.lr_raw(lr, batch)


def test_predict_matches_primal_of_gradient_pass_and_does_not_count():
    spec = NetSpec((3, 4, 2), ("relu", "tanh"))
    w, X, _ = random_case(spec, HwFormats(), 7)
    m = FixedModel(spec, 3, tangent="toper")
    p = m.predict(w, X)
    a, _, _ = m.output_tangents(w, X)
    assert p.tolist() == a.tolist()
    assert m.predict(w, X).dtype == np.int64 and p.shape == (4, 2)


@pytest.mark.parametrize("kwargs, problem", [
    (dict(k=None, tangent="toper"), "finite K"),
    (dict(k=0), "positive integer"),
    (dict(k=True), "positive integer"),
    (dict(k=4, tangent="fast"), "unknown tangent mode"),
    (dict(k=4, fmts=HwFormats(x=Fmt(3, 2), t=Fmt(16, 12), g=Fmt(32, 14), lut_bits=5)), "bias input"),
    (dict(k=4, fmts=HwFormats(x=Fmt(40, 20), t=Fmt(40, 20), g=Fmt(60, 40))), "64-bit"),
    (dict(k=8, tangent="toper", fmts=HwFormats(t=Fmt(28, 12), g=Fmt(40, 24))), "toper key"),
])
def test_constructor_errors(kwargs, problem):
    with pytest.raises(DpfmError, match=problem):
        FixedModel(NetSpec((2, 2), ("sigmoid",)), **kwargs)


def test_toper_mode_rejects_bce():
    with pytest.raises(DpfmError, match="MSE only"):
        FixedModel(NetSpec((2, 1), ("sigmoid",), loss="bce"), 4, tangent="toper")


def test_shape_errors():
    m = FixedModel(NetSpec((2, 1), ("sigmoid",)), 4)
    with pytest.raises(DpfmError, match="raw weights"):
        m.predict(np.zeros(4, dtype=np.int64), np.zeros((1, 2), dtype=np.int64))
    with pytest.raises(DpfmError, match="inputs have shape"):
        m.predict(np.zeros(3, dtype=np.int64), np.zeros((1, 3), dtype=np.int64))
    with pytest.raises(DpfmError, match="targets have shape"):
        m.batch_gradient(np.zeros(3, dtype=np.int64), np.zeros((2, 2), dtype=np.int64),
                         np.zeros((2, 2), dtype=np.int64))
    with pytest.raises(DpfmError, match="NaN"):
        m.quantize_inputs([[np.nan, 0.0]])


@pytest.mark.parametrize("spec, k, mode", [(spec, k, mode) for spec, k in CASES
                                            for mode in ("exact", "toper", "toper-parallel", "toper-parallel-2")]
                         + [(NetSpec((3, 3, 2), ("tanh", "sigmoid"), loss="bce"), 2, "exact")])
def test_an_exact_output_layer_gets_the_full_gradients_block(spec, k, mode):
    """Section 3f: the output layer's G entries are those of exact forward mode (K = full), in every
    tangent mode (BCE: exact mode only, as the hardware computes MSE)."""
    w, X, Y = random_case(spec, HwFormats(), 7)
    last = spec.layer_base(spec.n_layers - 1)
    full = FixedModel(spec, None).batch_gradient(w, X, Y)
    G = FixedModel(spec, k, tangent=mode, exact_last=True).batch_gradient(w, X, Y)
    assert G[last:].tolist() == full[last:].tolist()
    assert np.any(full[last:] != 0)


def test_exact_full_mode_is_the_same_with_an_exact_output_layer():
    """With every entry kept, the output layer's direct terms reach G the same way through either path,
    saturations included."""
    spec = NetSpec((2, 3, 3, 2), ("tanh", "relu", "sigmoid"))
    for seed in range(4):
        w, X, Y = random_case(spec, NARROW, seed, scale=6.0)
        a, b = FixedModel(spec, None, NARROW), FixedModel(spec, None, NARROW, exact_last=True)
        assert a.batch_gradient(w, X, Y).tolist() == b.batch_gradient(w, X, Y).tolist()
        assert a.sat.count == b.sat.count


def test_a_frozen_output_layer_has_no_exact_gradient():
    spec = NetSpec((3, 4, 2), ("sigmoid", "identity"))
    w, X, Y = random_case(spec, HwFormats(), 2)
    m = FixedModel(spec, 2, tangent="toper", train_layers=(0,), exact_last=True)
    assert not m.exact_last
    G = m.batch_gradient(w, X, Y)
    assert not np.any(G[spec.layer_base(1):]) and np.any(G[:spec.layer_base(1)])
