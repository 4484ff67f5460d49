"""The main job behind ``make demo``: real CITE-seq cells and simulated Patch-seq, offline.

Part 1 analyses the 200 real blood cells shipped with the package (RNA → 14 surface
proteins) with sRRR and sBNN and names the genes selected for each protein; part 2 runs the
same models on simulated Patch-seq data whose driver genes are planted, and counts how many
were found. The sBNN runs the paper's schedule; the data are small, so the whole demo takes about
1-2 minutes on an idle 2-core laptop CPU (``quick=True``: a test schedule, seconds).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from . import datasets, pp
from ._settings import settings
from .datasets._pbmc import PBMC_ATTRIBUTION, pbmc10k_cite_200

# sBNN schedules: the paper's own (the data are small, so it takes about 75 s of CPU time
# for both parts together) and a much shorter one for tests
DEMO_SCHEDULE: dict[str, int] = {}
QUICK_SCHEDULE = {  # 10 epochs found 4-9 of the 10 drivers depending on the k-means K
    "pretrain_epochs": 15,
    "frozen_epochs": 15,
    "unfrozen_epochs": 15,
    "no_pretrain_epochs": 30,
    "pruned_epochs": 30,
}


def _protein(name: str) -> str:
    return str(name).removesuffix("_TotalSeqB")


def _top_genes(coef: np.ndarray, genes: np.ndarray, k: int = 3) -> str:
    """The ``k`` genes with the largest |coefficient|, signed (``+`` higher protein)."""
    order = np.argsort(-np.abs(coef), kind="stable")[:k]
    return ", ".join(f"{genes[i]}{'+' if coef[i] > 0 else '-'}" for i in order if coef[i] != 0)


def genes_per_feature(mdata, key: str, k: int = 3) -> dict[str, str]:
    """For each target feature, the ``k`` selected genes most tied to it.

    sRRR: the coefficients ``W Vᵀ`` of the fitted linear model. sBNN (non-linear): the
    correlation across cells between each selected gene's expression and the feature's
    prediction. ``+`` marks genes whose expression rises with the feature.
    """
    params = mdata.uns[key]["params"]
    rna, target = mdata[params["x"]], mdata[params["y"]]
    selected = rna.var[f"{key}_selected"].to_numpy(bool)
    genes = np.asarray(rna.var_names[selected])
    if key == "srrr":
        coef = rna.varm["srrr_loadings"][selected] @ np.asarray(mdata.uns["srrr"]["V"]).T
    else:
        X = np.asarray(rna.X)[:, selected]
        pred = np.asarray(target.layers[f"{key}_pred"])
        Xc, Pc = X - X.mean(0), pred - pred.mean(0)
        norm = np.outer(np.linalg.norm(Xc, axis=0), np.linalg.norm(Pc, axis=0))
        coef = np.divide(Xc.T @ Pc, norm, out=np.zeros(norm.shape), where=norm > 0)
    return {str(f): _top_genes(coef[:, j], genes, k) for j, f in enumerate(target.var_names)}


def _cv_r2(mdata, n_folds: int = 5) -> tuple[float, float]:
    from . import tl

    df = tl.cross_validate(mdata, method="srrr", n_folds=n_folds, rank=2, n_genes=25)
    overall = df[df["feature"] == "all"]["r2"].to_numpy(float)
    return float(overall.mean()), float(overall.std(ddof=1))


def _fit_both(mdata, n_genes: int, schedule: dict[str, int], random_state: int) -> dict:
    from . import tl

    seconds = {}
    t0 = time.perf_counter()
    tl.srrr(mdata, rank=2, n_genes=n_genes)
    seconds["srrr"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    tl.sbnn(
        mdata,
        bottleneck=2,
        n_genes=n_genes,
        random_state=random_state,
        gene_decoder_epochs=0,
        **schedule,
    )
    seconds["sbnn"] = time.perf_counter() - t0
    return seconds


def pbmc_part(out_dir: Path, *, quick: bool = False, random_state: int = 0) -> dict[str, Any]:
    """RNA → 14 proteins on the shipped PBMC cells; prints a summary, returns the findings."""
    mdata = pbmc10k_cite_200()
    print("1. Real cells: 200 human blood cells (PBMCs), RNA + 14 surface proteins (CITE-seq)")
    print(f"   {PBMC_ATTRIBUTION}; shipped with multiviz, no download.")
    pp.prepare_paired(mdata, y="protein", n_top_genes=1000)
    info = mdata.uns["prepare_paired"]
    print(
        f"   Preprocessing: {info['n_genes_selected']} informative genes kept "
        f"({info['n_genes_excluded']} mitochondrial/spike-in genes left out); protein counts "
        "CLR-normalised per cell."
    )
    mean, sd = _cv_r2(mdata)
    seconds = _fit_both(mdata, 25, QUICK_SCHEDULE if quick else DEMO_SCHEDULE, random_state)
    r2_srrr = mdata.uns["srrr"]["r2_heldout_per_feature"]
    r2_sbnn = mdata.uns["sbnn"]["r2_heldout_per_feature"]
    n_out = mdata.uns["sbnn"]["n_heldout"]
    print(
        f"   sRRR (linear, 2-D, 25 genes, {seconds['srrr']:.1f}s): the 25 genes predict "
        f"held-out cells' proteins with R² {mean:.2f} ± {sd:.2f} (5-fold CV); "
        f"{_scores(mdata, 'srrr')}."
    )
    print(
        f"   sBNN (non-linear, 2-D, 25 genes, {seconds['sbnn']:.0f}s"
        f"{', test schedule' if quick else ', paper schedule'}): {_scores(mdata, 'sbnn')}."
    )
    by_srrr, by_sbnn = genes_per_feature(mdata, "srrr"), genes_per_feature(mdata, "sbnn")
    print(
        "   Genes that predict each protein (+: higher expression, higher protein; both models "
        "pass through a 2-D latent, so related proteins share genes):"
    )
    print(f"   Protein   held-out R² sRRR/sBNN ({n_out} cells)   sRRR genes | sBNN genes")
    for f in mdata["protein"].var_names:
        print(
            f"   {_protein(f):<9} {r2_srrr[f]:5.2f} / {r2_sbnn[f]:5.2f}                 "
            f"{by_srrr[f] or '-'} | {by_sbnn[f] or '-'}"
        )
    from . import pl

    png = out_dir / "pbmc_srrr_latent.png"
    shown = [f"{p}_TotalSeqB" for p in ("CD3", "CD14", "CD56", "CD19", "CD4", "CD8a")]
    shown = [f for f in shown if f in mdata["protein"].var_names]
    pl.latent_overlay(mdata, basis="srrr", genes=0, features=shown, color=None, save=png)
    path = out_dir / "pbmc_cite_multiviz.h5mu"
    mdata.write_h5mu(path)
    print(
        f"   Figure: {png} (the cells in sRRR's 2-D latent, predicted proteins overlaid); "
        f"results: {path}."
    )
    return {
        "cv_r2": (mean, sd),
        "srrr": by_srrr,
        "sbnn": by_sbnn,
        "srrr_genes": [str(g) for g in mdata.uns["srrr"]["selected_genes"]],
        "sbnn_genes": [str(g) for g in mdata.uns["sbnn"]["selected_genes"]],
    }


def _scores(mdata, key: str) -> str:
    """``held-out R² 0.41 (20 cells), train R² 0.55`` for a fit with a held-out split."""
    out = mdata.uns[key]
    heldout = (
        f"held-out R² {out['r2_heldout']:.2f} ({out['n_heldout']} cells never trained on), "
        if "r2_heldout" in out
        else ""
    )
    return f"{heldout}train R² {out['r2_train']:.2f}"


def patchseq_part(out_dir: Path, *, quick: bool = False, random_state: int = 0) -> dict[str, Any]:
    """Simulated Patch-seq with planted driver genes: does each model pick them."""
    from . import pl

    mdata = datasets.simulate_patchseq(n_cells=1000, n_genes=500, random_state=random_state)
    drivers = list(mdata.uns["simulation"]["drivers"])
    print(
        f"2. Simulated Patch-seq: {mdata.n_obs} neurons, {mdata['rna'].n_vars} genes, "
        f"{mdata['ephys'].n_vars} electrophysiological features; {len(drivers)} planted "
        "'driver' genes set the ephys."
    )
    pp.prepare_paired(mdata, n_top_genes=300)
    _fit_both(mdata, len(drivers), QUICK_SCHEDULE if quick else DEMO_SCHEDULE, random_state)
    found = {}
    for key, label in (("srrr", "sRRR"), ("sbnn", "sBNN")):
        genes = {str(g) for g in mdata.uns[key]["selected_genes"]}
        found[key] = sorted(genes & set(drivers))
        print(
            f"   {label}: found {len(found[key])}/{len(drivers)} planted drivers "
            f"among its {len(genes)} genes ({_scores(mdata, key)})."
        )
    png = out_dir / "patchseq_sbnn_latent.png"
    pl.latent_overlay(mdata, basis="sbnn", genes=0, features=6, color="cell_type", save=png)
    print(f"   Figure: {png} (sBNN latent by cell type, predicted features overlaid).")
    return {"drivers": drivers, "found": found}


def run_demo(
    data: str | None = None,
    out: str = "demo_output",
    random_state: int = 0,
    quick: bool = False,
) -> dict[str, Any]:
    """Run the demo: real PBMC CITE-seq cells, then simulated Patch-seq; save the results.

    Parameters
    ----------
    data
        Optional path of your own paired ``.h5mu`` file (raw counts in ``"rna"``, targets in
        ``"ephys"`` or ``"protein"``); it is preprocessed and fitted with sRRR instead of part 1.
    out
        Folder for the outputs (created).
    random_state
        Seed of the simulation and the models.
    quick
        A very short sBNN schedule (for tests); the default is the paper's schedule, about
        75 s of CPU time for the whole demo (1-2 minutes on an idle 2-core laptop CPU,
        longer on a busy machine).

    Returns
    -------
    What was found, per part (also printed).

    Examples
    --------
    >>> from multiviz._demo import run_demo
    >>> found = run_demo(out="demo_output", quick=True)  # doctest: +SKIP
    """
    settings.verbosity = 1  # the demo prints its own summary lines
    start = time.perf_counter()
    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    if data is None:
        results["pbmc"] = pbmc_part(out_dir, quick=quick, random_state=random_state)
    else:
        from . import tl

        mdata = datasets.read_paired(data)
        pp.prepare_paired(mdata, n_top_genes=min(1000, mdata["rna"].n_vars))
        tl.srrr(mdata, rank=2, n_genes=min(25, mdata["rna"].n_vars))
        print(f"1. {data}: {mdata.n_obs} cells; sRRR-2: {_scores(mdata, 'srrr')}")
        for f, genes in genes_per_feature(mdata, "srrr").items():
            print(f"   {f}: {genes}")
    results["patchseq"] = patchseq_part(out_dir, quick=quick, random_state=random_state)
    print(f"Done in {time.perf_counter() - start:.0f}s; outputs in {out_dir}/.")
    return results
