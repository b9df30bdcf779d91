"""Resident training (docs/ARITHMETIC.md section 7): the on-chip shuffle and the core's epoch loss.

A resident core holds the training set and runs whole epochs by itself, so the order of the samples has to
come from a generator the core has: a 32-bit xorshift (Marsaglia's 13, 17, 5 triple) drawing an inside-out
Fisher-Yates shuffle with rejection sampling, which needs no multiplier and no divider, only a mask, a
compare and one memory of sample indices. Each epoch's order starts from nothing (the inside-out form
builds the permutation as it draws), so the generator's state is all that carries from one epoch to the
next: the core's REG_SHUFFLE and a checkpoint field.

The core also sums each epoch's loss where it has it, in the gradient unit: the squares of the saturated
errors `e_o = sat_x(a_o - y_o)` of section 3.5, exact, per training sample before its batch's update.
"""

import numpy as np

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import Fmt

BITS = 32
MASK = (1 << BITS) - 1
#: The state a host writes when its trainer has no seed of its own: any non-zero state will do.
DEFAULT_STATE = 0x6D2B79F5
#: Bits of a sample index: a resident data set holds at most 2**16 samples.
INDEX_BITS = 16
#: The draw is the state's high half (xorshift's low bits are its weakest).
DRAW_SHIFT = BITS - INDEX_BITS
#: Width of the core's loss sums, per epoch (two bus words).
LOSS_BITS = 64


def step(state: int) -> int:
    """One xorshift32 step: `s ^= s << 13; s ^= s >> 17; s ^= s << 5` (mod 2**32). 0 is its fixed point."""
    s = state
    s ^= (s << 13) & MASK
    s ^= s >> 17
    s ^= (s << 5) & MASK
    return s


def check_state(state) -> int:
    """A valid generator state, or a `DpfmError` naming the problem (0 is refused: every draw would be 0)."""
    if isinstance(state, bool) or not isinstance(state, (int, np.integer)) or not 0 < int(state) <= MASK:
        raise DpfmError(f"shuffle state {state!r} is not a non-zero 32-bit value", "use 1 .. 4294967295")
    return int(state)


def seed_state(seed: int) -> int:
    """The state a run with trainer seed `seed` starts from: a fixed non-zero function of the seed."""
    s = (0x85EBCA6B * (int(seed) + 1)) & MASK
    return s or DEFAULT_STATE


def index_mask(i: int) -> int:
    """`2**bit_length(i) - 1`: the smallest all-ones mask that covers 0 .. i (0 for i = 0)."""
    return (1 << int(i).bit_length()) - 1


def epoch_order(state: int, n: int) -> tuple[np.ndarray, int]:
    """The order of one epoch over `n` samples and the generator's state after it (section 7).

    For `i = 0 .. n-1`: step the state, `r = (s >> 16) & index_mask(i)`, until `r <= i`; then
    `a[i] = a[r]; a[r] = i` (in that order: with `r == i` the second write wins)."""
    if not 1 <= n <= 1 << INDEX_BITS:
        raise DpfmError(f"a resident data set of {n} samples is outside 1 .. {1 << INDEX_BITS}",
                        f"use at most {1 << INDEX_BITS} training samples")
    s = check_state(state)
    a = np.zeros(n, dtype=np.int64)
    for i in range(n):
        mask = index_mask(i)
        while True:
            s = step(s)
            r = (s >> DRAW_SHIFT) & mask
            if r <= i:
                break
        a[i] = a[r]
        a[r] = i
    return a, s


def loss_sum(a_raw: np.ndarray, y_raw: np.ndarray, x: Fmt) -> int:
    """The core's loss of a batch: the sum over samples and outputs of `sat_x(a - y)**2` (raw, exact)."""
    e = np.clip(np.asarray(a_raw, dtype=np.int64) - np.asarray(y_raw, dtype=np.int64), x.min_raw, x.max_raw)
    return int(np.sum(e * e))


def mean_loss(total: int, n_samples: int, n_outputs: int, x: Fmt) -> float:
    """An epoch's loss sum as the mean squared error per sample and output, in float (the MSE of
    `golden.trainer.loss_and_slope`, on the quantized targets with the error saturated)."""
    return float(total) / (n_samples * n_outputs * float(1 << 2 * x.frac))


def train_epoch(model, w_raw, X_raw, Y_raw, state: int, batch: int, lr: float):
    """One resident epoch of a `golden.fixed_mlp.FixedModel` as the core runs it: `(weights, loss sum,
    shuffle state)` after it. Batch b is `order[b * batch : (b + 1) * batch]` (the last may be shorter, and its
    step is `lr / its length`), trained exactly as a CTRL_TRAIN of those samples in that order."""
    order, state = epoch_order(state, len(X_raw))
    total = 0
    for start in range(0, len(order), batch):
        idx = order[start:start + batch]
        total += loss_sum(model.predict(w_raw, X_raw[idx]), Y_raw[idx], model.fmts.x)
        G = model.batch_gradient(w_raw, X_raw[idx], Y_raw[idx])
        w_raw = model.sgd_update(w_raw, G, model.lr_raw(lr, len(idx)))
    return w_raw, total, state
