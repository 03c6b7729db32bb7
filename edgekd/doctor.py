"""``edgekd doctor``: what this environment holds (versions, devices, runtimes, weight packages), and each
problem in one line with the command that fixes it.

:func:`stack_problem` is the same probe for a failing import: torch and torchvision built for each
other is the usual cause of ``operator torchvision::nms does not exist`` (torchvision's compiled
operators did not load), which otherwise reads as a fault of the model being built.
Versions are read from the installed packages' metadata, so nothing heavy is imported to list them.
"""

from __future__ import annotations

import importlib.metadata as metadata
import importlib.util
import re
from dataclasses import dataclass, field

PACKAGES = ("torch", "torchvision", "timm", "onnx", "onnxruntime", "numpy")
OPTIONAL = {"openvino": "openvino", "ai-edge-litert": "ai_edge_litert", "tensorrt": "tensorrt", "onnx2torch": "onnx2torch",
            "h5py": "h5py", "matplotlib": "matplotlib"}
_ORT_VARIANTS = ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml")


def installed_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def paired_torchvision(torch_version: str) -> str | None:
    """The torchvision release built for ``torch_version`` (torch 2.m.p pairs with torchvision 0.(m+15).p since torch 2.0)."""
    found = re.match(r"2\.(\d+)\.(\d+)", torch_version or "")
    return f"0.{int(found.group(1)) + 15}.{found.group(2)}" if found else None


def _local_tag(version: str) -> str:
    """``cpu`` of ``2.13.0+cpu``, ``cu130`` of ``2.14.1+cu130``, "" for a PyPI wheel."""
    return version.partition("+")[2]


def _install_command(dist: str, version: str, tag: str) -> str:
    index = f" --index-url https://download.pytorch.org/whl/{tag}" if tag else ""
    return f"pip install --force-reinstall --no-deps {dist}=={version}{index}"


def pairing_problem(torch_version: str, torchvision_version: str, import_error: str = "") -> str | None:
    """The one-line problem when torch and torchvision were not built for each other (``None`` when they were)."""
    if not torch_version or not torchvision_version:
        return None
    want = paired_torchvision(torch_version)
    t_tag, v_tag = _local_tag(torch_version), _local_tag(torchvision_version)
    base = torchvision_version.partition("+")[0]
    why = f" ({import_error})" if import_error else ""
    if want and base != want:
        return (f"torch {torch_version} and torchvision {torchvision_version} do not match{why}: torch {torch_version.partition('+')[0]} "
                f"needs torchvision {want}; fix: {_install_command('torchvision', want, t_tag)}")
    if import_error or (t_tag != v_tag and (t_tag or v_tag)):
        build = lambda tag: f"the {tag} build" if tag else "the PyPI build"  # noqa: E731
        what = (f"a paired release, but torch is {build(t_tag)} and torchvision {build(v_tag)}" if t_tag != v_tag
                else "a paired release whose compiled operators do not load")
        fix = _install_command("torchvision", base, t_tag)
        return (f"torch {torch_version} and torchvision {torchvision_version} do not match ({what}"
                f"{'; ' + import_error if import_error else ''}): reinstall torchvision from torch's index; fix: {fix}")
    return None


def _torch_version() -> str | None:
    try:
        import torch

        return torch.__version__  # carries the build tag (+cpu), which the metadata may not
    except Exception:
        return installed_version("torch")


def probe_torchvision() -> str:
    """"" when torchvision imports with its compiled operators, else the gist of why not."""
    try:
        import torch
        import torchvision  # noqa: F401

        if not hasattr(torch.ops.torchvision, "nms"):
            return "operator torchvision::nms does not exist"
    except ModuleNotFoundError:
        return ""
    except Exception as e:
        return str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
    return ""


def stack_problem(error: BaseException | None = None) -> str | None:
    """The environment problem behind ``error`` (a failed import or model build), or None when the stack is sound."""
    tv = installed_version("torchvision")
    if tv is None:
        return None
    text = str(error or "")
    failed = probe_torchvision() if (error is None or "torchvision" in text or "operator" in text) else ""
    return pairing_problem(_torch_version() or "", _torchvision_version(tv), failed)


def _torchvision_version(meta_version: str) -> str:
    try:
        from torchvision import version

        return version.__version__
    except Exception:
        return meta_version


# ----------------------------------------------------------------------------- the report
@dataclass
class Report:
    lines: list = field(default_factory=list)  # (label, text)
    problems: list = field(default_factory=list)  # one line each, ending in the fix

    def add(self, label: str, text: str) -> None:
        self.lines.append((label, text))


def _versions(rep: Report) -> None:
    for dist in PACKAGES:
        v = _torch_version() if dist == "torch" else installed_version(dist)
        if dist == "torchvision" and v:
            v = _torchvision_version(v)  # with its build tag (+cpu), as torch's
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
