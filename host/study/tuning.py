"""The tuning rule: hyper-parameters come from the training split only, never from validation or one seed.

For each (task, selection rule, lr rule, K) the base learning rate is the rate of the task's fixed geometric
grid with the lowest *median over the tuning seeds* of the final loss on a holdout carved from the training
split (`tuning_split`); a run that diverges counts as infinite loss; ties go to the smaller rate. The
full-gradient baseline is tuned the same way. Tuning seeds differ from the evaluation seeds.
"""

import numpy as np

HOLDOUT = 0.2
SPLIT_SEED = 12345
#: The rates tried for a user's own data (no --lr): seed-sum's grid, geometric with ratio sqrt(10).
USER_GRID = (0.01, 0.0316, 0.1, 0.316, 1.0)
TUNE_SEEDS = (100, 101)


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


def holdout_finals(spec, ks, lrs, batch: int, epochs: int, seed: int, X, Y, progress: bool = False,
                   **settings) -> list:
    """The tuning rule's measurement: every K at every rate of `lrs`, side by side as replicas of one float
    golden trainer (`settings`: selection, lr_rule, dither), trained on the fit part of `tuning_split(X, Y)`;
    returns the last epoch's holdout losses `[K][lr]`, a non-finite loss (or no epoch) as infinity."""
    from dpfm.golden.mlp import GoldenTrainer

    X_fit, Y_fit, X_hold, Y_hold = tuning_split(X, Y)
    trainer = GoldenTrainer(spec, [k for k in ks for _ in lrs], lr=[lr for _ in ks for lr in lrs], batch=batch,
                            seed=seed, **settings)
    trainer.train(X_fit, Y_fit, epochs, X_hold, Y_hold, progress=progress)
    last = np.atleast_1d(trainer.history["val_loss"][-1]) if epochs else np.full(len(ks) * len(lrs), np.inf)
    last = np.where(np.isfinite(last), last, np.inf).astype(np.float64)
    return last.reshape(len(ks), len(lrs)).tolist()


def tune_task(task, ks, X, Y, dither: bool, max_lr: float | None = None, progress: bool = False):
    """`task` with `lr_by_k` for `ks` chosen by the rule above on its training data `(X, Y)`: every K at
    every rate of `USER_GRID` (those at most `max_lr`, what the fixed-point lr format holds), float golden
    trainers with the same dither, tuning seeds `TUNE_SEEDS`, the task's epoch budget. This is how a user's
    own data gets a rate without --lr, by the same rule that chose the named tasks' rates."""
    from dataclasses import replace

    from dpfm.golden.contract.errors import DpfmError

    grid = [lr for lr in USER_GRID if max_lr is None or lr <= max_lr]
    if not grid:
        raise DpfmError(f"no rate of the tuning grid {USER_GRID} fits the lr format (at most {max_lr:g} per "
                        "batch-scaled step)", "give --lr, a larger --batch or a wider lr format")
    finals = [{"final": holdout_finals(task.spec, ks, grid, task.batch, task.epochs, seed, X, Y, progress,
                                       dither=dither)} for seed in TUNE_SEEDS]
    return replace(task, lr_by_k=tuple(zip(ks, choose_lrs(finals, len(ks), grid))))
