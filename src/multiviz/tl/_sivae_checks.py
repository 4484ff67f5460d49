"""Up-front checks of ``mv.tl.sivae``'s arguments and data (nothing is fitted or written)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from anndata import AnnData
from anndata.abc import CSCDataset
from scipy import sparse

from multiviz import _logging as logg
from multiviz._ondisk import list_indexable
from multiviz._validate import (
    InputError,
    check_bool,
    check_counts,
    check_finite,
    check_float,
    check_int,
    check_min_obs,
    check_no_nan_labels,
    check_option,
    check_random_state,
    check_str,
    check_unique_names,
    check_writable,
    get_layer,
)
from multiviz._warnings import DataWarning
from multiviz.models.sivae._backed import column_min_max, inference_batch_size, is_backed
from multiviz.models.sivae._checks import check_registered, check_sivae_size, design_defaults

#: Fewest cells / genes siVAE is fitted on (a train/validation split and a PCA of Xᵀ).
MIN_CELLS = 10
MIN_GENES = 2


def check_container(adata, copy: bool) -> None:
    """AnnData, writable (a view is fine with ``copy=True``), unique names, not empty.

    A backed AnnData (``backed="r"``) is accepted without ``copy``: see :func:`check_backed`.
    """
    if not isinstance(adata, AnnData):
        raise InputError(
            f"`adata` must be an AnnData, got {type(adata).__name__} (for a MuData pass one "
            "modality, e.g. `mdata['rna']`)."
        )
    if adata.isbacked:
        check_backed(adata, copy)
    elif not copy:
        check_writable(adata, "adata")
    check_unique_names(adata, "adata")
    check_min_obs(adata.n_obs, MIN_CELLS, "adata")
    check_min_obs(adata.n_vars, MIN_GENES, "adata", what="genes")


def check_backed(adata: AnnData, copy: bool) -> None:
    """A backed AnnData: not a view, no ``copy`` (results go into its in-memory slots)."""
    if copy:
        raise InputError(
            "`copy=True` with a backed `adata` (opened with `backed='r'`) would copy the file "
            "into memory; leave `copy=False` (results are written into the backed object's "
            "obsm/varm/var/uns, which are held in memory) or pass `adata.to_memory()`."
        )
    if adata.is_view:
        raise InputError(
            "`adata` is a view of a backed AnnData; results cannot be written into it. "
            "Fit on the whole backed object, or make the subset an object of its own: "
            "`adata = adata.to_memory()`."
        )


def on_disk_work_adata(adata: AnnData, obs: pd.DataFrame, var: pd.DataFrame) -> AnnData:
    """The light AnnData the model is registered on when ``adata.X`` is on disk.

    An on-disk CSR matrix is held as it is (anndata's backed dataset, nothing read): the
    light object is not itself backed, so scvi-tools reads each minibatch in its shuffled
    order, as in memory, and the fit matches the in-memory one. HDF5 cannot read a dense
    dataset's rows out of order, so a dense on-disk ``X`` gets a backed light object on the
    same file instead (scvi-tools then reads sorted rows: the same cells per minibatch,
    other noise draws). The user's object is never registered (scvi-tools would add
    ``_scvi_*`` columns to its ``obs``).
    """
    import h5py

    if isinstance(adata.X, h5py.Dataset):
        return AnnData(obs=obs, var=var, filename=adata.filename, filemode="r")
    return AnnData(X=list_indexable(adata.X), obs=obs, var=var)


def check_obs_keys(
    adata: AnnData,
    batch_key: str | None,
    labels_key: str | None,
    categorical_covariate_keys: Sequence[str] | None,
    continuous_covariate_keys: Sequence[str] | None,
) -> list[str]:
    """Covariate columns exist; categorical ones have no NaN, continuous ones are finite."""
    check_str(batch_key, "batch_key", optional=True)
    check_str(labels_key, "labels_key", optional=True)
    cats = _key_list(categorical_covariate_keys, "categorical_covariate_keys")
    conts = _key_list(continuous_covariate_keys, "continuous_covariate_keys")
    named = [("batch_key", batch_key), ("labels_key", labels_key)]
    named += [("categorical_covariate_keys", k) for k in cats]
    named += [("continuous_covariate_keys", k) for k in conts]
    for arg, key in named:
        if key is not None and key not in adata.obs:
            raise InputError(
                f"`{arg}`: {key!r} is not a column of `adata.obs` (available: {list(adata.obs)})."
            )
    for arg, key in named[:2] + [("categorical_covariate_keys", k) for k in cats]:
        if key is not None:
            check_no_nan_labels(adata.obs[key], f"{arg}={key!r}")
    for key in conts:
        col = adata.obs[key]
        if not pd.api.types.is_numeric_dtype(col):
            raise InputError(
                f"`continuous_covariate_keys`: column {key!r} must be numeric, got {col.dtype}."
            )
        check_finite(col.to_numpy(dtype=float)[:, None], f"continuous_covariate_keys={key!r}")
    return [k for _, k in named if k is not None]


def _key_list(keys, arg: str) -> list[str]:
    if keys is None:
        return []
    if isinstance(keys, str) or not isinstance(keys, Sequence):
        raise InputError(f"`{arg}` must be a list of obs column names, got {keys!r}.")
    return [check_str(k, arg) for k in keys]


def check_data(adata: AnnData, layer: str | None, likelihood: str):
    """The modelled matrix: finite (Gaussian) or raw counts (NB)."""
    check_str(layer, "layer", optional=True)
    x = get_layer(adata, layer, "layer")
    what = f"layer {layer!r}" if layer else "adata.X"
    if is_backed(x):  # on disk: checked in row blocks, never read whole
        if isinstance(x, CSCDataset):
            raise InputError(
                f"`{what}` is an on-disk CSC matrix: its rows (cells) cannot be read without "
                "loading all of it. Write the file with CSR (`adata.X = adata.X.tocsr()`) "
                "or load it: `adata = adata.to_memory()`."
            )
        check_registered(x, likelihood, what)
    elif likelihood == "nb":
        check_counts(x, what)
    else:
        check_finite(x, what)
    return x


def output_batch_size(x) -> int | None:
    """Cells per inference minibatch of the outputs: larger reads for an on-disk matrix.

    ``None`` (the model's default) for a matrix in memory.
    """
    return inference_batch_size(x.shape[1]) if is_backed(x) else None


def constant_genes(x) -> np.ndarray:
    """Boolean mask of genes with one value in every cell (all-zero genes included)."""
    if is_backed(x):
        lo, hi = column_min_max(x)
        return lo == hi
    if sparse.issparse(x):
        lo = np.asarray(x.min(axis=0).todense()).ravel()
        hi = np.asarray(x.max(axis=0).todense()).ravel()
        return lo == hi
    x = np.asarray(x)
    return np.all(x == x[:1], axis=0)


def check_sizes(adata: AnnData, opts: dict, hidden: tuple[int, ...]) -> None:
    """Latent, hidden and feature-input sizes against the data and the memory.

    :func:`~multiviz.models.sivae._checks.check_sivae_size` without the covariates (the
    model class checks again with them), before anything is copied or registered.
    """
    check_sivae_size(
        adata.n_obs,
        adata.n_vars,
        opts["n_latent"],
        hidden,
        feature_input=opts["feature_input"],
        n_feature_input=opts["n_feature_input"],
        train_size=opts["train_size"],
        linear=opts["linear"],
    )


def check_schedule(
    max_epochs,
    pretrain_epochs,
    feature_pretrain_epochs,
    batch_size,
    lr,
    weight_decay,
    joint_batch_size=None,
) -> dict:
    """Epoch counts (joint step >= 1: loadings need it), batch sizes and optimiser settings."""
    out = {
        "max_epochs": None if max_epochs is None else check_int(max_epochs, "max_epochs"),
        "pretrain_epochs": None
        if pretrain_epochs is None
        else check_int(pretrain_epochs, "pretrain_epochs"),
        "feature_pretrain_epochs": None
        if feature_pretrain_epochs is None
        else check_int(feature_pretrain_epochs, "feature_pretrain_epochs", minimum=0),
        "batch_size": check_int(batch_size, "batch_size"),
        "joint_batch_size": None
        if joint_batch_size is None
        else check_int(joint_batch_size, "joint_batch_size"),
        "lr": check_float(lr, "lr", low=0, low_open=True),
        "weight_decay": check_float(weight_decay, "weight_decay", low=0),
    }
    return out


def check_options(
    *,
    n_latent,
    design,
    gamma,
    variance,
    likelihood,
    linear,
    interp_pretrain,
    feature_input,
    n_feature_input,
    gene_batch_size,
    train_size,
    dropout_rate,
    random_state,
    key_added,
    return_model,
    copy,
    early_stopping,
) -> dict:
    """Model options, validated; returns the normalised values."""
    if gene_batch_size not in ("auto", None):
        gene_batch_size = check_int(gene_batch_size, "gene_batch_size")
    gamma, _, interp_pretrain = design_defaults(design, gamma, variance, interp_pretrain)
    return {
        "n_latent": check_int(n_latent, "n_latent"),
        "design": design,
        "gamma": gamma,
        "likelihood": check_option(likelihood, ["gaussian", "nb"], "likelihood"),
        "linear": check_bool(linear, "linear"),
        "interp_pretrain": interp_pretrain,
        "feature_input": check_option(
            feature_input, ["pca", "downsample", "full"], "feature_input"
        ),
        "n_feature_input": None
        if n_feature_input is None
        else check_int(n_feature_input, "n_feature_input"),
        "gene_batch_size": gene_batch_size,
        "train_size": check_float(train_size, "train_size", low=0, high=1, low_open=True),
        "dropout_rate": check_float(dropout_rate, "dropout_rate", low=0, high=1, high_open=True),
        "random_state": check_random_state(random_state),
        "key_added": check_str(key_added, "key_added"),
        "return_model": check_bool(return_model, "return_model"),
        "copy": check_bool(copy, "copy"),
        "early_stopping": check_bool(early_stopping, "early_stopping"),
    }


def warn_constant(mask: np.ndarray, key_added: str) -> None:
    """Say how many genes are constant and what is written for them."""
    if mask.any():
        logg.warning(
            f"{int(mask.sum())} of {mask.size} genes are constant over cells (e.g. all-zero); "
            f"they have no reconstruction R²: siVAE writes centrality 0 and loadings 0 for them "
            f"with `var['{key_added}_used'] = False` and leaves them out of the mean R².",
            category=DataWarning,
        )
