"""prune_K over dense tangent rows (docs/ARITHMETIC.md §1): the golden trainer's top-K, vectorized.

Kept apart from the trainer so that the selection rules (`golden.selection`) can build on it.
"""

import functools

import numpy as np

_TINY = np.nextafter(0.0, 1.0)  # smallest positive float: "|v| >= _TINY" means "v != 0"


def prune_rows(T: np.ndarray, ks) -> None:
    """prune_K on every row of `T` (last axis = weight-id), in place; `ks[r]` is the K of replica `T[r]`.

    Same rule as `golden.dual.prune`: zeros dropped, then the K highest by (|v| desc, id asc). The K-th
    largest |v| decides almost every entry; only rows where a tie straddles that threshold need the id
    rule, resolved by counting the tied entries in id order. Replicas with K >= row width are skipped.
    """
    plan = _prune_plan(ks if isinstance(ks, tuple) else tuple(int(k) for k in ks), T.shape[-1])
    if plan is None:
        return
    where, ks_active, uniform = plan
    if isinstance(where, slice):
        _prune_block(T[where], ks_active, uniform)
    else:
        sub = T[where]
        _prune_block(sub, ks_active, uniform)
        T[where] = sub


@functools.lru_cache(maxsize=1024)
def _prune_plan(ks: tuple, width: int):
    """Which replicas need pruning at this row width (a slice when they are contiguous), their K values,
    and the common K if they share one; None if none does. Cached: a training run asks the same few."""
    active = [r for r, k in enumerate(ks) if k < width]
    if not active:
        return None
    ks_active = np.array([ks[r] for r in active], dtype=np.int64)
    contiguous = active[-1] - active[0] + 1 == len(active)
    where = slice(active[0], active[-1] + 1) if contiguous else np.array(active)
    return where, ks_active, (int(ks_active[0]) if np.all(ks_active == ks_active[0]) else None)


@functools.lru_cache(maxsize=256)
def _kth_positions(shape: tuple, ks: tuple) -> np.ndarray:
    """Flat positions of each row's K-th largest entry in a row-sorted array of `shape` (K per replica)."""
    width = shape[-1]
    rows = np.arange(int(np.prod(shape[:-1]))).reshape(shape[:-1] + (1,))
    cols = (width - np.array(ks)).reshape((len(ks),) + (1,) * (len(shape) - 1))
    return rows * width + cols


def _prune_block(T: np.ndarray, ks: np.ndarray, uniform: int | None) -> None:
    A = np.abs(T)
    width = T.shape[-1]
    shape_r = (len(ks),) + (1,) * (T.ndim - 1)
    if uniform is not None:
        kth = np.partition(A, width - uniform, axis=-1)[..., width - uniform:width - uniform + 1]
    else:
        kth = np.sort(A, axis=-1).reshape(-1)[_kth_positions(T.shape, tuple(ks.tolist()))]
    thr = np.maximum(kth, _TINY)
    keep = A >= thr
    k_b = ks.reshape(shape_r)
    over = keep.sum(axis=-1, keepdims=True) > k_b
    if over.any():
        above = A > thr
        tied = A == thr
        room = k_b - above.sum(axis=-1, keepdims=True)
        keep = np.where(over, above | (tied & (np.cumsum(tied, axis=-1) <= room)), keep)
    T *= keep
