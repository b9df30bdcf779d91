"""`dpfm study`: the learning-quality grid (task x K x selection rule x lr rule x seed) on a Dask cluster.

Learning rates are tuned from the training split only (`host.study.tuning`); each cell reports the median
and spread over the evaluation seeds; a Markdown report, PNG figures and JSON are written atomically at the
end, after every output path was checked. Unit results are cached in DIR/cache, so a rerun or a larger grid
reuses what already ran.
"""

import math
import os
import re
import shlex
import sys

from dpfm.golden import lr_rules, selection
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.files import check_writable, write_json, write_text
from dpfm.host.commands.train import list_items, parse_k, parse_seed
from dpfm.host.study import report
from dpfm.host.study.grid import Grid, as_dict
from dpfm.host.study.runner import run_units

DEFAULT_TASKS = "seed-sum,digits"
DEFAULT_KS = "2,4,8,16,full"


def register(subparsers) -> None:
    p = subparsers.add_parser("study", help="a grid of task x K x selection rule x lr rule x seed on Dask",
                              description=__doc__.split("\n\n")[0])
    g = p.add_argument_group("grid")
    g.add_argument("--tasks", default=DEFAULT_TASKS, help=f"comma-separated task names (default {DEFAULT_TASKS})")
    g.add_argument("--ks", default=DEFAULT_KS, help=f"comma-separated K values (default {DEFAULT_KS})")
    g.add_argument("--selections", default=selection.DEFAULT,
                   help=f"selection rules, crossed with --lr-rules: {', '.join(selection.RULES)} (default topk)")
    g.add_argument("--lr-rules", default=lr_rules.DEFAULT,
                   help=f"learning-rate rules: {', '.join(lr_rules.RULES)} (default constant)")
    g.add_argument("--pairs", help="instead of the cross product: SELECTION/LR_RULE,... e.g. topk/constant,dither/ef")
    g.add_argument("--seeds", default="0,1,2,3,4", help="evaluation seeds (default 0-4)")
    g.add_argument("--tune-seeds", default="100,101", help="tuning seeds (default 100,101)")
    g.add_argument("--lrs", help="one learning-rate grid for every task (default: the task's grid, see docs/STUDY.md)")
    g.add_argument("--epochs", help="epochs for every task (default: each task's own budget)")
    add_run_arguments(p, "study")
    p.set_defaults(func=run)


def add_run_arguments(p, name: str) -> None:
    """The cluster and output options of a grid command `name` (study, compare): its outputs go to
    runs/NAME, its JSON is NAME.json."""
    c = p.add_argument_group("cluster")
    c.add_argument("--scheduler", metavar="ADDRESS", help="run on this Dask scheduler (default: a LocalCluster)")
    c.add_argument("--workers", default="2", help="LocalCluster worker processes, 1 thread each (default 2)")
    o = p.add_argument_group("outputs")
    o.add_argument("--out", metavar="DIR", default=os.path.join("runs", name),
                   help=f"directory for report.md, PNGs, {name}.json and the unit cache (default runs/{name})")
    o.add_argument("--json", metavar="PATH", help=f"write the JSON here instead of DIR/{name}.json")
    o.add_argument("--no-cache", action="store_true", help="neither reuse nor store unit results")
    o.add_argument("--no-progress", action="store_true", help="no progress bar")


def parse_list(text, what, parse=str):
    out = [parse(t) for t in list_items(text, what)]
    if len(set(out)) != len(out):
        raise DpfmError(f"--{what} repeats a value: '{text}'", "list every value once")
    return tuple(out)


def parse_int(text, what):
    try:
        return int(text)
    except ValueError:
        raise DpfmError(f"--{what} must be integers, got '{text}'", f"e.g. --{what} 0,1,2") from None


def parse_rate(text):
    try:
        return float(text)
    except ValueError:
        raise DpfmError(f"--lrs must be numbers, got '{text}'", "e.g. --lrs 0.03,0.1,0.3") from None


def _pair(text):
    sel, sep, rule = text.partition("/")
    if not sep:
        raise DpfmError(f"--pairs entry '{text}' is not SELECTION/LR_RULE", "e.g. --pairs topk/constant,dither/ef")
    return sel.strip(), rule.strip()


def parse_grid(args) -> Grid:
    if args.pairs is not None:
        pairs = parse_list(args.pairs, "pairs", _pair)
    else:
        pairs = tuple((s, r) for s in parse_list(args.selections, "selections") for r in parse_list(args.lr_rules, "lr-rules"))
    lrs = parse_list(args.lrs, "lrs", parse_rate) if args.lrs is not None else None
    if lrs is not None and not lrs:
        raise DpfmError("the grid has no cells: --lrs is empty", "give at least one learning rate")
    grid = Grid(tasks=parse_list(args.tasks, "tasks"), ks=parse_list(args.ks, "ks", parse_k), pairs=pairs,
                seeds=parse_list(args.seeds, "seeds", lambda t: parse_seed(t, "seeds")),
                tune_seeds=parse_list(args.tune_seeds, "tune-seeds", lambda t: parse_seed(t, "tune-seeds")),
                lrs=lrs, epochs=None if args.epochs is None else parse_int(args.epochs, "epochs"))
    grid.check()
    return grid


def json_ready(obj):
    """Non-finite floats as None (strict JSON), tuple keys as text."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {(k if isinstance(k, str) else "/".join(map(str, k))): json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_ready(v) for v in obj]
    return obj


def check_scheduler(address: str | None) -> None:
    """Refuse a --scheduler that is not a Dask address (`[tcp|tls|ws|wss://]HOST:PORT`, or a scheduler in this
    process, `inproc://...`) before any work."""
    if address is None or re.fullmatch(r"inproc://\S+", address):
        return
    m = re.fullmatch(r"(?:(?:tcp|tls|ws|wss)://)?([^:/\s]+):(\d{1,5})", address)
    if m is None or not 1 <= int(m.group(2)) <= 65535:
        raise DpfmError(f"--scheduler '{address}' is not a Dask scheduler address",
                        "give the tcp://HOST:PORT that 'dask scheduler' prints")


def check_outputs(args, figures: dict) -> tuple:
    """Before any work: the cluster options and every output path of a grid command (`add_run_arguments`).
    Returns `(workers, report.md path, JSON path)`."""
    check_scheduler(args.scheduler)
    workers = parse_int(args.workers, "workers")
    if workers < 1:
        raise DpfmError(f"--workers must be at least 1, got {workers}", "e.g. --workers 2")
    md_path = os.path.join(args.out, "report.md")
    json_path = args.json or os.path.join(args.out, f"{args.command}.json")
    for path in (md_path, json_path, *figures.values()):
        check_writable(path)
    return workers, md_path, json_path


def run_grid(args, workers: int, tune_units, eval_units, **unit_functions) -> tuple:
    """Run a grid's units on the cluster, reusing and filling DIR/cache unless --no-cache (`unit_functions`:
    `tune` and `evaluate` of `runner.run_units`). Returns `(results, unit seconds, the command line)`."""
    from dpfm.host.study.cluster import open_client
    cache_dir = None if args.no_cache else os.path.join(args.out, "cache")
    with open_client(args.scheduler, workers) as client:
        results = run_units(client, tune_units, eval_units, cache_dir,
                            progress=not args.no_progress and sys.stderr.isatty(), **unit_functions)
    seconds = sum(results[u["key"]]["seconds"] for u in tune_units + eval_units)
    name = args.command
    command = "dpfm " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:2] == [name] else f"dpfm {name}"
    return results, seconds, command


def run(args) -> int:
    grid = parse_grid(args)
    pngs = report.figure_paths(grid, args.out)
    workers, md_path, json_path = check_outputs(args, pngs)
    tune_units, eval_units = grid.units()
    results, seconds, command = run_grid(args, workers, tune_units, eval_units)

    table = report.collect(grid, eval_units, results)
    target_rows = report.targets(grid, table)
    best = report.winner(grid, target_rows)
    text = report.markdown(grid, table, target_rows, best, command, seconds)
    report.draw_figures(grid, table, pngs)
    write_text(md_path, text)
    write_json(json_path, json_ready({
        "grid": as_dict(grid), "command": command, "unit_seconds": seconds,
        "cells": [{"task": t, "selection": s, "lr_rule": r, "k": report.k_name(k),
                   **{m: table[(t, s, r, k)][m] for m in ("val_loss", "accuracy", "lrs")}}
                  for (t, s, r, k) in table],
        "targets": target_rows, "winner": None if best is None else {"selection": best[0], "lr_rule": best[1]},
        "report": md_path, "figures": pngs}))
    for task in grid.tasks:
        print(f"{task}:")
        print(report.task_tables(grid, table, task))
    print(report.target_table(target_rows))
    if best is not None:
        print(f"winner: {best[0]} / {best[1]}")
    print(f"wrote {md_path}, {json_path} and {len(pngs)} figures")
    return 0
