"""Stacked sBNN ensemble: K sparse bottleneck networks as one set of batched weights.

Every member is an :class:`~multiviz.models.sbnn.SBNNModule` with its own weights; here
their parameters are stacked along a leading member axis so that one ``baddbmm`` per
layer runs the forward (and backward) pass of all members at once, each member on its
own minibatch of its own cells. :class:`StackedAdam` is K independent Adam optimisers
in one set of tensors (Adam is element-wise, so stacking does not couple members).

The first layer may run on a subset of the input genes (``cols``): the union of the
genes still alive in any member, or, after pruning, each member's own kept genes.
A per-member ``alive`` mask zeroes the rows a member has dropped, so a member never
sees a gene it does not use.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ._module import SBNNModule


def _linear_names(module: SBNNModule) -> tuple[list[str], list[str]]:
    """Names of the encoder (incl. ``first``) and decoder linear layers, in order."""
    enc = ["first"] + [
        f"encoder_rest.{i}" for i, m in enumerate(module.encoder_rest) if isinstance(m, nn.Linear)
    ]
    dec = [f"decoder.{i}" for i, m in enumerate(module.decoder) if isinstance(m, nn.Linear)]
    return enc, dec


class StackedSBNN:
    """Parameters of K sBNN members stacked as ``(K, in, out)`` weights, ``(K, 1, out)`` biases.

    Parameters
    ----------
    members
        The member modules (same architecture; the first layers may differ in their
        number of kept genes only if ``cols`` gives each member its own columns).
    cols
        ``(K, g)`` long tensor: which columns of each member's *current* first layer
        are stacked (default: all of them).
    """

    def __init__(self, members: list[SBNNModule], cols: torch.Tensor | None = None):
        self.K = len(members)
        enc, dec = _linear_names(members[0])
        self.encoder, self.decoder = enc, dec
        self.layers = [*enc, *dec, "head", "cluster_head"]
        dev = members[0].first.weight.device
        if cols is None:
            cols = torch.arange(members[0].first.in_features, device=dev).expand(self.K, -1)
        self.cols = cols
        self.params: dict[str, torch.Tensor] = {}
        for name in self.layers:
            lin = [m.get_submodule(name) for m in members]
            if name == "first":
                w = torch.stack(
                    [lin[k].weight.detach().index_select(1, cols[k]).T for k in range(self.K)]
                )
            else:
                w = torch.stack([m.weight.detach().T for m in lin])
            b = torch.stack([m.bias.detach()[None, :] for m in lin])
            self.params[f"{name}.weight"] = w.contiguous().requires_grad_(True)
            self.params[f"{name}.bias"] = b.contiguous().requires_grad_(True)
        self.alive = torch.ones(self.K, cols.shape[1], 1, device=dev)

    # ------------------------------------------------------------------ forward
    def _lin(self, name: str, h: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.params[f"{name}.bias"], h, self.params[f"{name}.weight"])

    @property
    def alive(self) -> torch.Tensor:
        """``(K, g, 1)`` mask: 1 where the member still uses the stacked gene."""
        return self._alive

    @alive.setter
    def alive(self, value: torch.Tensor) -> None:
        """Set the mask and zero the first-layer rows of the genes it drops, in place."""
        self._alive = value
        dead = value[..., 0] == 0
        self._dead_rows = torch.nonzero(dead, as_tuple=True) if bool(dead.any()) else None
        if self._dead_rows is not None:
            with torch.no_grad():
                self.params["first.weight"][self._dead_rows] = 0.0

    def first_weight(self) -> torch.Tensor:
        """First-layer weights; a member's dropped genes are rows of exact zeros.

        The rows are zeroed when the mask is set and stay zero: their gradient is zeroed
        after every backward pass (:meth:`mask_dead_gradients_`) and their Adam state is
        reset when they are dropped, so Adam's update of them is exactly 0. This gives the
        same numbers as multiplying the weights by the mask in every forward pass, without
        that pass over the largest tensor of the network (and its backward).
        """
        return self.params["first.weight"]

    @torch.no_grad()
    def mask_dead_gradients_(self) -> None:
        """Zero the first-layer gradient rows of every member's dropped genes."""
        grad = self.params["first.weight"].grad
        if self._dead_rows is not None and grad is not None:
            grad[self._dead_rows] = 0.0

    def trunk(self, x: torch.Tensor, n_frozen: int) -> torch.Tensor:
        """Activations after the first ``n_frozen`` encoder layers (``x`` if 0)."""
        h = x
        for i, name in enumerate(self.encoder[:n_frozen]):
            if i == 0:
                h = torch.baddbmm(self.params["first.bias"], h, self.first_weight())
            else:
                h = self._lin(name, h)
            h = F.elu(h)
        return h

    def forward(self, h: torch.Tensor, *, start: int = 0, classify: bool = False):
        """Latent and output from the activations after ``start`` encoder layers."""
        enc = self.encoder
        for i in range(start, len(enc)):
            if i == 0:
                h = torch.baddbmm(self.params["first.bias"], h, self.first_weight())
            else:
                h = self._lin(enc[i], h)
            if i < len(enc) - 1:
                h = F.elu(h)
        z = h
        for name in self.decoder:
            h = F.elu(self._lin(name, h))
        return z, self._lin("cluster_head" if classify else "head", h)

    def group_lasso(self) -> torch.Tensor:
        r"""Per-member :math:`\sum_g \lVert W_1[g, :]\rVert_2`, shape ``(K,)``."""
        return self.first_weight().norm(dim=2).sum(dim=1)

    @torch.no_grad()
    def row_norms(self) -> torch.Tensor:
        """``(K, g)`` first-layer row norms of the stacked columns (dropped rows 0)."""
        return self.first_weight().norm(dim=2)

    # ------------------------------------------------------------- bookkeeping
    def trainable(self, frozen: tuple[str, ...]) -> list[str]:
        """Parameter names not frozen by the phase (same prefixes as the single model)."""
        return [n for n in self.params if not any(n.startswith(f) for f in frozen)]

    @torch.no_grad()
    def write_back(self, members: list[SBNNModule]) -> None:
        """Copy the stacked weights into the member modules (dropped rows as zeros)."""
        w1 = self.first_weight()
        for k, m in enumerate(members):
            for name in self.layers:
                lin = m.get_submodule(name)
                if name == "first":
                    full = torch.zeros_like(lin.weight)
                    full[:, self.cols[k]] = w1[k].T
                    lin.weight.copy_(full)
                else:
                    lin.weight.copy_(self.params[f"{name}.weight"][k].T)
                lin.bias.copy_(self.params[f"{name}.bias"][k, 0])


class StackedAdam:
    """K independent Adam optimisers (``torch.optim.Adam`` semantics) on stacked tensors.

    ``torch.optim.Adam`` with L2 ``weight_decay`` added to the gradient, bias correction
    and ``eps`` outside the square root. Adam is element-wise, so while every member
    has taken the same number of steps one fused ``torch.optim.Adam`` over the stacked
    tensors *is* the K optimisers. A step may leave members out (``active``): a member
    whose epoch has no batch left is not stepped, exactly as its sequential fit would
    not be; from then on each member keeps its own step count (bias correction) and the
    update runs element-wise here.
    """

    def __init__(
        self,
        params: dict[str, torch.Tensor],
        names: list[str],
        *,
        lr: float,
        eps: float = 1e-7,
        weight_decay: float = 0.0,
        betas: tuple[float, float] = (0.9, 0.999),
    ):
        self.params, self.names = params, list(names)
        self.lr, self.eps, self.wd = lr, eps, weight_decay
        self.b1, self.b2 = betas
        first = next(iter(params.values()))
        self.step_count = torch.zeros(first.shape[0], device=first.device)
        self.m: dict[str, torch.Tensor] = {}
        self.v: dict[str, torch.Tensor] = {}
        self._torch = self._make_torch()

    def _make_torch(self) -> torch.optim.Adam | None:
        tensors = [self.params[n] for n in self.names]
        if not tensors:
            return None
        kw = {"lr": self.lr, "eps": self.eps, "weight_decay": self.wd, "betas": (self.b1, self.b2)}
        try:
            return torch.optim.Adam(tensors, fused=True, **kw)
        except (RuntimeError, TypeError):  # pragma: no cover - no fused kernel here
            return torch.optim.Adam(tensors, foreach=True, **kw)

    def _to_manual(self) -> None:
        """Move the fused optimiser's state into per-member tensors."""
        for n in self.names:
            st = self._torch.state.get(self.params[n], {}) if self._torch else {}
            p = self.params[n]
            self.m[n] = st["exp_avg"].clone() if st else torch.zeros_like(p)
            self.v[n] = st["exp_avg_sq"].clone() if st else torch.zeros_like(p)
        self._torch = None

    def zero_grad(self) -> None:
        """Drop the gradients of all stacked tensors."""
        for p in self.params.values():
            p.grad = None

    @torch.no_grad()
    def step(self, active: torch.Tensor | None = None) -> None:
        """One Adam step for the ``active`` members (all if ``None``)."""
        if active is not None and bool(active.all()):
            active = None
        if self._torch is not None and active is None:
            self._torch.step()
            self.step_count += 1
            return
        if self._torch is not None:
            self._to_manual()
        if active is None:
            self.step_count += 1
        else:
            self.step_count += active.to(self.step_count.dtype)
        t = self.step_count.clamp(min=1)
        bc1 = 1 - self.b1**t
        bc2 = (1 - self.b2**t).sqrt()
        for n in self.names:
            p, g = self.params[n], self.params[n].grad
            if g is None:
                continue
            if self.wd:
                g = g.add(p, alpha=self.wd)
            shape = (-1,) + (1,) * (p.dim() - 1)
            m, v = self.m[n], self.v[n]
            if active is not None:
                a = active.view(shape)
                m_old, v_old = m.clone(), v.clone()
            m.mul_(self.b1).add_(g, alpha=1 - self.b1)
            v.mul_(self.b2).addcmul_(g, g, value=1 - self.b2)
            upd = m / (v.sqrt().div_(bc2.view(shape)).add_(self.eps))
            upd.mul_((self.lr / bc1).view(shape))
            if active is not None:
                upd.mul_(a)
                m.copy_(torch.where(a, m, m_old))
                v.copy_(torch.where(a, v, v_old))
            p.sub_(upd)

    def _state(self, name: str) -> list[torch.Tensor]:
        if self._torch is not None:
            st = self._torch.state.get(self.params[name], {})
            return [st[k] for k in ("exp_avg", "exp_avg_sq") if k in st]
        return [self.m[name], self.v[name]] if name in self.m else []

    @torch.no_grad()
    def reset_rows(self, name: str, mask: torch.Tensor) -> None:
        """Zero the state of rows where ``mask`` (``(K, g, 1)``) is true (revived genes)."""
        for s in self._state(name):
            s.masked_fill_(mask, 0.0)

    @torch.no_grad()
    def replace(self, name: str, new: torch.Tensor, remap) -> None:
        """Swap the stacked tensor ``name`` for ``new``; ``remap`` maps each old state tensor."""
        old_states = self._state(name)
        mapped = [remap(s) for s in old_states]
        old = self.params[name]
        self.params[name] = new
        if self._torch is not None:
            st = self._torch.state.pop(old, None)
            for group in self._torch.param_groups:
                group["params"] = [new if q is old else q for q in group["params"]]
            if st is not None:
                st["exp_avg"], st["exp_avg_sq"] = mapped
                self._torch.state[new] = st
        elif name in self.m:
            self.m[name], self.v[name] = mapped
