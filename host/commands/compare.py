"""`dpfm compare`: learning rules (backprop, feedback alignment, direct FA, synthetic gradients, the HSIC
bottleneck, DPFM at K) under n-bit weights (SYMM/ASYMM, one range or one per layer), on the study's engine.

Each rule's rate is tuned once in float from the training split only (`host.study.compare`); a Markdown
report, one PNG per task (metric against bits, one line per rule) and JSON are written atomically at the end,
after every output path was checked. Unit results are cached in DIR/cache.
"""


from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.files import write_json, write_text
from dpfm.golden.learning_rules import RULES
from dpfm.golden.quant import SCHEMES, SCOPES
from dpfm.host.commands.study import (add_run_arguments, check_outputs, json_ready, parse_int, parse_list,
                                      parse_rate, run_grid)
from dpfm.host.commands.train import parse_seed
from dpfm.host.study import compare, compare_report as report


def register(subparsers) -> None:
    p = subparsers.add_parser("compare", help="learning rules x weight bits x quantizer x scope x task on Dask",
                              description=__doc__.split("\n\n")[0])
    g = p.add_argument_group("grid")
    g.add_argument("--tasks", default="digits", help="comma-separated task names (default digits)")
    g.add_argument("--rules", default=",".join(compare.DEFAULT_RULES),
                   help=f"{', '.join(RULES)} or dpfm-K (default {','.join(compare.DEFAULT_RULES)})")
    g.add_argument("--bits", default=",".join(map(str, compare.DEFAULT_BITS)),
                   help="weight bit widths, each >= 2; float always runs too (default 4,6,8,12,16)")
    g.add_argument("--quantizers", default=",".join(SCHEMES), help="symm, asymm (default both)")
    g.add_argument("--scopes", default=",".join(SCOPES), help="global (one range), layer (one per layer) (default both)")
    g.add_argument("--seeds", default="0,1,2", help="evaluation seeds (default 0-2)")
    g.add_argument("--tune-seeds", default="100,101", help="tuning seeds (default 100,101)")
    g.add_argument("--lrs", help="one learning-rate grid for every task (default: the study's grid of the task)")
    g.add_argument("--epochs", help="epochs for every task (default: each task's own budget)")
    add_run_arguments(p, "compare")
    p.set_defaults(func=run)


def _bits(text):
    try:
        return int(text)
    except ValueError:
        raise DpfmError(f"--bits must be integers, got '{text}'", "e.g. --bits 4,8,16") from None


def parse_grid(args) -> compare.CompareGrid:
    lrs = parse_list(args.lrs, "lrs", parse_rate) if args.lrs is not None else None
    if lrs is not None and not lrs:
        raise DpfmError("the grid has no cells: --lrs is empty", "give at least one learning rate")
    grid = compare.CompareGrid(
        tasks=parse_list(args.tasks, "tasks"), rules=parse_list(args.rules, "rules"),
        bits=parse_list(args.bits, "bits", _bits), quantizers=parse_list(args.quantizers, "quantizers"),
        scopes=parse_list(args.scopes, "scopes"),
        seeds=parse_list(args.seeds, "seeds", lambda t: parse_seed(t, "seeds")),
        tune_seeds=parse_list(args.tune_seeds, "tune-seeds", lambda t: parse_seed(t, "tune-seeds")),
        lrs=lrs, epochs=None if args.epochs is None else parse_int(args.epochs, "epochs"))
    grid.check()
    return grid


def run(args) -> int:
    grid = parse_grid(args)
    pngs = report.figure_paths(grid, args.out)
    workers, md_path, json_path = check_outputs(args, pngs)
    tune_units, eval_units = grid.units()
    results, seconds, command = run_grid(args, workers, tune_units, eval_units, tune=compare.run_tune,
                                         evaluate=compare.run_eval)
    table = report.collect(grid, eval_units, results)
    rows = report.targets(grid, table)
    report.draw_figures(grid, table, pngs)
    write_text(md_path, report.markdown(grid, table, rows, command, seconds))
    write_json(json_path, json_ready({
        "grid": compare.as_dict(grid), "command": command, "unit_seconds": seconds,
        "cells": [{"task": t, "rule": r, "storage": s, **table[(t, r, s)]} for (t, r, s) in table],
        "targets": rows, "report": md_path, "figures": pngs}))
    for task in grid.tasks:
        print(f"{task}:")
        print(report.task_tables(grid, table, task))
    print(report.target_table(rows))
    print(f"wrote {md_path}, {json_path} and {len(pngs)} figures")
    return 0
