"""Shared by every benchmark script: paths, what a benchmark ran on, writing a result file.

The scripts live in one folder per question (``benchmarks/<group>/<script>.py``) and run
from the repository root. Each puts this folder on ``sys.path`` (after its own folder)
before importing from here::

    sys.path.insert(1, str(Path(__file__).resolve().parents[1]))
    from _common import DATA, RESULTS, hardware  # noqa: E402

A script that reuses another group's script adds that group with :func:`use_groups`.
Importing this module does not import torch (only :func:`hardware` does).
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

#: ``benchmarks/``
BENCHMARKS = Path(__file__).resolve().parent
#: The repository root.
ROOT = BENCHMARKS.parent
#: Where every result JSON (and its ``*_parts/`` folder) is written: ``benchmarks/results/``.
RESULTS = BENCHMARKS / "results"
#: The real data sets (M1 Patch-seq, ...): ``../shared/data``, or ``$MULTIVIZ_SHARED_DATA``.
DATA = Path(os.environ.get("MULTIVIZ_SHARED_DATA", ROOT.parent / "shared" / "data"))


def use_groups(*groups: str) -> None:
    """Put ``benchmarks/<group>`` on ``sys.path`` for each group, to import its scripts."""
    for group in groups:
        folder = str(BENCHMARKS / group)
        if folder not in sys.path:
            sys.path.insert(1, folder)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux), else what ``platform`` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware(device: str = "cpu", **extra) -> dict:
    """CPU, cores, torch/python versions, the device used and the GPU (if any), plus ``extra``.

    ``command`` is the command line as run (``python benchmarks/<group>/<script>.py ...``).
    """
    import torch

    gpu = (
        torch.cuda.get_device_name(0)
        if torch.cuda.is_available()
        else "not available in this session"
    )
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": device,
        "gpu": gpu,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        **extra,
    }


def write_result(path: Path, payload: dict, **hardware_extra) -> None:
    """Write ``payload`` as indented JSON to ``path``, with the load average and hardware."""
    payload = {
        **payload,
        "load_average": list(os.getloadavg()),
        "hardware": hardware("cpu", **hardware_extra),
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
