# %% [markdown]
# # siVAE: gene loadings, hubs and neighbours
#
# siVAE (Choi & Quon 2023) couples a cell-wise and a feature-wise VAE, so that every gene
# gets an embedding that acts as a loading of the cell embedding, as PCA loadings do.
# multiviz's default (`design="map_first"`) learns the cell map first and then fits the
# loadings to it with the map held fixed; each step stops when its held-out criterion
# stops improving (`uns["sivae"]["steps"]` says what stopped it). We first recover planted hubs on the paper's hub-and-spoke simulation, then
# look at loadings, centrality and neighbours of real genes in the M1 Patch-seq
# transcriptomes.

# %%
import os
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")  # keep library notices out of the tutorial

import matplotlib.pyplot as plt  # noqa: E402
import mudata as md  # noqa: E402
import numpy as np
import scanpy as sc

import multiviz as mv

plt.rcParams["figure.dpi"] = 110
DATA = Path(os.environ.get("MULTIVIZ_SHARED_DATA", Path.cwd().parent.parent / "shared" / "data"))

# %% [markdown]
# ## Hub-and-spoke simulation
# Five communities of 50 genes, each with one hub connected to its 49 spokes (correlation
# 0.6), and 50 isolated genes; 5000 cells (the paper's design). A 64-d siVAE, as the paper
# uses for network analyses.

# %%
network = mv.datasets.simulate_gene_network(n_cells=5000, random_state=0)
mv.tl.sivae(network, n_latent=64, random_state=0)
network.uns["sivae"]["steps"]
top5 = mv.tl.gene_centrality(network, n_top=5)
print("top-5 genes by siVAE centrality:", list(top5.index))
print("planted hubs:", list(network.var_names[network.var["hub"]]))

# %%
norms = np.linalg.norm(network.varm["sivae_loadings"], axis=1)
isolated = (network.var["community"] == "isolated").to_numpy()
print(f"median loading norm: isolated {np.median(norms[isolated]):.3f}, community genes {np.median(norms[~isolated]):.3f}")
mv.pl.loadings(network, color="community", label_top=5);

# %% [markdown]
# ## Gene neighbours
# The 20 nearest genes in loading space ("siVAE-Euc" in the paper).

# %%
table = mv.tl.gene_neighbors(network, n_neighbors=20)
hub = network.var_names[network.var["hub"]][0]
neighbours = table[table["gene"] == hub] if "gene" in table else table.loc[hub]
neighbours.head(10)

# %% [markdown]
# ## Real data: the M1 Patch-seq transcriptomes
# A 2-d siVAE on log-normalised expression of the 1000 genes; cells coloured by family,
# genes by whether they are ion channels (GO:0005216).

# %%
mdata = md.read_h5mu(DATA / "m1_patchseq_scala2021.h5mu")
rna = mdata["rna"].copy()
rna.obs["rna_family"] = mdata.obs["rna_family"].astype(str).to_numpy()
rna.layers["counts"] = rna.X.copy()
sc.pp.normalize_total(rna)
sc.pp.log1p(rna)
sc.pp.scale(rna)
mv.tl.sivae(rna, n_latent=2, random_state=0)
fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
for family in sorted(rna.obs["rna_family"].unique()):
    sel = (rna.obs["rna_family"] == family).to_numpy()
    axes[0].scatter(*rna.obsm["X_sivae"][sel].T, s=4, label=family)
axes[0].legend(markerscale=3, fontsize="small", frameon=False)
axes[0].set_title("cell embedding")
rna.var["ion_channel"] = rna.var["ion_channel_go0005216"].map({True: "ion channel", False: "other"}).astype("category")
mv.pl.loadings(rna, color="ion_channel", label_top=10, ax=axes[1]);

# %% [markdown]
# How much of each gene the loadings explain linearly (`v_f · z_c` plus an intercept,
# the interpretability term's reconstruction) beside the full non-linear decoder, and how
# closely the loadings rank genes as the least-squares coefficients of the genes on the
# map do (`rho_lstsq`): high, which is what makes the loadings readable as PCA loadings.

# %%
res = rna.uns["sivae"]
print(f"mean per-gene R²: decoder {res['r2_gene']:.3f}, linear v·z {res['r2_linear']:.3f}")
print(f"loadings vs least-squares coefficients on the map: Spearman {res['rho_lstsq']:.2f}")

# %%
mv.tl.gene_centrality(rna, n_top=15)

# %%
mv.pl.training_history(rna, key="sivae", logy=True);
