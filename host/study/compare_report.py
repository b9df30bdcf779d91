"""`dpfm compare`'s results: statistics per (task, rule, storage), the issue's target, Markdown and PNG.

The target (issue 13): DPFM at K is within 2 points of backprop's accuracy at every storage where backprop
itself is within 5 points of its float accuracy (medians over the seeds; classifiers only).
"""

import os

import numpy as np

from dpfm.golden.tasks import get_task
from dpfm.host.plots import save_figure
from dpfm.host.study.compare import FLOAT, storage_quant
from dpfm.host.study.report import cell_text, fmt_value, slug, summarize

#: (DPFM's bound below backprop, backprop's bound below its own float), in accuracy points
TARGET = (0.02, 0.05)


def metric_of(task: str) -> str:
    return "accuracy" if get_task(task).classifier else "val_loss"


def collect(grid, eval_units, results) -> dict:
    """`{(task, rule, storage): {"accuracy": stats or None, "val_loss": stats, "lr": rate}}`."""
    runs = {}
    for unit in eval_units:
        runs.setdefault((unit["task"], unit["rule"], unit["storage"]), []).extend(results[unit["key"]]["runs"])
    table = {}
    for (task, rule, storage), group in runs.items():
        classifier = get_task(task).classifier
        table[(task, rule, storage)] = {
            "val_loss": summarize([r["val_loss"] for r in group]),
            "accuracy": summarize([0.0 if r["accuracy"] is None else r["accuracy"] for r in group]) if classifier else None,
            "lr": group[0]["lr"]}
    return table


def targets(grid, table) -> list:
    """One row per (task, dpfm rule, quantized storage) where backprop is within its bound of float."""
    rows = []
    for task in grid.tasks:
        if metric_of(task) != "accuracy" or "backprop" not in grid.rules:
            continue
        bp_float = table[(task, "backprop", FLOAT)]["accuracy"]["median"]
        for rule in (r for r in grid.rules if r.startswith("dpfm-")):
            for storage in grid.storages()[1:]:
                bp = table[(task, "backprop", storage)]["accuracy"]["median"]
                if bp < bp_float - TARGET[1]:
                    continue
                value = table[(task, rule, storage)]["accuracy"]["median"]
                rows.append({"task": task, "rule": rule, "storage": storage, "value": value, "backprop": bp,
                             "limit": bp - TARGET[0], "met": bool(value >= bp - TARGET[0])})
    return rows


def target_table(rows) -> str:
    if not rows:
        return "No target applies (it needs a classifier, backprop and a dpfm-K rule in the grid).\n"
    out = ["| task | rule | storage | accuracy | backprop | bound | met |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        out.append(f"| {r['task']} | {r['rule']} | {r['storage']} | {fmt_value(r['value'])} | {fmt_value(r['backprop'])} | "
                   f">= {fmt_value(r['limit'])} | {'yes' if r['met'] else 'no'} |")
    met = sum(r["met"] for r in rows)
    return "\n".join(out + ["", f"{met} of {len(rows)} met.", ""])


def task_tables(grid, table, task) -> str:
    """Per (quantizer, scope): the metric per rule (rows) and bit width (columns), float last."""
    metric = metric_of(task)
    what = "accuracy" if metric == "accuracy" else "MSE"
    out = []
    for q in grid.quantizers:
        for scope in grid.scopes:
            storages = [s for s in grid.storages()[1:] if storage_quant(s).scheme == q and storage_quant(s).scope == scope]
            out += [f"Validation {what}, {q.upper()} weights, {'one range per layer' if scope == 'layer' else 'one range for the net'}, "
                    f"median [min, max] over seeds {', '.join(map(str, grid.seeds))}:", "",
                    "| rule | lr | " + " | ".join(f"{storage_quant(s).bits} bits" for s in storages) + " | float |",
                    "|" + " --- |" * (len(storages) + 3)]
            for rule in grid.rules:
                cells = [cell_text(table[(task, rule, s)][metric]) for s in storages + [FLOAT]]
                out.append(f"| {rule} | {table[(task, rule, FLOAT)]['lr']:g} | " + " | ".join(cells) + " |")
            out.append("")
    return "\n".join(out)


def figure_paths(grid, out_dir) -> dict:
    return {task: os.path.join(out_dir, f"bits-{slug(task)}.png") for task in grid.tasks}


def draw_figures(grid, table, paths) -> None:
    """Per task: one panel per (quantizer, scope), the median metric against bits, one line per rule, the
    float result as the last point; min-max bars."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    combos = [(q, s) for q in grid.quantizers for s in grid.scopes] or [(None, None)]
    for task, path in paths.items():
        metric = metric_of(task)
        fig, axes = plt.subplots(1, len(combos), figsize=(4.2 * len(combos) + 2, 4.2), dpi=110, squeeze=False)
        colours = plt.get_cmap("tab10")(np.arange(len(grid.rules)) % 10)
        for ax, (q, scope) in zip(axes[0], combos):
            storages = [s for s in grid.storages()[1:] if (storage_quant(s).scheme, storage_quant(s).scope) == (q, scope)]
            labels = [str(storage_quant(s).bits) for s in storages] + ["float"]
            x = np.arange(len(labels))
            for colour, rule in zip(colours, grid.rules):
                stats = [table[(task, rule, s)][metric] for s in storages + [FLOAT]]
                med = np.array([st["median"] for st in stats])
                lo = np.array([st["min"] for st in stats])
                hi = np.array([st["max"] for st in stats])
                ok = np.isfinite(med) & np.isfinite(lo) & np.isfinite(hi)
                ax.errorbar(x[ok], med[ok], yerr=[np.maximum(med - lo, 0)[ok], np.maximum(hi - med, 0)[ok]],
                            marker="o", ms=3, capsize=2, lw=1.2, color=colour, label=rule)
            ax.set_xticks(x, labels)
            ax.set_xlabel("weight bits")
            if metric == "val_loss":
                ax.set_yscale("log")
            ax.set_title(f"{q.upper()}, {scope}" if q else "float", fontsize=9)
            ax.grid(True, alpha=0.3)
        axes[0][0].set_ylabel("validation " + ("accuracy" if metric == "accuracy" else "MSE"))
        axes[0][-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
        fig.suptitle(f"{task}: learning rules under n-bit weights (median, min-max over seeds)", fontsize=10)
        fig.tight_layout()
        save_figure(fig, path)


def markdown(grid, table, rows, command, seconds) -> str:
    out = ["# Learning rules under n-bit weights", "", f"Command: `{command}`", "",
           f"Grid: tasks {', '.join(grid.tasks)}; rules {', '.join(grid.rules)}; bits "
           f"{', '.join(map(str, grid.bits))} and float; quantizers {', '.join(grid.quantizers)}; scopes "
           f"{', '.join(grid.scopes)}; seeds {', '.join(map(str, grid.seeds))}; {seconds:.0f} s of unit time.", "",
           "Each rule's learning rate is tuned once, in float, by the study's rule (the lowest median final loss "
           f"over tuning seeds {', '.join(map(str, grid.tune_seeds))} on a 20 % holdout carved from the training "
           "split); every storage trains at that rate. Weights are quantized at initialisation and after every "
           "update, in place (no float master copy); the gradient passes the quantizer unchanged.", ""]
    for task in grid.tasks:
        out += [f"## {task} ({grid.epochs_of(task)} epochs; lr grid {', '.join(f'{v:g}' for v in grid.lr_grid(task))})",
                "", task_tables(grid, table, task)]
    out += ["## Target", "", "DPFM within 2 points of backprop's accuracy wherever backprop is within 5 points of "
            "its float accuracy:", "", target_table(rows)]
    return "\n".join(out)
