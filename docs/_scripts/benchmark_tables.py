"""Tables for "Which model when", generated from ``benchmarks/results/*.json`` at build time.

``docs/conf.py`` calls :func:`write_tables` on every build, so the numbers on the page are
always those of the committed benchmark results. Run by hand to preview::

    .venv/bin/python docs/_scripts/benchmark_tables.py
"""

from __future__ import annotations

import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "benchmarks" / "results"
OUT = REPO / "docs" / "_generated"


def _load(name: str) -> dict | None:
    path = RESULTS / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _missing(name: str) -> str:
    return f"*`benchmarks/results/{name}.json` is not present in this build.*\n"


def sbnn_table() -> str:
    """sBNN against its linear baseline sRRR on M1: 10-fold CV R², stability, time."""
    d = _load("sbnn_table1")
    if d is None:
        return _missing("sbnn_table1")
    labels = {
        "srrr_rank2": "sRRR, rank 2 (linear)",
        "srrr_full": "sRRR, full rank (linear)",
        "sbnn2": "sBNN-2",
        "sbnn64": "sBNN-64",
        "sbnn2_no_pretrain": "sBNN-2, no pre-training",
    }

    def jaccard(m):
        return m.get("jaccard_mean", m.get("jaccard_mean_seed0"))

    def seconds(m):
        return m.get("seconds_per_fold", m.get("cpu_s_per_fit_mean"))

    rows = []
    for key, label in labels.items():
        m = d["models"].get(key)
        if m is None:
            continue
        paper = "–" if m.get("paper_r2") is None else f"{m['paper_r2']:.2f}"
        rows.append(
            [
                label,
                f"{m['r2_mean']:.3f} ± {m['r2_sd']:.3f}",
                paper,
                "–" if jaccard(m) is None else f"{jaccard(m):.2f}",
                "–" if seconds(m) is None else f"{seconds(m):.1f}",
            ]
        )
    models = d["models"]
    gain2 = models["sbnn2"]["r2_mean"] - models["srrr_rank2"]["r2_mean"]
    gain64 = models["sbnn64"]["r2_mean"] - models["srrr_full"]["r2_mean"]
    sd2 = max(models["sbnn2"]["r2_sd"], models["srrr_rank2"]["r2_sd"])
    text = _table(
        ["model", "CV R² (mean ± SD over folds)", "paper", "gene-set Jaccard", "s / fold"],
        rows,
    )
    text += (
        f"\nOn {d['dataset']}: sBNN-2 gains {gain2:+.3f} R² over rank-2 sRRR "
        f"({'less than' if abs(gain2) < sd2 else 'more than'} one fold-SD, {sd2:.3f}); "
        f"sBNN-64 gains {gain64:+.3f} over full-rank sRRR. The linear model selects far more "
        f"stable genes (Jaccard {jaccard(models['srrr_rank2']):.2f} vs "
        f"{jaccard(models['sbnn2']):.2f}). Protocol: {d['protocol'][:160]}…; hardware: {d['hardware'].get('cpu')}, "
        f"{d['hardware'].get('cores_visible', d['hardware'].get('cores'))} shared cores.\n"
    )
    return text


def coupled_table() -> str:
    """Coupled autoencoder (several λ) against the PC-CCA baseline on M1."""
    d = _load("coupled_ae_m1")
    if d is None:
        return _missing("coupled_ae_m1")
    cols = [
        ("qda_cross_family", "cross-modal QDA, family"),
        ("qda_cross", "cross-modal QDA, t-type"),
        ("ami", "GMM AMI"),
        ("r2_cross_ephys", "R² rna→ephys"),
        ("r2_cross_rna", "R² ephys→rna"),
    ]

    def cell(m, k):
        if m.get(k) is None:
            return "–"
        se = m.get(k + "_se")
        return f"{m[k]:.3f}" + (f" ± {se:.3f}" if se is not None else "")

    def row(label, m):
        return [label] + [cell(m, k) for k, _ in cols]

    rows = [row(f"coupled AE, λ = {lam}", m) for lam, m in d["lam"].items()]
    rows.append(row("PC-CCA (linear)", d["cca"]))
    best = max(d["lam"].items(), key=lambda kv: kv[1]["qda_cross_family"])
    cca = d["cca"]
    text = _table(["model"] + [c for _, c in cols], rows)
    wins = [
        f"{label}: {'coupled AE' if best[1][k] > cca[k] else 'CCA'} "
        f"({best[1][k]:.3f} vs {cca[k]:.3f})"
        for k, label in cols
        if best[1].get(k) is not None and cca.get(k) is not None
    ]
    text += (
        f"\nMean ± SE over {d['setup'].get('n_folds_evaluated', d['setup']['k_folds'])} of "
        f"{d['setup']['k_folds']} folds of {d['setup']['n_cells']} M1 cells. "
        f"Best coupled AE by family QDA (λ = {best[0]}) against CCA — "
        + "; ".join(wins)
        + (f". CCA fits in {cca['seconds']:.1f} s.\n" if "seconds" in cca else ".\n")
    )
    return text


def sivae_table() -> str:
    """siVAE's map and loadings against SCVI, LDVAE and PCA (``sivae_quality.json``)."""
    d = _load("sivae_quality")
    if d is None or "datasets" not in d:
        return _missing("sivae_quality")

    def cell(entry: dict | None, key: str, fmt: str = ".3f") -> str:
        if not entry or entry.get(key) is None:
            return "–"
        return format(entry[key], fmt)

    rows = []
    for name, models in d["datasets"].items():
        siv, paper = models.get("sivae"), models.get("sivae_paper")
        scvi, ldvae, pca = models.get("scvi"), models.get("ldvae"), models.get("pca")
        ratio = (
            f"{siv['cpu_s'] / scvi['cpu_s']:.1f}×"
            if siv and scvi and siv.get("cpu_s") and scvi.get("cpu_s")
            else "–"
        )
        knn = f"{cell(siv, 'knn')} ± {cell(siv, 'knn_sd', '.3f')}" if siv else "–"
        rows.append(
            [
                name,
                knn,
                cell(paper, "knn"),
                cell(scvi, "knn"),
                cell(ldvae, "knn"),
                cell(pca, "knn"),
                f"{cell(siv, 'rho_lstsq', '.2f')} / {cell(siv, 'rho_deeplift', '.2f')}",
                f"{cell(paper, 'rho_lstsq', '.2f')} / {cell(paper, 'rho_deeplift', '.2f')}",
                cell(ldvae, "rho_lstsq", ".2f"),
                ratio,
            ]
        )
    head = [
        "data",
        "siVAE k-NN",
        "paper (γ 0.05) k-NN",
        "SCVI-2",
        "LDVAE-2",
        "PCA-2",
        "siVAE ρ lstsq / DeepLIFT",
        "paper ρ",
        "LDVAE ρ",
        "siVAE CPU ÷ SCVI",
    ]
    text = _table(head, rows)
    seeds = sorted({m.get("n_seeds", 0) for ms in d["datasets"].values() for m in ms.values()})
    text += (
        "\n2-d embeddings; k-NN: balanced accuracy, 5-fold, k = 20, labels never used in "
        "training (mean ± SD over seeds); ρ: median over seeds of the median over dimensions "
        "of |Spearman| between the loadings and the least-squares coefficients of the genes "
        f"on the scores / the decoder's DeepLIFT attributions. Seeds per dataset: "
        f"{', '.join(map(str, seeds))}. `benchmarks/quality/sivae_quality.py`.\n"
    )
    return text


def pbmc_table() -> str:
    """CV R² on the PBMC CITE-seq fixtures by ADT transform (``first_hour_pbmc.json``)."""
    d = _load("first_hour")
    pbmc = (d or {}).get("pbmc_cv_r2") or _load("first_hour_pbmc")
    if not pbmc or "cv_r2" not in pbmc:
        return _missing("first_hour_pbmc")
    rows = []
    for transform, per_data in pbmc["cv_r2"].items():
        for dataset, r in per_data.items():
            worst = r.get("worst_protein", ["–", float("nan")])
            rows.append(
                [
                    f"`{transform}`",
                    dataset,
                    f"{r['mean']:.3f} ± {r['sd']:.3f}",
                    f"{worst[0]} ({worst[1]:.2f})",
                ]
            )
    text = _table(["ADT transform", "data", "CV R² (mean ± SD)", "worst protein"], rows)
    text += f"\n{pbmc.get('method', '')}; {pbmc.get('note', '')}\n"
    return text


def write_tables(out: Path = OUT) -> list[Path]:
    """Write one Markdown file per table into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, make in [
        ("sbnn_vs_srrr", sbnn_table),
        ("coupled_vs_cca", coupled_table),
        ("sivae_vs_vae", sivae_table),
        ("pbmc_cv", pbmc_table),
    ]:
        path = out / f"{name}.md"
        path.write_text(make())
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write_tables():
        print(p.read_text())
