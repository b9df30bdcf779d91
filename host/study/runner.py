"""Run a study's units on a Dask client, reusing cached results, with a progress bar over the units.

The whole graph is submitted at once: each eval unit is a task that takes its tune units' futures (or cached
results) as arguments, so Dask starts it as soon as its tuning is done. Finished results are written to the
cache directory (one JSON file per unit key, atomically) by this process as they arrive, so an interrupted
study loses only the units still running.
"""

import json
import os
import sys

from tqdm import tqdm

from dpfm.golden.contract.files import write_json
from dpfm.host.study.units import run_eval, run_tune


def _cached(cache_dir, key):
    if cache_dir is None:
        return None
    path = os.path.join(cache_dir, key + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def run_units(client, tune_units, eval_units, cache_dir=None, progress=True, tune=run_tune, evaluate=run_eval) -> dict:
    """`{key: result}` for every unit; `tune(unit)` and `evaluate(unit, *tune results)` do a unit's work
    (the study's by default, `dpfm compare` gives its own)."""
    results = {}
    futures = {}
    for unit in tune_units:
        hit = _cached(cache_dir, unit["key"])
        if hit is not None:
            results[unit["key"]] = hit
        else:
            futures[unit["key"]] = client.submit(tune, unit, key=f"tune-{unit['key']}", pure=False)
    for unit in eval_units:
        hit = _cached(cache_dir, unit["key"])
        if hit is not None:
            results[unit["key"]] = hit
            continue
        deps = [results.get(k) or futures[k] for k in unit["tune_keys"]]
        futures[unit["key"]] = client.submit(evaluate, unit, *deps, key=f"eval-{unit['key']}", pure=False)

    from distributed import as_completed
    bar = tqdm(total=len(tune_units) + len(eval_units), initial=len(results), unit="unit", desc="study",
               file=sys.stderr, disable=not progress, dynamic_ncols=True)
    try:
        for future in as_completed(list(futures.values())):
            result = future.result()
            results[result["key"]] = result
            if cache_dir is not None:
                write_json(os.path.join(cache_dir, result["key"] + ".json"), result)
            bar.update(1)
    finally:
        bar.close()
        for future in futures.values():
            future.cancel()
    return results
