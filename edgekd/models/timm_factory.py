"""The timm model factory: random-weight models by name, checked with a clear error (nothing is ever downloaded)."""

from __future__ import annotations

from ..errors import EdgekdError


def import_timm():
    """``import timm``; when it fails inside torchvision (torch and torchvision not built for each other), say so."""
    try:
        import timm
    except ModuleNotFoundError:
        raise
    except Exception as e:
        from ..torch_stack import stack_problem

        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
        raise EdgekdError(stack_problem(e) or f"timm cannot be imported ({first}); run edgekd doctor to see what is wrong") from None
    return timm


def check_timm_name(name: str, role: str) -> None:
    timm = import_timm()

    if timm.is_model(name):
        return
    from ..registry import suggest

    close = suggest(name, timm.list_models())
    hint = f"did you mean {', '.join(close)}?" if close else "see timm.list_models() for names (e.g. timm.list_models('*mobilenet*'))"
    raise EdgekdError(f"unknown {role} model {name!r}; {hint}")


def create_timm(name: str, role: str, **kwargs):
    """``timm.create_model`` with random weights; ViT-like models get a dynamic image size."""
    timm = import_timm()

    check_timm_name(name, role)
    try:
        return timm.create_model(name, pretrained=False, dynamic_img_size=True, **kwargs)
    except TypeError:
        return timm.create_model(name, pretrained=False, **kwargs)
