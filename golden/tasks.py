"""Named training tasks (network, default hyper-parameters, data) and user-supplied data sets.

Each task reproduces an experiment from the source notes (../shared/SPEC.md): `seed-sum` is the seed's
benchmark exactly; `mnist` and `mnist-ae` are the classifier and autoencoder of seed 001 on the real MNIST
(`golden.mnist`, cached by `dpfm data mnist`), the classifier with the rates the study's tuning rule chose
for DPFM and `mnist-note` with the note's own SGD, exactly; `digits` and `digits-ae` are their small stand-ins on
scikit-learn's 8x8 digits, which fit the smallest board; `bernoulli` is seed 002's random
binary data with binary cross-entropy, scaled down so it runs in seconds. Data loaders are deterministic.
"""

import math
from dataclasses import dataclass, field, replace
from typing import Callable

import numpy as np

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.files import read_npz
from dpfm.golden.contract.net import NetSpec
from dpfm.golden.mnist import mnist_ae_data, mnist_data


@dataclass(frozen=True)
class Task:
    """A network, its default hyper-parameters and a loader returning (X_train, Y_train, X_val, Y_val).

    `lr` is the learning rate of the source notes; `lr_by_k` the default rate per K, `((K or None for full,
    lr), ...)`, as the study's tuning rule chose it for the contract's dither (docs/STUDY.md, on the training
    split only). A pruned gradient is smaller and sparser than the full one, so its best step is longer.
    `exact_last`: the output layer's gradient exact by default (docs/ARITHMETIC.md 3f).
    """

    name: str
    description: str
    spec: NetSpec
    loader: Callable[[], tuple] = field(repr=False)
    lr: float = 0.01
    batch: int = 10
    epochs: int = 100
    momentum: float = 0.0
    init: str = "glorot"
    classifier: bool = False
    lr_by_k: tuple = ()
    exact_last: bool = False

    def load(self) -> tuple:
        return self.loader()

    def lr_for(self, k) -> float:
        """The default rate for K (None: full): the table's entry for K, else that of the nearest tabulated
        K on a log scale (the larger on a tie), else `lr`. Full's entry serves full and every K of at least
        the net's parameter count, which prunes nothing and so is the full gradient."""
        table = dict(self.lr_by_k)
        if k is not None and k >= self.spec.n_params and None in table:
            return table[None]
        if k in table:
            return table[k]
        finite = [kt for kt in table if kt is not None]
        if k is None or not finite:
            return self.lr
        return table[min(finite, key=lambda kt: (abs(math.log2(kt) - math.log2(k)), -kt))]


def _split(X, Y, test_size, seed, stratify=None):
    from sklearn.model_selection import train_test_split
    X_tr, X_va, Y_tr, Y_va = train_test_split(X, Y, test_size=test_size, random_state=seed, stratify=stratify)
    return X_tr, Y_tr, X_va, Y_va


def seed_sum_data():
    """SPEC.md §2: np.random.seed(42); X = rand(400, 4); y = X.sum(1); 80/20 split with random_state 42.

    `RandomState(42)` is the generator behind `np.random.seed(42)`, without touching global state.
    """
    X = np.random.RandomState(42).rand(400, 4)
    y = X.sum(axis=1)
    X_tr, y_tr, X_va, y_va = _split(X, y, 0.2, 42)
    return X_tr, y_tr[:, None], X_va, y_va[:, None]


def _digits():
    from sklearn.datasets import load_digits
    d = load_digits()
    return d.data / 16.0, d.target


def digits_data():
    """8x8 digits, pixels scaled to [0, 1], one-hot targets, stratified 80/20 split (1437 / 360)."""
    X, t = _digits()
    X_tr, t_tr, X_va, t_va = _split(X, t, 0.2, 0, stratify=t)
    eye = np.eye(10)
    return X_tr, eye[t_tr], X_va, eye[t_va]


def digits_ae_data():
    """The digits split of `digits_data`, with the image as its own target."""
    X_tr, _, X_va, _ = digits_data()
    return X_tr, X_tr.copy(), X_va, X_va.copy()


def bernoulli_data(n=250, features=20, seed=2):
    """SPEC.md §4: Bernoulli(0.5) features and independent Bernoulli(0.5) labels (so the net can only
    memorize: training accuracy is the point, validation accuracy stays near chance), 80/20 split."""
    rng = np.random.default_rng(seed)
    X = (rng.random((n, features)) < 0.5).astype(np.float64)
    Y = (rng.random((n, 1)) < 0.5).astype(np.float64)
    return _split(X, Y, 0.2, seed)


TASKS = {t.name: t for t in [
    Task("seed-sum", "the seed's benchmark: y = x1+x2+x3+x4, 4-5-5-1, MSE, batch 10 (the note's SGD: --lr 0.01)",
         NetSpec((4, 5, 5, 1), ("sigmoid", "sigmoid", "identity"), "mse"), seed_sum_data,
         lr=0.01, batch=10, epochs=250,
         # runs/study-hw-own (docs/STUDY.md phase 3): demote-hw's tuned rates
         lr_by_k=((2, 0.316), (4, 0.316), (8, 0.316), (None, 0.0316))),
    Task("digits", "8x8 digits classifier, 64-16-10 sigmoid, MSE on one-hot targets",
         NetSpec((64, 16, 10), ("sigmoid", "sigmoid"), "mse"), digits_data,
         lr=2.0, batch=10, epochs=30, classifier=True,
         # runs/study-digits-own64 (docs/STUDY.md phase 3): the tuning rule on the grid 8, 16, 32, 64
         lr_by_k=((4, 32.0), (8, 32.0), (None, 32.0))),
    Task("digits-ae", "8x8 digits autoencoder, 64-16-64 sigmoid, MSE",
         NetSpec((64, 16, 64), ("sigmoid", "sigmoid"), "mse"), digits_ae_data,
         lr=2.0, batch=10, epochs=10),
    Task("mnist", "MNIST classifier of source note 001, 784-16-16-10 sigmoid, MSE on one-hot targets; SGD at batch "
                  "10, Glorot init, the study's rates (needs 'dpfm data mnist')",
         NetSpec((784, 16, 16, 10), ("sigmoid", "sigmoid", "sigmoid"), "mse"), mnist_data,
         lr=32.0, batch=10, epochs=5, classifier=True,
         # docs/STUDY.md phase 6: the tuning rule on the grids 16-128 (K=8) and 4-32 (full), 3 epochs
         lr_by_k=((8, 32.0), (None, 8.0))),
    Task("mnist-note", "the same classifier with source note 001's own SGD: lr 10, momentum 0.5, batch 1000, Kaiming "
                       "uniform, 20 epochs (needs 'dpfm data mnist')",
         NetSpec((784, 16, 16, 10), ("sigmoid", "sigmoid", "sigmoid"), "mse"), mnist_data,
         lr=10.0, batch=1000, epochs=20, momentum=0.5, init="kaiming", classifier=True),
    Task("mnist-ae", "MNIST autoencoder of source note 001, 784-64-784 sigmoid, MSE, its SGD (needs 'dpfm data mnist')",
         NetSpec((784, 64, 784), ("sigmoid", "sigmoid"), "mse"), mnist_ae_data,
         lr=10.0, batch=1000, epochs=20, momentum=0.5, init="kaiming"),
    Task("bernoulli", "random binary features and labels (memorization), 20-16-8-1 tanh/sigmoid/sigmoid, BCE",
         NetSpec((20, 16, 8, 1), ("tanh", "sigmoid", "sigmoid"), "bce"), bernoulli_data,
         lr=1.0, batch=10, epochs=60, classifier=True),
]}


def get_task(name: str) -> Task:
    try:
        return TASKS[name]
    except KeyError:
        raise DpfmError(f"unknown task '{name}'", f"choose one of {', '.join(TASKS)}, or give --data FILE.npz")


def accuracy(pred, Y) -> float:
    """Fraction correct: argmax over outputs, or a 0.5 threshold for a single output."""
    pred = np.asarray(pred)
    Y = np.asarray(Y)
    if Y.shape[-1] == 1:
        return float(np.mean((pred[..., 0] >= 0.5) == (Y[..., 0] >= 0.5)))
    return float(np.mean(np.argmax(pred, axis=-1) == np.argmax(Y, axis=-1)))


def parse_sizes(text: str) -> tuple:
    try:
        sizes = tuple(int(s) for s in text.split(","))
    except ValueError:
        raise DpfmError(f"cannot read layer sizes '{text}'", "write them comma-separated, e.g. --sizes 4,5,1") from None
    return sizes


def check_array(name, arr, path):
    """Array `name` of the data file `path` as float rows `(N >= 1, columns)` (a 1-D array is one column),
    finite and numeric; else a DpfmError naming the file and the array."""
    arr = np.asarray(arr)
    if arr.dtype.kind not in "biuf":
        raise DpfmError(f"{path}: array '{name}' is not numeric (dtype {arr.dtype})", "store numbers in X and Y")
    arr = arr.astype(np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise DpfmError(f"{path}: array '{name}' has shape {arr.shape}", "store 2-D arrays, one row per sample")
    if not np.all(np.isfinite(arr)):
        raise DpfmError(f"{path}: array '{name}' contains NaN or infinity", "clean the data before training")
    return arr


def user_task(path, sizes: str, activations: str | None = None, loss: str = "mse", classifier=False,
              lr=0.01, batch=10, epochs=100) -> Task:
    """A task from `path` (.npz with X, Y and optionally X_val, Y_val), validated completely up front.

    Default activations: sigmoid for hidden layers, identity (MSE) or sigmoid (BCE) for the output.
    """
    size_t = parse_sizes(sizes)
    if activations:
        acts = tuple(a.strip() for a in activations.split(","))
    else:
        acts = ("sigmoid",) * (len(size_t) - 2) + ("sigmoid" if loss == "bce" else "identity",)
    spec = NetSpec(size_t, acts, loss)
    arrays = read_npz(path, "data file", "give an .npz file with arrays X and Y (np.savez(path, X=..., Y=...))")
    missing = [n for n in ("X", "Y") if n not in arrays]
    if missing:
        raise DpfmError(f"{path} has no array {' or '.join(missing)} (it has {', '.join(arrays) or 'none'})",
                        "store inputs as X and targets as Y (np.savez(path, X=..., Y=...))")
    if ("X_val" in arrays) != ("Y_val" in arrays):
        raise DpfmError(f"{path} has only one of X_val, Y_val", "store both or neither")
    data = {n: check_array(n, arrays[n], path) for n in ("X", "Y", "X_val", "Y_val") if n in arrays}
    for x, y in (("X", "Y"), ("X_val", "Y_val")):
        if x not in data:
            continue
        if data[x].shape[1] != spec.n_inputs:
            raise DpfmError(f"{path}: {x} has {data[x].shape[1]} columns but the network has {spec.n_inputs} inputs",
                            "make the first --sizes entry the number of input columns")
        if data[y].shape[1] != spec.n_outputs:
            raise DpfmError(f"{path}: {y} has {data[y].shape[1]} columns but the network has {spec.n_outputs} outputs",
                            "make the last --sizes entry the number of target columns")
        if data[x].shape[0] != data[y].shape[0]:
            raise DpfmError(f"{path}: {x} has {data[x].shape[0]} rows but {y} has {data[y].shape[0]}",
                            "give one target row per input row")
    if loss == "bce" and any(np.any((data[y] < 0) | (data[y] > 1)) for y in ("Y", "Y_val") if y in data):
        raise DpfmError(f"{path}: targets outside [0, 1] cannot be used with binary cross-entropy",
                        "use 0/1 labels or --loss mse")
    result = (data["X"], data["Y"], data.get("X_val"), data.get("Y_val"))
    return Task(f"data:{path}", f"user data from {path}", spec, lambda: result, lr=lr, batch=batch,
                epochs=epochs, classifier=classifier)


def with_overrides(task: Task, **kwargs) -> Task:
    """The task with the given hyper-parameters replaced (None values keep the task's default); a given
    `lr` replaces the per-K table too."""
    given = {k: v for k, v in kwargs.items() if v is not None}
    if "lr" in given:
        given["lr_by_k"] = ()
    return replace(task, **given)
