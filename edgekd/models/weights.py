"""Loading local teacher weights: timm, torchvision (keys mapped by order) and efficientnet_pytorch (keys renamed) state dicts."""

from __future__ import annotations

from pathlib import Path

from ..errors import EdgekdError


def read_state_dict(path, role: str = "teacher") -> dict:
    """A state dict from a ``.pt``/``.pth``/``.bin`` (``weights_only``) or ``.safetensors`` file."""
    path = Path(path).expanduser()
    if not path.exists():
        raise EdgekdError(f"{role} weights file {path} does not exist; give a local .pth/.pt/.safetensors file")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError:
            raise EdgekdError("reading .safetensors needs the safetensors package: pip install safetensors") from None
        return load_file(str(path))
    from ..fileio import load_checkpoint

    sd = load_checkpoint(path)
    for key in ("state_dict", "model", "student"):  # common wrappers, edgekd checkpoints included
        if isinstance(sd, dict) and key in sd and isinstance(sd[key], dict):
            sd = sd[key]
            break
    if not isinstance(sd, dict) or not all(hasattr(v, "shape") for v in sd.values()):
        raise EdgekdError(f"{path} holds no state dict of tensors; save the model with torch.save(model.state_dict(), FILE)")
    return sd


def _entries(sd: dict):
    return [(k, v) for k, v in sd.items() if not k.endswith("num_batches_tracked")]


def map_by_order(src: dict, model_sd: dict) -> dict | None:
    """Map a state dict with other key names (torchvision's MobileNetV2) onto ``model_sd`` by order and shape."""
    a, b = _entries(src), _entries(model_sd)
    if len(a) != len(b) or any(tuple(x.shape) != tuple(y.shape) for (_, x), (_, y) in zip(a, b)):
        return None
    return {kb: va for (_, va), (kb, _) in zip(a, b)}


def load_into(model, sd: dict, source: str, role: str = "teacher") -> None:
    """Load ``sd`` into ``model`` exactly, else map torchvision-style names, else refuse naming the keys that differ."""
    target = model.state_dict()
    if is_efficientnet_pytorch(sd):
        sd = map_efficientnet_pytorch(sd, model)
    if set(k for k, _ in _entries(sd)) == set(k for k, _ in _entries(target)):
        bad = [k for k, v in _entries(sd) if tuple(v.shape) != tuple(target[k].shape)]
        if not bad:
            model.load_state_dict(sd, strict=False)
            return
        raise EdgekdError(
            f"{role} weights {source} do not fit: {len(bad)} tensors differ in shape (first: {bad[0]} "
            f"{tuple(sd[bad[0]].shape)} vs {tuple(target[bad[0]].shape)}); check the model name"
        )
    mapped = map_by_order(sd, target)
    if mapped is not None:
        model.load_state_dict(mapped, strict=False)
        return
    missing = sorted(set(target) - set(sd))
    unexpected = sorted(set(sd) - set(target))
    raise EdgekdError(
        f"{role} weights {source} do not fit the model: {len(missing)} keys missing (e.g. {missing[:2]}), "
        f"{len(unexpected)} unexpected (e.g. {unexpected[:2]}); check the model name matches the file"
    )


# efficientnet_pytorch (lukemelas) names -> timm EfficientNet names.  Its blocks are one flat list;
# timm nests them by stage.  A block with an expansion conv is timm's InvertedResidual
# (conv_pw/bn1, conv_dw/bn2, conv_pwl/bn3); one without is a DepthwiseSeparableConv (conv_dw/bn1, conv_pw/bn2).
_EFFNET_TOP = {"_conv_stem": "conv_stem", "_bn0": "bn1", "_conv_head": "conv_head", "_bn1": "bn2", "_fc": "classifier"}
_EFFNET_IR = {"_expand_conv": "conv_pw", "_bn0": "bn1", "_depthwise_conv": "conv_dw", "_bn1": "bn2",
              "_project_conv": "conv_pwl", "_bn2": "bn3", "_se._se_reduce": "se.conv_reduce", "_se._se_expand": "se.conv_expand"}
_EFFNET_DS = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2",
              "_se._se_reduce": "se.conv_reduce", "_se._se_expand": "se.conv_expand"}


def is_efficientnet_pytorch(sd: dict) -> bool:
    return "_conv_stem.weight" in sd and any(k.startswith("_blocks.") for k in sd)


def map_efficientnet_pytorch(sd: dict, model) -> dict:
    """Rename an efficientnet_pytorch state dict onto a timm EfficientNet (``efficientnet_lite0``, ``efficientnet_b0``...)."""
    flat = [(si, bi, type(b).__name__) for si, stage in enumerate(model.blocks) for bi, b in enumerate(stage)]
    out = {}
    for key, value in sd.items():
        head, _, leaf = key.rpartition(".")
        if head in _EFFNET_TOP:
            out[f"{_EFFNET_TOP[head]}.{leaf}"] = value
            continue
        parts = head.split(".")
        if parts[0] != "_blocks" or not parts[1].isdigit() or int(parts[1]) >= len(flat):
            raise EdgekdError(f"efficientnet_pytorch key {key!r} has no counterpart in the timm model; check the model name")
        si, bi, cls = flat[int(parts[1])]
        table = _EFFNET_DS if cls == "DepthwiseSeparableConv" else _EFFNET_IR
        sub = ".".join(parts[2:])
        if sub not in table:
            raise EdgekdError(f"efficientnet_pytorch key {key!r} has no counterpart in timm's {cls}; check the model name")
        out[f"blocks.{si}.{bi}.{table[sub]}.{leaf}"] = value
    return out
