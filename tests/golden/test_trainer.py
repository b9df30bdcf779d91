"""golden.trainer: the epoch driver's per-epoch checkpoint, and the one checkpoint format refusing what it
does not hold (run on the golden backend; tests/host/test_device.py runs the device through the same)."""

import numpy as np
import pytest

from dpfm.golden.checkpoint import Checkpoint
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import HwFormats
from dpfm.golden.contract.net import NetSpec
from dpfm.golden.mlp import GoldenTrainer
from dpfm.golden.trainer import Trainer

SPEC = NetSpec((4, 5, 5, 1), ("sigmoid", "sigmoid", "identity"))
SETTINGS = {"float, momentum, two K": dict(k=[3, None], lr=0.02, batch=7, momentum=0.5, seed=8),
            "fixed point, toper": dict(k=4, lr=0.01, batch=10, fixed=HwFormats(), tangent="toper", seed=10),
            "float, dither, two K": dict(k=[2, 4], lr=0.1, batch=7, seed=8, dither=True),
            "fixed point, toper-parallel-2, dither": dict(k=3, lr=0.1, batch=10, fixed=HwFormats(),
                                                          tangent="toper-parallel-2", seed=10, dither=True)}


class Interrupted(Exception):
    pass


def interrupt_at(epoch):
    def on_epoch(e, train_loss, val_loss):
        if e == epoch:
            raise Interrupted
    return on_epoch


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_per_epoch_checkpoint_resumes_as_if_uninterrupted(tmp_path, seed_sum_data, name):
    """Training stopped during epoch 3 leaves the checkpoint of epoch 2; resuming it and training the
    remaining epochs gives the weights and history of an uninterrupted run."""
    X, Y, X_val, Y_val = seed_sum_data
    X, Y = X[:40], Y[:40]
    whole = GoldenTrainer(SPEC, **SETTINGS[name])
    whole.train(X, Y, 5, X_val, Y_val, progress=False)

    path = tmp_path / "ck.npz"
    stopped = GoldenTrainer(SPEC, **SETTINGS[name])
    stopped.extra = {"task": "seed-sum"}
    with pytest.raises(Interrupted):
        stopped.train(X, Y, 5, X_val, Y_val, progress=False, on_epoch=interrupt_at(3), checkpoint=path)
    assert not list(tmp_path.glob(".tmp-*"))

    resumed = GoldenTrainer(SPEC, **{**SETTINGS[name], "seed": 99})   # a different start, replaced by resume
    resumed.resume(path)
    assert (resumed.epoch, resumed.extra) == (2, {"task": "seed-sum"})
    resumed.train(X, Y, 3, X_val, Y_val, progress=False)
    assert np.array_equal(resumed._flat_weights(), whole._flat_weights())
    assert np.array_equal(resumed._velocity, whole._velocity)
    assert resumed.history == whole.history and resumed.epoch == 5
    assert resumed.dither_state == whole.dither_state


@pytest.mark.parametrize("other,match", [
    (dict(k=8), r"K=4, .*; this golden trains .* K=8, "),
    (dict(k=[4, 8]), "K=4,8"),
    (dict(k=4, spec=NetSpec((4, 3, 1), ("sigmoid", "identity"))), r"network \[4, 3, 1\]"),
    (dict(k=4, fixed=HwFormats(), tangent="exact"), "tangent exact"),
    (dict(k=4, fixed=HwFormats.parse("x=s16.10,g=s32.22")), "fixed x=s16.10"),
    (dict(k=4, fixed=None, tangent="exact"), "in float"),
    (dict(k=4, dither=True), "dither on"),
])
def test_resume_refuses_a_checkpoint_of_other_network_k_or_arithmetic(tmp_path, other, match):
    path = tmp_path / "ck.npz"
    GoldenTrainer(SPEC, 4, fixed=HwFormats(), tangent="toper", seed=1).save(path)
    kwargs = {"spec": SPEC, "fixed": HwFormats(), "tangent": "toper", "seed": 2, **other}
    trainer = GoldenTrainer(**kwargs)
    before = trainer._flat_weights().copy()
    with pytest.raises(DpfmError, match="not a golden checkpoint of this network, K and arithmetic") as err:
        trainer.resume(path)
    assert err.match(match)
    assert np.array_equal(trainer._flat_weights(), before) and trainer.epoch == 0


def test_resume_keeps_this_trainers_hyper_parameters(tmp_path):
    path = tmp_path / "ck.npz"
    GoldenTrainer(SPEC, 4, lr=0.01, batch=10, seed=1).save(path)
    trainer = GoldenTrainer(SPEC, 4, lr=0.05, batch=3, seed=2)
    trainer.resume(path)
    assert (trainer.lr, trainer.batch, trainer.seed) == (0.05, 3, 2)
    assert np.array_equal(trainer._flat, GoldenTrainer.load(path)._flat)
    with_momentum = GoldenTrainer(SPEC, 4, momentum=0.5, seed=2)   # a checkpoint without momentum: no velocity
    with_momentum.resume(path)
    assert np.array_equal(with_momentum._flat, trainer._flat) and not with_momentum._velocity.any()


@pytest.mark.parametrize("damage,match", [
    (lambda arrays: arrays.pop("weights_raw"), "incomplete or damaged"),
    (lambda arrays: arrays.update(weights=np.zeros((2, SPEC.n_params))), "'weights' has shape"),
])
def test_checkpoint_missing_or_misshapen_arrays_is_refused(tmp_path, damage, match):
    path = tmp_path / "ck.npz"
    GoldenTrainer(SPEC, 4, fixed=HwFormats(), tangent="toper").save(path)
    checkpoint = Checkpoint.read(path)
    damage(checkpoint.arrays)
    checkpoint.write(path)
    with pytest.raises(DpfmError, match=match):
        GoldenTrainer.load(path)


def test_the_epoch_driver_is_the_protocols():
    """The protocol is the only place the epoch loop, losses and checkpoints live: a backend supplies steps."""
    for name in ("train", "train_batch", "predict", "evaluate", "save", "resume"):
        assert getattr(GoldenTrainer, name) is getattr(Trainer, name), name
    with pytest.raises(TypeError):
        Trainer(SPEC, 4)


def test_dither_steps_once_per_neuron_of_every_training_sample_and_never_in_inference(seed_sum_data):
    """docs/ARITHMETIC.md 3d, in float and in fixed point: after 40 samples of an 11-neuron net the state has
    stepped 440 times from seed_state(seed); predict and evaluate leave it alone."""
    from dpfm.golden import dither
    X, Y, X_val, Y_val = seed_sum_data
    for settings in (dict(), dict(fixed=HwFormats(), tangent="toper")):
        trainer = GoldenTrainer(SPEC, [2, 4], lr=0.1, batch=10, seed=5, dither=True, **settings)
        assert trainer.dither_state == dither.seed_state(5)
        trainer.train(X[:40], Y[:40], 1, progress=False)
        trainer.predict(X_val)
        trainer.evaluate(X_val, Y_val)
        assert trainer.dither_state == dither.masks(dither.seed_state(5), 40 * 11)[1]


def test_dither_off_is_the_plain_contract_and_on_changes_small_k(seed_sum_data):
    """Off: state 0 and the weights of a trainer that never heard of dithering. On: other weights at K=2,
    the same at K >= P (nothing is pruned, so demotion cannot matter)."""
    X, Y, _, _ = seed_sum_data
    runs = {}
    for d in (False, True):
        trainer = GoldenTrainer(SPEC, [2, 1000], lr=0.1, batch=10, seed=3, dither=d)
        trainer.train(X[:60], Y[:60], 2, progress=False)
        runs[d] = trainer._flat_weights()
        assert (trainer.dither_state == 0) == (not d)
    assert not np.array_equal(runs[False][0], runs[True][0])
    assert np.allclose(runs[False][1], runs[True][1], rtol=0, atol=1e-12)
