"""MNIST, source note 001's data, read from the local cache that `dpfm data mnist` writes (setup.sh runs it).

The cache is one .npz of uint8 arrays: `x_<split>` `(N, 784)` pixels as bytes (the pixel value times 256,
which is exact: the source stores k/256), `y_<split>` `(N,)` labels, for the splits train (50,000), val
(10,000) and test (10,000). Bytes are what the link carries to a core, and a byte cache is a quarter of the
float one. Every read checks the content against a pinned SHA-256, so a damaged or foreign cache is refused
with the command that rebuilds it, never trained on.
"""

import hashlib
import os

import numpy as np

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.files import read_npz

#: Directory of the cache: `$DPFM_DATA`, else ~/.cache/dpfm.
DATA_ENV = "DPFM_DATA"
FILE_NAME = "mnist.npz"
PIXELS = 784
CLASSES = 10
#: Pixel value = byte / PIXEL_SCALE.
PIXEL_SCALE = 256
SPLITS = (("train", 50_000), ("val", 10_000), ("test", 10_000))
#: SHA-256 over x_train, y_train, x_val, y_val, x_test, y_test (uint8, C order) of the pinned source.
CONTENT_SHA256 = "c97a2c607853b499a01d274c02fa5de533f80f6f09404e77aa0e02ec99b4c1f5"
REBUILD = "run 'dpfm data mnist' (setup.sh does) to rebuild the cache"


def cache_path() -> str:
    """Where the cache lives: `$DPFM_DATA/mnist.npz`, else `~/.cache/dpfm/mnist.npz`."""
    base = os.environ.get(DATA_ENV) or os.path.join(os.path.expanduser("~"), ".cache", "dpfm")
    return os.path.join(base, FILE_NAME)


def content_digest(arrays: dict) -> str:
    """The SHA-256 the cache is pinned to, over the arrays in split order."""
    h = hashlib.sha256()
    for split, _ in SPLITS:
        for name in (f"x_{split}", f"y_{split}"):
            h.update(np.ascontiguousarray(arrays[name]).tobytes())
    return h.hexdigest()


def check_arrays(arrays: dict, source: str, fix: str = REBUILD) -> None:
    """DpfmError unless `arrays` has every split as uint8 pixels `(N, 784)` and labels 0-9 `(N,)`."""
    for split, n in SPLITS:
        x, y = arrays.get(f"x_{split}"), arrays.get(f"y_{split}")
        if x is None or y is None:
            raise DpfmError(f"{source} has no MNIST {split} split (x_{split}, y_{split})", fix)
        if x.dtype != np.uint8 or x.shape != (n, PIXELS):
            raise DpfmError(f"{source}: x_{split} is {x.dtype} {x.shape}, not uint8 ({n}, {PIXELS})", fix)
        if y.dtype != np.uint8 or y.shape != (n,) or (n and int(y.max()) >= CLASSES):
            raise DpfmError(f"{source}: y_{split} is not {n} labels 0-9 as uint8", fix)


def load(path=None) -> dict:
    """The cached arrays, checked (layout and pinned content), or a DpfmError naming the problem and `REBUILD`."""
    path = cache_path() if path is None else os.fspath(path)
    if not os.path.exists(path):
        raise DpfmError(f"MNIST is not cached at {path}", REBUILD)
    arrays = read_npz(path, "MNIST cache", REBUILD)
    check_arrays(arrays, path)
    digest = content_digest(arrays)
    if digest != CONTENT_SHA256:
        raise DpfmError(f"the MNIST cache {path} has other content than the pinned MNIST (sha256 {digest[:12]}..., "
                        f"expected {CONTENT_SHA256[:12]}...)", f"delete it and {REBUILD}")
    return arrays


def pixels(x: np.ndarray) -> np.ndarray:
    """Bytes to the float pixels the networks see, in [0, 255/256]."""
    return x.astype(np.float64) / PIXEL_SCALE


def mnist_data():
    """MNIST classification: 50,000 training and the 10,000 validation images, one-hot targets (note 001
    reports its validation set)."""
    a = load()
    eye = np.eye(CLASSES)
    return pixels(a["x_train"]), eye[a["y_train"]], pixels(a["x_val"]), eye[a["y_val"]]


def mnist_ae_data():
    """MNIST autoencoder: the classification split with each image as its own target."""
    a = load()
    X, X_val = pixels(a["x_train"]), pixels(a["x_val"])
    return X, X.copy(), X_val, X_val.copy()
