"""Gene neighbours of siVAE's default against the paper's model -> results/sivae_neighbours.json.

siVAE's gene networks rest on its loadings: ``mv.tl.gene_neighbors`` returns the genes
nearest a query gene in loading space (the paper's "siVAE-Euc", k = 20). A useful network
puts a cell type's marker genes among each other's neighbours. Per dataset of
``sivae_quality.py`` (same genes, same z-scored log-normalised matrix, same labels):

* markers: for each label with at least 10 cells, the 10 genes with the largest
  standardised mean difference (label against the rest), from the data alone; a gene
  that ranks in the top 10 of two labels is dropped;
* ``marker_precision``: for each marker, the fraction of its 20 nearest genes that are
  markers of the same label, averaged over markers (chance: 9 of the other genes);
* models: ``mv.tl.sivae`` default (map first), the paper's single-stage model
  (``design="joint"``, γ 0.05), and PCA's loadings (its components, genes x dims) as the
  linear reference, each at ``n_latent`` dimensions (``--n-latent``, default 2; the paper
  builds networks at 64).

One torch thread. Usage: ``python benchmarks/quality/sivae_neighbours.py --datasets m1,pbmc10k
--seeds 0 [--n-latent 64] [--models sivae,sivae_paper,sivae_h512]`` (pieces merge into the
file; ``sivae_h512``, the default with hidden layers 512-256-128, is a probe).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common
sys.path.insert(1, str(Path(__file__).resolve().parent))  # sivae_quality's loaders
from _common import RESULTS, hardware  # noqa: E402
from sivae_quality import load  # noqa: E402

import multiviz as mv  # noqa: E402

OUT = RESULTS / "sivae_neighbours.json"
N_MARKERS, K, MIN_CELLS = 10, 20, 10
#: model name -> (design, other arguments of ``mv.tl.sivae``); the last is a probe, on request.
MODELS = {
    "sivae": ("map_first", {}),
    "sivae_paper": ("joint", {}),
    "sivae_h512": ("map_first", {"n_hidden": (512, 256, 128)}),
}


def markers(x: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Top genes per label by standardised mean difference; genes shared by labels dropped."""
    top = {}
    for lab in np.unique(labels):
        inside = labels == lab
        if inside.sum() < MIN_CELLS or (~inside).sum() < MIN_CELLS:
            continue
        a, b = x[inside], x[~inside]
        pooled = np.sqrt((a.var(0) + b.var(0)) / 2) + 1e-8
        top[str(lab)] = np.argsort(-(a.mean(0) - b.mean(0)) / pooled)[:N_MARKERS]
    counts = np.bincount(np.concatenate(list(top.values())), minlength=x.shape[1])
    kept = {lab: g[counts[g] == 1] for lab, g in top.items()}
    return {lab: g for lab, g in kept.items() if len(g) >= 2}  # a marker needs a partner


def marker_precision(loadings: np.ndarray, marks: dict[str, np.ndarray]) -> float:
    """Mean over markers of the share of their K nearest genes that mark the same label."""
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=K + 1).fit(loadings)
    scores = []
    for genes in marks.values():
        same = set(genes.tolist())
        _, idx = nn.kneighbors(loadings[genes])
        for g, row in zip(genes, idx):
            neigh = [j for j in row if j != g][:K]
            scores.append(np.mean([j in same for j in neigh]))
    return float(np.mean(scores))


def table_precision(table, var_names, marks: dict[str, np.ndarray]) -> float:
    """:func:`marker_precision` from ``mv.tl.gene_neighbors``' table (what a user reads)."""
    names = np.asarray(var_names)
    neighbours = table.groupby("gene", observed=True)["neighbor"].apply(list).to_dict()
    scores = []
    for genes in marks.values():
        same = set(names[genes].tolist())
        for g in names[genes]:
            neigh = [n for n in neighbours[g] if n != g][:K]
            scores.append(np.mean([n in same for n in neigh]))
    return float(np.mean(scores))


def sivae_table(x, seed: int, design: str, n_latent: int, **kwargs):
    """One siVAE fit's ``mv.tl.gene_neighbors`` table, its genes, and the fit's CPU seconds."""
    from anndata import AnnData

    ad = AnnData(x)
    c0 = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mv.tl.sivae(
            ad,
            design=design,
            n_latent=n_latent,
            random_state=seed,
            enable_progress_bar=False,
            **kwargs,
        )
    cpu = time.process_time() - c0
    return mv.tl.gene_neighbors(ad, n_neighbors=K), ad.var_names, cpu


def run(name: str, seeds: list[int], n_latent: int, models: list[str]) -> None:
    """One fit per model and seed, scored against the markers of every label set."""
    from sklearn.decomposition import PCA

    _, x, labels = load(name)
    marks = {label_name: markers(x, lab) for label_name, lab in labels.items()}
    loadings_pca = PCA(n_latent, random_state=0).fit(x).components_.T
    entries = {}
    for label_name, m in marks.items():
        entries[label_name] = {
            "n_labels": len(m),
            "n_markers": int(sum(len(g) for g in m.values())),
            "chance": float(
                np.mean([(len(g) - 1) / (x.shape[1] - 1) for g in m.values() for _ in g])
            ),
            "n_latent": n_latent,
            "pca": {"marker_precision": marker_precision(loadings_pca, m)},
        }
    for model in models:
        design, kwargs = MODELS[model]
        per_seed = {label_name: {} for label_name in marks}
        for seed in seeds:
            table, genes, cpu = sivae_table(x, seed, design, n_latent, **kwargs)
            for label_name, m in marks.items():
                score = table_precision(table, genes, m)
                per_seed[label_name][str(seed)] = {"marker_precision": score, "cpu_s": cpu}
                print(name, label_name, model, seed, round(score, 3), flush=True)
        for label_name, runs in per_seed.items():
            vals = [v["marker_precision"] for v in runs.values()]
            entries[label_name][model] = {
                "marker_precision": float(np.mean(vals)),
                "sd": float(np.std(vals)),
                "seeds": runs,
            }
    for label_name, entry in entries.items():
        merge(f"{label_name}_{n_latent}d", entry)


def merge(key: str, entry: dict) -> None:
    data = json.loads(OUT.read_text()) if OUT.exists() else {}
    data.setdefault("datasets", {}).setdefault(key, {}).update(entry)  # other models kept
    data["hardware"] = hardware(torch_threads_set=1, load_average=list(os.getloadavg()))
    data["definition"] = __doc__.split("\n\n")[1].strip()
    cmd = "python benchmarks/quality/sivae_neighbours.py " + " ".join(sys.argv[1:])
    data["commands"] = sorted({*data.get("commands", []), cmd})
    OUT.write_text(json.dumps(data, indent=1, default=float))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="m1,pbmc10k,pbmc5k,pbmc68k")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--n-latent", type=int, default=2)
    parser.add_argument("--models", default="sivae,sivae_paper", help=f"of {list(MODELS)}")
    args = parser.parse_args()
    for name in args.datasets.split(","):
        seeds = [int(s) for s in args.seeds.split(",")]
        run(name, seeds, args.n_latent, args.models.split(","))


if __name__ == "__main__":
    main()
