r"""Gene screening of the batched sBNN ensemble (see :mod:`._ensemble_plan`).

In the group-lasso phases a gene whose row norm in a member is far below that member's
cut (``screen_tol`` × its ``n_genes``-th largest norm) *and* whose full-batch data
gradient satisfies the optimality condition of a zero group-lasso row
(:math:`\lVert\nabla_{W_1[g]} L_{fit}\rVert_2 \le \lambda`) is set to exactly zero and no
longer computed; dropped genes are re-checked at every screen and revived when the
condition fails (a KKT check, as in glmnet's strong rules).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from ._ensemble import StackedAdam, StackedSBNN
from ._module import phase_loss
from ._plan import Phase


def pad_rows(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Stack per-member ``(n_k, ...)`` tensors into ``(K, max n_k, ...)`` (zero padded)."""
    n_max = max(t.shape[0] for t in tensors)
    out = tensors[0].new_zeros((len(tensors), n_max, *tensors[0].shape[1:]))
    for k, t in enumerate(tensors):
        out[k, : t.shape[0]] = t
    return out


class ScreeningMixin:
    """Screening methods of ``_Ensemble`` (state: ``plans``, ``dead``, ``K``, ``G``, ...)."""

    def _fit_gradient_norms(self, phase: Phase, net: StackedSBNN) -> torch.Tensor:
        """``(K, G)`` norms of every gene's full-batch data-loss gradient (first layer)."""
        ce = phase.loss == "ce"
        rows = [
            p._train_pre if ce else torch.arange(int(self.n[k])) for k, p in enumerate(self.plans)
        ]
        X = pad_rows([p._X.index_select(0, r) for p, r in zip(self.plans, rows)])
        valid = pad_rows([torch.ones(r.numel()) for r in rows])
        with torch.enable_grad():
            a1 = torch.baddbmm(
                net.params["first.bias"], X.index_select(2, net.cols[0]), net.first_weight()
            )
            a1 = a1.detach().requires_grad_(True)
            _, out = net.forward(F.elu(a1), start=1, classify=ce)
            if ce:
                out = out.masked_fill(self._class_mask, float("-inf"))
                tgt = pad_rows([p._labels.index_select(0, r) for p, r in zip(self.plans, rows)])
            else:
                tgt = self.Y
            fit = phase_loss(out, tgt, phase.loss, valid)
            (delta,) = torch.autograd.grad(fit.sum(), a1)
        return torch.bmm(X.transpose(1, 2), delta).norm(dim=2)

    @torch.no_grad()
    def _screen(self, phase: Phase, net: StackedSBNN, opt: StackedAdam):
        norms = net.row_norms()
        kth = norms.topk(self.n_genes, dim=1).values[:, -1:]
        cand = (norms < self.screen_tol * kth) & (net.alive[..., 0] > 0)
        cols = net.cols[0]
        dead_before = self.dead.clone()
        if not bool(cand.any()) and not bool(dead_before.any()):
            for k in range(self.K):  # nothing to drop or to re-check: no gradient pass
                self.screen_log[k].append(
                    {
                        "lasso_epoch": self.lasso_epochs,
                        "phase": phase.name,
                        "dropped": 0,
                        "revived": 0,
                        "alive": int((~self.dead[k]).sum()),
                    }
                )
            return net, opt
        grads = self._fit_gradient_norms(phase, net)
        for k in range(self.K):
            kkt = grads[k] <= phase.lasso
            drop = torch.zeros(self.G, dtype=torch.bool)
            drop[cols[cand[k]]] = True
            self.dead[k] |= drop & kkt
            revive = dead_before[k] & ~kkt
            self.dead[k] &= ~revive
            self.screen_log[k].append(
                {
                    "lasso_epoch": self.lasso_epochs,
                    "phase": phase.name,
                    "dropped": int((drop & kkt).sum()),
                    "revived": int(revive.sum()),
                    "alive": int((~self.dead[k]).sum()),
                }
            )
        new_cols = torch.nonzero(~self.dead.all(0)).flatten()
        if torch.equal(new_cols, cols):
            alive_new = (~self.dead[:, cols]).float()[..., None]
            revived = (alive_new > 0) & (net.alive == 0)
            dropped = (alive_new == 0) & (net.alive > 0)
            net.params["first.weight"].masked_fill_(revived, 0.0)
            opt.reset_rows("first.weight", revived | dropped)
            net.alive = alive_new  # zeroes the dropped rows
            return net, opt
        # re-index the stacked first layer and its optimiser state onto the new union
        pos = torch.full((self.G,), -1, dtype=torch.long)
        pos[cols] = torch.arange(cols.numel())
        src_pos = pos[new_cols]
        have = src_pos >= 0
        w_old = net.params["first.weight"]
        w = w_old.new_zeros(self.K, new_cols.numel(), w_old.shape[2])
        w[:, have] = w_old[:, src_pos[have]]
        alive_new = (~self.dead[:, new_cols]).float()[..., None]
        old_alive = torch.zeros_like(alive_new)
        old_alive[:, have] = net.alive[:, src_pos[have]]
        revived = (alive_new > 0) & (old_alive == 0)
        stale = revived | ((alive_new == 0) & (old_alive > 0))  # revived or dropped
        w.masked_fill_(revived, 0.0)

        def remap(state: torch.Tensor) -> torch.Tensor:
            s_new = state.new_zeros(w.shape)
            s_new[:, have] = state[:, src_pos[have]]
            return s_new.masked_fill_(stale, 0.0)

        w.requires_grad_(True)
        if "first.weight" in opt.names:
            opt.replace("first.weight", w, remap)
        net.params["first.weight"] = w
        net.alive, net.cols = alive_new, new_cols.expand(self.K, -1)
        self._build_inputs(net)
        return net, opt
