"""Building blocks of the siVAE networks: plain ``Linear -> ReLU`` stacks and a Gaussian encoder."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal

__all__ = ["MLP", "GaussianEncoder"]


class MLP(nn.Sequential):
    """``Linear -> ReLU`` blocks (no normalisation layers, so attributions are exact).

    The hidden stack is plain so that decoder attributions (DeepLIFT's rescale rule,
    integrated gradients) have the closed forms used in ``mv.tl.decoder_attribution``.
    """

    def __init__(
        self,
        n_in: int,
        sizes: Sequence[int],
        dropout_rate: float = 0.0,
        last_activation: bool = True,
    ):
        layers: list[nn.Module] = []
        for i, n_out in enumerate(sizes):
            layers.append(nn.Linear(n_in, n_out))
            if last_activation or i < len(sizes) - 1:
                layers.append(nn.ReLU())
                if dropout_rate > 0:
                    layers.append(nn.Dropout(dropout_rate))
            n_in = n_out
        super().__init__(*layers)


class GaussianEncoder(nn.Module):
    """Diagonal Gaussian encoder: MLP, linear mean, softplus scale (paper eqs. 10-11)."""

    def __init__(self, n_in: int, n_latent: int, sizes: Sequence[int], dropout_rate: float = 0.0):
        super().__init__()
        self.body = MLP(n_in, sizes, dropout_rate)
        n_last = sizes[-1] if len(sizes) else n_in
        self.mean = nn.Linear(n_last, n_latent)
        self.scale = nn.Linear(n_last, n_latent)

    def forward(self, x: torch.Tensor) -> Normal:
        """Return ``q(latent | x)``."""
        h = self.body(x)
        # float32 under autocast too: the KL term and the samples stay full precision
        return Normal(self.mean(h).float(), F.softplus(self.scale(h).float()) + 1e-4)
