"""Files: every output of every layer is written through here, never half-written; .npz inputs are read
through here, never unpickled.

Every output (checkpoint, JSON, PNG, Verilog, build report, study report) is written to a temporary file in
the destination directory and moved into place with `os.replace`, so an interrupted or failed run leaves
either the old file or the new one, never a truncated one. The file gets the permissions a plain `open`
would give it (0666 less the umask), not mkstemp's 0600. `check_writable` lets a command refuse an
unwritable destination before it spends minutes working.
"""

import contextlib
import json
import os
import tempfile
import zipfile

import numpy as np

from dpfm.golden.contract.errors import DpfmError


def check_writable(path) -> None:
    """Raise DpfmError unless `path` could be created (its nearest existing ancestor is a writable dir)."""
    path = os.path.abspath(os.fspath(path))
    if os.path.isdir(path):
        raise DpfmError(f"output path {path} is a directory", "give a file name")
    parent = os.path.dirname(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent) or not os.access(parent, os.W_OK | os.X_OK):
        raise DpfmError(f"cannot write {path}: {parent} is not a writable directory",
                        "choose an output path in a writable directory")
    try:   # permissions are not the whole story (read-only mounts, /proc): create and remove a probe file
        fd, probe = tempfile.mkstemp(prefix=".tmp-probe-", dir=parent)
    except OSError as exc:
        raise DpfmError(f"cannot write {path}: {parent} does not take new files ({exc.strerror or exc})",
                        "choose an output path in a writable directory") from None
    os.close(fd)
    os.unlink(probe)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to `path`; on success move it onto `path`, on error delete it."""
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=parent)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        f.write(text)


def write_json(path, obj) -> None:
    write_text(path, json.dumps(obj, indent=2) + "\n")


def read_npz(path, what: str, fix: str) -> dict:
    """The arrays of the .npz file `path` (pickled objects refused), or one DpfmError that names `what` the
    file should have been, what it is instead, and `fix`."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(6)
    except OSError as exc:
        raise DpfmError(f"cannot read {what} {path}: {exc.strerror or exc}", fix) from None
    if head.startswith(b"\x93NUMPY"):
        raise DpfmError(f"cannot read {what} {path}: it is a single .npy array, not an .npz file of named "
                        "arrays", fix)
    if not head.startswith(b"PK"):
        raise DpfmError(f"cannot read {what} {path}: it is not an .npz file", fix)
    try:
        with np.load(path, allow_pickle=False) as z:
            return {name: z[name] for name in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise DpfmError(f"cannot read {what} {path}: the .npz file is damaged ({exc})", fix) from None
