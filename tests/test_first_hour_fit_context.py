"""``multiviz.train.fit_context``: threads, quiet Lightning, Ctrl-C and one start/finish line."""

from __future__ import annotations

import logging
import re

import pytest
import torch

import multiviz as mv
from multiviz.train import fit_context, format_elapsed, resolve_progress_bar

BANNER = re.compile(
    r"GPU available|TPU available|HPU available|Tip:|💡|litlogger|Seed set|Trainer\.fit|"
    r"max_epochs=.*reached|does not have many workers|Warning",
    re.IGNORECASE,
)


def test_threads_are_applied_and_restored():
    before = torch.get_num_threads()
    old = mv.settings.num_threads
    try:
        mv.settings.num_threads = 1
        with fit_context("threads"):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == before
        mv.settings.num_threads = None
        with fit_context("threads"):
            assert torch.get_num_threads() == before  # None leaves torch's setting alone
    finally:
        mv.settings.num_threads = old
    with pytest.raises(ValueError, match="num_threads"):
        mv.settings.num_threads = 0


def test_one_start_and_finish_line_and_nesting(caplog):
    with caplog.at_level(logging.INFO, logger="multiviz"):
        with fit_context("outer model"):
            with fit_context("inner phase"):
                pass
    lines = [r.getMessage() for r in caplog.records if r.name == "multiviz"]
    assert lines[0] == "running outer model"
    assert re.fullmatch(r"    finished outer model \(0:00:00\.\d\d\)", lines[1])
    assert len(lines) == 2  # the nested context logs nothing
    assert format_elapsed(70.4) == "0:01:10"


def test_ctrl_c_from_lightning_is_a_keyboard_interrupt_and_loggers_are_restored():
    lightning = logging.getLogger("lightning.pytorch")
    level = lightning.level
    with pytest.raises(KeyboardInterrupt, match="nothing was written"):
        with fit_context("interrupted"):
            assert lightning.getEffectiveLevel() == logging.ERROR
            raise SystemExit(1)  # what Lightning raises on SIGINT
    assert lightning.level == level


def test_progress_bar_resolution():
    assert resolve_progress_bar(True) is True and resolve_progress_bar(False) is False
    assert resolve_progress_bar(None) is False  # pytest's stderr is not a terminal
    with pytest.raises(mv.InputError, match="enable_progress_bar"):
        resolve_progress_bar("yes")


def test_a_lightning_fit_inside_prints_no_banner(capfd):
    import lightning.pytorch as pl
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    class Tiny(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = nn.Linear(3, 1)

        def training_step(self, batch, _):
            x, y = batch
            loss = nn.functional.mse_loss(self.layer(x), y)
            self.log("train_loss", loss)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = TensorDataset(torch.randn(64, 3), torch.randn(64, 1))
    with fit_context("tiny lightning model"):
        pl.seed_everything(0)
        pl.Trainer(
            max_epochs=2,
            accelerator="cpu",
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
        ).fit(Tiny(), DataLoader(data, batch_size=16))
    out, err = capfd.readouterr()
    noisy = [line for line in (out + err).splitlines() if BANNER.search(line)]
    assert noisy == []
