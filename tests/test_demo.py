"""The main job (``make demo``): real PBMC CITE-seq cells shipped with the package + simulation."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path

import mudata as md
import numpy as np
import pytest

from multiviz._demo import run_demo

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        found = run_demo(out=str(out), quick=True)
    return out, found, printed.getvalue()


def _genes(entry: str) -> set[str]:
    return {g.strip().rstrip("+-") for g in entry.split(",") if g.strip()}


def test_demo_names_known_markers_beside_their_proteins(quick_demo):
    _, found, _ = quick_demo
    pbmc = found["pbmc"]
    # held-out R² of sRRR-2 on 200 real cells (measured 0.38 ± 0.06)
    mean, sd = pbmc["cv_r2"]
    assert 0.25 < mean < 0.6 and np.isfinite(sd)
    srrr = {k.removesuffix("_TotalSeqB"): _genes(v) for k, v in pbmc["srrr"].items()}
    assert srrr["CD3"] & {"CD3E", "CD3D", "TRAC", "IL7R"}  # T cells
    assert srrr["CD127"] & {"IL7R", "CD3E", "TRAC"}  # CD127 is the IL7R protein
    assert srrr["CD14"] & {"S100A11", "S100A9", "S100A8", "LYZ", "NAMPT", "FCN1", "CST3"}
    assert srrr["CD56"] & {"KLRF1", "GNLY", "NKG7", "KLRD1", "PRF1"}  # NK cells
    assert srrr["CD16"] & {"KLRF1", "GNLY", "NKG7", "FCGR3A"}
    assert len(pbmc["srrr_genes"]) == 25 and len(pbmc["sbnn_genes"]) == 25
    technical = [g for g in pbmc["srrr_genes"] + pbmc["sbnn_genes"] if g.startswith("MT-")]
    assert not technical


def test_demo_recovers_planted_drivers(quick_demo):
    _, found, _ = quick_demo
    sim = found["patchseq"]
    assert len(sim["drivers"]) == 10
    assert len(sim["found"]["srrr"]) >= 7
    assert len(sim["found"]["sbnn"]) >= 5  # short test schedule; the paper schedule finds more


def test_demo_writes_readable_outputs(quick_demo):
    out, _, _ = quick_demo
    mdata = md.read_h5mu(out / "pbmc_cite_multiviz.h5mu")
    assert mdata.obsm["X_srrr"].shape == (200, 2) and mdata.obsm["X_sbnn"].shape == (200, 2)
    assert np.isfinite(mdata.obsm["X_sbnn"]).all()
    assert mdata.uns["prepare_paired"]["params"]["target_transform"] == "clr"
    assert (out / "patchseq_sbnn_latent.png").stat().st_size > 10_000
    assert (out / "pbmc_srrr_latent.png").stat().st_size > 10_000


def test_demo_prints_attribution_and_findings(quick_demo):
    _, _, text = quick_demo
    assert "10x Genomics pbmc_10k_protein_v3 (CC BY 4.0)" in text
    assert "scvi-tools" in text and "no download" in text
    assert "CD3 " in text and "planted drivers" in text
    assert "nan" not in text.lower()


@pytest.mark.slow
def test_make_demo_command_line(tmp_path):
    """The exact command behind ``make demo`` (paper schedule; ~1-2 min on an idle CPU)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "multiviz", "demo", "--out", str(tmp_path)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "1. Real cells" in proc.stdout and "2. Simulated Patch-seq" in proc.stdout
    assert "sBNN: found" in proc.stdout
