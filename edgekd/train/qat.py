"""Quantisation-aware distillation (QAD): ``edgekd distill --qat-from RUN``.

The trained student of RUN is fine-tuned with fake quantisation of weights and activations, by the
task loss plus a distillation term from the frozen fp32 student itself (its outputs), and written as
a normal edgekd run (``best.pt`` holds float weights) that ``edgekd export --precision int8`` then
quantizes with the same ONNX Runtime quantizer, node placement and INT8 kernels as any PTQ file.

The fake quantisation is torchao's PT2E QAT (``prepare_qat_pt2e``; torch 2.14 no longer ships
``torch.ao.quantization.quantize_pt2e``) with the X86 quantizer's placement, set to match the
deployment format export/quantize.py chooses: per-channel symmetric int8 weights in [-127, 127]
(ONNX Runtime's symmetric weight range), Conv-BatchNorm folded as ONNX Runtime folds it, and
activations asymmetric uint8 for CPU targets or symmetric int8 for TensorRT targets.  Why this
stack and not another: benchmarks/int8/int8.md.

The distillation term is the mean squared difference of the outputs divided by the fp32 outputs'
variance (scale-free across tasks), weighted by ``KD_WEIGHT``.  The ``auto`` gradient-ratio rule
of ``edgekd distill`` is not used: at the first step the fake-quantized student *is* the fp32
student up to quantization noise, so the ratio would measure that noise.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from pathlib import Path

import torch

from ..config import RunConfig, save_resolved
from ..errors import EdgekdError
from ..fileio import append_jsonl, atomic_write_json, load_checkpoint

KD_WEIGHT = 1.0


def source_checkpoint(run) -> Path:
    """RUN (a run directory or a .pt) -> the checkpoint to fine-tune (best.pt before last.pt)."""
    p = Path(run).expanduser()
    for c in ([p / "best.pt", p / "last.pt"] if p.is_dir() else [p]):
        if c.is_file():
            return c
    raise EdgekdError(f"--qat-from {run}: no best.pt or last.pt there; give a run directory written by edgekd distill")


def quantization_config(symmetric: bool):
    """torchao's X86 QAT config with ONNX Runtime's ranges: s8 [-127, 127] weights; u8 (CPU) or symmetric s8 (TensorRT) activations."""
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq

    base = xiq.get_default_x86_inductor_quantization_config(is_qat=True)
    weight = dataclasses.replace(base.weight, quant_min=-127, quant_max=127)
    act = base.input_activation
    if symmetric:
        act = dataclasses.replace(act, dtype=torch.int8, quant_min=-128, quant_max=127, qscheme=torch.per_tensor_symmetric)
    return xiq.X86InductorQuantizer().set_global(dataclasses.replace(base, input_activation=act, output_activation=act, weight=weight))


def prepare(student, example: torch.Tensor, symmetric: bool):
    """The student as a PT2E graph with fake quantisation inserted (train mode)."""
    try:
        from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e
    except ModuleNotFoundError:
        raise EdgekdError("edgekd distill --qat-from needs torchao (the PT2E quantisation-aware training stack); "
                          "install it with: pip install 'edgekd[qat]'") from None
    from torchao.quantization.pt2e import allow_exported_model_train_eval

    graph = torch.export.export(copy.deepcopy(student).train().requires_grad_(True), (example,)).module()
    prepared = prepare_qat_pt2e(graph, quantization_config(symmetric))
    return allow_exported_model_train_eval(prepared)  # .train()/.eval() (edgekd's evaluate) switch BatchNorm the PT2E way


def float_weights(prepared, student) -> dict:
    """The fine-tuned student's own state dict out of the prepared graph (same names; observers left out)."""
    sd = prepared.state_dict()
    missing = [k for k in student.state_dict() if k not in sd]
    if missing:
        raise EdgekdError(f"the QAT graph lost student weights ({', '.join(missing[:3])}...); report this with the student's name")
    return {k: sd[k].detach().clone() for k in student.state_dict()}


def distill_loss(task, out, y, ref) -> tuple[torch.Tensor, dict]:
    """Task loss + KD_WEIGHT * scale-free output distillation from the frozen fp32 student's ``ref``."""
    task_loss = task.loss(out, y)
    kd = torch.mean((out.float() - ref.float()) ** 2) / ref.float().var().clamp_min(1e-8)
    return task_loss + KD_WEIGHT * kd, {"task": task_loss.item(), "distill": kd.item()}


class QadRun:
    """One QAD fine-tune: the frozen fp32 student, the fake-quantized copy, the run's data, and its records."""

    def __init__(self, source, cfg: RunConfig | dict, out, overwrite: bool = False, log=print):
        from ..models.student import student_from_checkpoint
        from . import build
        from .run_dir import check_run_dir, prepare_run_dir

        self.cfg = cfg = RunConfig.coerce(cfg)
        self.source, self.out, self.log = source_checkpoint(source), Path(out), log
        check_run_dir(self.out, False, overwrite, True)
        if (self.out / "best.pt").exists() and not overwrite:
            raise EdgekdError(f"{self.out} already holds a QAD run; add --overwrite to replace it, or choose --out")
        self.src_ckpt = load_checkpoint(self.source)
        self.teacher, self.task, _ = student_from_checkpoint(self.src_ckpt, str(self.source))
        self.teacher.eval().requires_grad_(False)
        self.symmetric = "tensorrt" in cfg.target.runtimes
        torch.manual_seed(cfg.train.seed)
        train_src, val_src = build.open_sources(cfg, progress=False)
        self.ds = build.build_datasets(cfg, train_src, val_src, self.task, teacher_view=False)
        prepare_run_dir(self.out, False, overwrite, 0)

    def loaders(self):
        from .data import EpochSampler, make_train_loader, make_val_loader

        tc = self.cfg.train
        sampler = EpochSampler(len(self.ds.train), tc.batch_size, tc.seed)
        return sampler, make_train_loader(self.ds.train, sampler, tc.workers, False), make_val_loader(self.ds.val, tc.batch_size, tc.workers, False)

    def run(self) -> dict:
        """Fine-tune for ``train.epochs`` epochs; keep the epoch whose fake-quantized validation metric is best."""
        from .loop import evaluate

        tc, key, task = self.cfg.train, self.task.primary_metric, self.task
        sampler, train_loader, val_loader = self.loaders()
        fp32 = evaluate(self.teacher, task, val_loader, torch.device("cpu"))
        prepared = prepare(self.teacher, next(iter(train_loader))[0], self.symmetric)
        opt = torch.optim.AdamW(prepared.parameters(), lr=tc.lr, weight_decay=0.0)
        self.log(f"QAD from {self.source}: fake quantisation {'s8 symmetric (TensorRT)' if self.symmetric else 'u8 (CPU)'} activations, "
                 f"s8 per-channel weights; fp32 {key} {fp32[key]:.4f} on {len(self.ds.val)} validation images")
        best, step, t0 = None, 0, time.time()
        for epoch in range(tc.epochs):
            sampler.set_epoch(epoch)
            prepared.train()
            for x, y in train_loader:
                with torch.no_grad():
                    ref = self.teacher(x)
                loss, parts = distill_loss(task, prepared(x), y, ref)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                append_jsonl(self.out / "steps.jsonl", {"step": step, "epoch": epoch, **parts})
            m = {k: v for k, v in evaluate(prepared, task, val_loader, torch.device("cpu")).items() if not isinstance(v, list)}
            append_jsonl(self.out / "metrics.jsonl", {"epoch": epoch, "step": step, **m})
            self.log(f"QAD epoch {epoch + 1}/{tc.epochs}: fake-quantized {key} {m[key]:.4f} (fp32 {fp32[key]:.4f})")
            better = best is None or ((m[key] > best[1][key]) if task.higher_is_better else (m[key] < best[1][key]))
            if better:
                best = (float_weights(prepared, self.teacher), m, epoch, step)
        return self._save(best, fp32, step, time.time() - t0)

    def _save(self, best, fp32: dict, steps: int, seconds: float) -> dict:
        from .checkpoint import save

        weights, metrics, epoch, step = best
        qat = {"from": str(self.source), "activations": "s8 symmetric" if self.symmetric else "u8", "weights": "s8 per-channel symmetric",
               "stack": "torchao PT2E prepare_qat_pt2e (X86 quantizer placement)", "kd_weight": KD_WEIGHT, "best_epoch": epoch,
               "fp32_metrics": fp32, "fake_quant_metrics": metrics}
        ckpt = {**{k: v for k, v in self.src_ckpt.items() if k not in ("optimizer", "scheduler", "rng", "extra")},
                "config": self.cfg.to_dict(), "student": weights, "extra": {}, "metrics": metrics, "step": step, "epoch": epoch + 1, "qat": qat}
        save(self.out / "best.pt", ckpt)  # no last.pt: a QAD run is not resumed (run it again with --overwrite)
        save_resolved(self.cfg, self.out)
        summary = {"steps": steps, "seconds": seconds, "best": metrics, "qat": qat}
        atomic_write_json(self.out / "summary.json", summary)
        return summary
