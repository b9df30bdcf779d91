"""golden.dual: the scalar executable definition of top-K forward mode (docs/ARITHMETIC.md section 1)."""

import math

import numpy as np
import pytest

from dpfm.golden import dual
from dpfm.golden.contract.net import NetSpec, flatten, init_weights
from dpfm.golden.dual import Dual, network_loss, param, prune


# -- prune_K -----------------------------------------------------------------------------------------------
def test_prune_drops_exact_zeros_even_without_k():
    assert prune({0: 0.0, 1: -0.0, 2: 1e-300, 3: -2.0}, None) == {2: 1e-300, 3: -2.0}


def test_prune_keeps_exactly_k_by_magnitude():
    t = {0: 0.1, 1: -3.0, 2: 2.0, 3: -0.5, 4: 1.0}
    assert prune(t, 3) == {1: -3.0, 2: 2.0, 4: 1.0}
    assert prune(t, 1) == {1: -3.0}
    assert prune(t, 10) == t


def test_prune_tie_rule_lower_id_wins():
    """Named tie case: |v| equal across signs and ids; the lowest ids survive, exactly K entries."""
    t = {9: 1.0, 5: -1.0, 3: 1.0, 7: -1.0, 1: 0.5}
    assert prune(t, 2) == {3: 1.0, 5: -1.0}
    assert prune(t, 3) == {3: 1.0, 5: -1.0, 7: -1.0}
    assert prune(t, 4) == {3: 1.0, 5: -1.0, 7: -1.0, 9: 1.0}


def test_prune_zero_never_fills_a_slot():
    assert prune({0: 0.0, 1: 0.0, 2: 5.0}, 2) == {2: 5.0}


# -- operators against central differences ---------------------------------------------------------------
def _numeric(f, values, i, h=1e-6):
    up = list(values)
    dn = list(values)
    up[i] += h
    dn[i] -= h
    return (f(*up) - f(*dn)) / (2 * h)


@pytest.mark.parametrize("name,f", [
    ("add", lambda a, b: a + b), ("radd", lambda a, b: 2.5 + a), ("sub", lambda a, b: a - b),
    ("rsub", lambda a, b: 1.0 - b), ("mul", lambda a, b: a * b), ("rmul", lambda a, b: 3.0 * b),
    ("div", lambda a, b: a / b), ("rdiv", lambda a, b: 2.0 / b), ("neg", lambda a, b: -a),
    ("pow_const", lambda a, b: a ** 3), ("pow_dual", lambda a, b: a ** b), ("rpow", lambda a, b: 2.0 ** b),
    ("sigmoid", lambda a, b: (a * b).sigmoid()), ("tanh", lambda a, b: (a - b).tanh()),
    ("relu", lambda a, b: (a - b).relu()), ("identity", lambda a, b: (a * b).identity()),
    ("log", lambda a, b: (a * b).log()), ("exp", lambda a, b: (a - b).exp()),
])
def test_operator_tangent_matches_central_difference(name, f):
    values = [1.3, 0.7]
    out = f(param(values[0], 0), param(values[1], 1))

    def primal(a, b):
        return f(Dual(a), Dual(b)).value

    for i in range(2):
        assert out.tangent.get(i, 0.0) == pytest.approx(_numeric(primal, values, i), rel=1e-6, abs=1e-8), (name, i)


def test_relu_derivative_at_zero_is_zero():
    assert param(0.0, 0).relu().tangent == {}


def test_sigmoid_does_not_overflow():
    assert param(-1000.0, 0).sigmoid().value == 0.0
    assert param(1000.0, 0).sigmoid().value == 1.0


def test_mixing_k_values_is_refused():
    with pytest.raises(ValueError):
        param(1.0, 0, k=2) + param(1.0, 1, k=3)


@pytest.mark.parametrize("k", [0, -1, 1.5, True])
def test_bad_k_is_refused(k):
    with pytest.raises(ValueError):
        Dual(1.0, None, k)


# -- node-level pruning ------------------------------------------------------------------------------------
def test_every_operator_is_a_node_pruned_to_k():
    a = Dual(1.0, {0: 1.0, 1: 2.0}, k=2)
    b = Dual(1.0, {2: 3.0, 3: 0.5}, k=2)
    assert (a + b).tangent == {1: 2.0, 2: 3.0}
    assert (a * b).tangent == {1: 2.0, 2: 3.0}


def test_dot_is_one_node_independent_of_order():
    """Chained `+`/`*` prune after every step, so the order of the sum changes the result; `dot` prunes once."""
    rng = np.random.default_rng(3)
    k = 3
    xs = [Dual(float(rng.normal()), {10 + j: float(rng.normal()) for j in range(4)}, k) for _ in range(5)]
    ws = [param(float(rng.normal()), i, k) for i in range(5)]
    b = param(0.2, 5, k)
    ref = Dual.dot(ws, xs, b)
    perm = [4, 2, 0, 3, 1]
    again = Dual.dot([ws[i] for i in perm], [xs[i] for i in perm], b)
    assert again.tangent == ref.tangent and again.value == pytest.approx(ref.value, abs=1e-15)
    assert len(ref.tangent) == k
    # The exact sum, then one prune: the survivors are the K largest of the unpruned tangent.
    exact = Dual.dot([Dual(w.value, w.tangent, None) for w in ws], [Dual(x.value, x.tangent, None) for x in xs],
                     Dual(b.value, b.tangent, None))
    assert ref.tangent == prune(exact.tangent, k)


def test_loss_node_is_not_pruned():
    """The loss is the sink: every output's (already pruned) tangent reaches the gradient, even past K."""
    k = 1
    preds = [Dual(0.5, {0: 1.0}, k), Dual(0.2, {1: -3.0}, k)]
    loss = dual.mse(preds, [0.0, 1.0])
    # d/dw0 = 2*(0.5-0)/2*1 = 0.5, d/dw1 = 2*(0.2-1)/2*(-3) = 2.4: both survive although K = 1.
    assert loss.value == pytest.approx((0.25 + 0.64) / 2)
    assert loss.tangent == {0: pytest.approx(0.5), 1: pytest.approx(2.4)}


def test_bce_value_and_derivative():
    p = param(0.3, 0)
    loss = dual.bce([p], [1.0])
    assert loss.value == pytest.approx(-math.log(0.3))
    assert loss.tangent[0] == pytest.approx(-1 / 0.3)


# -- whole networks ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("acts,loss", [(("sigmoid", "tanh", "identity"), "mse"), (("tanh", "relu", "sigmoid"), "bce")])
def test_full_mode_network_gradient_matches_central_differences(acts, loss):
    spec = NetSpec((3, 4, 3, 2), acts, loss)
    rng = np.random.default_rng(0)
    flat = flatten(spec, init_weights(spec, rng, "kaiming"))
    x, y = rng.normal(size=3), rng.uniform(size=2)
    grad = network_loss(spec, flat, x, y, None).tangent
    h = 1e-6
    for i in range(spec.n_params):
        up, dn = flat.copy(), flat.copy()
        up[i] += h
        dn[i] -= h
        num = (network_loss(spec, up, x, y, None).value - network_loss(spec, dn, x, y, None).value) / (2 * h)
        assert grad.get(i, 0.0) == pytest.approx(num, rel=1e-5, abs=1e-8), i


def test_network_top_k_with_k_at_least_p_is_full_mode():
    spec = NetSpec((2, 3, 1), ("sigmoid", "identity"))
    flat = np.linspace(-1, 1, spec.n_params)
    full = network_loss(spec, flat, [0.3, -0.7], [0.5], None)
    big = network_loss(spec, flat, [0.3, -0.7], [0.5], spec.n_params)
    assert big.tangent == full.tangent and big.value == full.value


def test_network_top_k_keeps_at_most_k():
    spec = NetSpec((4, 5, 5, 1), ("sigmoid", "sigmoid", "identity"))
    flat = np.linspace(-1, 1, spec.n_params)
    for k in (1, 2, 8):
        assert len(network_loss(spec, flat, [0.1, 0.2, 0.3, 0.4], [1.0], k).tangent) == k
