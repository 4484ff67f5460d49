"""Outputs of a trained :class:`~multiviz.models.SIVAE`: scores, loadings, R², samples.

A mixin so that ``_model.py`` holds construction and training only. Every method accepts
``adata=`` with new cells: genes are matched to the model's genes by name (extra genes are
ignored, reordered genes are put back in order) and a missing gene is a clear
:class:`~multiviz.InputError`. Saving and loading come from
:class:`~multiviz.models._save.ModelFilesMixin`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from scvi import REGISTRY_KEYS

from multiviz._validate import InputError, check_positive_int

from .._save import ModelFilesMixin


class SIVAEOutputsMixin(ModelFilesMixin):
    """Scores, loadings, per-gene R², centrality and samples of a trained siVAE; its files."""

    def _match_genes(self, adata: AnnData | None) -> AnnData | None:
        """``adata`` with the model's genes in the model's order (genes matched by name)."""
        if adata is None:
            return None
        if not isinstance(adata, AnnData):
            raise InputError(f"`adata` must be an AnnData, got {type(adata).__name__}.")
        genes = self.adata.var_names
        if adata.var_names.equals(genes):
            return adata
        if not adata.var_names.is_unique:
            raise InputError(
                "`adata` has duplicated var_names; run `adata.var_names_make_unique()` first."
            )
        missing = genes.difference(adata.var_names)
        if len(missing):
            raise InputError(
                f"`adata` lacks {len(missing)} of the model's {len(genes)} genes "
                f"(e.g. {list(missing[:5])}); new cells need every gene the model was trained "
                "on (genes are matched by name)."
            )
        sub = adata[:, genes]
        return sub.to_memory() if sub.isbacked else sub.copy()

    def _loader(self, adata, indices=None, batch_size=None):
        scvi_logger = logging.getLogger("scvi")
        level = scvi_logger.level
        scvi_logger.setLevel(logging.WARNING)  # "attempting to transfer AnnData setup"
        try:
            adata = self._validate_anndata(self._match_genes(adata))
        finally:
            scvi_logger.setLevel(level)
        return self._make_data_loader(adata=adata, indices=indices, batch_size=batch_size or 1024)

    @torch.no_grad()
    def get_latent_representation(
        self,
        adata: AnnData | None = None,
        indices: Sequence[int] | None = None,
        give_mean: bool = True,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """siVAE scores: posterior means (or samples) of ``z_{c,1}``, cells x ``n_latent``.

        ``adata`` may hold new cells (genes matched by name); projecting the training
        cells reproduces the stored ``obsm`` scores exactly.
        """
        self._check_if_trained(warn=False)
        was_training = self.module.training
        self.module.eval()
        out = []
        for tensors in self._loader(adata, indices, batch_size):
            inf = self.module.inference(**self.module._get_inference_input(tensors))
            out.append((inf["qz"].loc if give_mean else inf["z"]).cpu())
        self.module.train(was_training)
        return torch.cat(out).numpy()

    @torch.no_grad()
    def get_loadings(self, give_mean: bool = True) -> pd.DataFrame:
        """siVAE loadings: posterior means of ``v_{f,1}``, genes x ``n_latent`` DataFrame.

        Raises :class:`~multiviz.InputError` for a model trained without the feature side
        (only step 1), which has no loadings.
        """
        self._check_if_trained(warn=False)
        if self.module.phase == 1:
            raise InputError(
                "This model was trained without its feature side (step 1 only), so it has no "
                "loadings; train steps 2 and 3 (`feature_pretrain_epochs`, `max_epochs` > 0)."
            )
        was_training = self.module.training
        self.module.eval()
        v1, _ = self.module.full_v_last(use_mean=give_mean)
        self.module.train(was_training)
        cols = [f"dim{k + 1}" for k in range(self.module.n_latent)]
        return pd.DataFrame(v1.cpu().numpy(), index=self.adata.var_names.copy(), columns=cols)

    @torch.no_grad()
    def _gene_moments(
        self, adata, batch_size, linear: bool, indices=None
    ) -> dict[str, torch.Tensor]:
        """Per-gene sums of target, target², residual and residual² over cells ``indices``."""
        m = self.module
        was_training = m.training
        m.eval()
        v1, vl = m.full_v_last(use_mean=True)
        if m.phase == 1:
            vl = m.w_free
        acc: dict[str, torch.Tensor] = {}
        n = 0
        for tensors in self._loader(adata, indices, batch_size):
            inp = m._get_inference_input(tensors)
            x = inp["x"].to(m.bias.device)
            cov = inp["cov"].to(m.bias.device) if inp["cov"] is not None else None
            z = m.inference(x, cov)["qz"].loc
            target = m.interp_target(x)
            if linear:
                pred = z @ v1.T
                if cov is not None and m.interp_cov is not None:
                    pred = pred + m.interp_cov(cov)
            else:
                eta = m.decode_hidden(z, cov) @ vl.T + m.bias
                if m.linear and cov is not None:
                    eta = eta + m.interp_cov(cov)
                pred = (
                    eta if m.likelihood == "gaussian" else torch.log1p(torch.softmax(eta, -1) * 1e4)
                )
            res = target - pred
            for key, val in (("t", target), ("t2", target**2), ("r", res), ("r2", res**2)):
                acc[key] = acc.get(key, 0) + val.sum(0).double()
            n += x.shape[0]
        m.train(was_training)
        acc["n"] = torch.tensor(float(n), dtype=torch.float64)
        return acc

    def get_gene_r2(
        self,
        adata: AnnData | None = None,
        batch_size: int | None = None,
        linear: bool = False,
        indices: Sequence[int] | None = None,
    ) -> pd.Series:
        """Per-gene reconstruction R² over cells (siVAE degree centrality; higher = more central).

        The paper defines degree centrality as the negative per-gene reconstruction error
        (Methods, "Estimating degree centrality using siVAE"); R² = 1 - SSE/SST is that
        error normalised by each gene's variance. Predictions use posterior-mean scores;
        for ``"nb"`` both sides are log-normalised (``log1p(x / library * 1e4)``).

        ``indices`` scores only those cells of ``adata`` (e.g. ``model.validation_indices``,
        cells no step trained on: a held-out R²).

        ``linear=True`` scores the interpretability reconstruction ``v_{f,1} · z_{c,1}``
        plus a per-gene intercept (its least-squares value over the scored cells, so that
        models trained with and without the interpretability term are compared alike).

        A gene that is constant over the scored cells has no R² (``SST = 0``): it is
        returned as NaN here, and :func:`multiviz.tl.sivae` writes 0 with
        ``var["sivae_used"] = False`` instead.
        """
        self._check_if_trained(warn=False)
        acc = self._gene_moments(adata, batch_size, linear, indices)
        n = acc["n"]
        sst, sse = _sums_of_squares(acc, linear)
        scale = torch.clamp(acc["t2"] / n, min=1e-30)
        constant = sst <= 1e-10 * scale * n
        r2 = torch.where(constant, torch.nan, 1.0 - sse / torch.where(constant, 1.0, sst))
        return pd.Series(r2.cpu().numpy(), index=self.adata.var_names.copy(), name="r2")

    @torch.no_grad()
    def _pooled_r2(
        self,
        indices,
        genes: np.ndarray,
        batch_size: int | None = None,
        linear: bool = False,
        adata: AnnData | None = None,
    ) -> float:
        """``1 - sum SSE / sum SST`` over genes ``genes`` (bool) and cells ``indices``.

        Cells of ``adata`` (the model's when None). The summary for a few held-out cells: a
        mean of per-gene R² is dominated there by genes nearly constant over those cells (tiny
        SST); pooling weighs genes by their variance.
        """
        sst, sse = _sums_of_squares(self._gene_moments(adata, batch_size, linear, indices), linear)
        keep = torch.as_tensor(np.asarray(genes, dtype=bool), device=sst.device)
        return float(1.0 - sse[keep].sum() / sst[keep].sum().clamp_min(1e-30))

    def get_gene_centrality(
        self, adata: AnnData | None = None, batch_size: int | None = None
    ) -> pd.Series:
        """Degree centrality per gene (= :meth:`get_gene_r2`; higher = more central)."""
        return self.get_gene_r2(adata, batch_size).rename("centrality")

    @torch.no_grad()
    def sample(
        self, n_cells: int = 1, *, batch: str | None = None, random_state: int = 0
    ) -> np.ndarray:
        """New cells drawn from the generative model (``z ~ N(0, I)``, paper eqs. 4-8 / 14-17).

        Parameters
        ----------
        n_cells
            Number of cells.
        batch
            Batch category to generate (models with ``batch_key``); default the first.
        random_state
            Seed (the global torch RNG state is restored afterwards).

        Returns
        -------
        Dense ``n_cells x n_genes`` array (counts for ``"nb"``).
        """
        check_positive_int(n_cells, "n_cells")
        self._check_if_trained(warn=False)
        m = self.module
        was_training = m.training
        m.eval()
        cov = None
        if m.n_cov:
            if m.n_continuous_cov or m.n_cats_per_cov:
                raise InputError(
                    "sample() supports models with a batch key only (no extra covariates)."
                )
            cats = list(
                self.adata_manager.get_state_registry(REGISTRY_KEYS.BATCH_KEY).categorical_mapping
            )
            code = 0 if batch is None else cats.index(batch) if batch in cats else None
            if code is None:
                raise InputError(
                    f"`batch={batch!r}` is not a batch of this model; choose one of {cats}."
                )
            cov = torch.zeros(n_cells, m.n_batch, device=m.bias.device)
            cov[:, code] = 1.0
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(random_state)
            out = m.sample(n_cells, cov)
        m.train(was_training)
        return out.cpu().numpy()


def _sums_of_squares(acc: dict, linear: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-gene total and residual sums of squares from :meth:`_gene_moments`' sums.

    ``linear``: the residuals are centred (their mean is the least-squares intercept).
    """
    n = acc["n"]
    sst = acc["t2"] - acc["t"] ** 2 / n
    return sst, (acc["r2"] - acc["r"] ** 2 / n if linear else acc["r2"])
