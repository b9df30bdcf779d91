"""The toper's random demotion (docs/ARITHMETIC.md section 3d): one generator state per training run, one
mask per neuron, one hash per (neuron, weight-id).

Deterministic top-K keeps picking the same few (mostly last-layer) weights at small K. With demotion, each
entry of a neuron's tangent may be *demoted*, drawn once per (sample, neuron, weight-id), and ranks by
`(not demoted, |v|)` before the id: the largest entries usually win, but now and then each gives way, so
every weight is updated now and then. A neuron's own weights (its *direct* candidates, `d z/d w = x`) are
demoted with probability 3/4, the entries it inherits from its inputs' tangents with probability 1/4: the
direct terms are the largest entries of every neuron above the first layer, and without the higher rate
they fill the K slots, so the weights of earlier layers never reach the loss. In the toper the flag is one
more bit above the magnitude in every cell's comparator; the values are never changed.

The draws come from a 32-bit Galois LFSR whose state the host sets (the core's REG_DITHER, a checkpoint
field). Every neuron of a *training* sample, in issue order (sample, layer, unit), takes the current state as
its mask `M`, then the state steps once; inference does not step it. The entry of weight-id `i` in that
neuron gets hash bits `h_b = parity(i & M[16b : 16b+15]) ^ M[16b+15]` (b = 0, 1); an inherited entry is
demoted when both are 1, a direct one when either is. State 0 is the generator's fixed point: every hash is
0, nothing is demoted, and the toper is the plain top-K of section 3.3 bit for bit. The hash is linear in
`M`, so for two distinct ids (or one id in two consecutive neurons) the bits are independent and uniform
over the generator's states.
"""

import numpy as np

from dpfm.golden.contract.errors import DpfmError

#: Galois right-shift toggle mask of x^32 + x^22 + x^2 + x + 1 (maximal: period 2**32 - 1).
TAPS = 0x80200003
BITS = 32
#: Weight-ids a hash covers (a mask field's low 15 bits).
ID_BITS = 15
#: The state that turns dithering off: every mask is 0, so nothing is demoted (plain top-K, section 3.3).
OFF = 0


def step(state: int) -> int:
    """One step of the generator."""
    return (state >> 1) ^ (TAPS if state & 1 else 0)


def check_state(state) -> int:
    """A valid generator state (0 = demotion off), or a `DpfmError` naming the problem."""
    if isinstance(state, bool) or not isinstance(state, (int, np.integer)) or not 0 <= int(state) < 1 << BITS:
        raise DpfmError(f"dither state {state!r} is not a 32-bit value", "use 0 (off) .. 4294967295")
    return int(state)


def seed_state(seed: int) -> int:
    """The state a run with trainer seed `seed` starts from: a fixed non-zero function of the seed."""
    s = (0x9E3779B9 * (int(seed) + 1)) & 0xFFFFFFFF
    return s or 0x2545F491


def _step_columns() -> list[int]:
    """The generator's step as a GF(2) matrix: column j is the step of the state with only bit j set."""
    return [step(1 << j) for j in range(BITS)]


def _apply(columns: list[int], state: int) -> int:
    out = 0
    for j in range(BITS):
        if state >> j & 1:
            out ^= columns[j]
    return out


def advance(state: int, n: int) -> int:
    """The state after `n` steps, in O(log n) (the step is linear: square its matrix), for a host that skips
    the masks of a whole resident run (docs/ARITHMETIC.md 7) without listing them."""
    s, columns = check_state(state), _step_columns()
    while n:
        if n & 1:
            s = _apply(columns, s)
        columns = [_apply(columns, c) for c in columns]
        n >>= 1
    return s


def masks(state: int, n: int) -> tuple[np.ndarray, int]:
    """The masks of the next `n` neurons (int64), and the state after them."""
    out = np.empty(n, dtype=np.int64)
    s = check_state(state)
    for i in range(n):
        out[i] = s
        s = step(s)
    return out, s


def layer_masks(state: int, sizes, batch: int) -> tuple[list[np.ndarray], int]:
    """The masks of one training batch of a network whose layers have `sizes` units (sizes[1:] of a net),
    per layer `(batch, units)`, and the state after them: neurons take consecutive states in issue order
    (sample, layer, unit)."""
    per_sample = sum(sizes)
    flat, state = masks(state, batch * per_sample)
    flat = flat.reshape(batch, per_sample)
    bounds = np.cumsum((0,) + tuple(sizes))
    return [flat[:, bounds[l]:bounds[l + 1]] for l in range(len(sizes))], state


def _parity15(x):
    x = x & ((1 << ID_BITS) - 1)
    for shift in (8, 4, 2, 1):
        x = x ^ (x >> shift)
    return x & 1


def hash_bits(ids, mask):
    """`h = h_0 | h_1 << 1` of weight-ids under a neuron's mask, elementwise (int64 arrays that broadcast)."""
    ids = np.asarray(ids, dtype=np.int64)
    mask = np.asarray(mask, dtype=np.int64)
    h0 = _parity15(ids & mask) ^ (mask >> 15 & 1)
    h1 = _parity15(ids & (mask >> 16)) ^ (mask >> 31 & 1)
    return h0 | h1 << 1


def demoted(h, direct=False):
    """The demoted flag of a candidate with hash bits `h` (elementwise, bool): a *direct* candidate (the
    neuron's own weight, d(w x)/dw = x) when either hash bit is 1 (probability 3/4), an inherited one (a
    product with an input's tangent slot: an earlier layer's weight) when both are (probability 1/4)."""
    h = np.asarray(h)
    return np.where(direct, h != 0, h == 3)


def flags(ids, mask, direct=False):
    """`demoted(hash_bits(ids, mask), direct)` as int64 0/1: the flags the topers carry."""
    return demoted(hash_bits(ids, mask), direct).astype(np.int64)
