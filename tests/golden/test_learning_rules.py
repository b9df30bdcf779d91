"""The learning rules DPFM is compared with (golden/learning_rules.py) and quantized training (golden/quant.py
`WeightQuant`): each rule against a case whose answer is known."""

import numpy as np
import pytest

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.net import NetSpec, flatten, init_weights
from dpfm.golden.learning_rules import (Backprop, DirectFeedbackAlignment, FeedbackAlignment, HsicBottleneck,
                                        SyntheticGradients, centre, gaussian_kernel, hsic, hsic_gradient,
                                        make_rule, median_width)
from dpfm.golden.mlp import GoldenTrainer, _Passes
from dpfm.golden.quant import WeightQuant
from dpfm.golden.rule_trainer import RuleTrainer

NETS = [NetSpec((5, 4, 3, 2), ("sigmoid", "tanh", "sigmoid"), "mse"),
        NetSpec((6, 5, 1), ("relu", "sigmoid"), "bce"),
        NetSpec((3, 4, 4, 3), ("tanh", "identity", "sigmoid"), "mse")]


def _data(spec, n=7, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, spec.n_inputs))
    Y = rng.integers(0, 2, (n, spec.n_outputs)).astype(float)
    return X, Y


def _rule(cls, spec, layers, **kw):
    rule = cls(**kw)
    rule.init(spec, layers, np.random.default_rng(1))
    return rule


@pytest.mark.parametrize("spec", NETS, ids=lambda s: "-".join(map(str, s.sizes)))
def test_backprop_is_the_full_forward_mode_gradient(spec):
    layers = init_weights(spec, np.random.default_rng(3), "kaiming")
    X, Y = _data(spec)
    grads, losses = _rule(Backprop, spec, layers).gradients(layers, X, Y)
    forward, forward_losses = _Passes(spec, (None,), "dense").gradients(flatten(spec, layers)[None], X, Y)
    assert np.allclose(flatten(spec, grads), forward[0], rtol=1e-10, atol=1e-14)
    assert np.allclose(losses, forward_losses[0])


def test_backprop_trains_as_the_full_gradient_trainer():
    spec = NETS[0]
    X, Y = _data(spec, 40)
    a = RuleTrainer(spec, "backprop", lr=0.5, batch=4, seed=2)
    b = GoldenTrainer(spec, None, lr=0.5, batch=4, seed=2, dither=False)
    a.train(X, Y, 3, progress=False)
    b.train(X, Y, 3, progress=False)
    for (Wa, ba), (Wb, bb) in zip(a.weights, b.weights):
        assert np.allclose(Wa, Wb, atol=1e-12) and np.allclose(ba, bb, atol=1e-12)
    assert np.allclose(a.history["train_loss"], b.history["train_loss"])


@pytest.mark.parametrize("spec", NETS, ids=lambda s: "-".join(map(str, s.sizes)))
def test_feedback_alignment_with_the_forward_weights_as_feedback_is_backprop(spec):
    layers = init_weights(spec, np.random.default_rng(4), "kaiming")
    X, Y = _data(spec)
    fa = _rule(FeedbackAlignment, spec, layers)
    random_feedback = fa.gradients(layers, X, Y)[0]
    fa.feedback = [W for W, _ in layers]
    exact = _rule(Backprop, spec, layers).gradients(layers, X, Y)[0]
    assert np.array_equal(flatten(spec, fa.gradients(layers, X, Y)[0]), flatten(spec, exact))
    # the random feedback changes the hidden layers only: the output layer's gradient is the loss's own
    assert np.array_equal(random_feedback[-1][0], exact[-1][0])
    assert not np.allclose(random_feedback[0][0], exact[0][0])


def test_direct_feedback_alignment_on_one_hidden_layer_with_the_output_weights_is_backprop():
    spec = NetSpec((5, 4, 3), ("sigmoid", "sigmoid"), "mse")
    layers = init_weights(spec, np.random.default_rng(5), "kaiming")
    X, Y = _data(spec)
    dfa = _rule(DirectFeedbackAlignment, spec, layers)
    dfa.feedback = [layers[1][0]]
    exact = _rule(Backprop, spec, layers).gradients(layers, X, Y)[0]
    assert np.array_equal(flatten(spec, dfa.gradients(layers, X, Y)[0]), flatten(spec, exact))


def test_direct_feedback_sends_the_output_error_to_every_hidden_layer():
    spec = NETS[0]
    layers = init_weights(spec, np.random.default_rng(5), "kaiming")
    dfa = _rule(DirectFeedbackAlignment, spec, layers)
    assert [D.shape for D in dfa.feedback] == [(2, 4), (2, 3)]


def test_synthetic_gradient_module_learns_a_known_linear_gradient():
    spec = NETS[0]
    layers = init_weights(spec, np.random.default_rng(6), "kaiming")
    dni = _rule(SyntheticGradients, spec, layers, module_lr=0.5)
    rng = np.random.default_rng(7)
    A, c = rng.normal(size=(4, 4)), rng.normal(size=4)
    for _ in range(3000):
        a = rng.uniform(0, 1, (16, 4))
        dni.fit(0, a, a @ A + c)
    a = rng.uniform(0, 1, (8, 4))
    assert np.allclose(dni.predict(0, a), a @ A + c, atol=1e-3)


def test_synthetic_gradients_start_at_zero_so_only_the_output_layer_learns_first():
    spec = NETS[0]
    layers = init_weights(spec, np.random.default_rng(6), "kaiming")
    X, Y = _data(spec)
    dni = _rule(SyntheticGradients, spec, layers)
    grads = dni.gradients(layers, X, Y)[0]
    assert not np.any(grads[0][0]) and not np.any(grads[1][0]) and np.any(grads[2][0])
    # ... and the step trained the top hidden layer's module towards the gradient the output layer sends back
    assert np.any(dni.modules[1][0]) and not np.any(dni.modules[0][0])


def test_hsic_estimator_equals_its_expanded_formula():
    rng = np.random.default_rng(8)
    m = 9
    K = gaussian_kernel(rng.normal(size=(m, 3)), 1.5)
    L = gaussian_kernel(rng.normal(size=(m, 2)), 0.7)
    # tr(K H L H) = sum K.L - 2/m sum_i (K 1)_i (L 1)_i + (1^T K 1)(1^T L 1) / m^2 (Gretton et al. 2005)
    direct = (np.sum(K * L) - 2.0 / m * np.sum(K.sum(1) * L.sum(1)) + K.sum() * L.sum() / m ** 2) / (m - 1) ** 2
    assert hsic(K, L) == pytest.approx(direct, rel=1e-12)
    assert hsic(K, K) > 0 and hsic(K, np.ones((m, m))) == pytest.approx(0.0, abs=1e-12)


def test_hsic_gradient_matches_finite_differences():
    rng = np.random.default_rng(9)
    X, Z = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    kx = centre(gaussian_kernel(X, 2.0))
    s2 = 0.8
    g = hsic_gradient(kx, Z, s2)
    eps = 1e-6
    num = np.zeros_like(Z)
    for i in range(Z.shape[0]):
        for j in range(Z.shape[1]):
            Zp, Zm = Z.copy(), Z.copy()
            Zp[i, j] += eps
            Zm[i, j] -= eps
            num[i, j] = (hsic(kx, gaussian_kernel(Zp, s2)) - hsic(kx, gaussian_kernel(Zm, s2))) / (2 * eps)
    assert np.allclose(g, num, atol=1e-8)


def test_median_width():
    assert median_width(np.array([[0.0], [1.0], [3.0]])) == 4.0     # squared distances 1, 9, 4
    assert median_width(np.ones((3, 2))) == 1.0                     # no non-zero distance


def test_hsic_bottleneck_hidden_layers_descend_their_own_objective():
    spec = NETS[0]
    layers = init_weights(spec, np.random.default_rng(10), "kaiming")
    X, Y = _data(spec, 12)
    grads = _rule(HsicBottleneck, spec, layers).gradients(layers, X, Y)[0]
    exact = _rule(Backprop, spec, layers).gradients(layers, X, Y)[0]
    assert np.array_equal(grads[-1][0], exact[-1][0])      # the output layer learns from the loss
    assert np.any(grads[0][0]) and not np.allclose(grads[0][0], exact[0][0])


@pytest.mark.parametrize("name", ["backprop", "fa", "dfa", "dni", "hsic"])
def test_every_rule_learns_digits_beyond_chance(name):
    from dpfm.golden.tasks import accuracy, get_task
    task = get_task("digits")
    X, Y, Xv, Yv = task.load()
    t = RuleTrainer(task.spec, name, lr=16.0, batch=10, seed=0, init=task.init)
    t.train(X, Y, 3, progress=False)
    assert accuracy(t.predict(Xv), Yv) > 0.5


def test_unknown_rule_and_options_that_do_not_apply_are_refused():
    with pytest.raises(DpfmError, match="unknown learning rule 'sgd'"):
        make_rule("sgd")
    with pytest.raises(DpfmError, match="momentum"):
        RuleTrainer(NETS[0], "fa", momentum=0.5)


# -- quantized training ------------------------------------------------------------------------------------
def _on_grid(quant, layers):
    return all(np.array_equal(W, Wq) and np.array_equal(b, bq) for (W, b), (Wq, bq) in zip(layers, quant.layers(layers)))


@pytest.mark.parametrize("quant", [WeightQuant(4, "symm", "global"), WeightQuant(6, "asymm", "layer")],
                         ids=lambda q: q.label)
def test_quantized_training_keeps_the_weights_on_the_grid_after_every_update(quant):
    spec = NETS[0]
    X, Y = _data(spec, 20)
    for trainer in (RuleTrainer(spec, "fa", quant=quant, lr=8.0, batch=5), GoldenTrainer(spec, 2, quant=quant, lr=8.0, batch=5)):
        w = trainer.weights
        assert _on_grid(quant, w)
        for i in range(0, 20, 5):
            trainer.train_batch(X[i:i + 5], Y[i:i + 5])
            assert _on_grid(quant, trainer.weights)
        assert any(not np.array_equal(a, b) for (a, _), (b, _) in zip(w, trainer.weights))


def test_an_update_below_half_a_grid_step_is_lost():
    """Every weight keeps its code: only the range (the largest |w|, which moved a little) rescales the grid."""
    spec = NETS[0]
    X, Y = _data(spec, 5)
    t = RuleTrainer(spec, "backprop", quant=WeightQuant(3, "symm", "global"), lr=1e-6, batch=5)

    def codes():
        flat = flatten(spec, t.weights)
        return np.rint(flat / np.max(np.abs(flat)) * 3)
    before = codes()
    t.train_batch(X, Y)
    assert np.array_equal(codes(), before)


def test_sixteen_bits_train_close_to_float():
    spec = NETS[0]
    X, Y = _data(spec, 40)
    a = RuleTrainer(spec, "backprop", lr=0.5, batch=4, seed=1)
    b = RuleTrainer(spec, "backprop", quant=WeightQuant(16), lr=0.5, batch=4, seed=1)
    for t in (a, b):
        t.train(X, Y, 5, progress=False)
    assert np.allclose(a.history["train_loss"], b.history["train_loss"], rtol=1e-3)


def test_bad_quantizers_are_refused():
    with pytest.raises(DpfmError, match="unknown quantizer 'log'"):
        WeightQuant(8, "log")
    with pytest.raises(DpfmError, match="scope"):
        WeightQuant(8, "symm", "channel")
    with pytest.raises(DpfmError, match="1 bits"):
        WeightQuant(1, "symm")
    with pytest.raises(DpfmError, match="fixed-point formats"):
        from dpfm.golden.contract.formats import HwFormats
        GoldenTrainer(NETS[0], 2, quant=WeightQuant(8), fixed=HwFormats())


def test_a_diverged_network_is_stored_as_it_is():
    """The quantizer leaves NaN or infinite weights alone, so the run's loss reports the divergence."""
    layers = [(np.array([[np.nan, 1.0]]), np.array([0.5])), (np.array([[2.0]]), np.array([np.inf]))]
    stored = WeightQuant(4).layers(layers)
    assert stored is layers
    flat = np.array([[np.nan] * NETS[0].n_params, flatten(NETS[0], init_weights(NETS[0], np.random.default_rng(0)))])
    rows = WeightQuant(4).rows(NETS[0], flat)
    assert np.all(np.isnan(rows[0])) and np.array_equal(rows[1], WeightQuant(4).rows(NETS[0], flat[1:])[0])
