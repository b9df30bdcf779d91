"""The resident run's model (golden/resident.py, docs/ARITHMETIC.md 7): the shuffle generator, the order it
draws, the core's loss sum and one epoch of a fixed-point model."""

import itertools
from collections import Counter

import numpy as np
import pytest

from dpfm.golden import resident
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import Fmt, HwFormats
from dpfm.golden.contract.net import NetSpec, flatten, init_weights
from dpfm.golden.fixed_mlp import FixedModel


def test_the_generator_is_marsaglias_xorshift32():
    # Marsaglia (2003), "Xorshift RNGs": from y = 2463534242 the 13/17/5 generator gives 723471715 first.
    assert resident.step(2463534242) == 723471715
    assert resident.step(0) == 0


@pytest.mark.parametrize("bad", [0, -1, 1 << 32, True, 1.5, "7"])
def test_a_state_that_is_not_a_non_zero_32_bit_value_is_refused(bad):
    with pytest.raises(DpfmError, match="shuffle state"):
        resident.check_state(bad)


def test_seed_states_are_valid_and_differ():
    states = [resident.seed_state(seed) for seed in range(100)]
    assert all(resident.check_state(s) for s in states) and len(set(states)) == 100


@pytest.mark.parametrize("i, mask", [(0, 0), (1, 1), (2, 3), (3, 3), (4, 7), (255, 255), (256, 511), (65535, 65535)])
def test_the_index_mask_covers_zero_to_i(i, mask):
    assert resident.index_mask(i) == mask


@pytest.mark.parametrize("n", [1, 2, 3, 10, 23, 320, 1437])
def test_an_epoch_order_is_a_permutation(n):
    order, state = resident.epoch_order(resident.DEFAULT_STATE, n)
    assert sorted(order.tolist()) == list(range(n))
    assert state != resident.DEFAULT_STATE


def test_one_sample_takes_one_draw():
    order, state = resident.epoch_order(99, 1)
    assert order.tolist() == [0] and state == resident.step(99)


def test_the_inside_out_shuffle_reads_as_written():
    """A literal transcription of section 7, list by list and draw by draw."""
    def literal(state, n):
        a, s = [None] * n, state
        for i in range(n):
            while True:
                s = resident.step(s)
                r = (s >> 16) & ((1 << i.bit_length()) - 1)
                if r <= i:
                    break
            a[i] = a[r]
            a[r] = i
        return a, s

    for state, n in [(1, 5), (0xDEADBEEF, 17), (resident.seed_state(3), 64), (resident.seed_state(4), 100)]:
        order, after = resident.epoch_order(state, n)
        assert (order.tolist(), after) == literal(state, n)


def test_orders_are_close_to_uniform():
    """Every permutation of 3 samples, over 6000 consecutive epochs: each within 15% of 1000."""
    state, counts = 12345, Counter()
    for _ in range(6000):
        order, state = resident.epoch_order(state, 3)
        counts[tuple(order.tolist())] += 1
    assert set(counts) == set(itertools.permutations(range(3)))
    assert all(850 <= c <= 1150 for c in counts.values()), counts


@pytest.mark.parametrize("n", [0, (1 << 16) + 1])
def test_a_data_set_the_index_cannot_hold_is_refused(n):
    with pytest.raises(DpfmError, match="resident data set"):
        resident.epoch_order(1, n)


def test_the_loss_sum_squares_the_saturated_error():
    x = Fmt(16, 12)
    a = np.array([[x.max_raw, 0], [100, -5]])
    y = np.array([[x.min_raw, 3], [90, -5]])
    assert resident.loss_sum(a, y, x) == x.max_raw ** 2 + 9 + 100
    assert resident.mean_loss(4 << 24, 2, 2, x) == 1.0


def test_an_epoch_with_one_batch_is_one_step_on_the_shuffled_set():
    spec = NetSpec((4, 5, 1), ("sigmoid", "identity"), "mse")
    model = FixedModel(spec, 3, HwFormats(), tangent="toper")
    rng = np.random.default_rng(0)
    w = model.quantize_weights(flatten(spec, init_weights(spec, rng)))
    X = model.quantize_inputs(rng.random((7, 4)))
    Y = model.quantize_inputs(rng.random((7, 1)))
    w1, total, state = resident.train_epoch(model, w, X, Y, 77, batch=16, lr=0.1)
    order, after = resident.epoch_order(77, 7)
    G = model.batch_gradient(w, X[order], Y[order])
    assert np.array_equal(w1, model.sgd_update(w, G, model.lr_raw(0.1, 7)))
    assert total == resident.loss_sum(model.predict(w, X[order]), Y[order], model.fmts.x) and state == after


def _trainer(**kw):
    from dpfm.golden.mlp import GoldenTrainer
    from dpfm.golden.tasks import get_task
    task = get_task("seed-sum")
    kw = {"lr": 0.316, "batch": 10, "seed": 5, "fixed": HwFormats(), "tangent": "toper", "dither": True, **kw}
    return task, GoldenTrainer(task.spec, 4, **kw)


def test_a_trainers_resident_epochs_are_the_models_in_runs():
    """GoldenTrainer.train(resident=2) over 3 epochs: the model's epochs (golden.resident.train_epoch) one after
    another, the core's loss, validation only after each run (epochs 2 and 3)."""
    task, trainer = _trainer()
    X, Y, X_val, Y_val = task.load()
    X, Y = X[:33], Y[:33]
    model = FixedModel(task.spec, 4, HwFormats(), tangent="toper")
    model.dither_state = trainer.dither_state
    w, state = trainer._raw[0].copy(), trainer.shuffle_state
    Xr, Yr = model.quantize_inputs(X), model.quantize_inputs(Y)
    want = []
    for _ in range(3):
        w, total, state = resident.train_epoch(model, w, Xr, Yr, state, 10, 0.316)
        want.append(resident.mean_loss(total, 33, 1, model.fmts.x))
    got = trainer.train(X, Y, 3, X_val, Y_val, progress=False, resident=2)
    assert got["train_loss"] == want
    assert [v is None for v in got["val_loss"]] == [True, False, False]
    assert np.array_equal(trainer._raw[0], w) and trainer.shuffle_state == state
    assert trainer.dither_state == model.dither_state


def test_the_shuffle_state_survives_a_checkpoint(tmp_path):
    task, trainer = _trainer()
    X, Y, _, _ = task.load()
    trainer.train(X[:20], Y[:20], 1, progress=False, resident=1)
    trainer.save(tmp_path / "ck.npz")
    _, other = _trainer(seed=6)
    other.resume(tmp_path / "ck.npz")
    assert other.shuffle_state == trainer.shuffle_state != resident.seed_state(6)
    assert other.train(X[:20], Y[:20], 1, progress=False, resident=1) == \
        trainer.train(X[:20], Y[:20], 1, progress=False, resident=1)


@pytest.mark.parametrize("kw, resident_run, match", [
    ({"fixed": None, "tangent": "exact"}, 1, "fixed point and the MSE loss only"),
    ({}, -1, "number of epochs per run"), ({}, True, "number of epochs per run")])
def test_what_a_resident_run_cannot_do_is_refused(kw, resident_run, match):
    task, trainer = _trainer(**kw)
    X, Y, _, _ = task.load()
    with pytest.raises(DpfmError, match=match):
        trainer.train(X, Y, 1, progress=False, resident=resident_run)
    assert trainer.epoch == 0
