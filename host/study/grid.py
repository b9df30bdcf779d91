"""What a study runs: the grid, its validation, and the work units it breaks into.

A *cell* is (task, selection rule, lr rule, K); its value is the median over the evaluation seeds. Every
(task, selection rule, lr rule) group is one unit of work per seed and phase, training all its K values as
replicas of one `GoldenTrainer` (same initial weights, same batches):
- a *tune* unit per tuning seed trains every K at every rate of the task's learning-rate grid on the tuning
  split (`tuning_split`: a holdout carved from the training split) and reports the final holdout losses;
- an *eval* unit per evaluation seed takes the rates the tuning rule picks (`tuning.choose_lrs`) and trains
  on the whole training split, reporting validation.
K = full does not depend on the selection rule: it is one group per (task, lr rule), under `topk`.
"""

import hashlib
import json
import math
from dataclasses import asdict, dataclass

from dpfm.golden import lr_rules, selection
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.tasks import get_task

#: Geometric learning-rate grids (ratio 2, or about 3.16 for seed-sum's wide range) per task; other tasks get
#: their default lr times (1/2, 1, 2, 4).
LR_GRIDS = {"seed-sum": (0.01, 0.0316, 0.1, 0.316, 1.0), "digits": (8.0, 16.0, 32.0)}
TUNE_SEEDS = (100, 101)
EVAL_SEEDS = (0, 1, 2, 3, 4)
#: Bump when training semantics change, so cached unit results are not reused across versions.
VERSION = 1


def lr_grid(task_name: str) -> tuple:
    if task_name in LR_GRIDS:
        return LR_GRIDS[task_name]
    base = get_task(task_name).lr
    return tuple(base * f for f in (0.5, 1.0, 2.0, 4.0))


@dataclass(frozen=True)
class Grid:
    tasks: tuple
    ks: tuple                 # ints and None (full)
    pairs: tuple              # (selection rule, lr rule)
    seeds: tuple = EVAL_SEEDS
    tune_seeds: tuple = TUNE_SEEDS
    lrs: tuple | None = None  # one grid for every task, instead of LR_GRIDS
    epochs: int | None = None  # instead of each task's own budget

    def check(self) -> None:
        """DpfmError for anything that would make the grid fail or be empty, before any training."""
        for what, values in (("tasks", self.tasks), ("K values", self.ks), ("rules", self.pairs),
                             ("seeds", self.seeds), ("tuning seeds", self.tune_seeds)):
            if not values:
                raise DpfmError(f"the grid has no cells: no {what} given", f"give at least one of the {what}")
        if self.epochs is not None and self.epochs < 1:
            raise DpfmError(f"the grid has no cells: {self.epochs} epochs", "give --epochs 1 or more")
        for task in self.tasks:
            spec = get_task(task).spec
            for sel, rule in self.pairs:
                selection.get_rule(sel)
                for lr in self.lr_grid(task):
                    lr_rules.check_step(lr_rules.get_rule(rule), lr, spec.n_params)

    def lr_grid(self, task: str) -> tuple:
        return self.lrs if self.lrs is not None else lr_grid(task)

    def epochs_of(self, task: str) -> int:
        return self.epochs if self.epochs is not None else get_task(task).epochs

    def groups(self):
        """(task, selection, lr rule, ks) of every trainer group; K = full once per (task, lr rule)."""
        sparse = tuple(k for k in self.ks if k is not None)
        out = []
        for task in self.tasks:
            if None in self.ks:
                out += [(task, selection.DEFAULT, rule, (None,)) for rule in dict.fromkeys(r for _, r in self.pairs)]
            if sparse:
                out += [(task, sel, rule, sparse) for sel, rule in self.pairs]
        return out

    def units(self):
        """`(tune units, eval units)`; an eval unit names the tune units it needs in "tune_keys"."""
        tune, evals = [], []
        for task, sel, rule, ks in self.groups():
            common = dict(task=task, selection=sel, lr_rule=rule, ks=list(ks), epochs=self.epochs_of(task),
                          lrs=list(self.lr_grid(task)), version=VERSION)
            group_tune = [dict(common, phase="tune", seed=s) for s in self.tune_seeds]
            for u in group_tune:
                u["key"] = unit_key(u)
            tune += group_tune
            for s in self.seeds:
                u = dict(common, phase="eval", seed=s, tune_keys=[t["key"] for t in group_tune])
                u["key"] = unit_key(u)
                evals.append(u)
        return tune, evals


def unit_key(unit: dict) -> str:
    """A stable name for a unit's result (its parameters hashed), used by the cache."""
    text = json.dumps({k: v for k, v in unit.items() if k != "key"}, sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def cells(grid: Grid):
    """Every (task, selection, lr rule, K) the report tabulates (K = full shared by all selections)."""
    return [(task, sel, rule, k) for task in grid.tasks for sel, rule in grid.pairs for k in grid.ks]


def finite_or_inf(v) -> float:
    return float(v) if v is not None and math.isfinite(v) else math.inf


def as_dict(grid: Grid) -> dict:
    d = asdict(grid)
    d["ks"] = ["full" if k is None else k for k in grid.ks]
    return d
