"""golden.mlp: the vectorized trainer equals the Dual definition, true gradients in full mode, checkpoints."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import HwFormats
from dpfm.golden.contract.net import NetSpec, flatten, init_weights
from dpfm.golden.dual import network_loss, prune
from dpfm.golden.mlp import GoldenTrainer, prune_rows


def dual_batch_gradient(spec, flat, X, Y, k):
    """Reference: the mean over the batch of each sample's Dual loss tangent (a P-vector)."""
    g = np.zeros(spec.n_params)
    for x, y in zip(X, Y):
        for i, v in network_loss(spec, flat, x, y, k).tangent.items():
            g[i] += v
    return g / len(X)


def trainer_gradient(trainer, X, Y):
    """The gradient a trainer applies, per replica: with lr = 1 and no momentum, w_before - w_after."""
    before = trainer._flat.copy()
    trainer.train_batch(X, Y)
    return before - trainer._flat


# -- prune_rows == dual.prune ------------------------------------------------------------------------------
@pytest.mark.parametrize("ks", [[3], [1, 2, 5, 7], [4, 9, 2], [10, 1]])
def test_prune_rows_equals_scalar_prune_with_many_ties(ks):
    """Values from a small set, so ties at the threshold are everywhere (both the uniform-K partition path
    and the mixed-K sort path, contiguous and non-contiguous active replicas)."""
    rng = np.random.default_rng(7)
    T = rng.choice([-2.0, -1.0, 0.0, 0.0, 1.0, 2.0, 0.5], size=(len(ks), 6, 3, 9))
    got = T.copy()
    prune_rows(got, ks)
    for r, k in enumerate(ks):
        for idx in np.ndindex(T.shape[1:-1]):
            want = prune(dict(enumerate(T[(r,) + idx].tolist())), k)
            row = got[(r,) + idx]
            assert {i: v for i, v in enumerate(row.tolist()) if v != 0} == want


def test_prune_rows_named_tie_case():
    row = np.array([[0.5, 1.0, -1.0, 1.0, -1.0, 0.0]])
    prune_rows(row, [2])
    assert row.tolist() == [[0.0, 1.0, -1.0, 0.0, 0.0, 0.0]]


# -- vectorized trainer == Dual reference ------------------------------------------------------------------
@st.composite
def nets(draw):
    sizes = tuple(draw(st.lists(st.integers(1, 5), min_size=2, max_size=4)))
    loss = draw(st.sampled_from(["mse", "bce"]))
    acts = [draw(st.sampled_from(["sigmoid", "tanh", "relu", "identity"])) for _ in sizes[1:]]
    if loss == "bce":
        acts[-1] = "sigmoid"
    return NetSpec(sizes, tuple(acts), loss)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=nets(), ks=st.lists(st.one_of(st.none(), st.integers(1, 12)), min_size=1, max_size=3, unique=True),
       batch=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_vectorized_gradient_equals_dual_reference(spec, ks, batch, seed):
    rng = np.random.default_rng(seed)
    trainer = GoldenTrainer(spec, ks, lr=1.0, batch=batch, init="kaiming", seed=seed)
    flat = trainer._flat[0].copy()
    X = rng.normal(size=(batch, spec.n_inputs))
    Y = rng.uniform(size=(batch, spec.n_outputs))
    got = trainer_gradient(trainer, X, Y)
    for r, k in enumerate(ks):
        np.testing.assert_allclose(got[r], dual_batch_gradient(spec, flat, X, Y, k), rtol=0, atol=1e-9)


def test_loss_reported_by_a_step_equals_dual_loss():
    spec = NetSpec((3, 4, 2), ("tanh", "sigmoid"), "bce")
    trainer = GoldenTrainer(spec, 4, lr=0.1, seed=1)
    flat = trainer._flat[0].copy()
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(5, 3)), (rng.uniform(size=(5, 2)) > 0.5).astype(float)
    want = np.mean([network_loss(spec, flat, x, y, 4).value for x, y in zip(X, Y)])
    assert trainer.train_batch(X, Y) == pytest.approx(want, abs=1e-12)


# -- full mode is the true gradient ------------------------------------------------------------------------
def test_full_mode_gradient_matches_central_differences():
    spec = NetSpec((3, 4, 2), ("sigmoid", "identity"))
    rng = np.random.default_rng(2)
    X, Y = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    trainer = GoldenTrainer(spec, None, lr=1.0, seed=2)
    flat = trainer._flat[0].copy()
    grad = trainer_gradient(trainer, X, Y)[0]
    probe = GoldenTrainer(spec, None)
    h = 1e-6
    for i in range(spec.n_params):
        losses = []
        for d in (h, -h):
            w = flat.copy()
            w[i] += d
            probe._flat[0] = w
            losses.append(probe.evaluate(X, Y))
        assert grad[i] == pytest.approx((losses[0] - losses[1]) / (2 * h), rel=1e-6, abs=1e-9)


@pytest.mark.slow   # importing PyTorch alone takes seconds
def test_full_mode_training_equals_pytorch_backprop(seed_sum_data):
    """Exact forward mode and reverse mode compute the same gradient: same init, same batches, same
    weights after 60 SGD steps (float64), to rounding."""
    torch = pytest.importorskip("torch")
    X, Y, _, _ = seed_sum_data
    spec = NetSpec((4, 5, 5, 1), ("sigmoid", "sigmoid", "identity"))
    trainer = GoldenTrainer(spec, None, lr=0.05, seed=3)
    layers = trainer.weights
    net = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Sigmoid(), torch.nn.Linear(5, 5), torch.nn.Sigmoid(),
                              torch.nn.Linear(5, 1)).double()
    linears = [net[0], net[2], net[4]]
    with torch.no_grad():
        for lin, (W, b) in zip(linears, layers):
            lin.weight.copy_(torch.from_numpy(W))
            lin.bias.copy_(torch.from_numpy(b))
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    rng = np.random.default_rng(0)
    for _ in range(60):
        idx = rng.choice(len(X), 10, replace=False)
        trainer.train_batch(X[idx], Y[idx])
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(torch.from_numpy(X[idx])), torch.from_numpy(Y[idx])).backward()
        opt.step()
    for lin, (W, b) in zip(linears, trainer.weights):
        np.testing.assert_allclose(W, lin.weight.detach().numpy(), rtol=0, atol=1e-12)
        np.testing.assert_allclose(b, lin.bias.detach().numpy(), rtol=0, atol=1e-12)


# -- K >= P is full mode; replicas are independent --------------------------------------------------------
def test_top_k_with_k_at_least_p_equals_full_mode(seed_sum_data):
    X, Y, _, _ = seed_sum_data
    spec = NetSpec((4, 5, 5, 1), ("sigmoid", "sigmoid", "identity"))
    P = spec.n_params
    trainer = GoldenTrainer(spec, [P, P + 7, None], seed=4)
    trainer.train(X[:60], Y[:60], 3, progress=False)
    assert np.array_equal(trainer._flat[0], trainer._flat[2])
    assert np.array_equal(trainer._flat[1], trainer._flat[2])


def test_replicas_train_like_separate_trainers(seed_sum_data):
    X, Y, X_val, Y_val = seed_sum_data
    spec = NetSpec((4, 5, 5, 1), ("sigmoid", "sigmoid", "identity"))
    ks = [2, 8, None]
    joint = GoldenTrainer(spec, ks, seed=5)
    hist = joint.train(X[:80], Y[:80], 4, X_val, Y_val, progress=False)
    for r, k in enumerate(ks):
        alone = GoldenTrainer(spec, k, seed=5)
        h = alone.train(X[:80], Y[:80], 4, X_val, Y_val, progress=False)
        np.testing.assert_allclose(joint._flat[r], alone._flat[0], rtol=0, atol=1e-13)
        np.testing.assert_allclose([v[r] for v in hist["val_loss"]], h["val_loss"], rtol=1e-12)


# -- momentum ---------------------------------------------------------------------------------------------
def test_momentum_follows_keras_sgd():
    """velocity = m * velocity - lr * g; w += velocity (Keras / PyTorch-equivalent for constant lr)."""
    spec = NetSpec((2, 3, 1), ("tanh", "identity"))
    rng = np.random.default_rng(6)
    X, Y = rng.normal(size=(4, 2)), rng.normal(size=(4, 1))
    lr, m = 0.1, 0.9
    trainer = GoldenTrainer(spec, 3, lr=lr, momentum=m, seed=6)
    w0 = trainer._flat[0].copy()
    probe = GoldenTrainer(spec, 3, lr=1.0, seed=6)

    def grad(w):
        probe._flat[0] = w
        return trainer_gradient(probe, X, Y)[0]

    v1 = -lr * grad(w0)
    w1 = w0 + v1
    w2 = w1 + m * v1 - lr * grad(w1)
    trainer.train_batch(X, Y)
    trainer.train_batch(X, Y)
    np.testing.assert_allclose(trainer._flat[0], w2, rtol=0, atol=1e-14)


# -- checkpoints ------------------------------------------------------------------------------------------
def test_save_load_continue_equals_uninterrupted(tmp_path, seed_sum_data):
    X, Y, X_val, Y_val = seed_sum_data
    spec = NetSpec((4, 5, 5, 1), ("sigmoid", "sigmoid", "identity"))
    kwargs = dict(lr=0.02, batch=7, momentum=0.5, seed=8)
    whole = GoldenTrainer(spec, [3, None], **kwargs)
    whole.train(X[:50], Y[:50], 5, X_val, Y_val, progress=False)

    first = GoldenTrainer(spec, [3, None], **kwargs)
    first.train(X[:50], Y[:50], 2, X_val, Y_val, progress=False)
    path = tmp_path / "ck.npz"
    first.save(path, extra={"task": "seed-sum"})
    resumed = GoldenTrainer.load(path)
    resumed.train(X[:50], Y[:50], 3, X_val, Y_val, progress=False)

    assert np.array_equal(resumed._flat, whole._flat)
    assert np.array_equal(resumed._velocity, whole._velocity)
    assert resumed.history == whole.history and resumed.epoch == 5
    assert resumed.extra == {"task": "seed-sum"}
    assert (resumed.ks, resumed.lr, resumed.batch, resumed.momentum) == ((3, None), 0.02, 7, 0.5)


def test_load_rejects_other_files(tmp_path):
    bad = tmp_path / "x.npz"
    np.savez(bad, weights=np.zeros(3))
    with pytest.raises(DpfmError, match="not a dpfm golden checkpoint"):
        GoldenTrainer.load(bad)
    with pytest.raises(DpfmError, match="cannot read checkpoint"):
        GoldenTrainer.load(tmp_path / "missing.npz")
    (tmp_path / "garbage.npz").write_bytes(b"not a zip")
    with pytest.raises(DpfmError, match="cannot read checkpoint"):
        GoldenTrainer.load(tmp_path / "garbage.npz")


def test_weights_roundtrip_and_replica_access():
    spec = NetSpec((2, 3, 1), ("sigmoid", "identity"))
    layers = init_weights(spec, np.random.default_rng(0), "kaiming")
    single = GoldenTrainer(spec, 2)
    single.set_weights(layers)
    assert np.array_equal(flatten(spec, single.weights), flatten(spec, layers))
    multi = GoldenTrainer(spec, [1, 2])
    multi.set_weights(layers)
    assert np.array_equal(flatten(spec, multi.replica_weights(1)), flatten(spec, layers))
    with pytest.raises(ValueError):
        multi.weights
    assert multi.predict(np.zeros((4, 2))).shape == (2, 4, 1)
    assert single.predict(np.zeros((4, 2))).shape == (4, 1)


# -- fixed point (delegated to golden.fixed_mlp) -----------------------------------------------------------
def test_fixed_point_full_mode_tracks_float(seed_sum_data):
    X, Y, X_val, Y_val = seed_sum_data
    spec = NetSpec((4, 5, 5, 1), ("sigmoid", "sigmoid", "identity"))
    # lr / batch = 8 LSB of the lr format, so the rate itself is exact and the test measures the datapath's
    # rounding (0.01 / 10 would be 8.2 LSB, a 2 % shorter step: test_lr_raw)
    lr = 8 * HwFormats().lr.resolution * 10
    fixed = GoldenTrainer(spec, None, fixed=HwFormats(), seed=9, lr=lr)
    flt = GoldenTrainer(spec, None, seed=9, lr=lr)
    fixed.train(X[:100], Y[:100], 2, progress=False)
    flt.train(X[:100], Y[:100], 2, progress=False)
    np.testing.assert_allclose(flatten(spec, fixed.weights), flatten(spec, flt.weights), atol=5e-3)
    assert fixed.evaluate(X_val, Y_val) == pytest.approx(flt.evaluate(X_val, Y_val), rel=0.05)


def test_fixed_point_checkpoint_resumes_bit_exactly(tmp_path, seed_sum_data):
    X, Y, _, _ = seed_sum_data
    spec = NetSpec((4, 5, 5, 1), ("sigmoid", "sigmoid", "identity"))
    whole = GoldenTrainer(spec, 4, fixed=HwFormats(), tangent="toper", seed=10)
    whole.train(X[:40], Y[:40], 2, progress=False)
    part = GoldenTrainer(spec, 4, fixed=HwFormats(), tangent="toper", seed=10)
    part.train(X[:40], Y[:40], 1, progress=False)
    part.save(tmp_path / "f.npz")
    resumed = GoldenTrainer.load(tmp_path / "f.npz")
    resumed.train(X[:40], Y[:40], 1, progress=False)
    assert np.array_equal(resumed._raw, whole._raw)
    assert resumed.history == whole.history


# -- bad input ----------------------------------------------------------------------------------------------
SPEC = NetSpec((2, 3, 1), ("sigmoid", "identity"))


@pytest.mark.parametrize("kwargs,match", [
    (dict(k=0), "K must be a positive integer"), (dict(k=[4, -1]), "K must be a positive integer"),
    (dict(k=[]), "no K values"), (dict(k=2.5), "K must be"), (dict(k=8, lr=0), "learning rate"),
    (dict(k=8, lr=float("nan")), "learning rate"), (dict(k=8, batch=0), "batch size"),
    (dict(k=8, momentum=1.0), "momentum"), (dict(k=8, tangent="toper"), "fixed-point"),
    (dict(k=8, tangent="magic"), "unknown tangent"), (dict(k=8, init="zeros"), "unknown weight init"),
    (dict(k=8, fixed=HwFormats(), momentum=0.5), "momentum is not part"),
])
def test_bad_hyper_parameters_raise(kwargs, match):
    k = kwargs.pop("k")
    with pytest.raises(DpfmError, match=match):
        GoldenTrainer(SPEC, k, **kwargs)


@pytest.mark.parametrize("X,Y,match", [
    (np.zeros((4, 3)), np.zeros((4, 1)), "inputs have shape"),
    (np.zeros((4, 2)), np.zeros((5, 1)), "targets have shape"),
    (np.zeros((0, 2)), np.zeros((0, 1)), "inputs have shape"),
    (np.array([[0.0, np.nan]]), np.zeros((1, 1)), "NaN or infinity"),
    (np.zeros((1, 2)), np.array([[np.inf]]), "NaN or infinity"),
])
def test_bad_data_raises_before_training(X, Y, match):
    trainer = GoldenTrainer(SPEC, 2)
    before = trainer._flat.copy()
    with pytest.raises(DpfmError, match=match):
        trainer.train(X, Y, 1, progress=False)
    assert np.array_equal(trainer._flat, before) and trainer.epoch == 0


def test_divergence_is_recorded_not_raised():
    """A linear net with a huge learning rate overflows within a few epochs; the trainer records the
    NaN/inf loss (callers decide) instead of raising mid-run."""
    trainer = GoldenTrainer(NetSpec((2, 1), ("identity",)), None, lr=1e3, seed=0)
    X = np.random.default_rng(0).normal(size=(20, 2))
    trainer.train(X, X.sum(axis=1), 40, progress=False)
    assert np.isfinite(trainer.history["train_loss"][0])
    assert not np.isfinite(trainer.history["train_loss"][-1])


def test_fixed_counters_report_the_models_counts(seed_sum_data):
    X, Y, _, _ = seed_sum_data
    spec = NetSpec((4, 5, 5, 1), ("sigmoid", "sigmoid", "identity"))
    assert GoldenTrainer(spec, 2).fixed_counters is None
    trainer = GoldenTrainer(spec, [2, 8], fixed=HwFormats(), tangent="toper", seed=11)
    trainer.train(X[:20], Y[:20], 1, progress=False)
    counters = trainer.fixed_counters
    assert counters["evictions"] == [m.evictions for m in trainer._fixed_models]
    assert min(counters["evictions"]) > 0  # both topers drop candidates on this net
    assert counters["saturations"] == [m.sat.count for m in trainer._fixed_models]


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 8), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1))
def test_float_dither_keeps_the_entries_the_fixed_point_prune_keeps(k, mask0, mask1):
    """The float trainer's dithered prune (golden.mlp) and exact mode's (golden.fixed_mlp) rank by the same
    flags: ids below `base` inherited, the unit's own segment direct (docs/ARITHMETIC.md 3d). Values from a
    small set, so ties and demotions at the K-th place are common."""
    from dpfm.golden import dither
    from dpfm.golden.fixed_mlp import _prune
    from dpfm.golden.mlp import _prune_demoted

    base, seg, n_out = 5, 4, 2
    rng = np.random.default_rng([k, mask0, mask1])
    row = rng.choice([-3, -1, 0, 1, 2, 3], size=(1, 1, n_out, base + seg)).astype(np.float64)
    ids = np.concatenate([np.tile(np.arange(base), (n_out, 1)),
                          base + np.arange(n_out)[:, None] * seg + np.arange(seg)], axis=1)
    masks = np.array([[mask0, mask1]], dtype=np.int64)
    kept = row.copy()
    _prune_demoted(kept, (k,), ids, masks, base)
    width = base + n_out * seg
    for u in range(n_out):
        dense = np.zeros(width, dtype=np.int64)
        dense[ids[u]] = row[0, 0, u]
        flags = dither.flags(np.arange(width), masks[0, u], direct=np.arange(width) >= base)
        want, _ = _prune(dense[None], k, flags, 16)
        assert want[0, ids[u]].tolist() == kept[0, 0, u].astype(np.int64).tolist()
