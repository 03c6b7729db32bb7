"""Are torch and torchvision built for each other?  The probe a failing import or model build runs (torch-free to import).

torch and torchvision not built for each other is the usual cause of ``operator torchvision::nms does not
exist`` (torchvision's compiled operators did not load), which otherwise reads as a fault of the model
being built: :func:`stack_problem` names it in one line with the command that fixes it.  The models'
factory, the CLI and ``edgekd doctor`` call it; it stands on the lowest floor so that all of them can.
Versions are read from the installed packages' metadata, so nothing heavy is imported to list them.
"""

from __future__ import annotations

import importlib.metadata as metadata
import re


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


def torch_version() -> str | None:
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
    return pairing_problem(torch_version() or "", torchvision_version(tv), failed)


def torchvision_version(meta_version: str) -> str:
    try:
        from torchvision import version

        return version.__version__
    except Exception:
        return meta_version
