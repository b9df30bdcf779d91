"""Fixtures shared across test directories."""

import errno
import os

import pytest


@pytest.fixture(scope="session")
def seed_sum_data():
    """(X_train, Y_train, X_val, Y_val) of the seed-sum task, loaded once per session."""
    from dpfm.golden import tasks
    return tasks.seed_sum_data()


@pytest.fixture(scope="session")
def toper_checkpoint(tmp_path_factory):
    """A fixed-point serial-toper seed-sum run of 2 epochs at K=4, as `dpfm train --save` writes it."""
    from dpfm.host.cli import main
    path = tmp_path_factory.mktemp("ck") / "ck.npz"
    assert main(["train", "--task", "seed-sum", "--k", "4", "--epochs", "2", "--fixed", "default", "--tangent",
                 "toper", "--save", str(path), "--no-progress"]) == 0
    return path


class _FullDiskFile:
    """An open file that takes half of the first write, then fails as a full disk does."""

    def __init__(self, file):
        self.file = file

    def write(self, data):
        self.file.write(data[:len(data) // 2])
        self.file.flush()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()


@pytest.fixture
def disk_full(monkeypatch):
    """Every output fails halfway through writing, as on a full disk: text and JSON written through
    `dpfm.golden.contract.files`, and matplotlib figures (half a PNG reaches the file, then ENOSPC). A
    writer that is not atomic leaves that half where the old file was; an atomic one leaves the old file."""
    import matplotlib.figure

    from dpfm.golden.contract import files

    monkeypatch.setattr(files, "open", lambda path, mode="r", **kw: _FullDiskFile(open(path, mode, **kw)),
                        raising=False)

    def savefig(fig, fname, **kw):
        with _FullDiskFile(open(fname, "wb")) as f:
            f.write(b"\x89PNG\r\n\x1a\n" + bytes(100))

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)


@pytest.fixture
def umask():
    """Set the process umask for the test (`umask(0o027)`), restoring it afterwards."""
    old = os.umask(0o022)
    yield os.umask
    os.umask(old)
