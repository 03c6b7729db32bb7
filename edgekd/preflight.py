"""Check first: every name, file and folder a command was given, before any scene is rendered or model built.

Each check raises :class:`~edgekd.errors.EdgekdError` for one mistake; :class:`Problems` runs them all and
reports every mistake at once, one line each.  Checks here are cheap: a model is built on torch's
``meta`` device (no memory, no initialisation) to learn its stride, a data path is only detected,
a weights file only has its first bytes read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from .config import RunConfig
from .errors import EdgekdError


class Problems(list):
    """The mistakes found so far (one line each, in the order found, without repeats)."""

    def run(self, check: Callable, *args, **kwargs):
        """``check(*args, **kwargs)``; a refusal is recorded instead of raised (returns None then)."""
        try:
            return check(*args, **kwargs)
        except EdgekdError as e:
            for line in str(e).splitlines():
                if line not in self:
                    self.append(line)
            return None

    def raise_if_any(self) -> None:
        if self:
            raise EdgekdError("\n".join(self))


def check_timm_name(name: str, role: str) -> None:
    from .models.timm_factory import check_timm_name as check

    check(name, role)


def _meta_encoder(name: str):
    """The timm encoder of ``name`` built on the meta device (a fraction of a second, no weights): its stride and channels."""
    import torch

    from .models.timm_factory import create_timm

    try:
        with torch.device("meta"):
            return create_timm(name, "student", features_only=True)
    except EdgekdError:
        raise
    except Exception:
        pass  # some models cannot initialise on meta: build it for real (still before any data is read)
    try:
        return create_timm(name, "student", features_only=True)
    except EdgekdError:
        raise
    except Exception as e:
        from .torch_stack import stack_problem

        problem = stack_problem(e)
        if problem:
            raise EdgekdError(problem) from None
        raise EdgekdError(f"student {name!r} cannot be used as an encoder ({str(e)[:120]}); pick a CNN such as mobilenetv2_100") from None


def check_student(cfg: RunConfig | dict) -> None:
    """The student's name, that it works as an encoder, that the image size fits its stride, and its weights."""
    from .models.student import check_image_size

    cfg = RunConfig.coerce(cfg)
    m = cfg.model
    problems = Problems()
    check_timm_name(m.student, "student")  # an unknown name: nothing else about it can be checked
    encoder = problems.run(_meta_encoder, m.student)
    if encoder is not None:
        problems.run(check_image_size, cfg.data.image_size, encoder.feature_info.reduction()[-1], m.student)
        if m.student_tap == "head":
            problems.run(_check_head_tap, m.student)
    problems.run(check_student_weights, m.student, (m.student_weights or "none").strip())
    problems.raise_if_any()


def _check_head_tap(name: str) -> None:
    import torch

    from .models.student import _head_conv

    with torch.device("meta"):
        _head_conv(name)


def check_student_weights(student: str, spec: str) -> None:
    """``imagenet`` needs an installed package that ships the file; a file must exist and look like weights."""
    from .fileio import check_torch_file
    from .models.packaged import imagenet_models, packaged_weights_path

    if spec == "none":
        return
    if spec == "imagenet":
        if student not in imagenet_models():
            raise EdgekdError(f"no package ships ImageNet weights for student {student} (packaged: {', '.join(imagenet_models())}); "
                              "give --student-weights FILE, or --student-weights none to start from random weights")
        packaged_weights_path(student)
        return
    path = Path(spec).expanduser()
    if not path.is_file():
        raise EdgekdError(f"student weights file {spec} does not exist; give a local .pth/.pt/.safetensors file, imagenet, or none")
    if path.suffix != ".safetensors":
        check_torch_file(path, "student weights")


def check_data(cfg: RunConfig | dict, detect: bool = True) -> None:
    """A data path exists and its format is known or can be told (detection only looks at names)."""
    from .data.formats import detect_format, get_data_format

    cfg = RunConfig.coerce(cfg)
    data, fmt = cfg.data.data, cfg.data.data_format
    if data == "synthetic":
        return
    path = Path(data).expanduser()
    if not path.exists():
        raise EdgekdError(f"data path {path} does not exist; give an existing folder/file or --data synthetic")
    if fmt != "auto":
        get_data_format(fmt)
    elif detect:
        detect_format(path, cfg.model.task)


# ----------------------------------------------------------------------------- time before work
# benchmarks/train_speed/train_speed.md, CPU (2-core AMD EPYC, 2 threads): MobileNetV2, batch 4 at 128x160, fp32, eager.
_CPU_MS_PER_IMAGE_PIXEL = {"student": 174.5 / (4 * 128 * 160), "teacher": 305.4 / (4 * 128 * 160)}
_RENDER_MS_PER_PIXEL = 49.0 / (256 * 320)  # one core, benchmarks/train_speed/train_speed.md ("Data never starves the GPU")


def train_size_known(cfg: RunConfig | dict):
    """The number of training samples, when known without reading the data (synthetic: the configured count)."""
    cfg = RunConfig.coerce(cfg)
    return cfg.train.train_size if cfg.data.data == "synthetic" else None


def cpu_estimate(cfg: RunConfig | dict, n_train: int, total_steps: int | None = None) -> dict:
    """Steps and an estimated CPU time (seconds) of a run: training steps, validations and rendering, scaled by
    pixels x images from the CPU step times measured in benchmarks/train_speed/train_speed.md (an estimate, not a promise)."""
    import os

    cfg = RunConfig.coerce(cfg)
    tc = cfg.train
    h, w = cfg.data.image_size
    per_epoch = max(1, n_train // tc.batch_size) if n_train >= tc.batch_size else 1
    steps = total_steps or per_epoch * tc.epochs
    if tc.max_steps:
        steps = min(steps, tc.max_steps)
    with_teacher = (cfg.distill.teacher or "none") != "none"
    step_s = _CPU_MS_PER_IMAGE_PIXEL["teacher" if with_teacher else "student"] * tc.batch_size * h * w / 1000
    evals = tc.epochs if tc.eval_every == 1 else max(1, tc.epochs // max(1, tc.eval_every or tc.epochs))
    scored = tc.val_size + min(tc.train_eval_size, n_train)
    eval_s = evals * scored * h * w * _CPU_MS_PER_IMAGE_PIXEL["student"] / 3 / 1000  # a forward is about a third of a step
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    render_s = 0.0
    if cfg.data.data == "synthetic":
        render_s = (n_train + tc.val_size) * h * w * _RENDER_MS_PER_PIXEL / 1000 / max(1, cores)
    return {"steps": steps, "train_s": steps * step_s, "eval_s": eval_s, "render_s": render_s}


def format_duration(seconds: float) -> str:
    if seconds >= 5400:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s"


def gpu_recipe_warning(cfg: RunConfig | dict, n_train: int, total_steps: int | None = None) -> str:
    """One line when a recipe sized for a GPU is about to run on a CPU, with its steps and an estimated time; else ""."""
    cfg = RunConfig.coerce(cfg)
    tc = cfg.train
    h, w = cfg.data.image_size
    est = cpu_estimate(cfg, n_train, total_steps)
    if est["steps"] * tc.batch_size * h * w <= 1e8:  # the README's quick start: 8e5 image pixels; the full jetson recipe 1.6e9
        return ""
    total = est["train_s"] + est["eval_s"] + est["render_s"]
    return (f"warning: this recipe ({est['steps']} steps of {tc.batch_size} images at {h}x{w}) is meant for a GPU; on this CPU "
            f"expect about {format_duration(total)} (an estimate from the CPU step times in benchmarks/train_speed/train_speed.md scaled by "
            "pixels x batch; measured on 2 cores). A first run: --epochs 12 --train-size 192 --val-size 32 --image-size 64 96")


def check_device(device: str) -> None:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise EdgekdError("--device cuda was asked for but no CUDA GPU is visible; use --device cpu or auto")


def will_run_on_cpu(device: str) -> bool:
    if device == "cpu":
        return True
    if device == "cuda":
        return False
    import torch

    return not torch.cuda.is_available()
