"""What the overlays of :func:`multiviz.pl.latent_overlay` show: genes and predicted features."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from mudata import MuData

from .._validate import InputError


def strip_mod(name: str, mod: str) -> str:
    """``"rna:Pvalb"`` → ``"Pvalb"`` when the prefix is ``mod`` (muon's naming)."""
    prefix = f"{mod}:"
    return name[len(prefix) :] if str(name).startswith(prefix) else str(name)


def _cv_r2(mdata: MuData, key: str, params: dict) -> pd.Series | None:
    """Mean held-out R² per feature from a ``cross_validate`` table matching this fit."""
    method = "srrr" if key.startswith("srrr") else "sbnn" if key.startswith("sbnn") else None
    tables = [
        v
        for v in mdata.uns.values()
        if isinstance(v, pd.DataFrame) and {"method", "feature", "r2"} <= set(v.columns)
    ]
    for table in tables:
        rows = table[(table["method"] == method) & (table["feature"] != "all")]
        for arg in ("bottleneck", "rank"):
            if arg in params and "params" in rows:
                same = rows["params"].astype(str).str.contains(f"{arg}={params[arg]}\\b")
                rows = rows[same] if same.any() else rows
        if len(rows):
            return rows.groupby("feature")["r2"].mean()
    return None


def rank_features(mdata: MuData, key: str, info: dict, names: list[str]):
    """Features by decreasing R²: ``cross_validate`` in ``uns``, else held-out, else train."""
    info = info if isinstance(info, dict) else {}
    r2, source = _cv_r2(mdata, key, info.get("params", {})), "CV"
    for stored, label in (
        ("r2_heldout_per_feature", "held-out"),
        ("r2_train_per_feature", "train"),
    ):
        if r2 is not None and set(names) & set(r2.index):
            break
        per_feature = info.get(stored)
        r2, source = (pd.Series(per_feature) if per_feature is not None else None), label
    if r2 is None or not set(names) & set(r2.index):
        return list(names), {}, None
    r2 = r2.reindex(names)
    order = list(r2.sort_values(ascending=False, na_position="last").index)
    return order, r2.to_dict(), source


def gene_panels(
    mdata: MuData, key: str, info: dict, xmod: str, genes: int | Sequence[str]
) -> tuple[dict[str, np.ndarray], set[str]]:
    """Values per gene overlay (reconstructed where stored, else observed) and which kinds."""
    panels: dict[str, np.ndarray] = {}
    kinds: set[str] = set()
    rna = mdata.mod[xmod]
    pred = rna.obsm.get(f"{key}_genes_pred")
    if isinstance(genes, int | np.integer):
        ranked = list(info.get("selected_genes", [])) if isinstance(info, dict) else []
        if not ranked and f"{key}_selected" in rna.var:
            ranked = list(rna.var_names[rna.var[f"{key}_selected"].to_numpy(bool)])
        if not ranked:
            raise InputError(f"No selected genes stored under {key!r}; pass `genes` as a list.")
        genes = ranked[: int(genes)]
    for g in (strip_mod(g, xmod) for g in genes):
        if isinstance(pred, pd.DataFrame) and g in pred.columns:
            panels[g] = pred[g].to_numpy()
            kinds.add("reconstructed")
        elif g in rna.var_names:
            col = rna[:, g].X
            col = col.toarray() if hasattr(col, "toarray") else np.asarray(col)
            panels[g] = col.ravel()
            kinds.add("observed")
        else:
            raise InputError(f"Gene {g!r} is not in `mdata[{xmod!r}].var_names`.")
    return panels, kinds


def feature_panels(
    mdata: MuData, key: str, info: dict, ymod: str | None, features: int | Sequence[str]
) -> dict[str, np.ndarray]:
    """Predicted values per feature overlay, titled with the feature's R² where known."""
    if ymod is None or f"{key}_pred" not in mdata.mod[ymod].layers:
        raise InputError(
            f"No predictions `layers['{key}_pred']` found; run `mv.tl.{key.rstrip('0123456789_')}` first or pass `key=`."
        )
    target = mdata.mod[ymod]
    pred = np.asarray(target.layers[f"{key}_pred"])
    names = [str(n) for n in target.var_names]
    order, r2, source = rank_features(mdata, key, info, names)
    if isinstance(features, int | np.integer):
        features = order[: int(features)]
    panels: dict[str, np.ndarray] = {}
    for f in (strip_mod(f, ymod) for f in features):
        if f not in names:
            raise InputError(f"Feature {f!r} is not in `mdata[{ymod!r}].var_names` ({names}).")
        score = r2.get(f)
        title = f if score is None or pd.isna(score) else f"{f}\n{source} R² {score:.2f}"
        panels[title] = pred[:, names.index(f)]
    return panels
