"""Calibrated intervals, the cost of CV, and model choice, on every paired dataset we have.

Usage (from the repository root; about 40 minutes on one CPU thread):

    python benchmarks/quality/uncertainty.py [--part coverage|cost|compare] [--datasets a,b]
        [--methods srrr,sbnn,coupled]

Datasets: M1 Patch-seq ephys (1,213 cells), both 200-cell PBMC CITE-seq fixtures' proteins,
`simulate_patchseq` with 2,000 cells, and an 80-cell random subset of M1; each prepared once
with `mv.pp.prepare_paired(n_top_genes=1000)` (gene selection and z-scoring use no model).

- ``coverage90``: for each of ``REPEATS`` outer splits, 20 % of the cells are hidden from
  everything; the default fit (`train_size=0.9`: its own held-out 10 % calibrate a split
  conformal 90 % interval) runs on the rest, and the hidden cells' true values are compared
  with their interval: sRRR (`uns["srrr"]` formula), sBNN (`mv.tl.project` on the hidden
  cells, bounds in `obsm["sbnn_pred_lower"/"_upper"]`) and the coupled autoencoder's
  rna -> target prediction (`model.predict` with the half-widths of
  `uns["cae"]["prediction_interval"]`). Pooled coverage and per-feature coverage are means
  over the repeats; `min_feature` is the lowest feature's. Where a fit writes no interval
  (too few held-out cells for 90 %), the entry says so and the fit is repeated with
  `train_size=0.8`, recorded as such.
- ``cv_ratio``: process CPU time of `mv.tl.cross_validate(method="sbnn", n_folds=10)` /
  one default `mv.tl.sbnn` fit, interleaved (fit, CV, fit).
- ``heldout_overhead``: default sBNN fit / the same with `train_size=1.0, interval=None`,
  interleaved twice.
- ``compare``: `mv.tl.compare_methods(methods=("srrr", "sbnn"))` on the CV folds above
  (sBNN minus sRRR, overall, 95 % CI).

One torch thread; the load average is recorded. Parts are merged into
`benchmarks/results/uncertainty.json` (a rerun of one part keeps the others).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common
import mudata as md  # noqa: E402
from _common import DATA, RESULTS, write_result  # noqa: E402

import multiviz as mv  # noqa: E402

OUT = RESULTS / "uncertainty.json"
REPEATS = {"m1_80_cells": 30, "pbmc_10k_protein_v3_200cells": 10, "pbmc_5k_protein_v3_200cells": 10}
DEFAULT_REPEATS = 3


def datasets(names: list[str] | None) -> dict:
    def m1():
        return md.read_h5mu(DATA / "m1_patchseq_scala2021.h5mu")

    loaders = {
        "m1_ephys": lambda: (m1(), "ephys"),
        "pbmc_10k_protein_v3_200cells": lambda: (
            md.read_h5mu(DATA / "pbmc_10k_protein_v3_200cells_fixture.h5mu"),
            "protein",
        ),
        "pbmc_5k_protein_v3_200cells": lambda: (
            md.read_h5mu(DATA / "pbmc_5k_protein_v3_200cells_fixture.h5mu"),
            "protein",
        ),
        "simulate_patchseq_2000": lambda: (
            mv.datasets.simulate_patchseq(n_cells=2000, n_genes=1000, random_state=0),
            "ephys",
        ),
        "m1_80_cells": lambda: (_subset(m1(), 80), "ephys"),
    }
    out = {}
    for name in names or loaders:
        m, y = loaders[name]()
        mv.pp.prepare_paired(m, x="rna", y=y, n_top_genes=1000)
        out[name] = (m, y)
    return out


def _subset(m, n: int):
    return m[np.sort(np.random.default_rng(0).choice(m.n_obs, n, replace=False))].copy()


def _dense(x) -> np.ndarray:
    return np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)


def _widths(record: dict, names) -> np.ndarray:
    return np.array([record["halfwidth"][str(f)] for f in names])


def _srrr(fit, hidden, y, train_size):
    mv.tl.srrr(fit, y=y, train_size=train_size)
    out = fit.uns["srrr"]
    if "prediction_interval" not in out:
        return None
    x = _dense(hidden["rna"].X)
    pred = (x - out["x_mean"]) @ fit["rna"].varm["srrr_loadings"] @ out["V"].T + out["y_mean"]
    w = _widths(out["prediction_interval"], hidden[y].var_names)
    return pred - w, pred + w


def _sbnn(fit, hidden, y, train_size):
    model = mv.tl.sbnn(fit, y=y, train_size=train_size, return_model=True)
    if model.prediction_interval_ is None:
        return None
    query = hidden.copy()
    mv.tl.project(query, model)
    return (
        query["rna"].obsm["sbnn_pred_lower"].to_numpy(),
        query["rna"].obsm["sbnn_pred_upper"].to_numpy(),
    )


def _coupled(fit, hidden, y, train_size):
    model = mv.tl.coupled_autoencoder(
        fit,
        modalities=("rna", y),
        train_kwargs={"train_size": train_size},
        return_model=True,
    )
    record = fit.uns["cae"].get("prediction_interval", {}).get("halfwidth", {}).get(f"rna->{y}")
    if record is None:
        return None
    pred = np.asarray(model.predict(hidden, source="rna", target=y), dtype=float)
    w = np.array([record[str(f)] for f in hidden[y].var_names])
    return pred - w, pred + w


METHODS = {"srrr": _srrr, "sbnn": _sbnn, "coupled": _coupled}


def coverage(name: str, m, y: str, methods: list[str]) -> dict:
    rows = {}
    for method in methods:
        run = METHODS[method]
        inside, widths, train_sizes, seconds = [], [], [], []
        for rep in range(REPEATS.get(name, DEFAULT_REPEATS)):
            hidden_mask = np.zeros(m.n_obs, bool)
            rng = np.random.default_rng(100 + rep)
            hidden_mask[rng.choice(m.n_obs, int(round(0.2 * m.n_obs)), replace=False)] = True
            hidden = m[hidden_mask].copy()
            truth = _dense(hidden[y].X)
            for train_size in (0.9, 0.8):
                fit = m[~hidden_mask].copy()
                start = time.process_time()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", mv.MultivizWarning)
                    bounds = run(fit, hidden, y, train_size)
                seconds.append(time.process_time() - start)
                if bounds is not None:
                    break
            if bounds is None:
                continue
            train_sizes.append(train_size)
            lower, upper = bounds
            inside.append((truth >= lower) & (truth <= upper))
            widths.append(np.mean(upper - lower))
        if not inside:
            rows[method] = {"note": "no interval: too few held-out cells even at train_size=0.8"}
            continue
        per_feature = np.mean([c.mean(axis=0) for c in inside], axis=0)
        rows[method] = {
            "pooled": round(float(np.mean([c.mean() for c in inside])), 4),
            "min_feature": round(float(per_feature.min()), 4),
            "per_feature": {
                str(f): round(float(v), 4) for f, v in zip(m[y].var_names, per_feature)
            },
            "mean_width": round(float(np.mean(widths)), 4),
            "units": "z-scores of the targets (prepare_paired)",
            "repeats": len(inside),
            "train_size": sorted(set(train_sizes)),
            "cpu_s_per_fit": round(float(np.mean(seconds)), 2),
        }
        print(
            name,
            method,
            json.dumps({k: v for k, v in rows[method].items() if k != "per_feature"}),
            flush=True,
        )
    return rows


def cost(name: str, m, y: str) -> tuple[float, float, dict]:
    def fit(**kw) -> float:
        start = time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", mv.MultivizWarning)
            mv.tl.sbnn(m, y=y, key_added="sbnn_timed", **kw)
        return time.process_time() - start

    fits, cvs, plain = [fit()], [], []
    start = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mv.MultivizWarning)
        mv.tl.cross_validate(m, method="sbnn", y=y, n_folds=10, enable_progress_bar=False)
    cvs.append(time.process_time() - start)
    fits.append(fit())
    plain.append(fit(train_size=1.0, interval=None))
    fits.append(fit())
    plain.append(fit(train_size=1.0, interval=None))
    detail = {
        "cpu_s_fit": [round(s, 2) for s in fits],
        "cpu_s_cv10": [round(s, 2) for s in cvs],
        "cpu_s_fit_train_size_1": [round(s, 2) for s in plain],
    }
    print(name, json.dumps(detail), flush=True)
    ratio = float(np.mean(cvs) / np.mean(fits[:2]))
    overhead = float(np.mean(fits[1:]) / np.mean(plain))
    return round(ratio, 3), round(overhead, 3), detail


def compare(name: str, m, y: str) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mv.MultivizWarning)
        table = mv.tl.compare_methods(m, methods=("srrr", "sbnn"), y=y, n_folds=10)
    row = table.set_index("feature").loc["all"]
    out = {
        "diff": round(float(row["diff"]), 4),
        "ci_low": round(float(row["ci_low"]), 4),
        "ci_high": round(float(row["ci_high"]), 4),
        "verdict": table.attrs.get("verdict", ""),
    }
    print(name, json.dumps(out), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", choices=("coverage", "cost", "compare"), action="append")
    parser.add_argument("--datasets", default=None)
    parser.add_argument(
        "--methods", default=",".join(METHODS), help="coverage part: methods to (re)measure"
    )
    parser.add_argument("--out", type=Path, default=OUT, help="result file (merged into)")
    args = parser.parse_args()
    parts = args.part or ["coverage", "cost", "compare"]
    result = json.loads(args.out.read_text()) if args.out.exists() else {}
    for key in ("coverage90", "cv_ratio", "heldout_overhead", "compare", "cost_detail"):
        result.setdefault(key, {})
    names = args.datasets.split(",") if args.datasets else None
    for name, (m, y) in datasets(names).items():
        if "coverage" in parts:
            rows = coverage(name, m, y, args.methods.split(","))
            result["coverage90"][name] = {**result["coverage90"].get(name, {}), **rows}
        if "cost" in parts or "compare" in parts:
            ratio, overhead, detail = cost(name, m, y)
            result["cv_ratio"][name] = ratio
            result["heldout_overhead"][name] = overhead
            result["cost_detail"][name] = detail
        if "compare" in parts:
            result["compare"][name] = compare(name, m, y)  # reuses the CV of `cost`
        payload = {k: v for k, v in result.items() if k not in ("load_average", "hardware")}
        write_result(args.out, payload, torch_threads_note="torch.set_num_threads(1)")


if __name__ == "__main__":
    main()
