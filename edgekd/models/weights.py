"""Loading local teacher weights: timm state dicts and torchvision state dicts (keys mapped by order)."""

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
