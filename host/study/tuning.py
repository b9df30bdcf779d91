"""The tuning rule: hyper-parameters come from the training split only, never from validation or one seed.

For each (task, selection rule, lr rule, K) the base learning rate is the rate of the task's fixed geometric
grid with the lowest *median over the tuning seeds* of the final loss on a holdout carved from the training
split (`tuning_split`); a run that diverges counts as infinite loss; ties go to the smaller rate. The
full-gradient baseline is tuned the same way. Tuning seeds differ from the evaluation seeds.
"""

import numpy as np

HOLDOUT = 0.2
SPLIT_SEED = 12345


def tuning_split(X, Y):
    """(X_fit, Y_fit, X_holdout, Y_holdout): a fixed random 20 % of the training split held out."""
    order = np.random.default_rng(SPLIT_SEED).permutation(len(X))
    n_hold = max(1, int(round(HOLDOUT * len(X))))
    hold, fit = order[:n_hold], order[n_hold:]
    return X[fit], Y[fit], X[hold], Y[hold]


def choose_lrs(tune_results: list, n_ks: int, lrs: list) -> list:
    """One rate per K from the tune units' `final` losses (`[K][lr]` each), by the rule above."""
    finals = np.array([r["final"] for r in tune_results], dtype=np.float64)  # (seeds, K, lr)
    finals[~np.isfinite(finals)] = np.inf
    median = np.median(finals, axis=0)
    assert median.shape == (n_ks, len(lrs))
    return [float(lrs[int(np.argmin(row))]) for row in median]  # argmin takes the first (smallest) on ties
