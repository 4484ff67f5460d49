"""The main job behind ``make demo``: a real analysis on data the package generates itself."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from . import datasets, pp
from ._settings import settings


def run_demo(data: str | None = None, out: str = "demo_output", random_state: int = 0) -> None:
    """Simulate (or read) paired Patch-seq data, preprocess it with the sBNN recipe, report, save.

    Parameters
    ----------
    data
        Path of a paired ``.h5mu`` file (raw counts in ``"rna"``, targets in ``"ephys"`` or
        ``"protein"``); default: ``simulate_patchseq`` data with planted driver genes.
    out
        Folder for the outputs (created).
    random_state
        Seed of the simulation.
    """
    settings.verbosity = 2
    start = time.perf_counter()
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    if data is None:
        mdata = datasets.simulate_patchseq(n_cells=1000, n_genes=500, random_state=random_state)
        print(
            f"Simulated Patch-seq data: {mdata.n_obs} cells, {mdata['rna'].n_vars} genes, "
            f"{mdata['ephys'].n_vars} ephys features, planted drivers: "
            f"{', '.join(mdata.uns['simulation']['drivers'])}"
        )
        n_top_genes = 300
    else:
        mdata = datasets.read_paired(data)
        print(f"Read {data}: {mdata}")
        n_top_genes = min(1000, mdata["rna"].n_vars)

    pp.prepare_paired(mdata, n_top_genes=n_top_genes)
    info = mdata.uns["prepare_paired"]
    print(
        f"Preprocessing (sBNN recipe): kept {mdata.n_obs} cells (dropped {info['n_cells_dropped']} "
        f"with NaN targets), selected {info['n_genes_selected']} genes, median library size "
        f"{info['median_library_size']:.4g}; X z-scored, raw counts in layers['counts']."
    )
    if "driver" in mdata["rna"].var:
        kept = int(np.sum(mdata["rna"].var["driver"]))
        print(
            f"Planted driver genes surviving gene selection: {kept}/{len(mdata.uns['simulation']['drivers'])}"
        )

    _sparse_models(mdata, out_dir, random_state=random_state)

    path = out_dir / "multiviz_demo.h5mu"
    mdata.write_h5mu(path)
    print(f"Wrote {path} in {time.perf_counter() - start:.1f}s")


def _sparse_models(mdata, out_dir: Path, *, random_state: int = 0) -> None:
    """sRRR-2 and sBNN-2 (paper schedule), planted vs recovered genes, the overlay PNG."""
    import torch

    from . import pl, tl

    torch.set_num_threads(1)  # small network: one thread is fastest on a shared CPU
    drivers = (
        list(mdata["rna"].var_names[mdata["rna"].var["driver"].to_numpy(bool)])
        if "driver" in mdata["rna"].var
        else None
    )
    # simulated data: as many genes as were planted; real data: the paper's 25 genes
    n_genes = min(len(drivers), mdata["rna"].n_vars) if drivers else 25
    t0 = time.perf_counter()
    tl.srrr(mdata, rank=2, n_genes=n_genes)
    print(f"sRRR-2 ({time.perf_counter() - t0:.1f}s): train R² {mdata.uns['srrr']['r2_train']:.3f}")
    t0 = time.perf_counter()
    tl.sbnn(mdata, bottleneck=2, n_genes=n_genes, random_state=random_state)
    print(
        f"sBNN-2, paper schedule ({time.perf_counter() - t0:.1f}s): train R² "
        f"{mdata.uns['sbnn']['r2_train']:.3f}"
    )
    for key in ("srrr", "sbnn"):
        genes = [str(g) for g in mdata.uns[key]["selected_genes"]]
        print(f"{key} selected {len(genes)} genes: {', '.join(genes)}")
        if drivers:
            hit = sorted(set(genes) & set(drivers))
            missed = sorted(set(drivers) - set(genes))
            print(
                f"    planted drivers recovered: {len(hit)}/{len(drivers)}"
                + (f" (missed: {', '.join(missed)})" if missed else "")
            )
    color = next((c for c in ("rna_family", "cell_type", "rna_type") if c in mdata.obs), None)
    png = out_dir / "sbnn_latent_overlay.png"
    pl.latent_overlay(mdata, basis="sbnn", genes=6, features=6, color=color, save=png)
    print(f"Wrote {png}")
