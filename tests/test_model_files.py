"""Model folders of ``mv.models``: atomic saves, round trips and clear errors on bad folders."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import anndata as ad
import mudata as md
import numpy as np
import pytest
import torch
from _objects import assert_unchanged, snapshot
from _sbnn_helpers import TINY

import multiviz as mv
from multiviz import InputError
from multiviz.models import SBNN, SIVAE, CoupledAutoencoder, _save

pytestmark = pytest.mark.filterwarnings(
    "ignore::multiviz.FitQualityWarning", "ignore:Cannot join columns:UserWarning"
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _network() -> ad.AnnData:
    return mv.datasets.simulate_gene_network(n_cells=100, random_state=0)


@pytest.fixture(scope="module")
def sivae():
    adata = _network()
    SIVAE.setup_anndata(adata)
    model = SIVAE(adata, n_latent=2, n_hidden=(16, 8))
    model.train(max_epochs=1, pretrain_epochs=1, feature_pretrain_epochs=1)
    return adata, model


@pytest.fixture(scope="module")
def sbnn():
    m = mv.datasets.simulate_patchseq(n_cells=100, n_genes=40, random_state=0)
    mv.pp.prepare_paired(m, x="rna", y="ephys", gene_selection="none")
    return m, mv.tl.sbnn(m, n_genes=5, gene_decoder_epochs=0, return_model=True, **TINY)


@pytest.fixture(scope="module")
def cae():
    rng = np.random.default_rng(0)
    rna = ad.AnnData(rng.normal(size=(80, 20)).astype(np.float32))
    eph = ad.AnnData(rng.normal(size=(80, 5)).astype(np.float32))
    eph.obs_names = rna.obs_names
    mdata = md.MuData({"rna": rna, "ephys": eph})
    model = CoupledAutoencoder(mdata, hidden=(8, 8), random_state=0)
    model.train(max_epochs=1, steps_per_epoch=3, batch_size=32)
    return mdata, model


@pytest.fixture(scope="module")
def saved(sivae, tmp_path_factory):
    """A siVAE folder to copy (tests never change it)."""
    path = tmp_path_factory.mktemp("saved") / "sivae"
    sivae[1].save(path)
    return path


def _latent(model, data=None) -> np.ndarray:
    z = model.get_latent_representation(data)
    return np.concatenate([z[k] for k in sorted(z)]) if isinstance(z, dict) else z


def _hidden(folder) -> list[str]:
    return [e for e in os.listdir(folder) if e.startswith(".")]


@pytest.mark.parametrize("which", ["sivae", "sbnn", "cae"])
def test_round_trip_is_bitwise_and_records_class_and_version(which, request, tmp_path):
    data, model = request.getfixturevalue(which)
    cls = type(model)
    path = tmp_path / "m"
    model.save(path)
    assert sorted(os.listdir(path)) == ["model.pt", "multiviz.json"]
    assert not _hidden(tmp_path)  # the temporary folder was renamed into place
    meta = json.loads((path / "multiviz.json").read_text())
    assert meta["class"] == cls.__name__ and meta["multiviz"] == mv.__version__
    assert meta["model_bytes"] == (path / "model.pt").stat().st_size
    loaded = cls.load(path, adata=data)
    expected = data.obsm["X_sbnn"] if which == "sbnn" else _latent(model)
    np.testing.assert_array_equal(_latent(loaded), expected)


@pytest.mark.parametrize("exchange", [True, False], ids=["swap", "two-renames"])
def test_overwrite_replaces_the_model_and_keeps_other_files(
    sivae, sbnn, saved, tmp_path, monkeypatch, exchange
):
    if not exchange:
        monkeypatch.setattr(_save, "_exchange", lambda a, b: False)
    path = tmp_path / "m"
    shutil.copytree(saved, path)
    (path / "notes.txt").write_text("mine")
    sbnn[1].save(path, prefix="other_", overwrite=True)
    sivae[1].save(path, overwrite=True)
    assert sorted(os.listdir(path)) == [
        "model.pt",
        "multiviz.json",
        "notes.txt",
        "other_model.pt",
        "other_multiviz.json",
    ]
    assert (path / "notes.txt").read_text() == "mine" and not _hidden(tmp_path)
    assert SBNN.load(path, adata=sbnn[0], prefix="other_").module.first.in_features == 5


def test_failed_rename_puts_the_previous_model_back(sivae, saved, tmp_path, monkeypatch):
    path = tmp_path / "m"
    shutil.copytree(saved, path)
    before = (path / "model.pt").read_bytes()
    monkeypatch.setattr(_save, "_exchange", lambda a, b: False)
    real = os.rename

    def rename(src, dst):
        if os.path.basename(src).startswith(".m.tmp-"):
            raise OSError("disk gone")
        real(src, dst)

    monkeypatch.setattr(_save.os, "rename", rename)
    with pytest.raises(OSError, match="disk gone"):
        sivae[1].save(path, overwrite=True)
    assert (path / "model.pt").read_bytes() == before and not _hidden(tmp_path)


CHILD = """
import os, signal, sys, torch
import multiviz as mv
from multiviz.models import SIVAE, _save

torch.set_num_threads(1)
path, stage = sys.argv[1], sys.argv[2]
model = SIVAE.load(path, adata=mv.datasets.simulate_gene_network(n_cells=100, random_state=0))
with torch.no_grad():
    for p in model.module.parameters():
        p.add_(1.0)
die = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
if stage == "writing":  # half of model.pt on disk, then killed
    real = torch.save

    def half(obj, f, **kw):
        real(obj, f, **kw)
        with open(f, "r+b") as fh:
            fh.truncate(os.path.getsize(f) // 2)
        die()

    torch.save = half
else:  # killed after the swap, before the previous model is deleted
    _save.shutil.rmtree = die
model.save(path, overwrite=True)
"""


@pytest.mark.parametrize("stage", ["writing", "swapped"])
def test_save_killed_midway_leaves_a_loadable_model(sivae, saved, tmp_path, stage):
    path = tmp_path / "m"
    shutil.copytree(saved, path)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHILD), str(path), stage],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert len(_hidden(tmp_path)) == 1  # the killed save's folder: half-written or the old one
    adata = _network()
    loaded = SIVAE.load(path, adata=adata)
    expected = SIVAE.load(saved, adata=_network())
    if stage == "swapped":  # the new model is in place
        with torch.no_grad():
            for p in expected.module.parameters():
                p.add_(1.0)
    np.testing.assert_array_equal(_latent(loaded), _latent(expected))
    if stage == "writing":
        np.testing.assert_array_equal(_latent(loaded), _latent(sivae[1]))


# -- errors of save -----------------------------------------------------------------------------


def test_save_onto_a_file(sivae, tmp_path):
    path = tmp_path / "model.pt"
    path.write_text("not a folder")
    with pytest.raises(InputError, match=r"is a file.*pass the path of a folder") as err:
        sivae[1].save(path, overwrite=True)
    assert str(path) in str(err.value)
    assert path.read_text() == "not a folder"


def test_save_into_a_read_only_folder(sivae, tmp_path, monkeypatch):
    locked = tmp_path / "locked"
    locked.mkdir()
    real = os.mkdir

    def mkdir(p, *args, **kwargs):  # as for a non-root user in a read-only folder
        if str(p).startswith(str(locked)):
            raise PermissionError(13, "Permission denied", str(p))
        real(p, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", mkdir)
    with pytest.raises(PermissionError, match=r"not writable.*Choose a writable place") as err:
        sivae[1].save(locked / "m")
    assert isinstance(err.value, InputError) and repr(str(locked)) in str(err.value)
    assert os.listdir(locked) == []


def test_save_onto_an_existing_model_needs_overwrite(sivae, saved, tmp_path):
    path = tmp_path / "m"
    shutil.copytree(saved, path)
    before = (path / "model.pt").read_bytes()
    with pytest.raises(InputError, match=r"already exists.*`overwrite=True`") as err:
        sivae[1].save(path)
    assert str(path) in str(err.value)
    assert (path / "model.pt").read_bytes() == before and not _hidden(tmp_path)
    (tmp_path / "empty").mkdir()  # an empty folder holds nothing to lose
    sivae[1].save(tmp_path / "empty")
    assert sorted(os.listdir(tmp_path / "empty")) == ["model.pt", "multiviz.json"]


# -- errors of load -----------------------------------------------------------------------------


def test_load_a_missing_folder(tmp_path):
    adata = _network()
    before = snapshot(adata)
    with pytest.raises(FileNotFoundError, match=r"does not exist.*model\.save") as err:
        SIVAE.load(tmp_path / "nope", adata=adata)
    assert isinstance(err.value, InputError) and str(tmp_path / "nope") in str(err.value)
    assert_unchanged(adata, before)


def test_load_a_folder_without_model_pt(saved, tmp_path):
    path = tmp_path / "m"
    shutil.copytree(saved, path)
    os.rename(path / "model.pt", path / "a_model.pt")
    with pytest.raises(FileNotFoundError, match=r"model\.pt' is missing.*prefix='a_'"):
        SIVAE.load(path)
    os.remove(path / "a_model.pt")
    with pytest.raises(InputError, match=r"holds no saved model: re-save the model") as err:
        SIVAE.load(path)
    assert str(path / "model.pt") in str(err.value)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_load_a_damaged_model_pt(saved, tmp_path, damage):
    path = tmp_path / "m"
    shutil.copytree(saved, path)
    data = (path / "model.pt").read_bytes()
    if damage == "truncated":
        (path / "model.pt").write_bytes(data[: len(data) // 2])
        what = rf"truncated \({len(data) // 2} of {len(data)} bytes\)"
    else:
        (path / "model.pt").write_bytes(b"\x80\x02garbage" + bytes(len(data) - 9))
        what = "damaged or incomplete"
    adata = _network()
    before = snapshot(adata)
    with pytest.raises(InputError, match=rf"cannot be read, it is {what}.*re-save the model") as e:
        SIVAE.load(path, adata=adata)
    assert str(path / "model.pt") in str(e.value)
    assert_unchanged(adata, before)


@pytest.mark.parametrize("with_json", [True, False], ids=["multiviz.json", "older-save"])
def test_load_with_the_wrong_class(sbnn, tmp_path, with_json):
    path = tmp_path / "sbnn"
    sbnn[1].save(path)
    if not with_json:
        os.remove(path / "multiviz.json")
    adata = _network()
    before = snapshot(adata)
    with pytest.raises(InputError, match=r"holds a SBNN model.*`SIVAE\.load` was called") as err:
        SIVAE.load(path, adata=adata)
    assert f"`mv.models.SBNN.load({str(path)!r}, ...)`" in str(err.value)
    assert ("saved by multiviz" in str(err.value)) == with_json
    assert_unchanged(adata, before)


def test_load_from_another_multiviz_version(saved, tmp_path):
    path = tmp_path / "m"
    shutil.copytree(saved, path)
    meta = json.loads((path / "multiviz.json").read_text())
    (path / "multiviz.json").write_text(json.dumps({**meta, "multiviz": "0.0.1"}))
    SIVAE.load(path, adata=_network())  # another version whose content still loads: fine
    content = torch.load(path / "model.pt", weights_only=False)
    params = content["attr_dict"]["init_params_"]["non_kwargs"]
    params["n_latent_old"] = params.pop("n_latent")  # a renamed argument
    torch.save(content, path / "model.pt")
    meta["multiviz"], meta["model_bytes"] = "0.0.1", (path / "model.pt").stat().st_size
    (path / "multiviz.json").write_text(json.dumps(meta))
    adata = _network()
    before = snapshot(adata)
    with pytest.raises(InputError, match=r"saved by multiviz 0\.0\.1 and does not load") as err:
        SIVAE.load(path, adata=adata)
    assert f"in multiviz {mv.__version__}" in str(err.value) and "n_latent_old" in str(err.value)
    assert "pip install multiviz==0.0.1" in str(err.value)
    assert_unchanged(adata, before)  # scvi-tools' registration was undone


@pytest.mark.parametrize("genes", ["fewer", "reordered"])
def test_sivae_load_onto_other_genes(saved, genes):
    net = _network()
    adata = net[:, 3:].copy() if genes == "fewer" else net[:, ::-1].copy()
    before = snapshot(adata)
    what = r"3 of its 300 missing \(\['c0_hub'" if genes == "fewer" else "the same 300 in another"
    with pytest.raises(InputError, match=rf"`adata\.var_names` differ.*{what}") as err:
        SIVAE.load(saved, adata=adata)
    assert str(saved) in str(err.value) and "Load it onto the object" in str(err.value)
    assert_unchanged(adata, before)
    assert not [k for k in adata.uns if k.startswith("_scvi")]
