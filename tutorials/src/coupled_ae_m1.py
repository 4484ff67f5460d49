# %% [markdown]
# # Coupled autoencoders on M1 Patch-seq
#
# Gala et al. (2019) train one autoencoder per modality and pull the latents of paired cells
# together with a coupling term normalised so that the representation cannot collapse. With
# a shared 3-d latent, a cell's transcriptomic type can be read from its electrophysiology
# alone, and one modality can be predicted from the other. We also remove a third of the
# ephys recordings to show that cells measured in one modality only still land among their
# types (partially paired data).

# %%
import os
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")  # keep other libraries' notices out of the tutorial

import matplotlib.pyplot as plt  # noqa: E402
import mudata as md  # noqa: E402
import numpy as np

import multiviz as mv

warnings.filterwarnings("default", category=mv.MultivizWarning)  # but show multiviz's own

plt.rcParams["figure.dpi"] = 110
DATA = Path(os.environ.get("MULTIVIZ_SHARED_DATA", Path.cwd().parent.parent / "shared" / "data"))
mdata = md.read_h5mu(DATA / "m1_patchseq_scala2021.h5mu")
mv.pp.prepare_paired(mdata, n_top_genes=1000)

# %% [markdown]
# ## Fit with the minimum-singular-value coupling (λ = 1)
# A fixed schedule, no early stopping: 10k minibatch steps of 200 cells or 1,000 passes over
# the training cells, whichever is fewer (here the 90 % of the cells the fit trains on; the
# other 10 % give its held-out numbers). The default loss adds cross-modal reconstruction
# terms (`cross_modal="full"`); `cross_modal="off"` is the 2019 paper's loss. The reference
# trains 750k steps: `max_epochs=7500`.

# %%
model = mv.tl.coupled_autoencoder(
    mdata, modalities=("rna", "ephys"), n_latent=3, coupling="msv", lam=1.0, random_state=0, return_model=True
)
print("steps:", mdata.uns["cae"]["n_steps"])
mv.pl.coupled_latents(mdata, key="cae", color="rna_family");

# %%
mv.pl.training_history(mdata, key="cae", logy=True);

# %% [markdown]
# ## Cell-type consistency
# QDA (equal class priors, as the reference) on the transcriptomic latent predicts the
# family; the cross-modal accuracy fits QDA on z_T of training cells and predicts from z_E
# of held-out cells; separate Gaussian mixtures on z_T and z_E label the held-out cells,
# and their agreement is the AMI. (The benchmark `benchmarks/paper/coupled_ae_m1.py` does this
# with k-fold CV, retraining per fold, for λ ∈ {0, 0.1, 1, 10} and the CCA baseline, at the
# family and t-type levels; here the latents of one fit on all cells illustrate the metrics,
# so the numbers are optimistic.)

# %%
rng = np.random.default_rng(0)
test = rng.random(mdata.n_obs) < 0.2
labels = mdata.obs["rna_family"].astype(str).to_numpy()
z_t, z_e = mdata.obsm["X_cae_rna"], mdata.obsm["X_cae_ephys"]
print("QDA accuracy from z_T:", round(mv.metrics.qda_accuracy(z_t[~test], labels[~test], z_t[test], labels[test]), 3))
print("cross-modal accuracy (fit z_T, predict z_E):", round(mv.metrics.cross_modal_accuracy(z_t[~test], labels[~test], z_e[test], labels[test]), 3))
mv.metrics.gmm_consistency(z_t[~test], z_e[~test], z_t[test], z_e[test], n_components=8, n_init=10)

# %% [markdown]
# ## New cells into the trained latent
# The model embeds new cells (genes matched by name; a missing gene is an error). Here the
# training cells themselves reproduce the stored latents exactly.

# %%
z_new = model.get_latent_representation(mdata)
print("same as stored:", np.array_equal(z_new["ephys"], mdata.obsm["X_cae_ephys"]))

# %% [markdown]
# ## Cross-modal prediction: ephys features from the transcriptome

# %%
mv.tl.cross_modal_predict(mdata, source="rna", target="ephys", key="cae")
mv.pl.cross_modal(mdata, source="rna", target="ephys", key="cae", features=6);

# %% [markdown]
# ## The CCA baseline

# %%
mv.tl.cca(mdata, modalities=("rna", "ephys"), n_components=3)
mv.pl.coupled_latents(mdata, key="cca", color="rna_family");

# %% [markdown]
# ## Partially paired: a third of the cells without ephys
# The MuData keeps all 1213 cells (union of obs); 404 of them have no ephys row. Only cells
# present in both arms enter the coupling, the others train the transcriptomic arm alone.

# %%
partial = md.read_h5mu(DATA / "m1_patchseq_scala2021.h5mu")
mv.pp.prepare_paired(partial, n_top_genes=1000)
drop = np.random.default_rng(1).permutation(partial.n_obs)[: partial.n_obs // 3]
keep_ephys = ~np.isin(np.arange(partial.n_obs), drop)
ephys = partial["ephys"][keep_ephys].copy()
partial = md.MuData({"rna": partial["rna"].copy(), "ephys": ephys})
partial.obs["rna_family"] = md.read_h5mu(DATA / "m1_patchseq_scala2021.h5mu").obs["rna_family"]
mv.tl.coupled_autoencoder(partial, modalities=("rna", "ephys"), n_latent=3, lam=1.0, random_state=0)
z = partial.obsm["X_cae_rna"]
unpaired = np.isnan(partial.obsm["X_cae_ephys"][:, 0])
fam = partial.obs["rna_family"].astype(str).to_numpy()
acc = mv.metrics.qda_accuracy(z[~unpaired], fam[~unpaired], z[unpaired], fam[unpaired])
print(f"{unpaired.sum()} RNA-only cells; QDA (fit on paired cells) accuracy on them: {acc:.3f}")
mv.pl.coupled_latents(partial, key="cae", color="rna_family");
