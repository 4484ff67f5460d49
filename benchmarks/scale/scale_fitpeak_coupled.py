"""Peak memory of the coupled autoencoder's setup + fit alone, 100k and 1M cells.

``scale.py`` measures a process's whole peak, which at 1M cells is reached while the
benchmark itself builds its input. Here the data are built exactly as ``scale.py``'s
``run_coupled`` builds them, then the high-water mark is reset (``/proc/self/clear_refs``,
Linux) and only ``CoupledAutoencoder(...)`` + ``train`` (2 epochs x ``STEPS`` steps of 200
cells) are measured. Adds the size to ``results/scale_fitpeak_coupled.json`` under
``after`` (one process per size).

Usage: ``python benchmarks/scale/scale_fitpeak_coupled.py N [STEPS]`` (one torch thread).
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common
import anndata as ad  # noqa: E402
import mudata as md  # noqa: E402
import scale  # noqa: E402
from _common import RESULTS  # noqa: E402

from multiviz.models import CoupledAutoencoder  # noqa: E402

OUT = RESULTS / "scale_fitpeak_coupled.json"


def status_mb(key: str) -> float:
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{key} not in /proc/self/status")


def main() -> None:
    n = int(sys.argv[1])
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 200
    X, drivers = scale.simulate(n)
    cells = scale._names(n, "c")
    keep = np.random.default_rng(2).random(n) >= 0.3
    rna, feat = ad.AnnData(X), ad.AnnData(scale._targets(drivers[keep], 50, 3))
    rna.obs_names, feat.obs_names = cells, cells[keep]
    mdata = md.MuData({"rna": rna, "feat": feat})
    del drivers
    gc.collect()
    before = status_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the current RSS
    t0 = time.perf_counter()
    model = CoupledAutoencoder(mdata, modalities=("rna", "feat"), random_state=0)
    setup_s = time.perf_counter() - t0
    setup_peak = status_mb("VmHWM")
    t0 = time.perf_counter()
    model.train(
        max_epochs=2,
        steps_per_epoch=steps,
        batch_size=200,
        accelerator="cpu",
        enable_progress_bar=False,
    )
    row = {
        "n": n,
        "rss_with_mudata_mb": round(before, 1),
        "setup_growth_mb": round(setup_peak - before, 1),
        "fit_growth_mb": round(status_mb("VmHWM") - before, 1),
        "setup_s": round(setup_s, 2),
        "train_s": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(row))
    res = json.loads(OUT.read_text()) if OUT.exists() else {}
    res.setdefault("after", {})[str(n)] = row
    OUT.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
