"""The exact output-layer gradient (`GoldenTrainer(exact_last=True)`, the study's `demote-hw-el`): the output
layer's gradient is computed locally and exactly, and the tangent slots carry only the layers below."""

import numpy as np
import pytest

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import HwFormats
from dpfm.golden.contract.net import NetSpec, init_weights, flatten
from dpfm.golden.mlp import GoldenTrainer, _Plan, last_layer_gradient

NETS = [NetSpec((3, 4, 2), ("sigmoid", "identity"), "mse"),
        NetSpec((4, 5, 5, 1), ("sigmoid", "sigmoid", "sigmoid"), "mse"),
        NetSpec((5, 4, 3), ("relu", "sigmoid"), "bce")]


def data(spec, n=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, spec.n_inputs))
    return X, (rng.random((n, spec.n_outputs)) > 0.5).astype(float)


def flat_weights(spec, seed, replicas=2):
    rng = np.random.default_rng(seed)
    return np.stack([flatten(spec, init_weights(spec, rng)) for _ in range(replicas)])


@pytest.mark.parametrize("spec", NETS, ids=lambda s: "-".join(map(str, s.sizes)))
@pytest.mark.parametrize("seed", range(3))
def test_the_last_layers_gradient_is_the_full_gradients_last_block(spec, seed):
    flat = flat_weights(spec, seed)
    X, Y = data(spec, seed=seed)
    full, _ = _Plan(spec, (None, None)).gradients(flat, X, Y)
    base = spec.layer_base(spec.n_layers - 1)
    np.testing.assert_allclose(last_layer_gradient(spec, flat, X, Y), full[:, base:], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("spec", NETS, ids=lambda s: "-".join(map(str, s.sizes)))
def test_with_every_slot_it_is_the_full_gradient(spec):
    X, Y = data(spec)
    a = GoldenTrainer(spec, None, lr=0.3, batch=4, seed=2, exact_last=True)
    b = GoldenTrainer(spec, None, lr=0.3, batch=4, seed=2)
    for t in (a, b):
        t.train(X, Y, 3, progress=False)
    np.testing.assert_allclose(a._flat, b._flat, rtol=0, atol=1e-14)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_the_layers_below_get_what_a_frozen_output_layer_leaves_them(k):
    """Below the output layer the step is the one of a trainer whose output layer is frozen (3e: no direct
    candidates there, so the slots go to the layers below); the output layer moves by its exact gradient."""
    spec = NETS[1]
    X, Y = data(spec)
    top = spec.layer_base(spec.n_layers - 1)
    a = GoldenTrainer(spec, k, lr=0.3, batch=8, seed=4, exact_last=True, dither=True)
    frozen = GoldenTrainer(spec, k, lr=0.3, batch=8, seed=4, train_layers=(0, 1), dither=True)
    w0 = a._flat.copy()
    a.train_batch(X, Y)
    frozen.train_batch(X, Y)
    np.testing.assert_array_equal(a._flat[:, :top], frozen._flat[:, :top])
    np.testing.assert_allclose(a._flat[:, top:], w0[:, top:] - 0.3 * last_layer_gradient(spec, w0, X, Y),
                               rtol=0, atol=1e-15)
    assert a.dither_state == frozen.dither_state


def test_the_study_name_turns_on_the_dither_and_the_exact_last_layer():
    spec = NETS[0]
    X, Y = data(spec)
    a = GoldenTrainer(spec, [2, 3], lr=0.3, batch=4, seed=5, dither=True, exact_last=True)
    b = GoldenTrainer(spec, [2, 3], lr=[0.3, 0.3], batch=4, seed=5, selection="demote-hw-el", lr_rule="constant")
    for t in (a, b):
        t.train(X, Y, 3, progress=False)
    assert b.exact_last and b.dither
    np.testing.assert_array_equal(a._flat, b._flat)


def test_a_frozen_output_layer_stays_frozen():
    spec = NETS[1]
    X, Y = data(spec)
    t = GoldenTrainer(spec, 2, lr=0.3, batch=4, seed=1, exact_last=True, train_layers=(0,))
    top = spec.layer_base(spec.n_layers - 1)
    w0 = t._flat.copy()
    t.train(X, Y, 2, progress=False)
    assert t.exact_last and not t._exact_last
    np.testing.assert_array_equal(t._flat[:, spec.layer_base(1):], w0[:, spec.layer_base(1):])
    assert np.any(t._flat[:, :top] != w0[:, :top])


def test_fixed_point_follows_float():
    """The fixed-point model (3f) trains the output layer with its exact gradient too: with formats fine enough
    to leave rounding aside, the weights after a few steps are float's, within a few LSB."""
    spec = NETS[1]
    X, Y = data(spec)
    fine = HwFormats.parse("x=s20.16,w=s20.16,t=s20.16,g=s40.32,lut_bits=14")
    a = GoldenTrainer(spec, 2, lr=0.3, batch=4, seed=3, exact_last=True, dither=True)
    b = GoldenTrainer(spec, 2, lr=0.3, batch=4, seed=3, exact_last=True, dither=True, fixed=fine, tangent="toper")
    for t in (a, b):
        t.train(X, Y, 2, progress=False)
    assert b.exact_last and b._fixed_models[0].exact_last
    np.testing.assert_allclose(b._flat_weights(), a._flat, atol=2e-3)


def test_a_checkpoint_keeps_it_and_a_resume_must_match(tmp_path):
    spec = NETS[1]
    X, Y = data(spec)
    a = GoldenTrainer(spec, 2, lr=0.3, batch=4, seed=1, exact_last=True, dither=True)
    a.train(X, Y, 1, progress=False)
    a.save(tmp_path / "ck.npz")
    b = GoldenTrainer.load(tmp_path / "ck.npz")
    assert b.exact_last
    for t in (a, b):
        t.train(X, Y, 1, progress=False)
    np.testing.assert_array_equal(a._flat, b._flat)
    with pytest.raises(DpfmError, match="exact last layer on"):
        GoldenTrainer(spec, 2, lr=0.3, batch=4, seed=1, dither=True).resume(tmp_path / "ck.npz")
