"""siVAE as a pure torch module (Choi & Quon, Genome Biology 2023, Methods).

Two variational autoencoders share one output layer. The cell-wise VAE encodes a cell's
expression profile ``X[c, :]`` into ``z_{c,1}`` and decodes it to the last hidden layer
``z_{c,L}``; the feature-wise VAE encodes a gene's (reduced) profile over cells into
``v_{f,1}`` and decodes it to ``v_{f,L}``. The mean of gene ``f`` in cell ``c`` is
``v_{f,L} · z_{c,L} + b_f`` (paper eq. 8); the interpretability term asks
``v_{f,1} · z_{c,1}`` to reconstruct ``X[c, f]`` as well (eq. 13), with weight ``gamma``.

Training runs in three phases (``_plan.py``):

1. the cell VAE alone, its last layer ``W_free`` (genes x hidden) a free parameter;
2. the feature VAE, trained to reproduce ``W_free`` from the feature-wise input;
3. everything jointly (eqs. 12-13).

The feature-wise input (genes x ``n_feature_input``) is a buffer filled by the model
class from training cells only (PCA of Xᵀ or stratified cell downsampling).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from scvi import REGISTRY_KEYS
from scvi.distributions._negative_binomial import log_nb_positive
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data
from torch import nn
from torch.distributions import Normal, kl_divergence

from ._layers import MLP, GaussianEncoder

_LOG_2PI = math.log(2.0 * math.pi)


def _sync_phase(module, incompatible_keys) -> None:
    module._phase_int = int(module._phase)


class SIVAEModule(BaseModuleClass):
    """The siVAE torch module.

    Parameters
    ----------
    n_input
        Number of genes ``F``.
    n_feature_input
        Width of the feature-wise input (``C_red``; PCA components or downsampled cells).
    n_batch, n_continuous_cov, n_cats_per_cov
        Covariates; one-hot batch, extra categorical covariates and continuous
        covariates are concatenated into ``s_c`` (published eqs. 21-23).
    n_latent
        Embedding size ``K`` of both latent spaces (2 for pictures, 64 for networks).
    n_hidden
        Encoder hidden sizes; decoders mirror them (paper: 1024-512-128).
    likelihood
        ``"gaussian"`` (eq. 8; per-cell variance ``σ_d(z_{c,L})``) or ``"nb"``
        (eqs. 14-18; softmax over genes times the observed library size, per-gene
        dispersion).
    linear
        siVAE (linear), eq. 19: the mean is ``v_{f,1} · z_{c,1}`` directly.
    gamma
        Weight of the interpretability term, ``gamma * SSE`` as in the reference code
        (paper: 0.05; multiviz's default, chosen by measurement, is set by the model class).
    interp_pretrain
        Add the interpretability term to step 2 as well, with the cell scores fixed at
        their step-1 posteriors (see :meth:`feature_pretrain_loss`).
    dropout_rate
        Dropout in the hidden layers (0 by default).
    variance
        Gaussian likelihood only: ``"cell"``, one variance per cell from ``z_{c,L}``
        (paper eq. 8), or ``"gene"``, one learned variance per gene (noise genes are
        down-weighted instead of being fitted by the map).
    freeze_encoder_joint
        Step 3 leaves the cell-wise encoder as step 1 left it (``design="map_first"`` of
        the model class): the scores stay the step-1 map and step 3 fits the feature branch,
        the cell decoder and the interpretability term to it.
    """

    def __init__(
        self,
        n_input: int,
        n_feature_input: int,
        *,
        n_batch: int = 0,
        n_continuous_cov: int = 0,
        n_cats_per_cov: Sequence[int] | None = None,
        n_latent: int = 2,
        n_hidden: Sequence[int] = (1024, 512, 128),
        likelihood: str = "gaussian",
        linear: bool = False,
        gamma: float = 0.05,
        interp_pretrain: bool = False,
        dropout_rate: float = 0.0,
        variance: str = "cell",
        freeze_encoder_joint: bool = False,
    ):
        super().__init__()
        self.variance = variance
        self.freeze_encoder_joint = freeze_encoder_joint
        self.n_input = n_input
        self.n_feature_input = n_feature_input
        self.n_latent = n_latent
        self.likelihood = likelihood
        self.linear = linear
        self.gamma = gamma
        self.interp_pretrain = interp_pretrain
        self.n_batch = n_batch
        self.n_cats_per_cov = list(n_cats_per_cov or [])
        self.n_continuous_cov = n_continuous_cov
        n_cov = (n_batch if n_batch > 1 else 0) + sum(self.n_cats_per_cov) + n_continuous_cov
        self.n_cov = n_cov
        hidden = list(n_hidden)
        dec_sizes = hidden[::-1]
        self.n_out_hidden = n_latent if linear else dec_sizes[-1]

        # cell-wise encoder / decoder
        self.z_encoder = GaussianEncoder(n_input + n_cov, n_latent, hidden, dropout_rate)
        self.z_decoder = MLP(n_latent + n_cov, [] if linear else dec_sizes, dropout_rate)
        # feature-wise encoder / decoder (identical design, paper Methods)
        self.v_encoder = GaussianEncoder(n_feature_input, n_latent, hidden, dropout_rate)
        # v_{f,L} are real-valued output weights: the last feature-decoder layer is linear
        self.v_decoder = MLP(
            n_latent, [] if linear else dec_sizes, dropout_rate, last_activation=False
        )
        # last-layer weights as free parameters for phase 1 (tilde v_{f,L})
        # zero start: after step 1 it holds only learned structure, which step 2 can predict
        self.w_free = nn.Parameter(torch.zeros(n_input, self.n_out_hidden))
        self.bias = nn.Parameter(torch.zeros(n_input))
        if likelihood == "gaussian" and variance == "gene":
            self.gene_var = nn.Parameter(torch.full((n_input,), math.log(math.e - 1.0)))
        elif likelihood == "gaussian":
            self.sigma_d = nn.Linear(self.n_out_hidden, 1)  # per-cell variance, sigma_d(z_{c,L})
        else:
            self.px_r = nn.Parameter(torch.zeros(n_input))  # per-gene log dispersion
        # phase 2: Gaussian over tilde v_{f,L} with one learned scale
        self.w_log_scale = nn.Parameter(torch.zeros(()))
        # interpretability term: per-gene intercept and batch weights j_f (eq. 23)
        self.interp_bias = nn.Parameter(torch.zeros(n_input))
        self.interp_cov = nn.Linear(n_cov, n_input, bias=False) if n_cov else None

        self.register_buffer("feature_input", torch.zeros(n_input, n_feature_input))
        self.register_buffer("n_train_cells", torch.tensor(1.0))
        self.register_buffer("library_log_mean", torch.tensor(0.0))
        self.register_buffer("library_log_std", torch.tensor(1.0))
        self.register_buffer("is_prepared", torch.tensor(False))
        # step-2 interpretability term: Gram matrix of the step-1 scores and the per-gene
        # least-squares coefficients of the interpretability target on them (not saved)
        self.register_buffer("z_gram", torch.zeros(n_latent, n_latent), persistent=False)
        self.register_buffer("v_lstsq", torch.zeros(n_input, n_latent), persistent=False)
        # cache of v_{f,L} used when the feature branch is gene-minibatched (phase 3)
        self.register_buffer("v_cache", torch.zeros(n_input, self.n_out_hidden), persistent=False)
        # current training step (1, 2, 3); saved so that a loaded model knows what was trained
        self.register_buffer("_phase", torch.tensor(3))
        self._phase_int = 3  # python copy: no device sync per step
        self.register_load_state_dict_post_hook(_sync_phase)
        self.gene_batch_size: int | None = None

    @property
    def phase(self) -> int:
        """Training step the loss and the decoder follow (1: free last layer, 2, 3: joint)."""
        return self._phase_int

    @phase.setter
    def phase(self, value: int) -> None:
        self._phase_int = int(value)
        self._phase.fill_(int(value))

    # -- covariates ------------------------------------------------------------------------
    def _covariates(self, tensors: dict) -> torch.Tensor | None:
        if not self.n_cov:
            return None
        parts = []
        if self.n_batch > 1:
            b = tensors[REGISTRY_KEYS.BATCH_KEY].long().view(-1)
            parts.append(F.one_hot(b, self.n_batch).float())
        cats = tensors.get(REGISTRY_KEYS.CAT_COVS_KEY)
        if cats is not None:
            for i, n in enumerate(self.n_cats_per_cov):
                parts.append(F.one_hot(cats[:, i].long(), n).float())
        cont = tensors.get(REGISTRY_KEYS.CONT_COVS_KEY)
        if cont is not None:
            parts.append(cont.float())
        return torch.cat(parts, dim=-1)

    def _encoder_input(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log1p(x) if self.likelihood == "nb" else x

    # -- feature branch ----------------------------------------------------------------------
    def qv(self, idx: torch.Tensor | None = None) -> Normal:
        """``q(v_{f,1})`` for the genes ``idx`` (all genes when None)."""
        inp = self.feature_input if idx is None else self.feature_input[idx]
        return self.v_encoder(inp)

    @torch.no_grad()
    def full_v_last(
        self, use_mean: bool = True, chunk: int = 4096
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(v_{f,1}, v_{f,L})`` for all genes, computed in gene chunks without gradients."""
        v1s, vls = [], []
        for start in range(0, self.n_input, chunk):
            idx = torch.arange(start, min(start + chunk, self.n_input), device=self.bias.device)
            q = self.qv(idx)
            v1 = q.loc if use_mean else q.rsample()
            v1s.append(v1)
            vls.append(self.v_decoder(v1))
        return torch.cat(v1s), torch.cat(vls)

    def refresh_cache(self) -> None:
        """Fill ``v_cache`` with the current ``v_{f,L}`` of every gene (phase 3 start)."""
        self.v_cache.copy_(self.full_v_last(use_mean=False)[1])

    def _feature_side(self):
        """Sampled ``v_{f,1}``, ``v_{f,L}`` and the feature KL, per the current phase.

        Returns ``(v1, vL, kl_v, idx)``: ``v1``/``kl_v`` cover the genes ``idx`` only (all
        genes when ``idx`` is None); ``vL`` always covers all genes.
        """
        if self.phase == 1:
            return None, self.w_free, None, None
        n = self.n_input
        gbs = self.gene_batch_size
        if gbs is None or gbs >= n:
            q = self.qv()
            v1 = q.rsample()
            vl = self.v_decoder(v1)
            kl_v = kl_divergence(q, Normal(0.0, 1.0)).sum(-1)
            return v1, vl, kl_v, None
        idx = torch.randperm(n, device=self.bias.device)[:gbs]
        q = self.qv(idx)
        v1 = q.rsample()
        fresh = self.v_decoder(v1).float()  # the cache is float32 under autocast too
        if self.training:
            self.v_cache[idx] = fresh.detach()
        vl = self.v_cache.index_put((idx,), fresh)
        kl_v = kl_divergence(q, Normal(0.0, 1.0)).sum(-1)
        return v1, vl, kl_v, idx

    # -- BaseModuleClass API -------------------------------------------------------------------
    def _get_inference_input(self, tensors):
        return {"x": tensors[REGISTRY_KEYS.X_KEY], "cov": self._covariates(tensors)}

    @auto_move_data
    def inference(self, x, cov=None, n_samples: int = 1):
        """Encode cells: ``q(z_{c,1} | x_c, s_c)`` and one reparameterised sample."""
        inp = self._encoder_input(x)
        if cov is not None:
            inp = torch.cat([inp, cov], dim=-1)
        qz = self.z_encoder(inp)
        z = qz.rsample() if n_samples == 1 else qz.rsample((n_samples,))
        library = x.sum(-1, keepdim=True)
        return {"qz": qz, "z": z, "library": library}

    def _get_generative_input(self, tensors, inference_outputs):
        return {
            "z": inference_outputs["z"],
            "cov": self._covariates(tensors),
            "library": inference_outputs["library"],
        }

    def decode_hidden(self, z: torch.Tensor, cov: torch.Tensor | None = None) -> torch.Tensor:
        """``z_{c,L}`` from ``z_{c,1}`` (covariates enter the first layer, eq. 21)."""
        if self.linear:
            return z
        if cov is not None:
            z = torch.cat([z, cov], dim=-1)
        return self.z_decoder(z)

    @auto_move_data
    def generative(self, z, cov=None, library=None):
        """Cell decoder and feature side; returns the per-gene output ``eta = v_L · z_L + b``."""
        zl = self.decode_hidden(z, cov)
        v1, vl, kl_v, idx = self._feature_side()
        eta = zl @ vl.T + self.bias
        if self.linear and cov is not None:
            eta = eta + self.interp_cov(cov)
        out = {"zl": zl, "eta": eta, "v1": v1, "kl_v": kl_v, "gene_idx": idx}
        if self.likelihood == "gaussian":
            out["var"] = self.gaussian_variance(zl)
        else:
            out["mu"] = library * torch.softmax(eta, dim=-1)
        return out

    def gaussian_variance(self, zl: torch.Tensor) -> torch.Tensor:
        """Variance of the Gaussian likelihood: per cell ``(cells, 1)`` or per gene ``(genes,)``."""
        raw = self.gene_var if self.variance == "gene" else self.sigma_d(zl)
        return F.softplus(raw) + 1e-4

    def reconstruction_log_prob(self, x: torch.Tensor, gen: dict) -> torch.Tensor:
        """Per-cell, per-gene log-likelihood of ``x`` under the decoder output."""
        if self.likelihood == "gaussian":
            var = gen["var"]
            return -0.5 * ((x - gen["eta"]) ** 2 / var + torch.log(var) + _LOG_2PI)
        # the per-gene dispersion stays (genes,): lgamma(theta) and its gradient are
        # computed once per gene, not once per cell and gene as after broadcasting
        return log_nb_positive(x, mu=gen["mu"] + 1e-8, theta=torch.exp(self.px_r))

    def interp_target(self, x: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
        """Values the interpretability term reconstructs (genes ``idx``; all when None).

        ``x`` itself (Gaussian) or log-normalised counts, the library size over every gene.
        """
        genes = x if idx is None else x[:, idx]
        if self.likelihood == "gaussian":
            return genes
        return torch.log1p(genes / x.sum(-1, keepdim=True).clamp_min(1.0) * 1e4)

    def loss(self, tensors, inference_outputs, generative_outputs, kl_weight: float = 1.0):
        """Negative ELBO of the current phase, per cell (paper eqs. 12-13 / 18 / 20 / 22-23)."""
        x = tensors[REGISTRY_KEYS.X_KEY]
        gen = generative_outputs
        rec = -self.reconstruction_log_prob(x, gen).sum(-1)
        kl_z = kl_divergence(inference_outputs["qz"], Normal(0.0, 1.0)).sum(-1)
        loss = rec + kl_weight * kl_z
        extra = {"reconstruction": rec.mean()}
        if self.phase == 3:
            z1 = inference_outputs["z"]
            idx = gen["gene_idx"]
            v1 = gen["v1"]
            n_genes_used = self.n_input if idx is None else idx.numel()
            scale = self.n_input / n_genes_used
            kl_v = gen["kl_v"].sum() * scale / self.n_train_cells
            loss = loss + kl_weight * kl_v
            if self.gamma > 0 and not self.linear:
                target = self.interp_target(x, idx)
                ib = self.interp_bias if idx is None else self.interp_bias[idx]
                lin = z1 @ v1.T + ib
                cov = self._covariates(tensors)
                if cov is not None:
                    jw = self.interp_cov.weight if idx is None else self.interp_cov.weight[idx]
                    lin = lin + cov @ jw.T
                # gamma * SSE, as the reference implementation weights eq. 13 (not gamma * SSE / 2)
                interp = ((target - lin) ** 2).sum(-1) * scale
                loss = loss + self.gamma * interp
                extra["interpretability"] = interp.mean()
            extra["kl_feature"] = kl_v
        return LossOutput(
            loss=loss.mean(),
            reconstruction_loss=rec,
            kl_local=kl_z,
            extra_metrics=extra,
        )

    def feature_pretrain_loss(self, idx: torch.Tensor, kl_weight: float = 1.0) -> LossOutput:
        """Phase 2: the feature VAE reproduces the free last layer ``W_free[idx]``."""
        q = self.qv(idx)
        v1 = q.rsample()
        vl = self.v_decoder(v1) if len(self.v_decoder) else v1
        target = self.w_free[idx].detach()
        scale = torch.exp(self.w_log_scale)
        nll = -Normal(vl, scale).log_prob(target).sum(-1)
        kl_v = kl_divergence(q, Normal(0.0, 1.0)).sum(-1)
        loss = nll + kl_weight * kl_v
        extra = {}
        if self.interp_pretrain and self.gamma > 0 and not self.linear:
            # sum over training cells of E (t_cf - b_f - v_f . z_c)^2 with z_c ~ q(z_c) of step
            # 1 fixed and b_f at its optimum equals (v_f - beta_f)^T G (v_f - beta_f) + const,
            # G = sum_c (mu_c - mean mu)(mu_c - mean mu)^T + diag(sum_c sigma_c^2)
            d = v1 - self.v_lstsq[idx]
            interp = torch.einsum("bi,ij,bj->b", d, self.z_gram, d)
            loss = loss + self.gamma * interp
            extra["interpretability"] = interp.mean()
        return LossOutput(
            loss=loss.mean(), reconstruction_loss=nll, kl_local=kl_v, extra_metrics=extra
        )

    @torch.no_grad()
    def sample(self, n_samples: int, cov: torch.Tensor | None = None) -> torch.Tensor:
        """Draw ``n_samples`` new cells from the generative model (prior ``z``, eqs. 4-8/14-17).

        Uses torch's global generator; the model class seeds it in a forked RNG state.
        """
        device = self.bias.device
        z = torch.randn(n_samples, self.n_latent, device=device)
        _, vl = self.full_v_last(use_mean=True)
        zl = self.decode_hidden(z, cov)
        eta = zl @ vl.T + self.bias
        if self.linear and cov is not None:
            eta = eta + self.interp_cov(cov)
        if self.likelihood == "gaussian":
            sd = torch.sqrt(self.gaussian_variance(zl))
            return eta + sd * torch.randn_like(eta)
        log_lib = self.library_log_mean + self.library_log_std * torch.randn(
            n_samples, 1, device=device
        )
        mu = torch.exp(log_lib) * torch.softmax(eta, dim=-1)
        theta = torch.exp(self.px_r).expand_as(mu)
        # Gamma-Poisson mixture (eqs. 16-17)
        rate = torch.distributions.Gamma(theta, theta / mu.clamp_min(1e-8)).sample()
        return torch.poisson(rate)

    def phase_modules(self, phase: int) -> list:
        """Modules / parameters trained in ``phase`` (1, 2 or 3); every one gets a gradient."""
        cell = [self.z_encoder, self.z_decoder, self.bias]
        if self.likelihood != "gaussian":
            cell.append(self.px_r)
        else:
            cell.append(self.gene_var if self.variance == "gene" else self.sigma_d)
        uses_cov = self.interp_cov is not None and (self.linear or (phase == 3 and self.gamma > 0))
        if phase == 1:
            return cell + [self.w_free] + ([self.interp_cov] if uses_cov else [])
        if phase == 2:
            return [self.v_encoder, self.v_decoder, self.w_log_scale]
        extra = [self.interp_bias] if (self.gamma > 0 and not self.linear) else []
        if self.freeze_encoder_joint:
            cell = cell[1:]
        return (
            cell
            + [self.v_encoder, self.v_decoder]
            + extra
            + ([self.interp_cov] if uses_cov else [])
        )

    def set_phase(self, phase: int) -> None:
        """Switch the loss to ``phase`` and freeze every parameter it does not train."""
        self.phase = phase
        for p in self.parameters():
            p.requires_grad_(False)
        for m in self.phase_modules(phase):
            params = [m] if isinstance(m, nn.Parameter) else list(m.parameters())
            for p in params:
                p.requires_grad_(True)

    def unfreeze(self) -> None:
        """Make every parameter trainable again (after training)."""
        for p in self.parameters():
            p.requires_grad_(True)
