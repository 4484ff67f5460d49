"""Render the M1 latent overlays shown under "Figure defaults" in ``docs/which_model.md``.

Fits sRRR-2 (seconds; ``--method sbnn`` fits sBNN-2 instead, minutes on a CPU) on the M1
Patch-seq data after ``mv.pp.prepare_paired(m, n_top_genes=1000)`` and saves
``mv.pl.latent_overlay`` with its default settings, coloured by ``rna_family`` and by
``rna_type`` (77 t-types), to ``docs/_static/overlay_m1_{color}_{tag}.png``::

    OMP_NUM_THREADS=1 .venv/bin/python docs/_scripts/overlay_figures.py --tag after

The ``before`` images were rendered with the same script at commit ``a1c7f94`` (the
defaults before issue 23 item 7) with ``--tag before``.
"""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import mudata as md  # noqa: E402

import multiviz as mv  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
DATA = (
    Path(os.environ.get("MULTIVIZ_SHARED_DATA", REPO.parent / "shared" / "data"))
    / "m1_patchseq_scala2021.h5mu"
)
OUT = REPO / "docs" / "_static"


def main(tag: str, method: str, data: Path) -> list[Path]:
    """Fit ``method`` on M1 and save one overlay per colour; returns the written paths."""
    warnings.filterwarnings("ignore")
    m = md.read_h5mu(data)
    mv.pp.prepare_paired(m, n_top_genes=1000)
    if method == "sbnn":
        mv.tl.sbnn(m, bottleneck=2, random_state=0)
    else:
        mv.tl.srrr(m, rank=2, random_state=0)
    paths = []
    for color in ("rna_family", "rna_type"):
        path = OUT / f"overlay_m1_{color}_{tag}.png"
        fig = mv.pl.latent_overlay(m, basis=method, color=color, save=path, show=False)
        plt.close(fig)
        paths.append(path)
    return paths


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", default="after", help="file name suffix (before/after)")
    parser.add_argument("--method", default="srrr", choices=["srrr", "sbnn"])
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    for p in main(args.tag, args.method, args.data):
        print(p)
