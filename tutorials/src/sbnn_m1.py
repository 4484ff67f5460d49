# %% [markdown]
# # sBNN and sRRR on M1 Patch-seq
#
# This tutorial reproduces the main analyses of Bernaerts, Berens & Kobak (2022) on the M1
# Patch-seq data of Scala et al. (2021): 1213 neurons, 1000 genes, 16 electrophysiological
# features. We fit the linear baseline **sRRR** and the **sparse bottleneck neural network**
# with a 2-d and a 64-d bottleneck, look at the latent with overlays of genes and predicted
# features (the paper's Fig. 5), embed the 64-d latent with t-SNE, and measure
# cross-validated R² (Figs. 2-3) and the stability of the selected genes (Fig. 4).
#
# The data are read from the project's `shared/data` folder (set `MULTIVIZ_SHARED_DATA` to
# point elsewhere); nothing is downloaded.

# %%
import os
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")  # keep other libraries' notices out of the tutorial

import matplotlib.pyplot as plt  # noqa: E402
import mudata as md  # noqa: E402

import multiviz as mv

warnings.filterwarnings("default", category=mv.MultivizWarning)  # but show multiviz's own

plt.rcParams["figure.dpi"] = 110
DATA = Path(os.environ.get("MULTIVIZ_SHARED_DATA", Path.cwd().parent.parent / "shared" / "data"))
mdata = md.read_h5mu(DATA / "m1_patchseq_scala2021.h5mu")
mdata

# %% [markdown]
# ## Preprocessing
# The paper's recipe: library size to the median depth, `log2(x + 1)`, z-scored genes and
# features. The file already holds the paper's 1000 genes; mitochondrial genes and ERCC
# spike-ins are never predictors, so 992 of them remain (`exclude_genes=None` keeps all 1000).

# %%
mv.pp.prepare_paired(mdata, x="rna", y="ephys", n_top_genes=1000)
mdata.uns["prepare_paired"]["median_library_size"], mdata["rna"].X.shape

# %% [markdown]
# ## sRRR: the linear baseline (rank 2, 25 genes)

# %%
mv.tl.srrr(mdata, rank=2, n_genes=25)
print(list(mdata["rna"].var_names[mdata["rna"].var["srrr_selected"]]))
mv.pl.latent_overlay(mdata, basis="srrr", genes=6, features=6, color="rna_family");

# %% [markdown]
# ## sBNN-2: the full paper schedule
# k-means pre-training (K = 20), 50 epochs with frozen first layers, 50 epochs all trainable,
# pruning to 25 genes, 100 epochs of fine-tuning; a decoder from the bottleneck to the
# selected genes is trained afterwards for the gene overlays.

# %%
mv.tl.sbnn(mdata, bottleneck=2, n_genes=25, random_state=0)
selected = mdata["rna"].var.loc[mdata["rna"].var["sbnn_selected"], "sbnn_weight_norm"]
print(selected.sort_values(ascending=False).index.tolist())
mv.pl.training_history(mdata, key="sbnn", metrics=["loss"], logy=True);

# %%
mv.pl.latent_overlay(mdata, basis="sbnn", genes=6, features=["AP width", "Tau", "Max AP num", "UDR", "AHP", "Sag"], color="rna_family");

# %% [markdown]
# ## sBNN-64 and its t-SNE (the paper's Fig. 5b)

# %%
mv.tl.sbnn(mdata, bottleneck=64, n_genes=25, key_added="sbnn64", random_state=0)
mv.tl.tsne(mdata, use_rep="X_sbnn64")
mv.pl.latent_overlay(mdata, basis="sbnn64", genes=6, features=6, color="rna_family");

# %% [markdown]
# ## Cross-validated R², and is the sBNN better than sRRR here?
# Every model sees identical folds; preprocessing, k-means labels and the models are fitted
# inside each training fold, and R² is the paper's eq. (3). With `return_predictions=True`
# each cell is also predicted by the fold's model that did not see it, with a 90 % interval
# from the other cells' out-of-fold residuals, and its latent position gets a spread: the ten
# folds' latents rotated onto the full fit's (`align_to="X_sbnn"`).
# `mv.tl.compare_methods` reuses both tables and answers with a paired difference over the
# same folds and its confidence interval. `benchmarks/paper/sbnn_table1.py` runs the paper's full
# comparison (results in `benchmarks/results/sbnn_table1.json`).

# %%
cv_srrr = mv.tl.cross_validate(mdata, method="srrr", n_folds=10)
cv_sbnn, oof_pred, oof_latent = mv.tl.cross_validate(
    mdata, method="sbnn", n_folds=10, return_predictions=True, align_to="X_sbnn"
)
comparison = mv.tl.compare_methods(mdata, ("srrr", "sbnn"))  # logs its verdict
mv.pl.compare_methods(mdata);

# %%
mv.pl.cv_r2(mdata, key=["cv_srrr", "cv_sbnn"]);

# %%
ephys = mdata["ephys"]
measured = ephys.layers["unscaled"]
inside = (measured >= ephys.layers["cv_sbnn_pred_lower"]) & (measured <= ephys.layers["cv_sbnn_pred_upper"])
print(f"out-of-fold 90 % intervals hold the measured value for {inside.mean():.1%} of cells x features")
mv.pl.latent_spread(mdata, key="cv_sbnn");

# %% [markdown]
# ## Stability of the selected genes
# sRRR is deterministic, so its selection varies only with the training cells: refit it on
# the 10 training folds. (For sBNN, `mv.tl.selection_stability(mdata, method="sbnn", n_seeds=10)`
# refits over seeds; the benchmark reports its fold-to-fold Jaccard index.)

# %%
result = mv.tl.selection_stability(mdata, method="srrr", over="folds", n_folds=10, rank=2, key_added="srrr")
print(f"mean pairwise Jaccard {result['mean_jaccard']:.2f}; always selected: {result['always_selected']}")
mv.pl.selection_stability(mdata, key="srrr");
