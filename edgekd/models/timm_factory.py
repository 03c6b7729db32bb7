"""The timm model factory: random-weight models by name, checked with a clear error (nothing is ever downloaded)."""

from __future__ import annotations

import difflib

from ..errors import EdgekdError


def check_timm_name(name: str, role: str) -> None:
    import timm

    if timm.is_model(name):
        return
    close = difflib.get_close_matches(name, timm.list_models(), n=3)
    hint = f"did you mean {', '.join(close)}?" if close else "see timm.list_models() for names"
    raise EdgekdError(f"unknown {role} model {name!r}; {hint}")


def create_timm(name: str, role: str, **kwargs):
    """``timm.create_model`` with random weights; ViT-like models get a dynamic image size."""
    import timm

    check_timm_name(name, role)
    try:
        return timm.create_model(name, pretrained=False, dynamic_img_size=True, **kwargs)
    except TypeError:
        return timm.create_model(name, pretrained=False, **kwargs)
