"""What a benchmark ran on, recorded in every result JSON."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

import torch


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
    """CPU, cores, torch/python versions, the device used and the GPU (if any), plus ``extra``."""
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
    import json

    payload = {
        **payload,
        "load_average": list(os.getloadavg()),
        "hardware": hardware("cpu", **hardware_extra),
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")
