"""Shared fixtures: paths to the real data in ``../shared/data`` (skipped where absent)."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")


def pytest_report_header(config) -> str:
    """Name the scverse stack under test: CI runs the suite on two (see ``.ci/run``)."""
    import importlib.metadata as md
    import platform

    names = ("anndata", "mudata", "scanpy", "scvi-tools", "torch", "numpy", "pandas")
    return (
        "multiviz stack: Python "
        + platform.python_version()
        + ", "
        + ", ".join(f"{name} {md.version(name)}" for name in names)
    )


REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MULTIVIZ_SHARED_DATA", REPO.parent / "shared" / "data"))


def _shared_file(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(
            f"{name} not found in {SHARED_DATA}: the real-data tests need the project's shared "
            "data folder beside the checkout (or MULTIVIZ_SHARED_DATA pointing at it)."
        )
    return path


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    if not SHARED_DATA.exists():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def m1_path() -> Path:
    return _shared_file("m1_patchseq_scala2021.h5mu")


@pytest.fixture(scope="session")
def m1_phys_temp_path() -> Path:
    return _shared_file("m1_patchseq_phys_temp_scala2021.h5mu")


@pytest.fixture(scope="session")
def pbmc10k_path() -> Path:
    return _shared_file("pbmc_10k_protein_v3_200cells_fixture.h5mu")


@pytest.fixture(scope="session")
def pbmc5k_path() -> Path:
    return _shared_file("pbmc_5k_protein_v3_200cells_fixture.h5mu")


@pytest.fixture(scope="session")
def ion_channel_path() -> Path:
    return _shared_file("ion_channel_genes_go0005216_mouse.tsv")
