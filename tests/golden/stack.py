"""Which recording belongs to this Python stack.

Bitwise results depend on the library builds (torch's CPU kernels, numpy's OpenBLAS) and
on the CPU instruction set they dispatch to, so each stack has its own recording:
``outputs_<key>.json`` with ``key = py3.11-torch2.13-numpy2.4-x86_64-avx512`` (``-amx`` appended on AMX CPUs).
"""

from __future__ import annotations

import platform
import sys
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGES = ("torch", "numpy", "scipy", "pandas", "scikit-learn", "anndata", "mudata", "scvi-tools")


def _major_minor(version: str) -> str:
    return ".".join(version.split("+")[0].split(".")[:2])


def _cpu_capability() -> str:
    import torch

    try:
        return torch.backends.cpu.get_cpu_capability().lower()
    except AttributeError:  # pragma: no cover - older torch
        return "cpu"


def _matrix_units() -> str:
    """``"-amx"`` on CPUs with AMX tiles, else ``""``.

    torch's instruction-set level (``AVX512``) does not tell apart CPUs on which MKL picks
    different matrix kernels: on an AMX CPU (Sapphire Rapids and later) trained models
    differ from a Skylake-class AVX-512 CPU's in the 7th digit, so the two get separate
    recordings. Other CPUs keep the plain key.
    """
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return "-amx" if "amx_tile" in line.split() else ""
    except OSError:  # pragma: no cover - not Linux
        pass
    return ""


def stack_key() -> str:
    """``py<major.minor>-torch<major.minor>-numpy<major.minor>-<machine>-<cpu capability>``.

    ``-amx`` is appended on CPUs with AMX tiles (:func:`_matrix_units`).
    """
    py = ".".join(map(str, sys.version_info[:2]))
    torch_v = _major_minor(metadata.version("torch"))
    numpy_v = _major_minor(metadata.version("numpy"))
    cpu = f"{platform.machine()}-{_cpu_capability()}{_matrix_units()}"
    return f"py{py}-torch{torch_v}-numpy{numpy_v}-{cpu}"


def stack_info() -> dict:
    """Library versions and BLAS builds, stored with a recording for failure messages."""
    info = {"python": platform.python_version(), "machine": platform.machine()}
    info.update({name: metadata.version(name) for name in PACKAGES})
    info["torch_cpu_capability"] = _cpu_capability()
    try:
        from threadpoolctl import threadpool_info

        info["blas"] = sorted(
            {
                f"{d['internal_api']} {d.get('version')} {d.get('architecture')}"
                for d in threadpool_info()
                if d["user_api"] == "blas"
            }
        )
    except ImportError:  # pragma: no cover
        pass
    return info


def recording_path(key: str | None = None) -> Path:
    """``tests/golden/outputs_<key>.json``."""
    return HERE / f"outputs_{key or stack_key()}.json"


def recordings() -> dict[str, Path]:
    """Every committed recording, by stack key."""
    return {p.stem.removeprefix("outputs_"): p for p in sorted(HERE.glob("outputs_*.json"))}


def nearest(key: str, keys) -> str | None:
    """The recorded stack most like ``key`` (most equal parts, the Python version first)."""

    def score(other: str) -> tuple:
        a, b = key.split("-"), other.split("-")
        return (sum(x == y for x, y in zip(a, b)), a[:1] == b[:1], other)

    return max(keys, key=score, default=None)


def dumps(recording: dict) -> str:
    """A recording as JSON with one leaf per line (short diffs when a case is re-recorded)."""
    import json

    lines = ["{"]
    for field in ("stack", "versions", "commit", "recorded", "command", "tolerances"):
        lines.append(f" {json.dumps(field)}: {json.dumps(recording[field], sort_keys=True)},")
    if recording.get("stale"):
        lines.append(f' "stale": {json.dumps(recording["stale"], sort_keys=True)},')
    lines.append(' "cases": {')
    names = list(recording["cases"])
    for i, name in enumerate(names):
        leaves = recording["cases"][name]
        lines.append(f"  {json.dumps(name)}: {{")
        keys = list(leaves)
        for j, key in enumerate(keys):
            comma = "," if j < len(keys) - 1 else ""
            lines.append(f"   {json.dumps(key)}: {json.dumps(leaves[key])}{comma}")
        lines.append("  }" + ("," if i < len(names) - 1 else ""))
    lines.append(" }")
    lines.append("}")
    return "\n".join(lines) + "\n"
