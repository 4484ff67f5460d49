"""Pure torch module of the sparse bottleneck neural network (sBNN; Bernaerts et al.)."""

from __future__ import annotations

import torch
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data
from torch import nn
from torch.nn import functional as F

from ._schedule import N_CLUSTERS


def _glorot(layer: nn.Linear, generator: torch.Generator | None = None) -> nn.Linear:
    """Keras' default: Glorot-uniform weights, zero biases (sBNN paper, Methods)."""
    nn.init.xavier_uniform_(layer.weight, generator=generator)
    nn.init.zeros_(layer.bias)
    return layer


def _mlp(sizes: list[int], generator: torch.Generator | None, last_linear: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(_glorot(nn.Linear(a, b), generator))
        if not (last_linear and i == len(sizes) - 2):
            layers.append(nn.ELU())
    return nn.Sequential(*layers)


class SBNNModule(BaseModuleClass):
    """Sparse bottleneck network: genes → 512 → 128 → bottleneck → 128 → 512 → targets.

    ELU hidden layers, a linear bottleneck and a linear output head, Glorot-uniform
    weights and zero biases, no dropout or normalisation (sBNN paper, Methods). The
    first layer carries the group-lasso penalty (one group per input gene). After
    :meth:`prune`, the first layer keeps only the rows of the selected genes and the
    forward pass gathers only those input columns; the kept indices are the buffer
    ``gene_index`` so that ``save``/``load`` rebuild the pruned shape.

    Parameters
    ----------
    n_input
        Number of input genes.
    n_output
        Number of targets (ephys features or proteins).
    n_latent
        Bottleneck width (2 for sBNN-2, 64 for sBNN-64).
    n_hidden
        Encoder hidden widths; the decoder mirrors them (512, 128 in the paper).
    n_clusters
        Width of the pre-training softmax head (K = 20 k-means clusters in the paper);
        ``None``: :data:`N_CLUSTERS` (20), the largest default K (classes beyond the labels' are masked).
    n_genes_decoder
        Width of the gene-reconstruction ("autoencoder") head; 0 for none. It is
        built at the number of genes kept after pruning.
    seed
        Seed of the weight initialisation.
    input_mean, input_std
        Per-gene centring and scaling applied to every input batch (buffers of the
        module, saved with it): for training on a sparse, unscaled layer (e.g.
        ``layers["log2norm"]``) whose z-scoring would make a dense copy. ``None``: the
        inputs are used as given.
    """

    def __init__(
        self,
        n_input: int,
        n_output: int,
        *,
        n_latent: int = 2,
        n_hidden: tuple[int, int] = (512, 128),
        n_clusters: int | None = None,
        n_genes_decoder: int = 0,
        seed: int = 0,
        input_mean=None,
        input_std=None,
    ):
        super().__init__()
        gen = torch.Generator().manual_seed(int(seed))
        h1, h2 = n_hidden
        self.n_input = n_input
        self.n_latent = n_latent
        self.first = _glorot(nn.Linear(n_input, h1), gen)
        self.encoder_rest = _mlp([h1, h2, n_latent], gen, last_linear=True)
        self.decoder = _mlp([n_latent, h2, h1], gen, last_linear=False)
        self.head = _glorot(nn.Linear(h1, n_output), gen)
        self.cluster_head = _glorot(nn.Linear(h1, n_clusters or N_CLUSTERS), gen)
        self.register_buffer("gene_index", torch.arange(n_input))
        self.zscored = input_mean is not None
        if self.zscored:
            self.register_buffer("input_mean", torch.as_tensor(input_mean, dtype=torch.float32))
            self.register_buffer("input_std", torch.as_tensor(input_std, dtype=torch.float32))
        self.register_buffer("pruned", torch.tensor(False))
        self.gene_decoder = (
            _mlp([n_latent, h2, h1, n_genes_decoder], gen, last_linear=True)
            if n_genes_decoder
            else None
        )
        self._gen = gen

    # ----------------------------------------------------------------- structure
    @torch.no_grad()
    def weight_norms(self) -> torch.Tensor:
        """L2 norm of each input gene's first-layer weights (``W1[g, :]``)."""
        return self.first.weight.norm(dim=0)

    @torch.no_grad()
    def prune(self, keep: torch.Tensor) -> None:
        """Keep only the input genes ``keep`` (indices into the current inputs)."""
        keep = torch.as_tensor(keep, dtype=torch.long, device=self.first.weight.device)
        new = nn.Linear(int(keep.numel()), self.first.out_features).to(self.first.weight.device)
        new.weight.copy_(self.first.weight[:, keep])
        new.bias.copy_(self.first.bias)
        self.first = new
        self.gene_index = self.gene_index[keep].clone()
        self.pruned = torch.tensor(True, device=keep.device)

    def reset_head(self, seed: int) -> None:
        """Fresh Glorot-initialised regression head (after pre-training, paper Methods)."""
        gen = torch.Generator().manual_seed(int(seed))
        device = self.head.weight.device
        self.head = _glorot(nn.Linear(self.head.in_features, self.head.out_features), gen).to(
            device
        )

    def add_gene_decoder(self, n_genes: int, seed: int) -> None:
        """Attach the bottleneck → selected-genes decoder (the paper's "autoencoder" head)."""
        gen = torch.Generator().manual_seed(int(seed))
        h1, h2 = self.first.out_features, self.encoder_rest[0].out_features
        device = self.head.weight.device
        self.gene_decoder = _mlp([self.n_latent, h2, h1, n_genes], gen, last_linear=True).to(device)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        """Rebuild the pruned first layer / gene decoder before loading their weights."""
        idx = state_dict.get("gene_index")
        if idx is not None and idx.numel() != self.gene_index.numel():
            self.prune(torch.arange(idx.numel()))
        if self.gene_decoder is None and any(k.startswith("gene_decoder.") for k in state_dict):
            self.add_gene_decoder(state_dict["gene_decoder.4.weight"].shape[0], 0)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    # ----------------------------------------------------------------- forward
    def standardize(self, x: torch.Tensor) -> torch.Tensor:
        """Z-score the kept genes' columns ``x`` (identity without ``input_mean``)."""
        if not self.zscored:
            return x
        idx = self.gene_index
        return (x - self.input_mean.index_select(0, idx)) / self.input_std.index_select(0, idx)

    def select_input(self, x: torch.Tensor) -> torch.Tensor:
        """Gather the kept genes' columns (all columns before pruning), z-scored if set."""
        if bool(self.pruned) and x.shape[1] != self.first.in_features:
            x = x.index_select(1, self.gene_index)
        return self.standardize(x)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Bottleneck representation of the (already gene-selected) input."""
        return self.encoder_rest(F.elu(self.first(x)))

    def forward_targets(self, x: torch.Tensor, *, classify: bool = False):
        """Latent and the regression (or pre-training softmax-logit) output."""
        z = self.encode(x)
        h = self.decoder(z)
        return z, (self.cluster_head(h) if classify else self.head(h))

    def phase_output(self, z: torch.Tensor, phase: str, n_classes: int | None = None):
        """The output a phase's loss is computed on, from the bottleneck ``z``.

        ``"mse"``: the regression head; ``"ce"``: the pre-training logits of the first
        ``n_classes`` (kept) clusters; ``"genes"``: the gene decoder.
        """
        if phase == "genes":
            return self.gene_decoder(z)
        if phase == "ce":
            return self.cluster_head(self.decoder(z))[:, :n_classes]
        return self.head(self.decoder(z))

    def phase_fit(
        self,
        x: torch.Tensor,
        target: torch.Tensor | None,
        phase: str,
        n_classes: int | None = None,
    ) -> torch.Tensor:
        """Data term of a training step on the kept, z-scored inputs ``x``.

        ``target``: the targets (``"mse"``) or class labels (``"ce"``); ignored for
        ``"genes"``, whose target is ``x`` and whose encoder is not trained (the
        bottleneck is computed without a graph).
        """
        if phase == "genes":
            with torch.no_grad():
                z = self.encode(x)
            return phase_loss(self.phase_output(z, phase), x, phase)
        return phase_loss(self.phase_output(self.encode(x), phase, n_classes), target, phase)

    def group_lasso(self) -> torch.Tensor:
        r""":math:`\sum_g \lVert W_1[g, :]\rVert_2` over the input genes."""
        return self.first.weight.norm(dim=0).sum()

    def add_group_lasso_gradient(self, lasso: float) -> torch.Tensor:
        """Add the group lasso's gradient to the first layer's; return the penalty."""
        weight = self.first.weight
        if weight.grad is None:
            weight.grad = torch.zeros_like(weight)
        return add_group_lasso_gradient_(weight, weight.grad, lasso, dim=0).sum()

    # ------------------------------------------- scvi-tools BaseModuleClass API
    def _get_inference_input(self, tensors):
        return {"x": tensors["X"]}

    @auto_move_data
    def inference(self, x):
        """Encode the kept genes into the bottleneck."""
        return {"z": self.encode(self.select_input(x))}

    def _get_generative_input(self, tensors, inference_outputs):
        return {"z": inference_outputs["z"]}

    @auto_move_data
    def generative(self, z):
        """Predict the targets (and the selected genes if the gene decoder exists)."""
        out = {"y_hat": self.head(self.decoder(z))}
        if self.gene_decoder is not None:
            out["x_hat"] = self.gene_decoder(z)
        return out

    def loss(
        self,
        tensors,
        inference_outputs,
        generative_outputs,
        lasso: float = 0.0,
        phase: str = "mse",
        n_classes: int | None = None,
    ):
        """The training loss of a phase: :func:`phase_loss` + ``lasso`` × group lasso.

        ``phase``: ``"mse"`` (regression on ``tensors["Y"]``), ``"ce"`` (pre-training
        cross-entropy on ``tensors["labels"]``, the first ``n_classes`` logits) or
        ``"genes"`` (the gene decoder's reconstruction of the kept, z-scored genes).
        Training (:class:`~multiviz.models.sbnn.SBNNTrainingPlan`) backpropagates the
        same data term (:meth:`phase_fit`) and adds the group lasso's gradient in place
        (:func:`add_group_lasso_gradient_`) instead of differentiating the penalty.
        """
        if phase == "mse":
            output, target = generative_outputs["y_hat"], tensors["Y"]
        elif phase == "genes":
            output, target = generative_outputs["x_hat"], self.select_input(tensors["X"])
        else:
            output = self.phase_output(inference_outputs["z"], phase, n_classes)
            target = tensors["labels"]
        fit = phase_loss(output, target, phase)
        pen = self.group_lasso()
        metrics = {"fit": fit.detach(), "group_lasso": pen.detach()}
        if phase == "mse":
            metrics["mse"] = fit.detach()
        return LossOutput(
            loss=fit + lasso * pen, n_obs_minibatch=target.shape[0], extra_metrics=metrics
        )

    def sample(self, *args, **kwargs):
        """Not defined: the sBNN is deterministic."""
        raise NotImplementedError("The sBNN is deterministic; there is nothing to sample.")


def per_cell_loss(output: torch.Tensor, target: torch.Tensor, phase: str) -> torch.Tensor:
    """Per-cell data term over the last axis: cross-entropy (``"ce"``) or mean squared error.

    ``output`` ``(..., d)``; ``target`` ``(..., d)`` (``"mse"``, ``"genes"``) or integer
    labels ``(...)`` (``"ce"``). Returns ``(...)``.
    """
    if phase == "ce":
        flat = F.cross_entropy(
            output.reshape(-1, output.shape[-1]), target.reshape(-1), reduction="none"
        )
        return flat.view(target.shape)
    return (output - target).pow(2).mean(-1)


def phase_loss(
    output: torch.Tensor,
    target: torch.Tensor,
    phase: str,
    valid: torch.Tensor | None = None,
    reduction: str = "mean",
) -> torch.Tensor:
    """The data term of every sBNN phase, for one network or K stacked members.

    ``phase``: ``"mse"`` (regression), ``"genes"`` (gene reconstruction; the same
    formula) or ``"ce"`` (pre-training cross-entropy on integer labels).

    ``valid=None`` (one network, ``output`` ``(B, d)``): :func:`~torch.nn.functional.mse_loss`
    (mean over cells and outputs) or :func:`~torch.nn.functional.cross_entropy`, with
    ``reduction`` ``"mean"`` (training) or ``"sum"`` (validation totals).

    ``valid`` ``(K, B)`` (the stacked ensemble: ``output`` ``(K, B, d)``, member batches
    zero-padded to ``B`` rows, ``valid`` 1 on real rows): each member's mean of
    :func:`per_cell_loss` over its valid rows, ``(K,)`` (0 for a member without rows).
    The two reductions agree for a full batch up to rounding; each path keeps its own so
    that single and stacked fits reproduce their recorded outputs bit for bit.
    """
    if valid is None:
        if phase == "ce":
            return F.cross_entropy(output, target, reduction=reduction)
        return F.mse_loss(output, target, reduction=reduction)
    per = per_cell_loss(output, target, phase)
    return (per * valid).sum(-1) / valid.sum(-1).clamp(min=1)


@torch.no_grad()
def add_group_lasso_gradient_(
    weight: torch.Tensor, grad: torch.Tensor, lasso: float | torch.Tensor, dim: int
) -> torch.Tensor:
    r"""Add :math:`\lambda W[g] / \lVert W[g]\rVert` to ``grad`` in place; return the norms.

    The gradient of ``lasso * sum_g ||W[g]||`` (the norm over ``dim``; 0 for a zero row, as
    autograd's), added after the data term's backward pass: the same numbers as
    differentiating the penalty through autograd, without building and walking its graph
    over the first layer's weights, which cost as much as the rest of a step. ``lasso``
    may be a tensor broadcasting against the norms (per-member strengths of the stacked
    ensemble). Returns the row norms (``dim`` kept, size 1).
    """
    norms = weight.norm(dim=dim, keepdim=True)
    scale = (lasso / norms.clamp_min(1e-30)).masked_fill_(norms == 0, 0.0)
    grad.addcmul_(weight, scale)
    return norms
