"""golden.slots: the K-slot pass keeps exactly the entries the dense pass keeps.

In exact arithmetic (identity/ReLU nets, dyadic weights and inputs, so every product and sum is exact) the two
passes must agree bit for bit, also where ties are everywhere (inputs from {0, 1/2, 1}, weights from a few
values): that pins the tie rule, the id order of the candidates and the merging of an id held by two inputs.
With sigmoids only the order of float sums may differ: the kept entries must be the same.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from dpfm.golden import dither
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.net import NetSpec, check_train_layers, flatten, init_weights
from dpfm.golden.mlp import GoldenTrainer, _Plan
from dpfm.golden.slots import SlotPlan


@st.composite
def exact_cases(draw):
    # outputs and batch sizes are powers of two, so the loss slope 2e/n and the mean stay exact
    sizes = tuple(draw(st.lists(st.integers(1, 6), min_size=2, max_size=4))) + (draw(st.sampled_from([1, 2, 4])),)
    acts = tuple(draw(st.sampled_from(["identity", "relu"])) for _ in sizes[1:])
    spec = NetSpec(sizes, acts, "mse")
    replicas = draw(st.integers(1, 2))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    flat = rng.choice([-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0], size=(replicas, spec.n_params))
    batch = draw(st.sampled_from([1, 2, 4]))
    X = rng.choice([0.0, 0.5, 1.0], size=(batch, sizes[0]))
    Y = rng.choice([0.0, 1.0], size=(batch, sizes[-1]))
    k = draw(st.integers(1, 8))
    state = draw(st.sampled_from([dither.OFF, 0x2545F491, 0xDEADBEEF]))
    masks = None if state == dither.OFF else dither.layer_masks(state, sizes[1:], batch)[0]
    learn = draw(st.one_of(st.none(), st.sets(st.integers(0, spec.n_layers - 1), min_size=1)))
    train = check_train_layers(spec, learn)
    return spec, flat, X, Y, k, masks, train


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=exact_cases())
def test_slots_equal_dense_bit_for_bit_in_exact_arithmetic(case):
    spec, flat, X, Y, k, masks, train = case
    want_g, want_l = _Plan(spec, (k,) * len(flat), train_layers=train).gradients(flat, X, Y, masks=masks)
    got_g, got_l = SlotPlan(spec, k, train).gradients(flat, X, Y, masks=masks)
    np.testing.assert_array_equal(got_g, want_g)
    np.testing.assert_array_equal(got_l, want_l)


@pytest.mark.parametrize("sizes", [(64, 16, 10), (9, 7, 6, 5, 3), (30, 4, 4, 4, 2)])
@pytest.mark.parametrize("k", [1, 3, 8])
@pytest.mark.parametrize("dithered", [False, True])
def test_slots_keep_the_dense_entries_with_sigmoids(sizes, k, dithered):
    spec = NetSpec(sizes, ("sigmoid",) * (len(sizes) - 1), "mse")
    rng = np.random.default_rng(k)
    flat = np.stack([flatten(spec, init_weights(spec, rng, "kaiming")) for _ in range(2)])
    X = rng.random((6, sizes[0]))
    X[X < 0.4] = 0.0       # zero inputs are left out of the first layer's slot candidates
    X[X > 0.9] = 1.0       # saturated inputs tie
    Y = rng.random((6, sizes[-1]))
    masks = dither.layer_masks(0x9E3779B9, sizes[1:], 6)[0] if dithered else None
    want_g, want_l = _Plan(spec, (k, k)).gradients(flat, X, Y, masks=masks)
    got_g, got_l = SlotPlan(spec, k).gradients(flat, X, Y, masks=masks)
    np.testing.assert_array_equal(got_g != 0, want_g != 0)
    np.testing.assert_allclose(got_g, want_g, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(got_l, want_l)


def test_an_id_held_by_two_inputs_is_one_candidate_with_the_summed_value():
    """1-1-2-1, K=1: both hidden units of layer 1 keep the first weight (id 0, value 4 each), so the output
    sees id 0 from two inputs. Merged it is 8 and ties its own direct term a = 8 (id 6): the lower id wins.
    Two separate candidates of 4 would lose to id 6."""
    spec = NetSpec((1, 1, 2, 1), ("identity", "identity", "identity"), "mse")
    flat = np.array([[2.0, 0.0, 4.0, 0.0, 4.0, 0.0, 1.0, 1.0, 0.0]])
    X, Y = np.array([[1.0]]), np.array([[0.0]])
    want_g, _ = _Plan(spec, (1,)).gradients(flat, X, Y)
    got_g, _ = SlotPlan(spec, 1).gradients(flat, X, Y)
    np.testing.assert_array_equal(got_g, want_g)
    assert np.flatnonzero(got_g[0]).tolist() == [0] and got_g[0, 0] == 2 * 16 * 8


def test_trainer_layouts_train_alike_and_auto_follows_the_parameter_count():
    spec = NetSpec((12, 6, 5, 3), ("sigmoid", "tanh", "sigmoid"), "mse")
    rng = np.random.default_rng(0)
    X, Y = rng.random((40, 12)), rng.random((40, 3))
    runs = {}
    for layout in ("dense", "slots"):
        t = GoldenTrainer(spec, [2, 5, None], lr=0.5, batch=8, seed=3, dither=True, layout=layout)
        t.train(X, Y, 3, progress=False)
        runs[layout] = t._flat
    np.testing.assert_allclose(runs["slots"], runs["dense"], rtol=1e-9, atol=1e-12)
    from dpfm.golden.mlp import SLOTS_FROM_PARAMS, SlotPlan as Used
    small = GoldenTrainer(spec, [2, None], layout="auto")
    assert spec.n_params < SLOTS_FROM_PARAMS and not any(isinstance(p, Used) for _, p in small._passes.groups)
    big = NetSpec((SLOTS_FROM_PARAMS, 1, 1), ("sigmoid", "sigmoid"), "mse")
    auto = GoldenTrainer(big, [2, None], layout="auto")
    assert [type(p).__name__ for _, p in auto._passes.groups] == ["SlotPlan", "_Plan"]


@pytest.mark.parametrize("layout", ["dense", "slots"])
def test_large_batches_run_in_chunks_with_the_same_gradient(monkeypatch, layout):
    import dpfm.golden.mlp as mlp
    spec = NetSpec((10, 6, 4), ("sigmoid", "sigmoid"), "mse")
    rng = np.random.default_rng(1)
    X, Y = rng.random((23, 10)), rng.random((23, 4))
    whole = GoldenTrainer(spec, [3, None], lr=1.0, batch=23, seed=0, layout=layout, dither=True)
    whole.train(X, Y, 2, progress=False)
    # widest layer: 4 units x (66 earlier ids + 7 own) = 292 entries per sample and replica
    monkeypatch.setattr(mlp, "DENSE_BUDGET", (2 if layout == "dense" else 1) * 292 * 5)   # 5 samples per call
    monkeypatch.setattr(mlp, "SLOT_CHUNK", 5)
    chunked = GoldenTrainer(spec, [3, None], lr=1.0, batch=23, seed=0, layout=layout, dither=True)
    assert chunked._passes.dense_chunk == 5
    chunked.train(X, Y, 2, progress=False)
    np.testing.assert_allclose(chunked._flat, whole._flat, rtol=1e-12, atol=1e-15)


def test_unknown_layout_is_refused():
    with pytest.raises(DpfmError, match="unknown tangent layout 'sparse'"):
        GoldenTrainer(NetSpec((2, 2, 1), ("sigmoid", "identity"), "mse"), 1, layout="sparse")
