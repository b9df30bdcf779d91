"""Selection rules: which K entries of a node's tangent survive pruning (the golden trainer's prune call site).

Deterministic top-K (docs/ARITHMETIC.md §1, `topk.prune_rows`) keeps picking the same weights at small K:
the last layer's derivatives are the largest, and among equal derivatives (saturated pixels) the lowest id
always wins. The rules here change only *which* entries are kept; kept values are never altered, so every
rule keeps exactly min(K, nnz) entries and equals the full gradient when K covers the row.

A rule is called as `rule.prune(T, ks, layer_of, rng)`:
- `T` `(R, B, n, width)`: one tangent row per replica, sample and unit (last axis = weight-id order),
  pruned in place;
- `ks[r]`: replica r's K (a value >= width means "do not prune", as in `prune_rows`);
- `layer_of` `(width,)`: the layer each column's weight belongs to;
- `rng`: a `numpy.random.Generator` the rule may draw from (the trainer's, separate from the shuffling one,
  so every rule sees the same batches).

Each rule's docstring says what the hardware toper would need for it. `RULES` names them for the study.
"""

import numpy as np

from dpfm.golden.rules import lookup
from dpfm.golden.topk import prune_rows


def _keep_top(T: np.ndarray, key: np.ndarray, ks) -> None:
    """Keep in `T` the entries whose `key` ranks in the top K (key desc, id asc); `key` is 0 exactly where
    `T` is 0 and is consumed."""
    prune_rows(key, ks)
    T *= key != 0


def keep_top_ranked_up(T: np.ndarray, up: np.ndarray, ks) -> None:
    """Keep in `T` its top K by (`up` first, then |v|, then the lower id): the order key of a priority bit
    above the magnitude (the contract's dither, quotas). |v| is scaled into [0, 1] per row under the bit."""
    A = np.abs(T)
    scale = np.maximum(A.max(axis=-1, keepdims=True), np.nextafter(0.0, 1.0))
    _keep_top(T, np.where(up, 2.0 + A / scale, A / scale) * (A != 0), ks)


class TopK:
    """Today's rule (default): rank by |v|, ties to the lowest id. The contract's toper, unchanged."""

    name = "topk"

    def prune(self, T, ks, layer_of, rng) -> None:
        prune_rows(T, ks)


class Dither:
    """Rank by |v| * 2^-r with r drawn uniformly from 0..max_shift per candidate; ties to the lowest id.

    Small entries sometimes outrank large ones, so weights that deterministic top-K always loses get an
    update now and then. max_shift = 0 is top-K. Hardware: ceil(log2(max_shift + 1)) LFSR bits per
    candidate and a barrel shift (0..max_shift) of the order key's magnitude before the comparators; the key
    used for comparing travels with the entry (max_shift + a few extra bits per cell), the value is unchanged.
    """

    def __init__(self, max_shift: int = 3):
        self.max_shift = int(max_shift)
        self.name = "dither" if self.max_shift == 3 else f"dither{self.max_shift}"

    def prune(self, T, ks, layer_of, rng) -> None:
        r = rng.integers(0, self.max_shift + 1, size=T.shape)
        _keep_top(T, np.ldexp(np.abs(T), -r), ks)


class RandomTie:
    """Rank by |v|; ties broken by a random priority instead of the lowest id.

    Changes only which of several equal-|v| entries straddling the K-th place survive (saturated inputs make
    such ties common on digits). Hardware: a few LFSR bits per candidate appended below the key's LSB in the
    comparator (instead of the id compare); the priority travels with the entry.
    """

    name = "random-tie"

    def prune(self, T, ks, layer_of, rng) -> None:
        A = np.abs(T)
        # Rank within each row by (|v| desc, random desc) and keep ranks below K.
        order = np.lexsort((rng.random(T.shape), A), axis=-1)[..., ::-1]
        rank = np.empty_like(order)
        np.put_along_axis(rank, order, np.arange(T.shape[-1]), axis=-1)
        k = np.array(ks).reshape((len(ks),) + (1,) * (T.ndim - 1))
        T *= (rank < k) | (k >= T.shape[-1])


class DitherRandomTie(Dither):
    """Dither, with the ties the shifted keys leave broken at random (RandomTie applied to the shifted key).

    Hardware: Dither's barrel shift plus RandomTie's priority bits.
    """

    def __init__(self, max_shift: int = 3):
        super().__init__(max_shift)
        self.name = "dither-rt"

    def prune(self, T, ks, layer_of, rng) -> None:
        r = rng.integers(0, self.max_shift + 1, size=T.shape)
        key = np.ldexp(np.abs(T), -r)
        RandomTie().prune(key, ks, layer_of, rng)
        T *= key != 0


class Demote:
    """Rank by (not demoted, |v|), ties to the lowest id; an entry is demoted with probability `p`, drawn once
    per (sample, node, weight-id), so the few largest entries do not always win. With `p_direct`, a node's own
    weights (its direct terms, the row's newest layer) are demoted with that probability instead: the study's
    stand-in for the contract's class-dependent flags (docs/ARITHMETIC.md 3d), to compare rates before they
    are hashed.

    Hardware: one priority bit per entry above the order key's magnitude (one more comparator bit per cell),
    drawn from a hash of the id; the value is unchanged. Cheaper than `Dither`'s shifted magnitudes. A
    separate rate for direct terms adds a 2:1 select of the flag by the candidate's kind in each lane.
    """

    def __init__(self, p: float = 0.25, p_direct: float | None = None):
        self.p = float(p)
        self.p_direct = self.p if p_direct is None else float(p_direct)
        if p_direct is not None:
            self.name = f"demote-own{round(self.p_direct * 100)}-{round(self.p * 100)}"
        else:
            self.name = "demote" if self.p == 0.25 else f"demote{round(self.p * 100)}"

    def prune(self, T, ks, layer_of, rng) -> None:
        p = np.where(layer_of == layer_of.max(), self.p_direct, self.p)
        keep_top_ranked_up(T, rng.random(T.shape) >= p, ks)


class ContractDither:
    """The contract's dither (docs/ARITHMETIC.md 3d), for the study: the trainer turns on its own `dither`
    (flags hashed from the weight-ids under per-neuron LFSR masks, p = 3/4 for a neuron's own weights and 1/4
    for inherited entries, as the lanes compute them) and prunes with the contract's top-K; this object only
    names it in a grid."""

    name = "demote-hw"
    contract_dither = True

    exact_last = False

    def prune(self, T, ks, layer_of, rng) -> None:
        raise NotImplementedError("the trainer prunes with its own dither flags")


class ContractDitherExactLast(ContractDither):
    """The contract's dither, and the output layer's gradient exact (`GoldenTrainer(exact_last=True)`): an
    output neuron forms no direct candidates, so its K slots all go to the layers below, and the sink adds
    `delta_o * [a, 1]` for the output layer's own weights, which it has locally without any tangent.

    Hardware (docs/ARITHMETIC.md 3f): the gradient unit walks the output layer's inputs once per output
    (n_in + 1 more G read-modify-writes per output and sample, from a copy of those inputs and the neuron's
    slope); the lanes treat the output layer as frozen (3e).
    """

    name = "demote-hw-el"
    exact_last = True


def layer_quotas(k: int, layers: int) -> list:
    """Reserved slots per layer present in a row (oldest first): K split evenly, the remainder to the newest
    layers (the node's own layer first, since only the output node can update the output layer)."""
    q = [k // layers] * layers
    for j in range(k % layers):
        q[layers - 1 - j] += 1
    return q


class LayerQuota:
    """Per-layer slot quotas (the note's hierarchical topers): each layer present in a node's row is
    guaranteed min(quota, its non-zeros) slots (`layer_quotas`); the slots left over go to the largest
    remaining entries of any layer. So earlier layers are not starved by the last layer's larger derivatives.

    Hardware: one sub-toper per layer with q_l cells (sum q_l = K, the same register count) whose evictions
    feed a shared toper of K cells; read-out fills K slots from the sub-topers first, then the shared one
    (K more cells, a layer tag of ceil(log2 L) bits per candidate to steer it).
    """

    name = "quota"

    def prune(self, T, ks, layer_of, rng) -> None:
        width = T.shape[-1]
        present = np.unique(layer_of)
        A = np.abs(T)
        in_quota = np.zeros(T.shape, dtype=bool)
        quotas = [layer_quotas(k, len(present)) if k < width else [width] * len(present) for k in ks]
        for j, l in enumerate(present):
            q = np.array([qs[j] for qs in quotas])
            sub = np.where(layer_of == l, A, 0.0)
            prune_rows(sub, tuple(np.maximum(q, 1).tolist()))
            in_quota |= (sub != 0) & (q > 0).reshape((len(ks),) + (1,) * (T.ndim - 1))
        keep_top_ranked_up(T, in_quota, ks)


class BatchUnified:
    """One selection per mini-batch (as meProp): every sample of a batch keeps the same ids at a node, the K
    with the largest sum over the batch of |v|; each sample then keeps its own values for them.

    Hardware: the batch's samples share one toper pass per node (an accumulating toper whose cells sum |v|
    per id over the batch, then a second pass that gathers each sample's values for the K winners): a
    |v| adder per cell and a second read of the tangents, or a batch-parallel datapath.
    """

    name = "batch"

    def prune(self, T, ks, layer_of, rng) -> None:
        score = np.abs(T).sum(axis=1, keepdims=True)
        prune_rows(score, ks)
        T *= score != 0


RULES = {rule.name: rule for rule in (TopK(), Dither(), Dither(1), RandomTie(), DitherRandomTie(), LayerQuota(),
                                        BatchUnified(), Demote(), Demote(0.5), Demote(0.125), Demote(0.25, p_direct=0.75),
                                        Demote(0.25, p_direct=0.875), Demote(0.25, p_direct=0.5),
                                        Demote(0.0, p_direct=0.75), Demote(0.0, p_direct=0.5), ContractDither(),
                                        ContractDitherExactLast())}
DEFAULT = "topk"


def get_rule(rule):
    """A selection rule from its name (or a rule object, returned as is)."""
    return lookup(RULES, rule, "selection rule")
