"""Selection rules (`golden.selection`) and learning-rate rules (`golden.lr_rules`) of the learning-quality
study: each keeps what it promises, and all of them reduce to the full gradient when K covers every weight."""

import numpy as np
import pytest

from dpfm.golden import lr_rules, selection
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.net import NetSpec
from dpfm.golden.mlp import GoldenTrainer
from dpfm.golden.topk import prune_rows

SPEC = NetSpec((3, 4, 2), ("sigmoid", "identity"), "mse")


def tied_rows(seed, shape=(2, 3, 4, 12)):
    """Rows with many exact ties and zeros (values from a small set)."""
    rng = np.random.default_rng(seed)
    return rng.choice([0.0, 0.5, -0.5, 1.0, -1.0, 0.25, 2.0], size=shape)


def layer_of(width=12):
    return np.repeat(np.arange(3), width // 3)


def data(n=12, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((n, SPEC.n_inputs))
    return X, np.stack([X.sum(1), X[:, 0] - X[:, 1]], axis=1)


PRUNE_RULES = sorted(n for n, r in selection.RULES.items() if not getattr(r, "contract_dither", False))


@pytest.mark.parametrize("name", PRUNE_RULES)
@pytest.mark.parametrize("seed", range(4))
def test_every_rule_keeps_min_k_nnz_entries_unchanged(name, seed):
    T = tied_rows(seed)
    ks = (3, 5)
    got = T.copy()
    selection.get_rule(name).prune(got, ks, layer_of(), np.random.default_rng(seed))
    kept = got != 0
    assert np.all(got[kept] == T[kept])  # values are never altered
    for r, k in enumerate(ks):
        if name == "batch":  # one id set per batch: at most K per row, exactly K over the batch's union
            assert np.all(kept[r].sum(-1) <= k)
            union = (T[r] != 0).any(axis=0)
            assert np.all(kept[r].any(axis=0).sum(-1) == np.minimum(k, union.sum(-1)))
        else:
            assert np.all(kept[r].sum(-1) == np.minimum(k, (T[r] != 0).sum(-1)))


def test_dither_without_shift_is_top_k():
    T = tied_rows(1)
    want, got = T.copy(), T.copy()
    prune_rows(want, (3, 5))
    selection.Dither(max_shift=0).prune(got, (3, 5), layer_of(), np.random.default_rng(0))
    assert np.array_equal(got, want)


def test_dither_sometimes_keeps_a_smaller_entry():
    T = np.array([[[[4.0, 3.0, 1.0, 0.5]]]])
    kept = set()
    rng = np.random.default_rng(0)
    for _ in range(200):
        row = T.copy()
        selection.Dither().prune(row, (2,), np.zeros(4, int), rng)
        kept.add(tuple(np.flatnonzero(row[0, 0, 0])))
    assert (0, 1) in kept and len(kept) > 1


def test_demote_own_ranks_the_undemoted_kind_first():
    """With every own-layer entry demoted and no inherited one, a row keeps its top K inherited entries (by
    |v|, then id) before any own weight; with the rates swapped, its own weights first."""
    T = tied_rows(2)
    lo = layer_of()
    own = lo == lo.max()
    for p_direct, p_inherited, first in ((1.0, 0.0, ~own), (0.0, 1.0, own)):
        got = T.copy()
        selection.Demote(p_inherited, p_direct=p_direct).prune(got, (3, 5), lo, np.random.default_rng(0))
        want = T * first
        prune_rows(want, (3, 5))
        assert np.array_equal(got * first, want)


@pytest.mark.parametrize("seed", range(4))
def test_random_tie_only_reorders_ties(seed):
    T = tied_rows(seed)
    want, got = T.copy(), T.copy()
    prune_rows(want, (3, 5))
    selection.RandomTie().prune(got, (3, 5), layer_of(), np.random.default_rng(seed))
    # the same multiset of kept |values| per row, and every entry above the K-th largest |v| kept by both
    assert np.array_equal(np.sort(np.abs(got), -1), np.sort(np.abs(want), -1))
    kth = np.sort(np.abs(want), -1)[..., ::-1]
    for r, k in enumerate((3, 5)):
        above = np.abs(T[r]) > kth[r][..., k - 1:k]
        assert np.all(got[r][above] == T[r][above])


def test_random_tie_varies_among_ties():
    T = np.ones((1, 1, 1, 6))
    rng = np.random.default_rng(0)
    chosen = set()
    for _ in range(50):
        row = T.copy()
        selection.RandomTie().prune(row, (2,), np.zeros(6, int), rng)
        chosen.add(tuple(np.flatnonzero(row)))
    assert len(chosen) > 5


def test_layer_quotas_split_k_newest_first():
    assert selection.layer_quotas(8, 3) == [2, 3, 3]
    assert selection.layer_quotas(2, 3) == [0, 1, 1]
    assert selection.layer_quotas(4, 1) == [4]


@pytest.mark.parametrize("seed", range(4))
def test_quota_reserves_each_layers_slots(seed):
    rng = np.random.default_rng(seed)
    T = rng.normal(size=(1, 2, 3, 12)) * (10.0 ** layer_of())  # newer layers have larger derivatives
    got = T.copy()
    selection.LayerQuota().prune(got, (4,), layer_of(), rng)
    for l, q in enumerate(selection.layer_quotas(4, 3)):
        assert np.all((got[..., layer_of() == l] != 0).sum(-1) == q)
    plain = T.copy()
    prune_rows(plain, (4,))
    assert np.all((plain[..., layer_of() == 0] != 0).sum(-1) == 0)  # what the quota prevents


def test_quota_gives_unused_slots_to_the_largest_entries():
    T = np.array([[[[0.0, 0.0, 0.0, 0.0, 0.1, 5.0, 4.0, 3.0, 2.0, 1.0, 0.0, 0.0]]]])
    got = T.copy()
    selection.LayerQuota().prune(got, (4,), layer_of(), np.random.default_rng(0))
    # quotas [1, 1, 2]: layer 1 keeps 5.0, layer 2 its reserved 2.0 and 1.0 (though layer 1's 3.0 is larger);
    # the slot empty layer 0 cannot use goes to the largest remaining entry, 4.0
    assert np.flatnonzero(got[0, 0, 0]).tolist() == [5, 6, 8, 9]


def test_batch_rule_keeps_one_id_set_per_batch():
    T = np.abs(tied_rows(3, (1, 5, 2, 12))) + 0.01
    got = T.copy()
    selection.BatchUnified().prune(got, (4,), layer_of(), np.random.default_rng(0))
    kept = got != 0
    assert np.all(kept == kept[:, :1]) and np.all(kept.sum(-1) == 4)


def final_weights(k, sel="topk", rule="constant", lr=0.3, epochs=2, spec=SPEC):
    X, Y = data()
    t = GoldenTrainer(spec, k, lr=lr, batch=4, seed=5, selection=sel, lr_rule=rule)
    t.train(X, Y[:, :spec.n_outputs], epochs, progress=False)
    return t._flat


@pytest.mark.parametrize("sel", sorted(selection.RULES))
@pytest.mark.parametrize("rule", sorted(lr_rules.RULES))
def test_k_covering_every_weight_is_the_full_gradient(sel, rule):
    full = final_weights(None, "topk", rule)
    assert np.array_equal(final_weights(SPEC.n_params, sel, rule), full)


def test_the_study_name_of_the_contract_dither_is_the_trainers_dither():
    """`demote-hw` in a study grid trains exactly as the trainer with `dither=True` (docs/ARITHMETIC.md 3d)."""
    X, Y = data()
    a = GoldenTrainer(SPEC, [2, 4], lr=0.3, batch=4, seed=5, dither=True)
    b = GoldenTrainer(SPEC, [2, 4], lr=[0.3, 0.3], batch=4, seed=5, selection="demote-hw", lr_rule="constant")
    for t in (a, b):
        t.train(X, Y, 3, progress=False)
    assert np.array_equal(a._flat, b._flat) and a.dither_state == b.dither_state != 0


def test_a_study_selection_rule_cannot_be_combined_with_the_contract_dither():
    with pytest.raises(DpfmError, match="replaces the contract's dither"):
        GoldenTrainer(SPEC, 2, lr=[0.3], seed=5, selection="dither", dither=True)


def test_defaults_reproduce_plain_sgd_bit_for_bit():
    """The rule path (taken with per-replica rates) with top-K and constant equals the default path."""
    X, Y = data()
    a = GoldenTrainer(SPEC, [2, 4], lr=0.3, batch=4, seed=5)
    b = GoldenTrainer(SPEC, [2, 4], lr=[0.3, 0.3], batch=4, seed=5, selection="topk", lr_rule="constant")
    for t in (a, b):
        t.train(X, Y, 3, progress=False)
    assert np.array_equal(a._flat, b._flat)


def test_per_replica_rates_match_separate_trainers():
    X, Y = data()
    both = GoldenTrainer(SPEC, [3, 3], lr=[0.1, 0.4], batch=4, seed=5, lr_rule="momentum")
    both.train(X, Y, 2, progress=False)
    for r, lr in enumerate((0.1, 0.4)):
        one = GoldenTrainer(SPEC, [3], lr=[lr], batch=4, seed=5, lr_rule="momentum")
        one.train(X, Y, 2, progress=False)
        np.testing.assert_allclose(both._flat[r], one._flat[0], rtol=1e-12)


def test_error_feedback_conserves_the_dropped_mass():
    """One layer: the output node is the only pruning point, so pruned + dropped is the full gradient, and
    the updates applied plus the residual left equal the sum of those full-rank contributions."""
    spec = NetSpec((3, 2), ("sigmoid",), "mse")
    X, Y = data(8)
    Y = Y[:, :2] / 4
    t = GoldenTrainer(spec, [2], lr=[1.0], batch=4, seed=5, lr_rule="ef")
    full = GoldenTrainer(spec, None, lr=1.0, batch=4, seed=5)
    g, _, dropped = t._plan.gradients(t._flat, X[:4], Y[:4], t._rule_rng, dropped=True)
    g_full, _ = full._plan.gradients(full._flat, X[:4], Y[:4])
    assert np.any(dropped != 0)
    np.testing.assert_allclose(g + dropped, g_full, atol=1e-15)
    w0 = t._flat.copy()
    total = np.zeros_like(w0)
    for start in (0, 4, 0):
        g, _, dropped = t._plan.gradients(t._flat, X[start:start + 4], Y[start:start + 4], t._rule_rng, dropped=True)
        total += g + dropped
        t.train_batch(X[start:start + 4], Y[start:start + 4])
    np.testing.assert_allclose(w0 - t._flat + t._rule_state, total, atol=1e-12)


def test_density_rule_scales_by_the_pruned_fraction():
    g = np.array([[0.0, 2.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    step, _ = lr_rules.Density().step(g, np.array([[0.5], [0.5]]), None)
    np.testing.assert_allclose(step, [[0.0, 4.0, 0.0, 0.0], [0.5, 0.5, 0.5, 0.5]])


def test_momentum_rule_averages_gradients():
    rule = lr_rules.Momentum(beta=0.5)
    state = rule.init((1, 2))
    step, state = rule.step(np.array([[2.0, 0.0]]), np.array([[1.0]]), state)
    step, state = rule.step(np.array([[0.0, 2.0]]), np.array([[1.0]]), state)
    np.testing.assert_allclose(step, [[0.5, 1.0]])


@pytest.mark.parametrize("kwargs, message", [
    (dict(selection="best"), "unknown selection rule"), (dict(lr_rule="adam"), "unknown learning-rate rule"),
    (dict(selection="dither", momentum=0.5), "float-only"), (dict(lr=[0.1]), "learning rates for 2 replicas"),
])
def test_bad_rule_options(kwargs, message):
    with pytest.raises(DpfmError, match=message):
        GoldenTrainer(SPEC, [2, 4], **kwargs)


@pytest.mark.parametrize("lr", [0.0, -1.0, float("inf"), float("nan")])
@pytest.mark.parametrize("rule", sorted(lr_rules.RULES))
def test_check_step_refuses_non_finite_or_non_positive_steps(rule, lr):
    with pytest.raises(DpfmError, match="non-finite or non-positive step"):
        lr_rules.check_step(lr_rules.get_rule(rule), lr, 5)
    lr_rules.check_step(lr_rules.get_rule(rule), 0.1, 5)


def test_study_runs_cannot_be_checkpointed(tmp_path):
    t = GoldenTrainer(SPEC, 2, selection="dither")
    with pytest.raises(DpfmError, match="not supported"):
        t.save(tmp_path / "c.npz")
