"""The machine a benchmark ran on (no torch)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpu_info() -> str | None:
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip().splitlines()[0]
        except (OSError, subprocess.SubprocessError):
            pass
    if os.path.exists("/etc/nv_tegra_release"):  # Jetson
        with open("/etc/nv_tegra_release") as f:
            return "Jetson " + f.readline().strip()
    return None


def environment(runner=None) -> dict:
    import numpy

    from .. import __version__

    env = {
        "edgekd": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "numpy": numpy.__version__,
        "gpu": gpu_info(),
    }
    try:
        import onnxruntime

        env["onnxruntime"] = onnxruntime.__version__
        env["ort_available_providers"] = onnxruntime.get_available_providers()
    except ImportError:
        env["onnxruntime"] = None
    if runner is not None:
        env.update(runner.describe())
    return env
