"""Scalar dual numbers with top-K tangent pruning: the executable definition of DPFM arithmetic in float.

A `Dual` is a primal value plus a sparse tangent `{weight-id: derivative}`. Every operator is one graph node
(docs/ARITHMETIC.md section 1): its tangent is computed exactly from the operands' (already pruned) tangents
and then pruned once with `prune_K`. `Dual.dot` (a neuron's affine map) is a single node as well, so a
network's top-K gradient does not depend on the order in which a sum is written. The loss functions
`mse`/`bce` are the sink of the graph and are NOT pruned: every output's pruned tangent reaches the gradient
in full, as the hardware's P-entry gradient accumulator receives it (docs/ARITHMETIC.md section 1).

This module is deliberately slow and obvious: it is the oracle the vectorized trainer (`golden.mlp`) is
tested against, and the place to read when in doubt about what "top-K forward mode" means.
"""

import math

from dpfm.golden.contract.net import NetSpec

# Keras' clipping epsilon for binary cross-entropy (see `bce`).
BCE_EPS = 1e-7


def prune(tangent: dict, k: int | None) -> dict:
    """prune_K: drop entries that are exactly 0, then keep the K highest by (|v| descending, id ascending).

    `k=None` keeps every non-zero entry (exact forward mode).
    """
    entries = [(i, v) for i, v in tangent.items() if v != 0.0]
    if k is not None and len(entries) > k:
        entries.sort(key=lambda e: (-abs(e[1]), e[0]))
        entries = entries[:k]
    return dict(sorted(entries))


def _check_k(k):
    if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
        raise ValueError(f"K must be a positive int or None, got {k!r}")
    return k


def _combine(terms, k):
    """Exact tangent of a node: sum of `coef * tangent` over `terms`, merged by id (math.fsum, so the result
    does not depend on term order), then pruned once."""
    by_id: dict[int, list[float]] = {}
    for coef, tangent in terms:
        for i, v in tangent.items():
            by_id.setdefault(i, []).append(coef * v)
    return prune({i: math.fsum(vs) for i, vs in by_id.items()}, k)


class Dual:
    """A primal `value` with a pruned tangent `{weight-id: d value / d weight}` and its resolution `k`.

    Operands of one expression must share `k`; plain numbers mix in as constants (empty tangent).
    """

    __slots__ = ("value", "tangent", "k")

    def __init__(self, value: float, tangent: dict | None = None, k: int | None = None):
        self.value = float(value)
        self.k = _check_k(k)
        self.tangent = prune(dict(tangent or {}), self.k)

    def __repr__(self):
        return f"Dual({self.value!r}, {self.tangent!r}, k={self.k!r})"

    # -- helpers -------------------------------------------------------------------------------------
    def _lift(self, other) -> "Dual":
        if isinstance(other, Dual):
            if other.k != self.k:
                raise ValueError(f"cannot combine duals with K={self.k} and K={other.k}")
            return other
        return Dual(other, None, self.k)

    def _node(self, value, terms) -> "Dual":
        out = Dual.__new__(Dual)
        out.value = float(value)
        out.k = self.k
        out.tangent = _combine(terms, self.k)
        return out

    # -- arithmetic nodes ----------------------------------------------------------------------------
    def __add__(self, other):
        o = self._lift(other)
        return self._node(self.value + o.value, [(1.0, self.tangent), (1.0, o.tangent)])

    __radd__ = __add__

    def __sub__(self, other):
        o = self._lift(other)
        return self._node(self.value - o.value, [(1.0, self.tangent), (-1.0, o.tangent)])

    def __rsub__(self, other):
        return self._lift(other) - self

    def __neg__(self):
        return self._node(-self.value, [(-1.0, self.tangent)])

    def __mul__(self, other):
        o = self._lift(other)
        return self._node(self.value * o.value, [(o.value, self.tangent), (self.value, o.tangent)])

    __rmul__ = __mul__

    def __truediv__(self, other):
        o = self._lift(other)
        return self._node(self.value / o.value,
                          [(1.0 / o.value, self.tangent), (-self.value / (o.value * o.value), o.tangent)])

    def __rtruediv__(self, other):
        return self._lift(other) / self

    def __pow__(self, other):
        """`a ** n` for a constant n, or `a ** b` for a dual b (then a must be positive)."""
        if isinstance(other, Dual):
            o = self._lift(other)
            value = self.value ** o.value
            return self._node(value, [(o.value * self.value ** (o.value - 1.0), self.tangent),
                                      (value * math.log(self.value), o.tangent)])
        n = float(other)
        return self._node(self.value ** n, [(n * self.value ** (n - 1.0), self.tangent)])

    def __rpow__(self, other):
        return self._lift(other) ** self

    # -- unary function nodes ------------------------------------------------------------------------
    def _unary(self, value, derivative):
        return self._node(value, [(derivative, self.tangent)])

    def sigmoid(self):
        s = _sigmoid(self.value)
        return self._unary(s, s * (1.0 - s))

    def tanh(self):
        t = math.tanh(self.value)
        return self._unary(t, 1.0 - t * t)

    def relu(self):
        """Derivative 0 at 0, as PyTorch and Keras."""
        return self._unary(max(self.value, 0.0), 1.0 if self.value > 0.0 else 0.0)

    def identity(self):
        return self._unary(self.value, 1.0)

    def log(self):
        return self._unary(math.log(self.value), 1.0 / self.value)

    def exp(self):
        e = math.exp(self.value)
        return self._unary(e, e)

    def activation(self, name: str):
        """Apply the activation called `name` (one of dpfm.golden.contract.net.ACTIVATIONS)."""
        return getattr(self, name)()

    # -- compound nodes ------------------------------------------------------------------------------
    @staticmethod
    def dot(ws, xs, b) -> "Dual":
        """`sum_i ws[i] * xs[i] + b` as ONE node: exact tangent of the whole sum, pruned once."""
        ws = list(ws)
        xs = list(xs)
        if len(ws) != len(xs):
            raise ValueError(f"dot of {len(ws)} weights with {len(xs)} inputs")
        anchor = next((d for d in [*ws, *xs, b] if isinstance(d, Dual)), None)
        if anchor is None:
            raise ValueError("Dual.dot needs at least one Dual operand")
        ws = [anchor._lift(w) for w in ws]
        xs = [anchor._lift(x) for x in xs]
        b = anchor._lift(b)
        value = math.fsum([w.value * x.value for w, x in zip(ws, xs)] + [b.value])
        terms = [(1.0, b.tangent)]
        for w, x in zip(ws, xs):
            terms += [(x.value, w.tangent), (w.value, x.tangent)]
        return anchor._node(value, terms)


def _sigmoid(z: float) -> float:
    """Logistic function without overflow for large |z|."""
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def param(value: float, wid: int, k: int | None = None) -> Dual:
    """A trainable parameter: tangent {wid: 1}."""
    return Dual(value, {int(wid): 1.0}, k)


def _loss_node(preds, targets, per_output, derivative) -> Dual:
    preds = list(preds)
    targets = [float(t) for t in targets]
    if len(preds) != len(targets):
        raise ValueError(f"{len(preds)} predictions for {len(targets)} targets")
    n = len(preds)
    anchor = preds[0]
    value = math.fsum(per_output(p.value, y) for p, y in zip(preds, targets)) / n
    out = Dual.__new__(Dual)
    out.value = float(value)
    out.k = anchor.k
    # The sink: exact sum over the outputs, zeros dropped, never pruned to K.
    out.tangent = _combine([(derivative(p.value, y) / n, p.tangent) for p, y in zip(preds, targets)], None)
    return out


def mse(preds, targets) -> Dual:
    """Mean squared error over the outputs (Keras' per-sample MSE): the unpruned sink node."""
    return _loss_node(preds, targets, lambda p, y: (p - y) ** 2, lambda p, y: 2.0 * (p - y))


def bce(preds, targets) -> Dual:
    """Binary cross-entropy averaged over the outputs: the unpruned sink node.

    The prediction is clipped to [BCE_EPS, 1 - BCE_EPS] as Keras does, and the derivative is taken at the
    clipped point and passed straight through the clip, so a saturated sigmoid still learns (a true clip
    derivative of 0 would freeze it for good).
    """
    def clip(p):
        return min(max(p, BCE_EPS), 1.0 - BCE_EPS)

    return _loss_node(preds, targets,
                      lambda p, y: -(y * math.log(clip(p)) + (1.0 - y) * math.log(1.0 - clip(p))),
                      lambda p, y: (clip(p) - y) / (clip(p) * (1.0 - clip(p))))


#: The loss node of each loss name (the names are `golden.contract.net.LOSSES`).
LOSS_FUNCTIONS = {"mse": mse, "bce": bce}


def network_loss(spec: NetSpec, flat, x, y, k: int | None) -> Dual:
    """One sample through the network built from Duals: the loss node, whose tangent is the sample's
    (top-K) gradient. `flat` is the P-vector of weights indexed by weight-id."""
    a = [Dual(float(v), None, k) for v in x]
    for layer, act in enumerate(spec.activations):
        n_out, n_in = spec.layer_shape(layer)
        ids = spec.weight_ids(layer)
        out = []
        for u in range(n_out):
            ws = [param(flat[ids[u, i]], ids[u, i], k) for i in range(n_in)]
            b = param(flat[ids[u, n_in]], ids[u, n_in], k)
            out.append(Dual.dot(ws, a, b).activation(act))
        a = out
    return LOSS_FUNCTIONS[spec.loss](a, y)
