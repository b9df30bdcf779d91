"""Frozen layers (docs/ARITHMETIC.md 3e): a layer that does not learn forms no direct candidates, so its
weights never change and the K slots go to the layers that learn; in every golden pass alike."""

import numpy as np
import pytest

from dpfm.golden import dither
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import HwFormats
from dpfm.golden.contract.net import NetSpec, check_train_layers, flatten, init_weights, train_mask, unflatten
from dpfm.golden.mlp import GoldenTrainer, _Passes
from dpfm.golden.rule_trainer import RuleTrainer

SPEC = NetSpec((6, 5, 4, 3), ("sigmoid", "sigmoid", "sigmoid"), "mse")


def _data(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (n, 6)), rng.uniform(0, 1, (n, 3))


BACKENDS = [dict(layout="dense"), dict(layout="slots"), dict(fixed=HwFormats(), tangent="exact"),
            dict(fixed=HwFormats(), tangent="toper"), dict(fixed=HwFormats(), tangent="toper-parallel-2")]


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.get("tangent", b.get("layout")))
@pytest.mark.parametrize("train", [(2,), (1, 2), (0,), (0, 2)])
def test_frozen_layers_never_change_and_the_others_learn(backend, train):
    X, Y = _data()
    t = GoldenTrainer(SPEC, 3, lr=0.5, batch=5, seed=1, dither=True, train_layers=train, **backend)
    before = t.weights
    t.train(X, Y, 2, progress=False)
    for l, ((W0, b0), (W1, b1)) in enumerate(zip(before, t.weights)):
        changed = not (np.array_equal(W0, W1) and np.array_equal(b0, b1))
        assert changed == (l in train), f"layer {l}"


def test_full_gradient_of_the_learning_layers_is_the_exact_one():
    X, Y = _data(8)
    flat = flatten(SPEC, init_weights(SPEC, np.random.default_rng(2), "kaiming"))[None]
    full, _ = _Passes(SPEC, (None,), "dense").gradients(flat, X, Y)
    part, _ = _Passes(SPEC, (None,), "dense", train_layers=(1, 2)).gradients(flat, X, Y)
    first = SPEC.layer_base(1)
    assert not np.any(part[0, :first])
    np.testing.assert_allclose(part[0, first:], full[0, first:], rtol=1e-12)


@pytest.mark.parametrize("layout", ["dense", "slots"])
def test_the_slots_go_to_the_learning_layers(layout):
    """K=2, one sample, only the last layer learning: every output unit's two slots hold two of its own
    weights (sigmoid inputs are never 0), where an unfrozen net spends some of them on earlier layers."""
    X, Y = _data(1)
    flat = flatten(SPEC, init_weights(SPEC, np.random.default_rng(3), "kaiming"))[None]
    masks = dither.layer_masks(dither.seed_state(0), SPEC.sizes[1:], 1)[0]
    last = SPEC.layer_base(2)
    every, _ = _Passes(SPEC, (2,), layout).gradients(flat, X, Y, masks=masks)
    top, _ = _Passes(SPEC, (2,), layout, train_layers=(2,)).gradients(flat, X, Y, masks=masks)
    assert not np.any(top[0, :last]) and np.count_nonzero(top[0, last:]) == 3 * 2
    assert np.any(every[0, :last]) and np.count_nonzero(every[0, last:]) < 3 * 2


def test_slot_and_dense_passes_agree_with_frozen_layers():
    X, Y = _data(10)
    X[X < 0.3] = 0.0
    dense = GoldenTrainer(SPEC, [2, 4], lr=0.5, batch=5, seed=4, dither=True, train_layers=(0, 2), layout="dense")
    slots = GoldenTrainer(SPEC, [2, 4], lr=0.5, batch=5, seed=4, dither=True, train_layers=(0, 2), layout="slots")
    for t in (dense, slots):
        t.train(X, Y, 2, progress=False)
    for r in range(2):
        np.testing.assert_allclose(flatten(SPEC, dense.replica_weights(r)), flatten(SPEC, slots.replica_weights(r)),
                                   rtol=1e-12, atol=1e-15)


def test_rule_trainer_freezes_too():
    X, Y = _data()
    t = RuleTrainer(SPEC, "backprop", lr=0.5, batch=5, train_layers=(2,))
    before = t.weights
    t.train(X, Y, 1, progress=False)
    assert [np.array_equal(a[0], b[0]) for a, b in zip(before, t.weights)] == [True, True, False]


def test_checkpoint_keeps_the_layers_and_a_resume_may_change_them(tmp_path):
    X, Y = _data()
    t = GoldenTrainer(SPEC, 3, lr=0.5, batch=5, fixed=HwFormats(), tangent="toper", train_layers=(2,))
    t.train(X, Y, 1, progress=False)
    t.save(tmp_path / "ck.npz")
    assert GoldenTrainer.load(tmp_path / "ck.npz").train_layers == (2,)
    every = GoldenTrainer(SPEC, 3, lr=0.5, batch=5, fixed=HwFormats(), tangent="toper")
    every.resume(tmp_path / "ck.npz")
    assert every.train_layers is None
    np.testing.assert_array_equal(flatten(SPEC, every.weights), flatten(SPEC, t.weights))


def test_layer_lists():
    assert check_train_layers(SPEC, None) is None
    assert check_train_layers(SPEC, [0, 1, 2]) is None          # every layer: nothing frozen
    assert check_train_layers(SPEC, [2, 0]) == (0, 2)
    assert train_mask(SPEC, None) == 0b111 and train_mask(SPEC, (0, 2)) == 0b101
    for bad in ([], [3], [-1], [1, 1], ["x"]):
        with pytest.raises(DpfmError, match="not distinct layers of a 3-layer network"):
            check_train_layers(SPEC, bad)
