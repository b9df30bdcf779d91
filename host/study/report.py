"""A study's results as statistics per cell, the issue's targets, a Markdown report and PNG figures.

Each cell (task, selection rule, lr rule, K) is summarised over the evaluation seeds by its median and its
spread (min, max and the quartiles) of the final validation loss and, for classifiers, accuracy. K = full
is shared by every selection rule of an lr rule. The targets compare a cell's median with the full
gradient's median under the same lr rule (the same optimizer with the exact gradient).
"""

import math
import os
import re

import numpy as np

from dpfm.golden.contract.files import atomic_path
from dpfm.golden.tasks import get_task
from dpfm.host.plots import plot_loss_curves
from dpfm.host.study.grid import cells

#: The issue's targets: (K, metric, kind, bound). "ratio": median loss <= bound * full's; "below": median
#: loss < bound; "points": median accuracy >= full's - bound.
TARGETS = {
    "seed-sum": ((8, "val_loss", "ratio", 1.5), (4, "val_loss", "ratio", 2.0), (2, "val_loss", "below", 0.05)),
    "digits": ((8, "accuracy", "points", 0.02), (4, "accuracy", "points", 0.05)),
}


def k_name(k) -> str:
    return "full" if k is None else str(k)


def summarize(values):
    v = np.array([np.inf if x is None else x for x in values], dtype=np.float64)
    if not len(v):
        return None
    q1, med, q3 = np.percentile(v, [25, 50, 75]) if np.all(np.isfinite(v)) else (np.nan,) * 3
    if not np.all(np.isfinite(v)):
        med = float(np.median(v))
    return {"median": float(med), "min": float(v.min()), "max": float(v.max()), "q1": float(q1), "q3": float(q3),
            "n": int(len(v)), "values": [float(x) for x in v]}


def collect(grid, eval_units, results) -> dict:
    """`{(task, selection, lr rule, K): {"val_loss": stats, "accuracy": stats, "lrs": [...], curves}}`."""
    runs = {}
    for unit in eval_units:
        for run in results[unit["key"]]["runs"]:
            runs.setdefault((unit["task"], unit["selection"], unit["lr_rule"], run["k"]), []).append(run)
    table = {}
    for task, sel, rule, k in cells(grid):
        group = runs.get((task, "topk" if k is None else sel, rule, k), [])
        accs = [r["accuracy"] for r in group]
        table[(task, sel, rule, k)] = {
            "val_loss": summarize([r["val_loss"] for r in group]),
            "accuracy": summarize([-math.inf if a is None else a for a in accs]) if get_task(task).classifier else None,
            "lrs": sorted({r["lr"] for r in group}),
            "train_curve": _median_curve([r["train"] for r in group]),
            "val_curve": _median_curve([r["val"] for r in group]),
        }
    return table


def _median_curve(curves):
    return np.median(np.array(curves, dtype=np.float64), axis=0).tolist() if curves else []


def targets(grid, table) -> list:
    """One row per (task, selection, lr rule, target): the cell's median, the bound and whether it is met."""
    rows = []
    for task in grid.tasks:
        for sel, rule in grid.pairs:
            for k, metric, kind, bound in TARGETS.get(task, ()):
                cell, full = table.get((task, sel, rule, k)), table.get((task, sel, rule, None))
                if cell is None or cell[metric] is None or (kind != "below" and (full is None or full[metric] is None)):
                    continue
                value = cell[metric]["median"]
                ref = None if kind == "below" else full[metric]["median"]
                limit = {"ratio": lambda: bound * ref, "below": lambda: bound, "points": lambda: ref - bound}[kind]()
                met = {"ratio": value <= limit, "below": value < limit, "points": value >= limit}[kind]
                slack = (value - limit) / bound if kind == "points" else math.log2(limit / value) if value > 0 else 0.0
                rows.append({"task": task, "selection": sel, "lr_rule": rule, "k": k, "metric": metric,
                             "kind": kind, "bound": bound, "value": value, "full": ref, "limit": limit,
                             "met": bool(met), "slack": float(slack) if math.isfinite(slack) else -1e9})
    return rows


def winner(grid, target_rows):
    """The (selection, lr rule) meeting the most targets; ties to the larger mean slack. None without targets."""
    if not target_rows:
        return None
    score = {}
    for row in target_rows:
        met, slack, n = score.get((row["selection"], row["lr_rule"]), (0, 0.0, 0))
        score[(row["selection"], row["lr_rule"])] = (met + row["met"], slack + row["slack"], n + 1)
    return max(score, key=lambda p: (score[p][0], score[p][1] / score[p][2]))


def fmt_value(v):
    if v is None or not math.isfinite(v):
        return "div." if v is not None and v > 0 else "-"
    return f"{v:.3g}" if abs(v) < 0.01 else f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"


def cell_text(stats) -> str:
    if stats is None:
        return "-"
    return f"{fmt_value(stats['median'])} [{fmt_value(stats['min'])}, {fmt_value(stats['max'])}]"


def task_tables(grid, table, task) -> str:
    """Markdown tables of one task: the metric per pair and K, and the tuned rates."""
    metrics = ["val_loss"] + (["accuracy"] if get_task(task).classifier else [])
    out = []
    head = "| selection | lr rule | " + " | ".join(f"K={k_name(k)}" for k in grid.ks) + " |"
    sep = "|" + " --- |" * (len(grid.ks) + 2)
    for metric in metrics:
        out += [f"{'Validation MSE' if metric == 'val_loss' else 'Validation accuracy'}, median [min, max] over "
                f"seeds {', '.join(map(str, grid.seeds))}:", "", head, sep]
        for sel, rule in grid.pairs:
            out.append(f"| {sel} | {rule} | " + " | ".join(cell_text(table[(task, sel, rule, k)][metric])
                                                           for k in grid.ks) + " |")
        out.append("")
    out += ["Tuned base learning rate per cell:", "", head, sep]
    for sel, rule in grid.pairs:
        out.append(f"| {sel} | {rule} | " + " | ".join(",".join(f"{lr:g}" for lr in table[(task, sel, rule, k)]["lrs"])
                                                       or "-" for k in grid.ks) + " |")
    return "\n".join(out + [""])


def target_table(rows) -> str:
    if not rows:
        return "No targets are defined for these tasks.\n"
    out = ["| task | selection | lr rule | K | median | bound | met |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        bound = {"ratio": f"<= {r['bound']}x full ({fmt_value(r['limit'])})", "below": f"< {r['bound']}",
                 "points": f">= full - {r['bound']:.2f} ({fmt_value(r['limit'])})"}[r["kind"]]
        out.append(f"| {r['task']} | {r['selection']} | {r['lr_rule']} | {r['k']} | {fmt_value(r['value'])} | {bound} | "
                   f"{'yes' if r['met'] else 'no'} |")
    return "\n".join(out + [""])


def figure_paths(grid, out_dir) -> dict:
    """`{name: path}` of every PNG the report draws (known before the grid runs, so they can be checked)."""
    paths = {}
    for task in grid.tasks:
        paths[f"k-{task}"] = os.path.join(out_dir, f"vs-k-{slug(task)}.png")
        for sel, rule in grid.pairs:
            paths[f"curves-{task}-{sel}-{rule}"] = os.path.join(out_dir, f"curves-{slug(task)}-{sel}-{rule}.png")
    return paths


def slug(text):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)


def draw_figures(grid, table, paths) -> None:
    for task in grid.tasks:
        for sel, rule in grid.pairs:
            curves = {f"K={k_name(k)}": (table[(task, sel, rule, k)]["train_curve"],
                                         table[(task, sel, rule, k)]["val_curve"]) for k in grid.ks}
            plot_loss_curves(curves, paths[f"curves-{task}-{sel}-{rule}"],
                             f"{task}: {sel} selection, {rule} lr rule (median over {len(grid.seeds)} seeds)")
        _plot_vs_k(grid, table, task, paths[f"k-{task}"])


def _plot_vs_k(grid, table, task, path) -> None:
    """Median metric per K, one line per (selection, lr rule), min-max error bars."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = "accuracy" if get_task(task).classifier else "val_loss"
    fig, ax = plt.subplots(figsize=(9, 5), dpi=110)
    x = np.arange(len(grid.ks))
    colours = plt.get_cmap("tab20")(np.arange(len(grid.pairs)) % 20)
    for j, (sel, rule) in enumerate(grid.pairs):
        stats = [table[(task, sel, rule, k)][metric] for k in grid.ks]
        med = np.array([s["median"] if s else np.nan for s in stats])
        lo = np.array([s["min"] if s else np.nan for s in stats])
        hi = np.array([s["max"] if s else np.nan for s in stats])
        for arr in (med, lo, hi):
            arr[~np.isfinite(arr)] = np.nan
        off = (j - (len(grid.pairs) - 1) / 2) * 0.03
        ax.errorbar(x + off, med, yerr=[np.maximum(med - lo, 0), np.maximum(hi - med, 0)], marker="os^D"[j % 4],
                    capsize=3, lw=1.2, color=colours[j], label=f"{sel} / {rule}")
    if metric == "val_loss":
        ax.set_yscale("log")
    ax.set_xticks(x, [k_name(k) for k in grid.ks])
    ax.set_xlabel("K")
    ax.set_ylabel("validation " + ("accuracy" if metric == "accuracy" else "MSE"))
    ax.set_title(f"{task}: final validation {'accuracy' if metric == 'accuracy' else 'MSE'} per K "
                 f"(median, min-max over seeds)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


TUNING_RULE = ("For each (task, selection rule, lr rule, K) the base learning rate is the one of the task's fixed "
               "geometric grid with the lowest median, over tuning seeds {tune}, of the final loss on a holdout of "
               "20 % carved from the training split (the net trained on the other 80 %); diverged runs count as "
               "infinite, ties go to the smaller rate. Validation is never used for tuning; the full gradient is "
               "tuned the same way. The tuned rate is then trained on the whole training split with seeds {seeds} "
               "and reported on validation.")


def markdown(grid, table, target_rows, best, command, seconds) -> str:
    out = ["# DPFM learning-quality study", "", f"Command: `{command}`", "",
           f"Grid: tasks {', '.join(grid.tasks)}; K {', '.join(k_name(k) for k in grid.ks)}; "
           f"rules (selection / lr rule) {', '.join(f'{s} / {r}' for s, r in grid.pairs)}; seeds "
           f"{', '.join(map(str, grid.seeds))}; {seconds:.0f} s of unit time.", "",
           "Tuning rule: " + TUNING_RULE.format(tune=", ".join(map(str, grid.tune_seeds)),
                                                seeds=", ".join(map(str, grid.seeds))), ""]
    for task in grid.tasks:
        lrs = grid.lr_grid(task)
        out += [f"## {task} ({grid.epochs_of(task)} epochs; lr grid {', '.join(f'{v:g}' for v in lrs)})", "",
                task_tables(grid, table, task)]
    out += ["## Targets", "", target_table(target_rows)]
    if best is not None:
        met = [r for r in target_rows if (r["selection"], r["lr_rule"]) == best]
        out += [f"Winner: **{best[0]} / {best[1]}** ({sum(r['met'] for r in met)} of {len(met)} targets met).", ""]
    return "\n".join(out)
