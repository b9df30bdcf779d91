"""golden.mnist: the cache is read only when it is whole and pinned; the tasks see the real MNIST.

The tests on the real data need the cache that setup.sh builds (`dpfm data mnist`); CI runs setup.sh.
"""

import numpy as np
import pytest

from dpfm.golden import dither, mnist
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.net import flatten, init_weights
from dpfm.golden.mlp import _Plan
from dpfm.golden.slots import SlotPlan
from dpfm.golden.tasks import get_task


@pytest.fixture(scope="module")
def cached():
    return mnist.load()


def test_the_cache_is_the_pinned_mnist(cached):
    for split, n in mnist.SPLITS:
        assert cached[f"x_{split}"].shape == (n, 784) and cached[f"y_{split}"].shape == (n,)
    assert np.bincount(cached["y_train"]).tolist() == [4932, 5678, 4968, 5101, 4859, 4506, 4951, 5175, 4842, 4988]
    X, Y, X_val, Y_val = get_task("mnist").load()
    assert X.shape == (50_000, 784) and Y.shape == (50_000, 10) and X_val.shape == (10_000, 784)
    assert X.max() == 255 / 256 and np.array_equal(Y.argmax(axis=1), cached["y_train"])
    Xa, Ya, _, _ = get_task("mnist-ae").load()
    assert np.array_equal(Xa, Ya) and Xa is not Ya


def test_slots_keep_the_dense_entries_on_mnist_batches(cached):
    """Real images: most pixels are 0 (left out of the slot pass's first layer) and many are saturated
    (ties everywhere); the dithered and the plain rule keep the same entries in both passes."""
    spec = get_task("mnist").spec
    rng = np.random.default_rng(0)
    flat = flatten(spec, init_weights(spec, rng, "kaiming"))[None]
    X = mnist.pixels(cached["x_train"][:8])
    Y = np.eye(10)[cached["y_train"][:8]]
    for masks in (None, dither.layer_masks(dither.seed_state(0), spec.sizes[1:], 8)[0]):
        want, want_l = _Plan(spec, (8,)).gradients(flat, X, Y, masks=masks)
        got, got_l = SlotPlan(spec, 8).gradients(flat, X, Y, masks=masks)
        np.testing.assert_array_equal(got != 0, want != 0)
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
        np.testing.assert_array_equal(got_l, want_l)


def _write(path, arrays):
    np.savez(path, **arrays)
    return path


def test_a_missing_cache_names_the_command_that_builds_it(tmp_path, monkeypatch):
    monkeypatch.setenv(mnist.DATA_ENV, str(tmp_path))
    assert mnist.cache_path() == str(tmp_path / "mnist.npz")
    with pytest.raises(DpfmError, match=r"MNIST is not cached at .*mnist.npz.*dpfm data mnist"):
        get_task("mnist").load()


def test_damaged_foreign_and_misshapen_caches_are_refused(tmp_path, cached):
    whole = tmp_path / "whole.npz"
    _write(whole, cached)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(whole.read_bytes()[:100_000])
    with pytest.raises(DpfmError, match="damaged.*dpfm data mnist"):
        mnist.load(truncated)
    flipped = dict(cached, x_val=cached["x_val"].copy())
    flipped["x_val"][0, 0] ^= 1
    with pytest.raises(DpfmError, match="other content than the pinned MNIST.*delete it"):
        mnist.load(_write(tmp_path / "flipped.npz", flipped))
    with pytest.raises(DpfmError, match="no MNIST test split"):
        mnist.load(_write(tmp_path / "short.npz", {k: v for k, v in cached.items() if "test" not in k}))
    with pytest.raises(DpfmError, match=r"x_train is float64 \(50000, 784\), not uint8"):
        mnist.load(_write(tmp_path / "float.npz", dict(cached, x_train=cached["x_train"].astype(float))))
    labels = dict(cached, y_val=cached["y_val"].copy())
    labels["y_val"][3] = 10
    with pytest.raises(DpfmError, match="y_val is not 10000 labels 0-9"):
        mnist.load(_write(tmp_path / "labels.npz", labels))
