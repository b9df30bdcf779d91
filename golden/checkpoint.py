"""Files that must never be left half-written: atomic writes and the trainer checkpoint format.

Every output of a run (checkpoint, JSON, PNG) is written to a temporary file in the destination directory
and moved into place with `os.replace`, so an interrupted or failed run leaves either the old file or the
new one, never a truncated one. `check_writable` lets a command refuse an unwritable destination before it
spends minutes training.
"""

import contextlib
import json
import os
import tempfile
import zipfile

import numpy as np

from golden.errors import DpfmError

FORMAT = "dpfm-golden-checkpoint/1"


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
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path, obj) -> None:
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def write_checkpoint(path, meta: dict, arrays: dict) -> None:
    """`meta` (JSON-serializable) and named arrays -> one .npz file, atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, format=np.array(FORMAT), meta=np.array(json.dumps(meta)), **arrays)


def read_checkpoint(path) -> tuple[dict, dict]:
    """The inverse of `write_checkpoint`; anything else is a DpfmError naming the file."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if "format" not in z.files or str(z["format"]) != FORMAT:
                raise DpfmError(f"{path} is not a dpfm golden checkpoint",
                                "resume from a file written by 'dpfm train --save'")
            meta = json.loads(str(z["meta"]))
            arrays = {name: z[name] for name in z.files if name not in ("format", "meta")}
    except (OSError, ValueError, zipfile.BadZipFile, json.JSONDecodeError) as exc:
        raise DpfmError(f"cannot read checkpoint {path}: {exc}",
                        "check the path; resume from a file written by 'dpfm train --save'") from None
    return meta, arrays
