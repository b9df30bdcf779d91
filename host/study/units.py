"""The work of one study unit (`grid.Grid.units`), run on a Dask worker: a pure function of its parameters.

Results are plain JSON-ready dicts so they can be cached (`cache.py`) and shipped between processes.
"""

import time

import numpy as np

from dpfm.golden.mlp import GoldenTrainer
from dpfm.golden.tasks import accuracy, get_task
from dpfm.host.study.grid import finite_or_inf
from dpfm.host.study.tuning import choose_lrs, holdout_finals


def _column(history, r):
    return [finite_or_inf(v[r]) for v in history]


def run_tune(unit: dict) -> dict:
    """Every K at every grid rate on the tuning split; `final[k][lr]` is the last epoch's holdout loss."""
    task = get_task(unit["task"])
    X, Y, _, _ = task.load()
    start = time.perf_counter()
    final = holdout_finals(task.spec, unit["ks"], unit["lrs"], task.batch, unit["epochs"], unit["seed"], X, Y,
                           selection=unit["selection"], lr_rule=unit["lr_rule"])
    return {"key": unit["key"], "final": final, "seconds": time.perf_counter() - start}


def run_eval(unit: dict, *tune_results) -> dict:
    """The K values at their tuned rates on the whole training split; validation loss (and accuracy)."""
    task = get_task(unit["task"])
    X, Y, X_val, Y_val = task.load()
    lrs = choose_lrs(list(tune_results), len(unit["ks"]), unit["lrs"])
    start = time.perf_counter()
    trainer = GoldenTrainer(task.spec, unit["ks"], lr=lrs, batch=task.batch, seed=unit["seed"],
                            selection=unit["selection"], lr_rule=unit["lr_rule"])
    trainer.train(X, Y, unit["epochs"], X_val, Y_val, progress=False)
    preds = trainer.predict(X_val)
    if len(unit["ks"]) == 1:
        preds = preds[None]
    runs = []
    for r, k in enumerate(unit["ks"]):
        train = _column([np.atleast_1d(v) for v in trainer.history["train_loss"]], r)
        val = _column([np.atleast_1d(v) for v in trainer.history["val_loss"]], r)
        acc = accuracy(preds[r], Y_val) if task.classifier and np.all(np.isfinite(preds[r])) else None
        runs.append({"k": k, "lr": lrs[r], "train": train, "val": val, "val_loss": val[-1], "accuracy": acc})
    return {"key": unit["key"], "runs": runs, "seconds": time.perf_counter() - start}
