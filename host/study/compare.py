"""What `dpfm compare` runs: learning rule x weight storage (bits, quantizer, scope) x task x seed, on the
study's engine (`runner.run_units`, Dask, the unit cache) and under its tuning rule.

A *rule* is a `golden.learning_rules` name or `dpfm-K` (DPFM at K with the hardware's selection rule, the
contract's dither; `dpfm-full` is the exact gradient in forward mode). A *storage* is `float` or an n-bit
`golden.quant.WeightQuant`. Each (task, rule) is tuned once, in float, by `host.study.tuning`'s rule (the
lowest median final loss over the tuning seeds on a holdout carved from the training split; the grid's
rates); every storage then trains at that rate, so the table shows what the bits cost a rule, not a
retuning. Units: a *tune* unit per (task, rule, tuning seed), an *eval* unit per (task, rule, storage,
seed).
"""

import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.learning_rules import RULES
from dpfm.golden.quant import SCHEMES, SCOPES, WeightQuant
from dpfm.golden.tasks import accuracy, get_task
from dpfm.host.study.grid import EVAL_SEEDS, TUNE_SEEDS, finite_or_inf, lr_grid, unit_key
from dpfm.host.study.tuning import choose_lrs, holdout_finals, tuning_split

DEFAULT_RULES = ("backprop", "fa", "dfa", "dni", "hsic", "dpfm-8")
DEFAULT_BITS = (4, 6, 8, 12, 16)
#: Bump when a unit's meaning changes, so cached results are not reused across versions.
VERSION = 1
FLOAT = "float"


def dpfm_k(rule: str):
    """The K of a `dpfm-K` rule name (None for `dpfm-full`); a DpfmError for a malformed one."""
    text = rule[len("dpfm-"):]
    if text == "full":
        return None
    if not text.isdigit() or int(text) < 1:
        raise DpfmError(f"rule '{rule}' is not dpfm-K", "use e.g. dpfm-8 or dpfm-full")
    return int(text)


def check_rule(rule: str) -> None:
    if rule.startswith("dpfm-"):
        dpfm_k(rule)
    elif rule not in RULES:
        raise DpfmError(f"unknown learning rule '{rule}'", f"choose from {', '.join(RULES)} or dpfm-K (e.g. dpfm-8)")


def storage_quant(storage: str) -> WeightQuant | None:
    """`float` -> None; `symm8-global` -> WeightQuant(8, "symm", "global")."""
    if storage == FLOAT:
        return None
    scheme, _, scope = storage.partition("-")
    bits = scheme.lstrip("abcdefghijklmnopqrstuvwxyz")
    return WeightQuant(int(bits), scheme[:len(scheme) - len(bits)], scope)


@dataclass(frozen=True)
class CompareGrid:
    tasks: tuple
    rules: tuple
    bits: tuple = DEFAULT_BITS
    quantizers: tuple = SCHEMES
    scopes: tuple = SCOPES
    seeds: tuple = EVAL_SEEDS[:3]
    tune_seeds: tuple = TUNE_SEEDS
    lrs: tuple | None = None
    epochs: int | None = None

    def check(self) -> None:
        """DpfmError for anything that would make the grid fail or be empty, before any training."""
        for what, values in (("tasks", self.tasks), ("rules", self.rules), ("bit widths", self.bits),
                             ("seeds", self.seeds), ("tuning seeds", self.tune_seeds)):
            if not values:
                raise DpfmError(f"the grid has no cells: no {what} given", f"give at least one of the {what}")
        for lr in self.lrs or ():
            if not (math.isfinite(lr) and lr > 0):
                raise DpfmError(f"learning rate {lr:g} in --lrs is not a positive number", "e.g. --lrs 8,16,32")
        if not (self.quantizers and self.scopes):
            raise DpfmError("bit widths need a quantizer and a scope", "give --quantizers and --scopes")
        for b in self.bits:
            if b < 2:
                raise DpfmError(f"{b} bits cannot hold a weight grid", "use 2 bits or more, e.g. --bits 4,8")
        for name in self.quantizers:
            WeightQuant(8, name)
        for name in self.scopes:
            WeightQuant(8, "symm", name)
        if self.epochs is not None and self.epochs < 1:
            raise DpfmError(f"the grid has no cells: {self.epochs} epochs", "give --epochs 1 or more")
        for task in self.tasks:
            get_task(task)
        for rule in self.rules:
            check_rule(rule)

    def storages(self) -> list:
        return [FLOAT] + [WeightQuant(b, q, s).label for q in self.quantizers for s in self.scopes for b in self.bits]

    def lr_grid(self, task: str) -> tuple:
        return self.lrs if self.lrs is not None else lr_grid(task)

    def epochs_of(self, task: str) -> int:
        return self.epochs if self.epochs is not None else get_task(task).epochs

    def units(self):
        """`(tune units, eval units)`; an eval unit names the tune units it needs in "tune_keys"."""
        tune, evals = [], []
        for task in self.tasks:
            for rule in self.rules:
                common = dict(kind="compare", task=task, rule=rule, epochs=self.epochs_of(task),
                              lrs=list(self.lr_grid(task)), version=VERSION)
                group = [dict(common, phase="tune", seed=s) for s in self.tune_seeds]
                for u in group:
                    u["key"] = unit_key(u)
                tune += group
                for storage in self.storages():
                    for s in self.seeds:
                        u = dict(common, phase="eval", storage=storage, seed=s, tune_keys=[t["key"] for t in group])
                        u["key"] = unit_key(u)
                        evals.append(u)
        return tune, evals


def as_dict(grid: CompareGrid) -> dict:
    return asdict(grid)


def make_trainer(task, rule: str, lr, seed: int, quant=None):
    """The trainer of `rule` for `task` (float; `lr` a rate, or a list of rates for DPFM replicas)."""
    from dpfm.golden.mlp import GoldenTrainer
    from dpfm.golden.rule_trainer import RuleTrainer

    if rule.startswith("dpfm-"):
        k = dpfm_k(rule)
        ks = [k] * len(lr) if isinstance(lr, list) else k
        return GoldenTrainer(task.spec, ks, lr=lr, batch=task.batch, seed=seed, init=task.init, quant=quant,
                             dither=True)
    return RuleTrainer(task.spec, rule, quant=quant, lr=lr, batch=task.batch, seed=seed, init=task.init)


def run_tune(unit: dict) -> dict:
    """`final[0][lr]`: the last epoch's holdout loss of the rule at every grid rate (float storage)."""
    task = get_task(unit["task"])
    X, Y, _, _ = task.load()
    start = time.perf_counter()
    if unit["rule"].startswith("dpfm-"):
        final = holdout_finals(task.spec, [dpfm_k(unit["rule"])], unit["lrs"], task.batch, unit["epochs"],
                               unit["seed"], X, Y, init=task.init, dither=True)
    else:
        X_fit, Y_fit, X_hold, Y_hold = tuning_split(X, Y)
        row = []
        for lr in unit["lrs"]:
            trainer = make_trainer(task, unit["rule"], lr, unit["seed"])
            trainer.train(X_fit, Y_fit, unit["epochs"], X_hold, Y_hold, progress=False)
            row.append(finite_or_inf(trainer.history["val_loss"][-1]))
        final = [row]
    return {"key": unit["key"], "final": final, "seconds": time.perf_counter() - start}


def run_eval(unit: dict, *tune_results) -> dict:
    """The rule at its tuned rate with the unit's weight storage, on the whole training split."""
    task = get_task(unit["task"])
    X, Y, X_val, Y_val = task.load()
    lr = choose_lrs(list(tune_results), 1, unit["lrs"])[0]
    start = time.perf_counter()
    trainer = make_trainer(task, unit["rule"], lr, unit["seed"], storage_quant(unit["storage"]))
    trainer.train(X, Y, unit["epochs"], X_val, Y_val, progress=False)
    preds = trainer.predict(X_val)
    val = [finite_or_inf(v) for v in trainer.history["val_loss"]]
    acc = accuracy(preds, Y_val) if task.classifier and np.all(np.isfinite(preds)) else None
    run = {"lr": lr, "val": val, "val_loss": val[-1], "accuracy": acc}
    return {"key": unit["key"], "runs": [run], "seconds": time.perf_counter() - start}
