"""A new user's first hour, measured: import time, fit output noise, thread count.

    .venv/bin/python benchmarks/first_hour/first_hour.py                  # every part
    .venv/bin/python benchmarks/first_hour/first_hour.py --part import    # one part: import | banners | threads
    .venv/bin/python benchmarks/first_hour/first_hour.py --part threads --repeats 2

Every measurement runs in a fresh subprocess (a warm interpreter would hide import cost
and Lightning's one-off banners). Runs of the compared settings are interleaved
(A, B, A, B, ...) so that a change in the machine's load hits both alike. Each part
updates its own section of ``benchmarks/results/first_hour.json``; the PBMC CV R²
section written by ``guard`` (``first_hour_pbmc.json``) is merged in when present.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common
from _common import DATA, RESULTS, ROOT  # noqa: E402

OUT = RESULTS / "first_hour.json"


def _portable(line: str) -> str:
    """A printed line without this machine's paths (site-packages and the checkout)."""
    line = re.sub(r"\S*/site-packages/", "<site-packages>/", line)
    return line.replace(str(ROOT) + "/", "")


M1 = DATA / "m1_patchseq_scala2021.h5mu"
PBMC = DATA / "pbmc_10k_protein_v3_200cells_fixture.h5mu"

# The longest phase of the default sBNN-2 schedule (100 fine-tuning epochs after pruning),
# the others cut to one epoch: for when full fits at torch's default threads take hours.
LONGEST_PHASE = (
    ", pretrain_epochs=1, frozen_epochs=1, unfrozen_epochs=1, pruned_epochs=100,"
    " gene_decoder_epochs=0"
)

# Lines Lightning/torch/scvi print around a fit that a user cannot act on.
BANNER = re.compile(
    r"GPU available|TPU available|HPU available|IPU available|LOCAL_RANK|CUDA_VISIBLE|"
    r"Tip:|💡|litlogger|litmodels|lightning\.ai|Seed set to|Trainer\.fit|`Trainer|"
    r"max_epochs=.*reached|_pytree|does not have many workers|logging interval|"
    r"PossibleUserWarning|lightning|pytorch_lightning|\x1b\[",
    re.IGNORECASE,
)
# Any other warning line (e.g. mudata's FutureWarning), reported separately.
OTHER_WARNING = re.compile(r"Warning", re.IGNORECASE)
OURS = re.compile(r"^(running |    finished )")

IMPORT_CODE = "import time; t = time.perf_counter(); import {mod}; print(time.perf_counter() - t)"

FIT_CODE = {
    "sbnn": (
        "import mudata as md, multiviz as mv\n"
        "m = md.read_h5mu({m1!r})\n"
        "mv.pp.prepare_paired(m, x='rna', y='ephys', n_top_genes=1000)\n"
        "mv.tl.sbnn(m, bottleneck=2, pretrain_epochs=1, frozen_epochs=1, unfrozen_epochs=1,"
        " pruned_epochs=1, gene_decoder_epochs=1)\n"
    ),
    "coupled_autoencoder": (
        "import mudata as md, multiviz as mv\n"
        "m = md.read_h5mu({m1!r})\n"
        "mv.pp.prepare_paired(m, x='rna', y='ephys', n_top_genes=1000)\n"
        "mv.tl.coupled_autoencoder(m, max_epochs=1)\n"
    ),
    "sivae": (
        "import mudata as md, multiviz as mv\n"
        "m = md.read_h5mu({pbmc!r})\n"
        "rna = m['rna'][:, :200].copy()\n"
        "mv.tl.sivae(rna, max_epochs=1)\n"
    ),
}

THREADS_CODE = (
    "import json, os, time, torch, mudata as md, multiviz as mv\n"
    "threads = {threads!r}\n"
    "mv.settings.num_threads = threads\n"
    "if threads is not None: torch.set_num_threads(threads)\n"
    "m = md.read_h5mu({m1!r})\n"
    "mv.pp.prepare_paired(m, x='rna', y='ephys', n_top_genes=1000)\n"
    "load0 = os.getloadavg(); w = time.perf_counter(); c = time.process_time()\n"
    "mv.tl.sbnn(m, bottleneck=2, random_state=0{schedule})\n"
    "print(json.dumps(dict(wall_s=time.perf_counter() - w, cpu_s=time.process_time() - c,"
    " torch_threads=torch.get_num_threads(), load_before=load0[0],"
    " load_after=os.getloadavg()[0])))\n"
)


def _python(code: str, timeout: float = 3600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TERM": "dumb"}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env
    )


def measure_import(repeats: int) -> dict:
    """Seconds to ``import multiviz`` vs ``import scanpy``, interleaved in fresh processes."""
    times: dict[str, list[float]] = {"multiviz": [], "scanpy": []}
    for _ in range(repeats):
        for mod in times:
            out = _python(IMPORT_CODE.format(mod=mod))
            out.check_returncode()
            times[mod].append(float(out.stdout.strip().splitlines()[-1]))
    heavy = _python(
        "import sys, multiviz; print(sorted(m for m in ('torch', 'scvi', 'lightning', "
        "'sklearn', 'scanpy', 'matplotlib') if m in sys.modules))"
    ).stdout.strip()
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "multiviz": round(med["multiviz"], 3),
        "scanpy": round(med["scanpy"], 3),
        "ratio": round(med["multiviz"] / med["scanpy"], 3),
        "runs": {k: [round(x, 3) for x in v] for k, v in times.items()},
        "statistic": f"median of {repeats} interleaved fresh-process imports",
        "heavy_modules_after_import_multiviz": heavy,
        "load_average_1min_after": round(os.getloadavg()[0], 2),
        "target": "ratio <= 1.5",
    }


def measure_banners() -> dict:
    """Lightning banner/tip/warning lines printed by one default call of each model."""
    result = {}
    for name, code in FIT_CODE.items():
        start = time.perf_counter()
        out = _python(code.format(m1=str(M1), pbmc=str(PBMC)))
        lines = [
            _portable(ln) for ln in (out.stdout + "\n" + out.stderr).splitlines() if ln.strip()
        ]
        ours = [ln for ln in lines if OURS.match(ln)]
        noisy = [ln for ln in lines if BANNER.search(ln) and not OURS.match(ln)]
        other = [ln for ln in lines if OTHER_WARNING.search(ln) and ln not in noisy]
        result[name] = {
            "returncode": out.returncode,
            "lightning_banner_lines": len(noisy),
            "banner_examples": noisy[:8],
            "start_lines": sum(ln.startswith("running ") for ln in ours),
            "finish_lines": sum(ln.startswith("    finished ") for ln in ours),
            "other_warning_lines": len(other),
            "other_warning_examples": other[:4],
            "other_lines": [ln for ln in lines if ln not in ours and ln not in noisy][:8],
            "wall_s": round(time.perf_counter() - start, 1),
            "call": code.strip().splitlines()[-1],
        }
    return {
        "lightning_banner_lines": {k: v["lightning_banner_lines"] for k, v in result.items()},
        "per_model": result,
        "how": "stdout+stderr of a fresh subprocess, not a terminal (no progress bar); "
        "shortest schedule arguments each function accepts",
        "target": "0 banner lines; one start and one finish line per call",
    }


def _thread_runs_from_log(path: Path) -> dict[str, list[dict]]:
    """Runs printed by an earlier (interrupted) ``--part threads`` as ``label {json}`` lines."""
    runs: dict[str, list[dict]] = {"1": [], "torch_default": []}
    for line in path.read_text().splitlines():
        label, _, payload = line.partition(" ")
        if label in runs and payload.startswith("{"):
            runs[label].append(json.loads(payload.replace("'", '"')))
    return runs


def measure_threads(
    repeats: int, log: Path | None = None, timeout: float = 3600, phase_only: bool = False
) -> dict:
    """A full default sBNN-2 fit on M1 at 1 thread vs torch's default, interleaved.

    With ``log``, the runs are read from the output of an earlier run instead of measured.
    A run slower than ``timeout`` seconds is recorded as timed out (its wall time is at
    least ``timeout``).
    """
    if log is not None:
        runs = _thread_runs_from_log(log)
    else:
        runs = {"1": [], "torch_default": []}
        for _ in range(repeats):
            for label, threads in (("1", 1), ("torch_default", None)):
                try:
                    schedule = LONGEST_PHASE if phase_only else ""
                    code = THREADS_CODE.format(threads=threads, m1=str(M1), schedule=schedule)
                    out = _python(code, timeout)
                except subprocess.TimeoutExpired:
                    runs[label].append({"wall_s": None, "timed_out_after_s": timeout})
                    print(label, json.dumps(runs[label][-1]), flush=True)
                    continue
                if out.returncode != 0:
                    raise RuntimeError(out.stderr[-3000:])
                runs[label].append(json.loads(out.stdout.strip().splitlines()[-1]))
                print(label, json.dumps(runs[label][-1]), flush=True)
    summary = {}
    for label, rs in runs.items():
        done = [r for r in rs if r.get("wall_s") is not None]
        summary[label] = {
            "runs_completed": len(done),
            "wall_s_median": round(statistics.median(r["wall_s"] for r in done), 1)
            if done
            else None,
            "cpu_s_median": round(statistics.median(r["cpu_s"] for r in done), 1) if done else None,
            "torch_threads": done[0]["torch_threads"] if done else None,
        }
    what = "mv.tl.sbnn(mdata, bottleneck=2, random_state=0) on M1 (1213 cells, 1000 genes -> "
    what += "16 ephys features) after prepare_paired, "
    what += (
        f"schedule: longest phase only ({LONGEST_PHASE.strip(', ')})"
        if phase_only
        else ("full default schedule")
    )
    return {
        "what": what,
        "order": "interleaved: 1, default, 1, default, ...",
        "cores": os.cpu_count(),
        "summary": summary,
        "runs": runs,
        "idle_16_core": "not measured: no 16-core machine was available to this session",
    }


def _update(section: str, value: dict, command: str) -> dict:
    """Merge one section into the JSON on disk (re-read now: parts may run concurrently)."""
    result = json.loads(OUT.read_text()) if OUT.exists() else {}
    result[section] = value
    result.setdefault("commands", {})[section] = command
    RESULTS.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main() -> None:
    """Run the requested parts and update ``first_hour.json``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["import", "banners", "threads", "all"], default="all")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--import-repeats", type=int, default=5)
    parser.add_argument("--threads-log", type=Path, help="read thread runs from this log")
    parser.add_argument("--run-timeout", type=float, default=3600)
    parser.add_argument("--phase-only", action="store_true", help="time the longest phase only")
    args = parser.parse_args()
    parts = ["import", "banners", "threads"] if args.part == "all" else [args.part]
    result = {}
    for part in parts:
        command = f"python benchmarks/first_hour/first_hour.py --part {part}"
        if part == "import":
            result = _update("import_s", measure_import(args.import_repeats), command)
        elif part == "banners":
            result = _update("fit_output", measure_banners(), command)
        else:
            value = measure_threads(
                args.repeats, args.threads_log, args.run_timeout, args.phase_only
            )
            section = "threads_longest_phase" if args.phase_only else "threads"
            result = _update(section, value, command + (" --phase-only" if args.phase_only else ""))
    pbmc = RESULTS / "first_hour_pbmc.json"
    if pbmc.exists():
        result = _update(
            "pbmc_cv_r2",
            json.loads(pbmc.read_text()),
            "benchmarks/first_hour/first_hour_pbmc.py (guard)",
        )
    result["cores"] = os.cpu_count()
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps({k: result[k] for k in result if k not in ("threads", "pbmc_cv_r2")}, indent=2)[
            :4000
        ]
    )


if __name__ == "__main__":
    main()
