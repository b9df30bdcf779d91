"""golden.tasks: the named tasks reproduce SPEC.md, and user data is validated completely up front."""

import numpy as np
import pytest

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.tasks import TASKS, accuracy, get_task, parse_sizes, user_task


def test_seed_sum_is_spec_section_2(seed_sum_data):
    """np.random.seed(42); X = np.random.rand(400, 4); y = X.sum(1); train_test_split(0.2, random_state=42)."""
    from sklearn.model_selection import train_test_split
    saved = np.random.get_state()
    try:
        np.random.seed(42)
        X = np.random.rand(400, 4)
    finally:
        np.random.set_state(saved)
    X_tr, X_va, y_tr, y_va = train_test_split(X, X.sum(1), test_size=0.2, random_state=42)
    got = seed_sum_data
    assert [a.shape for a in got] == [(320, 4), (320, 1), (80, 4), (80, 1)]
    assert np.array_equal(got[0], X_tr) and np.array_equal(got[2], X_va)
    assert np.array_equal(got[1][:, 0], y_tr) and np.array_equal(got[3][:, 0], y_va)
    # Pinned first values, so a change in NumPy's or scikit-learn's generators cannot go unnoticed.
    np.testing.assert_allclose(got[0][0], [0.83244264, 0.21233911, 0.18182497, 0.18340451], atol=1e-8)
    np.testing.assert_allclose(got[3][0], [2.49009244], atol=1e-8)


def test_seed_sum_task_matches_the_seed():
    t = get_task("seed-sum")
    assert t.spec.sizes == (4, 5, 5, 1) and t.spec.activations == ("sigmoid", "sigmoid", "identity")
    assert t.spec.n_params == 61 and t.spec.loss == "mse"
    assert (t.lr, t.batch, t.epochs, t.init, t.momentum, t.classifier) == (0.01, 10, 250, "glorot", 0.0, False)


def test_loading_does_not_touch_global_numpy_state():
    saved = np.random.get_state()[1].copy()
    get_task("seed-sum").load()
    assert np.array_equal(np.random.get_state()[1], saved)


def test_digits_classifier_and_autoencoder():
    X, Y, X_val, Y_val = get_task("digits").load()
    assert X.shape == (1437, 64) and X_val.shape == (360, 64) and Y.shape == (1437, 10)
    assert X.min() >= 0 and X.max() <= 1
    assert np.array_equal(Y.sum(axis=1), np.ones(1437)) and set(np.unique(Y)) == {0.0, 1.0}
    assert get_task("digits").classifier
    Xa, Ya, Xa_val, Ya_val = get_task("digits-ae").load()
    assert np.array_equal(Xa, X) and np.array_equal(Ya, X) and np.array_equal(Ya_val, X_val)
    assert get_task("digits-ae").spec.sizes == (64, 16, 64)


def test_bernoulli_is_binary_with_bce():
    t = get_task("bernoulli")
    X, Y, X_val, Y_val = t.load()
    for a in (X, Y, X_val, Y_val):
        assert set(np.unique(a)) <= {0.0, 1.0}
    assert X.shape[1] == t.spec.n_inputs and Y.shape[1] == 1
    assert t.spec.loss == "bce" and t.spec.activations == ("tanh", "sigmoid", "sigmoid") and t.classifier


def test_every_task_fits_its_network():
    for t in TASKS.values():
        X, Y, X_val, Y_val = t.load()
        assert X.shape[1] == t.spec.n_inputs and Y.shape[1] == t.spec.n_outputs
        assert X_val.shape[1] == t.spec.n_inputs and Y_val.shape[1] == t.spec.n_outputs


def test_unknown_task_lists_the_tasks():
    with pytest.raises(DpfmError) as e:
        get_task("emnist")
    assert "emnist" in str(e.value) and all(name in str(e.value) for name in TASKS)


def test_accuracy_argmax_and_threshold():
    assert accuracy(np.array([[0.1, 0.9], [0.8, 0.3]]), np.array([[0, 1], [0, 1]])) == 0.5
    assert accuracy(np.array([[0.5], [0.49], [0.7]]), np.array([[1], [0], [0]])) == pytest.approx(2 / 3)


# -- user data ---------------------------------------------------------------------------------------------
def _npz(tmp_path, **arrays):
    path = tmp_path / "data.npz"
    np.savez(path, **arrays)
    return str(path)


def test_user_data_loads(tmp_path):
    rng = np.random.default_rng(0)
    path = _npz(tmp_path, X=rng.normal(size=(30, 3)), Y=rng.normal(size=30), X_val=rng.normal(size=(5, 3)),
                Y_val=rng.normal(size=(5, 1)))
    t = user_task(path, "3,4,1")
    X, Y, X_val, Y_val = t.load()
    assert Y.shape == (30, 1) and Y_val.shape == (5, 1)
    assert t.spec.activations == ("sigmoid", "identity")
    assert user_task(path, "3,1", loss="mse", activations="tanh").spec.activations == ("tanh",)


def test_user_data_without_validation(tmp_path):
    path = _npz(tmp_path, X=np.zeros((4, 2)), Y=np.zeros((4, 1)))
    X, Y, X_val, Y_val = user_task(path, "2,1").load()
    assert X_val is None and Y_val is None


@pytest.mark.parametrize("arrays,sizes,extra,match", [
    (dict(X=np.zeros((4, 2)), Y=np.zeros((4, 1))), "3,1", {}, "has 2 columns but the network has 3 inputs"),
    (dict(X=np.zeros((4, 2)), Y=np.zeros((4, 2))), "2,1", {}, "has 2 columns but the network has 1 outputs"),
    (dict(X=np.zeros((4, 2)), Y=np.zeros((5, 1))), "2,1", {}, "has 4 rows but Y has 5"),
    (dict(X=np.array([[0.0, np.nan]]), Y=np.zeros((1, 1))), "2,1", {}, "NaN or infinity"),
    (dict(X=np.zeros((1, 2)), Y=np.array([[np.inf]])), "2,1", {}, "NaN or infinity"),
    (dict(X=np.zeros((1, 2))), "2,1", {}, "has no array Y"),
    (dict(X=np.zeros((1, 2)), Y=np.zeros((1, 1)), X_val=np.zeros((1, 2))), "2,1", {}, "only one of X_val"),
    (dict(X=np.array([["a", "b"]]), Y=np.zeros((1, 1))), "2,1", {}, "not numeric"),
    (dict(X=np.zeros((1, 2, 2)), Y=np.zeros((1, 1))), "2,1", {}, "has shape"),
    (dict(X=np.zeros((1, 2)), Y=np.full((1, 1), 2.0)), "2,1", {"loss": "bce"}, "outside \\[0, 1\\]"),
    (dict(X=np.zeros((1, 2)), Y=np.zeros((1, 1))), "2,x", {}, "cannot read layer sizes"),
    (dict(X=np.zeros((1, 2)), Y=np.zeros((1, 1))), "2,0", {}, "layer sizes must be positive"),
    (dict(X=np.zeros((1, 2)), Y=np.zeros((1, 1))), "2,1", {"activations": "sigmoid,tanh"}, "1 layers but 2"),
    (dict(X=np.zeros((1, 2)), Y=np.zeros((1, 1))), "2,1", {"activations": "swish"}, "unknown activation"),
])
def test_bad_user_data_raises(tmp_path, arrays, sizes, extra, match):
    with pytest.raises(DpfmError, match=match):
        user_task(_npz(tmp_path, **arrays), sizes, **extra)


def test_unreadable_data_file(tmp_path):
    with pytest.raises(DpfmError, match="cannot read data file"):
        user_task(str(tmp_path / "missing.npz"), "2,1")
    (tmp_path / "junk.npz").write_text("junk")
    with pytest.raises(DpfmError, match="cannot read data file"):
        user_task(str(tmp_path / "junk.npz"), "2,1")


def test_parse_sizes():
    assert parse_sizes("4,5,1") == (4, 5, 1)


def test_lr_for_takes_the_nearest_tabulated_k_on_a_log_scale():
    from dpfm.golden.tasks import Task, with_overrides
    task = Task("t", "", get_task("seed-sum").spec, lambda: None, lr=0.01,
                lr_by_k=((2, 0.3), (4, 0.1), (8, 0.03), (None, 0.02)))
    # on a log scale 3 is nearer 4 than 2, and 6 nearer 8 than 4
    assert [task.lr_for(k) for k in (1, 2, 3, 4, 5, 6, 8, 32, None)] == [0.3, 0.3, 0.1, 0.1, 0.1, 0.03, 0.03, 0.03,
                                                                          0.02]
    # seed-sum has 61 weights: K = 61 or more prunes nothing, it is the full gradient and takes full's rate
    assert [task.lr_for(k) for k in (60, 61, 64)] == [0.03, 0.02, 0.02]
    tie = Task("v", "", task.spec, lambda: None, lr_by_k=((2, 0.3), (8, 0.03)))
    assert tie.lr_for(4) == 0.03   # equally far from 2 and 8: the larger K's (shorter) step
    assert with_overrides(task, lr=0.5).lr_for(2) == 0.5
    assert Task("u", "", task.spec, lambda: None, lr=0.01).lr_for(8) == 0.01
