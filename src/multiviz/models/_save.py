"""Model folders: atomic saves and checked loads, shared by every ``mv.models`` class.

A save writes into a hidden sibling folder (``.<name>.tmp-<random>``), then renames it into
place, swapping it with an existing folder in one step where the system can (Linux, macOS);
a killed save leaves the old model or the new one, never a half-written folder. Beside
``model.pt`` it writes ``multiviz.json`` (class, versions, size of ``model.pt``), which a
load reads first to explain a wrong class, a damaged file or a version that no longer loads.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .._validate import check_var_names
from .._validate_base import InputError

META_FNAME = "multiviz.json"
MODEL_FNAME = "model.pt"
#: Files a save writes (after its ``prefix``); the folder's other files are kept.
OWN_FILES = (MODEL_FNAME, "adata.h5ad", "mdata.h5mu", META_FNAME)
PUBLIC = ("SBNN", "SIVAE", "CoupledAutoencoder")
RESAVE = "re-save the model (`model.save(dir_path, overwrite=True)`) or restore it from a backup"


class ModelFileNotFoundError(InputError, FileNotFoundError):
    """No saved model where one was asked for (an InputError and a FileNotFoundError)."""


class ModelPermissionError(InputError, PermissionError):
    """A model folder that cannot be written (an InputError and a PermissionError)."""


def _first(exc: BaseException) -> str:
    line = (str(exc).splitlines() or [""])[0]
    return line if len(line) <= 150 else line[:147] + "..."


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    import multiviz

    return {"multiviz": multiviz.__version__, "scvi-tools": md.version("scvi-tools")}


# -- saving -------------------------------------------------------------------------------------


def _fresh_dir(parent: str, stem: str) -> str:
    """Create ``parent/stem<random>`` (umask permissions, unlike ``tempfile.mkdtemp``)."""
    while True:
        path = os.path.join(parent, stem + secrets.token_hex(4))
        with contextlib.suppress(FileExistsError):
            os.mkdir(path)
            return path


def _exchange(a: str, b: str) -> bool:
    """Swap two existing paths in one step where the system can; False where it cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if sys.platform.startswith("linux") and hasattr(libc, "renameat2"):
            return libc.renameat2(-100, os.fsencode(a), -100, os.fsencode(b), 2) == 0
        if sys.platform == "darwin" and hasattr(libc, "renamex_np"):
            return libc.renamex_np(os.fsencode(a), os.fsencode(b), 2) == 0
    except (OSError, TypeError):  # no C library to ask (e.g. Windows)
        pass
    return False


def _fsync(path: str) -> None:
    with contextlib.suppress(OSError):  # folders cannot be opened on Windows
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _check_target(target: str, overwrite: bool) -> bool:
    """Refuse a file, an unconfirmed overwrite or the working folder; True if it exists."""
    if os.path.isfile(target):
        raise InputError(
            f"`dir_path` {target!r} is a file, but a model is saved as a folder (model.pt and "
            f"{META_FNAME} inside): pass the path of a folder, e.g. "
            f"{os.path.splitext(target)[0] + '_model'!r}."
        )
    if not os.path.isdir(target):
        return False
    if os.listdir(target) and not overwrite:
        raise InputError(
            f"`dir_path` {target!r} already exists and is not empty. Pass `overwrite=True` to "
            "replace the model saved there, or choose another folder."
        )
    cwd = os.path.realpath(os.getcwd())
    if cwd == target or cwd.startswith(target + os.sep):
        raise InputError(
            f"`dir_path` {target!r} holds the working directory and a save replaces the whole "
            "folder: save into a subfolder of it instead, e.g. 'model/'."
        )
    return True


def _not_writable(where: str, exc: OSError) -> ModelPermissionError:
    return ModelPermissionError(
        f"Cannot save the model: the folder {where!r} is not writable ({exc.strerror}). "
        "Choose a writable place for `dir_path` (e.g. a folder in your home or project "
        "directory), or change the folder's permissions."
    )


def atomic_save(
    dir_path: str | os.PathLike,
    write: Callable[[str], None],
    overwrite: bool,
    prefix: str,
    cls: str,
) -> None:
    """Create or replace the folder ``dir_path`` with what ``write(folder)`` writes, atomically.

    ``multiviz.json`` records the model's class ``cls`` and the versions.
    """
    target = os.path.realpath(os.fspath(dir_path))
    parent, name = os.path.split(target)
    exists = _check_target(target, overwrite)
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = _fresh_dir(parent, f".{name}.tmp-")
    except PermissionError as exc:
        raise _not_writable(parent, exc) from exc
    except (FileExistsError, NotADirectoryError) as exc:
        raise InputError(f"`dir_path` {target!r}: {exc.filename!r} is not a folder.") from exc
    old = None
    try:
        write(tmp)
        if exists:  # keep what a save does not write (another prefix's model, other files)
            shutil.copymode(target, tmp)
            skip = {prefix + f for f in OWN_FILES} | set(os.listdir(tmp))

            def ignore(folder: str, names: list[str]) -> set[str]:
                return skip if folder == target else set()

            shutil.copytree(target, tmp, True, ignore, _link_or_copy, dirs_exist_ok=True)
        size = os.path.getsize(os.path.join(tmp, prefix + MODEL_FNAME))
        with open(os.path.join(tmp, prefix + META_FNAME), "w") as fh:
            json.dump({"class": cls, **_versions(), "model_bytes": size}, fh, indent=1)
        for entry in [*os.listdir(tmp), ""]:
            _fsync(os.path.join(tmp, entry))
        if not os.path.lexists(target):
            os.rename(tmp, target)
        elif _exchange(tmp, target):
            old = tmp  # the swap left the previous model under the temporary name
        else:
            old = _fresh_dir(parent, f".{name}.old-")
            os.rmdir(old)
            os.rename(target, old)
            try:
                os.rename(tmp, target)
            except BaseException:
                os.rename(old, target)
                raise
        _fsync(parent)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(exc, PermissionError):
            raise _not_writable(parent, exc) from exc
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# -- loading ------------------------------------------------------------------------------------


@dataclass
class SavedModel:
    """What a load needs to know before scvi-tools builds the model."""

    path: str
    attr: dict[str, Any]
    var_names: Any
    meta: dict[str, Any] | None

    @property
    def version(self) -> str | None:
        """The multiviz version that saved it (None: saved before versions were recorded)."""
        return (self.meta or {}).get("multiviz")


def _leftovers(path: str) -> str:
    parent, name = os.path.split(os.path.abspath(path))
    entries = os.listdir(parent) if os.path.isdir(parent) else []
    found = sorted(e for e in entries if e.startswith((f".{name}.tmp-", f".{name}.old-")))
    if not found:
        return ""
    return (
        f" An interrupted save left {found} in {parent!r}: one holding {META_FNAME} is "
        f"complete and can be renamed to {name!r}."
    )


def _check_class(saved: str, asked: str, path: str, version: str | None, allowed: Any) -> None:
    if saved == asked or saved in (allowed or ()):
        return
    call = f"mv.models.{saved}" if saved in PUBLIC else saved
    by = f", saved by multiviz {version}," if version else ""
    raise InputError(
        f"{path!r} holds a {saved} model{by} but `{asked}.load` was called: load it with "
        f"`{call}.load({path!r}, ...)`."
    )


def read_saved(cls_name: str, dir_path: str | os.PathLike, **kwargs: Any) -> SavedModel:
    """Read a model folder (``kwargs`` of scvi-tools' load); clear errors for a bad one."""
    import torch

    path, prefix = os.fspath(dir_path), kwargs.get("prefix") or ""
    model_path, meta_path = (os.path.join(path, prefix + f) for f in (MODEL_FNAME, META_FNAME))
    allowed = kwargs.get("allowed_classes_names_list")
    if kwargs.get("backup_url") is not None and not os.path.exists(model_path):
        from scvi.data._download import _download

        _download(kwargs["backup_url"], path, prefix + MODEL_FNAME)
    if os.path.isfile(path):
        raise InputError(
            f"`dir_path` {path!r} is a file; pass the folder the model was saved to (the one "
            f"given to `model.save`, holding {MODEL_FNAME})."
        )
    if not os.path.isdir(path):
        raise ModelFileNotFoundError(
            f"No saved model at {path!r}: the folder does not exist. Pass the folder given to "
            f"`model.save(dir_path)`.{_leftovers(path)}"
        )
    if not os.path.isfile(model_path):
        found = sorted(f[: -len(MODEL_FNAME)] for f in os.listdir(path) if f.endswith(MODEL_FNAME))
        hint = f"pass its prefix, `prefix={found[0]!r}`" if found else RESAVE
        raise ModelFileNotFoundError(
            f"{model_path!r} is missing, so {path!r} holds no saved model: {hint}."
        )
    meta = None
    if os.path.exists(meta_path):
        try:
            with open(meta_path) as fh:
                meta = json.load(fh)
            saved_cls = str(meta["class"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{meta_path!r} is damaged ({_first(exc)}); {RESAVE}.") from exc
        _check_class(saved_cls, cls_name, path, meta.get("multiviz"), allowed)
    try:
        content = torch.load(model_path, map_location="cpu", weights_only=False)
        attr, var_names = content["attr_dict"], content["var_names"]
        saved_cls = attr["registry_"].get("model_name", cls_name)
    except Exception as exc:  # torch, zip and pickle errors of a damaged file
        size, expected = os.path.getsize(model_path), (meta or {}).get("model_bytes")
        what = "damaged or incomplete"
        if expected is not None and size != expected:
            what = f"truncated ({size} of {expected} bytes)"
        raise InputError(
            f"{model_path!r} cannot be read, it is {what} ({type(exc).__name__}: "
            f"{_first(exc)}); {RESAVE}."
        ) from exc
    _check_class(saved_cls, cls_name, path, None, allowed)
    return SavedModel(path, attr, var_names, meta)


def _scvi(slot: Any) -> list[str]:
    return [k for k in list(slot.keys()) if str(k).startswith("_scvi")]


def _copy(value: Any) -> Any:
    return value.copy() if hasattr(value, "copy") else value


@contextlib.contextmanager
def _rollback_registration(adata: Any) -> Iterator[None]:
    """Undo the ``_scvi*`` entries a failed load's scvi-tools setup wrote into ``adata``."""
    objs = [adata, *getattr(adata, "mod", {}).values()] if hasattr(adata, "obsm") else []
    slots = [slot for o in objs for slot in (o.uns, o.obs, o.obsm)]
    before = [{k: _copy(slot[k]) for k in _scvi(slot)} for slot in slots]
    try:
        yield
    except BaseException:
        for slot, entries in zip(slots, before):
            for k in set(_scvi(slot)) - set(entries):
                del slot[k]
            for k, v in entries.items():
                slot[k] = v
        raise


@contextlib.contextmanager
def _version_errors(saved: SavedModel, cls_name: str) -> Iterator[None]:
    """Name both versions when a folder saved by another multiviz version does not load."""
    try:
        yield
    except InputError:
        raise
    except Exception as exc:
        now = _versions()["multiviz"]
        if saved.version == now:
            raise
        was = f"multiviz {saved.version}" if saved.version else "an older multiviz"
        pin = f" (`pip install multiviz=={saved.version}`)" if saved.version else ""
        raise InputError(
            f"The {cls_name} in {saved.path!r} was saved by {was} and does not load in multiviz "
            f"{now} ({type(exc).__name__}: {_first(exc)}). Load it with the version that saved "
            f"it{pin}, or retrain the model with multiviz {now}."
        ) from exc


class ModelFilesMixin:
    """``save`` and ``load`` of every ``mv.models`` class: atomic folders, clear errors.

    Classes adapt the files in :meth:`_write_model_files`, the user's object in
    :meth:`_adata_for_load` and scvi-tools' load in :meth:`_load_model`.
    """

    def save(
        self,
        dir_path: str | os.PathLike,
        prefix: str | None = None,
        overwrite: bool = False,
        save_anndata: bool = False,
        save_kwargs: dict | None = None,
        **kwargs: Any,
    ) -> None:
        """Save the model into a folder, atomically (an interrupted save leaves the old one).

        Parameters
        ----------
        dir_path
            Folder to create or, with ``overwrite=True``, to replace (files a save does not
            write, e.g. another ``prefix``'s model, are kept).
        prefix, overwrite, save_anndata, save_kwargs, **kwargs
            As :meth:`scvi.model.base.BaseModelClass.save`.

        Raises
        ------
        multiviz.InputError
            ``dir_path`` is a file, or a non-empty folder without ``overwrite=True``; a
            folder that is not writable raises one that is also a :class:`PermissionError`.
        """
        from .._validate import check_bool

        check_bool(overwrite, "overwrite")
        check_bool(save_anndata, "save_anndata")
        atomic_save(
            dir_path,
            lambda tmp: self._write_model_files(tmp, prefix, save_anndata, save_kwargs, kwargs),
            overwrite,
            prefix or "",
            type(self).__name__,
        )

    def _write_model_files(
        self, dir_path: str, prefix: str | None, save_anndata: bool, save_kwargs: Any, kwargs: dict
    ) -> None:
        """Write the model's files into the empty folder ``dir_path`` (scvi-tools' save)."""
        super().save(  # type: ignore[misc]
            dir_path,
            prefix=prefix,
            overwrite=True,
            save_anndata=save_anndata,
            save_kwargs=save_kwargs,
            **kwargs,
        )

    @classmethod
    def load(cls, dir_path: str | os.PathLike, adata: Any = None, **kwargs: Any):
        """Load a model saved with :meth:`save`, optionally onto the user's own object.

        Parameters
        ----------
        dir_path
            Folder given to :meth:`save`.
        adata
            ``None`` (the data saved with ``save_anndata=True``) or the object the model was
            trained on, same variables (for ``SBNN``/``CoupledAutoencoder`` the user's MuData).
        **kwargs
            As :meth:`scvi.model.base.BaseModelClass.load` (``accelerator``, ``prefix``, ...).

        Raises
        ------
        multiviz.InputError
            No saved model at ``dir_path`` (then also a :class:`FileNotFoundError`), a damaged
            ``model.pt``, a model of another class or from a multiviz version that no longer
            loads it, or ``adata`` with other variables; ``adata`` is then left unchanged.

        Examples
        --------
        >>> model = mv.models.SIVAE.load("sivae_model/", adata=adata)
        """
        saved = read_saved(cls.__name__, dir_path, **kwargs)
        with _rollback_registration(adata), _version_errors(saved, cls.__name__):
            adata = cls._adata_for_load(adata, saved)
            check_var_names(adata, saved, cls.__name__)
            return cls._load_model(saved.path, adata, **kwargs)

    @classmethod
    def _adata_for_load(cls, adata: Any, saved: SavedModel) -> Any:
        """The object scvi-tools registers (default: the user's own)."""
        return adata

    @classmethod
    def _load_model(cls, dir_path: str, adata: Any, **kwargs: Any):
        """scvi-tools' load of the checked folder."""
        return super().load(dir_path, adata=adata, **kwargs)  # type: ignore[misc]
