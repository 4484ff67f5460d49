"""``mv.tl.decoder_attribution``: neural-network feature attributions of the siVAE decoder.

Paper (Choi & Quon 2023, Methods "Feature attribution methods" and "Feature embeddings
for feature attribution methods"): attributions are taken between the output layer
(targets, one per gene) and the latent embedding layer (inputs) of the cell-wise decoder,
with baseline 0 for integrated gradients and DeepLIFT. For each embedding dimension ``d``
the per-cell attributions ``S[d, :, :]`` (cells x genes) are summarised by the loadings of
their first principal component, giving a genes x dims matrix comparable with the siVAE
loadings.

All genes are attributed at once: the decoder is a stack of ``Linear`` and ``ReLU``
layers, so the Jacobian (or DeepLIFT's rescale-rule multiplier matrix) of all F outputs
with respect to the K latent inputs is propagated forward as a K-column tangent, costing
about K forward passes per cell instead of F backward passes (the paper's forward-mode
observation). ``backend="captum"`` runs captum's per-output implementations instead
(slow; used to check the vectorised path).
"""

from __future__ import annotations

import time
from typing import Literal

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from sklearn.decomposition import PCA
from torch import nn

from multiviz import _logging as logg
from multiviz._validate import (
    InputError,
    check_fit_finite,
    check_int,
    check_option,
    check_random_state,
    check_str,
    check_writable,
)

__all__ = ["decoder_attribution", "per_cell_attributions"]

METHODS = ["saliency", "grad_x_input", "integrated_gradients", "deeplift"]


def _get_model(adata_or_model, model):
    from multiviz.models.sivae import SIVAE

    if isinstance(adata_or_model, SIVAE):
        return None, adata_or_model
    if isinstance(adata_or_model, AnnData):
        if not isinstance(model, SIVAE):
            raise InputError(
                "Pass the trained model: `mv.tl.decoder_attribution(adata, model=model)` with "
                "`model = mv.tl.sivae(adata, return_model=True)` (or pass the model alone)."
            )
        if adata_or_model.n_vars != model.module.n_input:
            raise InputError(
                f"`adata` has {adata_or_model.n_vars} genes but the model has {model.module.n_input}."
            )
        return adata_or_model, model
    raise InputError(
        f"The first argument must be an AnnData or a trained multiviz.models.SIVAE, got "
        f"{type(adata_or_model).__name__}."
    )


def _tangent(module, z: torch.Tensor, cov: torch.Tensor | None, rule: str, z0: torch.Tensor | None):
    """``(B, H_L, K)`` derivative of ``z_{c,L}`` w.r.t. ``z_{c,1}`` through the decoder.

    ``rule="gradient"`` uses ReLU derivatives at ``z``; ``rule="rescale"`` uses DeepLIFT's
    rescale multipliers ``(relu(h) - relu(h0)) / (h - h0)`` against the baseline ``z0``.
    """
    b, k = z.shape
    tangent = torch.eye(k, device=z.device).expand(b, k, k)
    if module.linear:
        return tangent
    h = torch.cat([z, cov], -1) if cov is not None else z
    h0 = None
    if rule == "rescale":
        h0 = torch.cat([z0, cov], -1) if cov is not None else z0
    first = True
    for layer in module.z_decoder:
        if isinstance(layer, nn.Linear):
            w = layer.weight[:, :k] if first else layer.weight
            tangent = torch.einsum("hi,bik->bhk", w, tangent)
            h = layer(h)
            if h0 is not None:
                h0 = layer(h0)
            first = False
        elif isinstance(layer, nn.ReLU):
            if rule == "rescale":
                dh = h - h0
                small = dh.abs() < 1e-6
                mult = torch.where(
                    small,
                    (h > 0).float(),
                    (torch.relu(h) - torch.relu(h0)) / torch.where(small, torch.ones_like(dh), dh),
                )
                h0 = torch.relu(h0)
            else:
                mult = (h > 0).float()
            tangent = tangent * mult.unsqueeze(-1)
            h = torch.relu(h)
        elif isinstance(layer, nn.Dropout):
            continue
        else:  # pragma: no cover - the module only builds Linear/ReLU/Dropout
            raise TypeError(f"unsupported decoder layer {type(layer).__name__}")
    return tangent


@torch.no_grad()
def per_cell_attributions(
    model,
    z: torch.Tensor,
    cov: torch.Tensor | None,
    method: str,
    *,
    n_steps: int = 50,
) -> torch.Tensor:
    """``(cells, genes, dims)`` attributions of the decoder outputs ``eta`` to ``z``."""
    module = model.module
    vl = module.full_v_last(use_mean=True)[1] if module.phase != 1 else module.w_free
    if module.linear:
        vl = module.full_v_last(use_mean=True)[0]

    def jac(at: torch.Tensor, rule: str = "gradient", base: torch.Tensor | None = None):
        return torch.einsum("fh,bhk->bfk", vl, _tangent(module, at, cov, rule, base))

    if method == "gradient":
        return jac(z)
    if method == "saliency":
        return jac(z).abs()
    if method == "grad_x_input":
        return jac(z) * z.unsqueeze(1)
    if method == "deeplift":
        return jac(z, "rescale", torch.zeros_like(z)) * z.unsqueeze(1)
    # integrated gradients, baseline 0, Gauss-Legendre nodes on [0, 1] (as captum)
    nodes, weights = np.polynomial.legendre.leggauss(n_steps)
    total = None
    for a, w in zip((nodes + 1) / 2, weights / 2):
        j = jac(z * float(a)) * float(w)
        total = j if total is None else total + j
    return total * z.unsqueeze(1)


def _captum_attributions(model, z, cov, method: str, n_steps: int) -> torch.Tensor:
    try:
        import captum.attr as ca
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "backend='captum' needs captum: `pip install captum` (or `pip install multiviz[attribution]`)."
        ) from err
    module = model.module
    vl = module.full_v_last(use_mean=True)[1]

    class _Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.dec = module.z_decoder

        def forward(self, zz, cc=None):
            zl = self.dec(torch.cat([zz, cc], -1) if cc is not None else zz)
            return zl @ vl.T + module.bias

    net = _Decoder().eval()
    explainer = {
        "saliency": ca.Saliency,
        "grad_x_input": ca.InputXGradient,
        "integrated_gradients": ca.IntegratedGradients,
        "deeplift": ca.DeepLift,
    }[method](net)
    extra = (cov,) if cov is not None else None
    out = []
    for f in range(module.n_input):
        kwargs = {"target": f, "additional_forward_args": extra}
        if method == "saliency":
            kwargs["abs"] = True
        if method in ("integrated_gradients", "deeplift"):
            kwargs["baselines"] = torch.zeros_like(z)
        if method == "integrated_gradients":
            kwargs["n_steps"] = n_steps
        out.append(explainer.attribute(z.clone().requires_grad_(True), **kwargs).detach())
    return torch.stack(out, dim=1)


def _attribute_cells(
    model, idx: np.ndarray, batch_size: int, method: str, backend: str, n_steps: int
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Per-chunk attributions (cells x genes x dims) and summed reference gradients."""
    module = model.module
    chunks, grads = [], []
    for tensors in model._loader(None, idx, batch_size):
        inp = module._get_inference_input(tensors)
        with torch.no_grad():
            z = module.inference(inp["x"], inp["cov"])["qz"].loc
        cov = inp["cov"].to(z.device) if inp["cov"] is not None else None
        if backend == "captum":
            a = _captum_attributions(model, z, cov, method, n_steps)
        else:
            a = per_cell_attributions(model, z, cov, method, n_steps=n_steps)
        ref = per_cell_attributions(model, z, cov, "gradient")
        if method == "saliency":
            ref = ref.abs()
        chunks.append(a.float().cpu())
        grads.append(ref.sum(0).cpu())
    return chunks, grads


def _first_pc_loadings(
    attributions: np.ndarray, mean_grad: np.ndarray, n_use: int, n_genes: int, k: int
) -> np.ndarray:
    """Genes x dims: each dimension's first-PC loadings, signed along the mean gradient."""
    u = np.zeros((n_genes, k))
    for d in range(k):
        mat = attributions[:, :, d]
        if n_use < 2 or not np.isfinite(mat).all() or np.allclose(mat, mat[0]):
            comp = mat.mean(0)
            norm = np.linalg.norm(comp)
            comp = comp / norm if norm > 0 else comp
        else:
            comp = PCA(n_components=1, random_state=0).fit(mat).components_[0]
        if np.dot(comp, mean_grad[:, d]) < 0:
            comp = -comp
        u[:, d] = comp
    return u


def decoder_attribution(
    adata_or_model,
    *,
    model=None,
    method: Literal["saliency", "grad_x_input", "integrated_gradients", "deeplift"] = "deeplift",
    n_cells: int = 2000,
    n_steps: int = 50,
    batch_size: int = 256,
    backend: Literal["vectorised", "captum"] = "vectorised",
    max_elements: int = 200_000_000,
    random_state: int = 0,
    key_added: str | None = None,
) -> pd.DataFrame:
    """Decoder feature attributions summarised per latent dimension (genes x dims).

    Parameters
    ----------
    adata_or_model
        A trained :class:`~multiviz.models.SIVAE`, or an AnnData together with ``model=``
        (then the result is also written to ``adata.varm``).
    model
        The trained model when an AnnData is passed first.
    method
        ``"saliency"`` (absolute gradient), ``"grad_x_input"``, ``"integrated_gradients"``
        (baseline 0) or ``"deeplift"`` (rescale rule, baseline 0) - the methods of the
        paper's Fig. 3 that apply to a decoder.
    n_cells
        Cells whose attributions are summarised (a random subset of the model's cells when
        there are more; further capped so that cells x genes x dims <= ``max_elements``).
    n_steps
        Integration points of integrated gradients (captum's default 50).
    batch_size
        Cells per vectorised chunk.
    backend
        ``"vectorised"`` (all genes at once, forward tangents) or ``"captum"`` (one captum
        call per gene; slow, for checking).
    max_elements
        Memory cap on the stored per-cell attributions.
    random_state
        Seed of the cell subset.
    key_added
        With an AnnData: ``varm`` key (default ``f"sivae_attribution_{method}"``).

    Returns
    -------
    Genes x dims DataFrame ``U`` (first-PC loadings of each dimension's cells x genes
    attribution matrix, unit norm; the sign is chosen so that ``U[:, d]`` agrees with the
    cell-averaged signed gradient - its absolute value for saliency). ``.attrs["seconds"]``
    holds the wall time, ``.attrs["n_cells"]`` the cells used.

    Examples
    --------
    >>> model = mv.tl.sivae(adata, return_model=True)  # doctest: +SKIP
    >>> u = mv.tl.decoder_attribution(adata, model=model, method="deeplift")  # doctest: +SKIP
    """
    adata, model = _get_model(adata_or_model, model)
    check_option(method, METHODS, "method")
    check_option(backend, ["vectorised", "captum"], "backend")
    n_cells = check_int(n_cells, "n_cells")
    n_steps = check_int(n_steps, "n_steps")
    batch_size = check_int(batch_size, "batch_size")
    max_elements = check_int(max_elements, "max_elements")
    key_added = check_str(key_added, "key_added", optional=True)
    if adata is not None:
        check_writable(adata, "adata_or_model")
    rng = np.random.default_rng(check_random_state(random_state))
    model._check_if_trained(warn=False)
    module = model.module
    was_training = module.training
    module.eval()
    n_genes, k = module.n_input, module.n_latent
    n_obs = model.adata.n_obs
    n_use = min(n_cells, n_obs, max(1, max_elements // (n_genes * k)))
    if n_use < min(n_cells, n_obs):
        logg.warning(f"decoder_attribution: {n_use} cells fit in max_elements={max_elements}.")
    idx = np.sort(rng.choice(n_obs, size=n_use, replace=False))
    start = time.perf_counter()
    with logg.timed(f"decoder attribution ({method}, {backend}, {n_use} cells)"):
        chunks, grads = _attribute_cells(model, idx, batch_size, method, backend, n_steps)
        attributions = torch.cat(chunks).numpy()  # cells x genes x dims
        mean_grad = (torch.stack(grads).sum(0) / n_use).numpy()
        u = _first_pc_loadings(attributions, mean_grad, n_use, n_genes, k)
    module.train(was_training)
    seconds = time.perf_counter() - start
    cols = [f"dim{i + 1}" for i in range(k)]
    out = pd.DataFrame(u, index=model.adata.var_names.copy(), columns=cols)
    out.attrs.update(
        {"seconds": seconds, "n_cells": int(n_use), "method": method, "backend": backend}
    )
    check_fit_finite(
        u,
        model="siVAE",
        phase="decoder attribution",
        hint="The model's weights are not finite; refit it",
    )
    if adata is not None:
        key = key_added or f"sivae_attribution_{method}"
        adata.varm[key] = u
        logg.info(f"    added varm['{key}']")
    return out
