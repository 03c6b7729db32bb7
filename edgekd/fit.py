"""``edgekd fit``: which student, input size and precision meet the target's latency budget on this device.

Each candidate (``student@HxW@precision``) is exported untrained (latency does not depend on the weights),
quantized for INT8 with edgekd's own QDQ path, and timed with the target's bench backend; rounds are
interleaved (every candidate once per round, the median over rounds kept) because a shared machine's
speed drifts between minutes.  The table is sorted by p50 latency and marks the Pareto front: no other
candidate is both faster and better, where "better" is the task metric after ``--train-epochs`` and,
without training, the compute (MACs) as a proxy for capacity.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .config import RunConfig, TargetConfig
from .errors import EdgekdError
from .options import option

DEFAULT_STUDENTS = ("mobilenetv2_050", "mobilenetv2_100", "efficientnet_lite0")
STRIDE = 32  # every registered student encoder reduces by 32


@dataclass(frozen=True)
class Candidate:
    student: str
    size: tuple[int, int]
    precision: str

    @property
    def name(self) -> str:
        return f"{self.student}@{self.size[0]}x{self.size[1]}@{self.precision}"


def smaller_size(size, scale: float = 0.75) -> tuple[int, int]:
    """The next smaller input size: ``scale`` times each side, rounded down to the stride (at least one stride)."""
    return tuple(max(STRIDE, int(s * scale) // STRIDE * STRIDE) for s in size)


def _parse_size(text: str, where: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise EdgekdError(f"{where}: size {text!r} must look like HxW, e.g. 192x256") from None
    if h <= 0 or w <= 0 or h % STRIDE or w % STRIDE:
        raise EdgekdError(f"{where}: size {h}x{w} must be positive and divisible by {STRIDE}")
    return h, w


def parse_candidates(text: str, size, precisions) -> list[Candidate]:
    """``name[@HxW][@precision],...``; a missing size is the profile's, a missing precision each runnable one."""
    from .models.timm_factory import check_timm_name

    out = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        parts = item.split("@")
        if len(parts) > 3:
            raise EdgekdError(f"candidate {item!r} must look like name@HxW@precision, e.g. mobilenetv2_100@192x256@int8")
        check_timm_name(parts[0], "candidate student")
        hw = _parse_size(parts[1], f"candidate {item!r}") if len(parts) > 1 and parts[1] else tuple(size)
        precs = [parts[2]] if len(parts) > 2 else list(precisions)
        for p in precs:
            if p not in precisions:
                raise EdgekdError(f"candidate {item!r}: precision {p!r} does not run here; use one of: {', '.join(precisions)}")
            out.append(Candidate(parts[0], hw, p))
    if not out:
        raise EdgekdError("--candidates names no candidate; give name@HxW@precision,...")
    return list(dict.fromkeys(out))


def default_candidates(size, precisions) -> list[Candidate]:
    sizes = list(dict.fromkeys([tuple(size), smaller_size(size)]))
    return [Candidate(s, hw, p) for s in DEFAULT_STUDENTS for hw in sizes for p in precisions]


def runnable_precisions(target: TargetConfig, backend: str) -> list[str]:
    """Precisions the target supports that this backend runs natively (fp16 only on GPU backends)."""
    from .bench.runners import backend_class

    have = backend_class(backend).precisions
    return [p for p in ("fp32", "fp16", "int8") if p in target.precisions and p in have] or ["fp32"]


def count_macs(model, size) -> tuple[int, int]:
    """(parameters, multiply-accumulates of one image): forward hooks on Conv2d and Linear (fvcore-free)."""
    import torch

    macs = [0]

    def conv(m, _inp, out):
        macs[0] += out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def linear(m, _inp, out):
        macs[0] += out.numel() * m.in_features

    hooks = [m.register_forward_hook(conv if isinstance(m, torch.nn.Conv2d) else linear)
             for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, *size))
    for h in hooks:
        h.remove()
    return sum(p.numel() for p in model.parameters()), macs[0]


def candidate_config(cfg: RunConfig | dict, cand: Candidate) -> RunConfig:
    """The profile's config with the candidate's student, input size and export precision."""
    cfg = RunConfig.coerce(cfg)
    return replace(cfg, model=replace(cfg.model, student=cand.student), data=replace(cfg.data, image_size=list(cand.size)),
                   export=replace(cfg.export, precision=cand.precision))


def _task_for(cfg: RunConfig | dict):
    from .data import open_dataset
    from .tasks import create_task
    from .train.build import task_args_for

    cfg = RunConfig.coerce(cfg)
    d = cfg.data
    src = open_dataset(d.data, "train", d.image_size, 4, d.seed, d.data_format, task=cfg.model.task, direction=d.direction)
    args = task_args_for(cfg, src)
    return create_task(cfg.model.task, **args), args


class Exporter:
    """Untrained candidates -> ONNX files (fp32 shared by the precisions of one student and size), with size, params, MACs."""

    def __init__(self, cfg: RunConfig | dict, out: Path, symmetric: bool, log=print):
        self.cfg, self.out, self.symmetric, self.log = RunConfig.coerce(cfg), out, symmetric, log
        self._fp32, self._calib = {}, {}

    def _fp32_model(self, cand: Candidate):
        key = (cand.student, cand.size)
        if key not in self._fp32:
            import torch

            from .models.student import EncoderDecoder, check_image_size

            c = candidate_config(self.cfg, Candidate(cand.student, cand.size, "fp32"))
            task, args = _task_for(c)
            torch.manual_seed(0)
            model = EncoderDecoder(cand.student, task, c.model.decoder_channels).eval()
            check_image_size(cand.size, model.stride, cand.student)
            params, macs = count_macs(model, cand.size)
            path = self.out / "models" / f"{cand.student}@{cand.size[0]}x{cand.size[1]}.fp32.onnx"
            self._write(model, task, args, c, "fp32", path)
            self._fp32[key] = (model, path, params, macs, c, task, args)
        return self._fp32[key]

    @staticmethod
    def _write(model, task, args: dict, c: RunConfig, precision: str, path: Path) -> None:
        """The candidate as export writes a student: a checked graph with its model card (export/onnx_export.py)."""
        from .card import ModelCard
        from .export.onnx_export import student_onnx
        from .fileio import atomic_write_bytes

        card = ModelCard.of_run(task, c, {"task_args": args}, precision)
        atomic_write_bytes(path, student_onnx(model, card, c.model.student, tuple(c.data.image_size), c.export.opset))

    def export(self, cand: Candidate) -> dict:
        model, fp32, params, macs, c, task, args = self._fp32_model(cand)
        path = fp32
        if cand.precision == "int8":
            from .bench.evaluate import validation_batch
            from .export.quantize import quantize_int8

            if cand.size not in self._calib:  # a few real scenes: the ranges, not the latency, depend on them
                self._calib[cand.size] = validation_batch(c, task, 4, split="train")[0]
            path = fp32.with_suffix("").with_suffix(".int8.onnx")
            quantize_int8(fp32, path, self._calib[cand.size], self.symmetric, "minmax")
        elif cand.precision == "fp16":
            path = fp32.with_suffix("").with_suffix(".fp16.onnx")
            self._write(model, task, args, c, "fp16", path)
        return {"onnx": str(path), "size_mb": path.stat().st_size / 1e6, "params": params, "macs": macs}


def bench_rounds(paths: dict, backend: str, threads: int, min_time: float, rounds: int, log=print) -> dict:
    """name -> {p50_ms, p90_ms, throughput_ips, rounds}: every model once per round, medians over rounds."""
    import numpy as np

    from .bench.run import run_bench

    seen = {n: [] for n in paths}
    for r in range(rounds):
        for n, p in paths.items():
            res = run_bench(p, backend=backend, threads=threads, min_iters=10, min_time=min_time, warmup_iters=10,
                            warmup_time=0.2, accuracy_check=False, show_progress=False, placement=False)
            seen[n].append(res["latency"]["batch1"])
        log(f"  round {r + 1}/{rounds} timed")
    out = {}
    for n, stats in seen.items():
        p50 = float(np.median([s["p50_ms"] for s in stats]))
        out[n] = {"p50_ms": p50, "p90_ms": float(np.median([s["p90_ms"] for s in stats])), "throughput_ips": 1e3 / p50,
                  "rounds_p50_ms": [s["p50_ms"] for s in stats]}
    return out


def mark_pareto(rows: list[dict], key: str, higher_is_better: bool = True) -> None:
    """Set ``row["pareto"]``: no other row is at least as fast (p50) and at least as good on ``key``, and better on one."""
    def good(r):
        return r[key] if higher_is_better else -r[key]

    scored = [r for r in rows if r.get(key) is not None]
    for r in rows:
        r["pareto"] = r in scored and not any(
            o is not r and o["p50_ms"] <= r["p50_ms"] and good(o) >= good(r) and (o["p50_ms"] < r["p50_ms"] or good(o) > good(r))
            for o in scored)


def choose(rows: list[dict], key: str, higher_is_better: bool = True) -> dict | None:
    """The candidate to deploy: the best on ``key`` among those on the front that fit the budget (ties: faster);
    off target (``fits`` None: no verdict) the best on the front."""
    ok = [r for r in rows if r["pareto"] and r["fits"] is not False]
    if not ok:
        return None
    sign = 1 if higher_is_better else -1
    return max(ok, key=lambda r: (sign * r[key], -r["p50_ms"]))


def train_and_score(cfg: RunConfig | dict, student: str, size, precisions, epochs: int, out: Path, sets=()) -> dict:
    """Train ``student`` at ``size`` briefly (the distill code path; no teacher unless --set gives one), export
    it at ``precisions`` (edgekd export's own INT8 path) and return the task's primary metric per precision."""
    from .bench.evaluate import validation_batch
    from .export import run_export
    from .export.onnx_export import evaluate_onnx
    from .train.loop import Trainer

    from .models.packaged import imagenet_models

    c = candidate_config(cfg, Candidate(student, tuple(size), "fp32"))
    c = replace(c, train=replace(c.train, epochs=epochs), distill=replace(c.distill, teacher="none")).with_sets(sets)
    scratch = c.model.student_weights == "imagenet" and student not in imagenet_models()
    if scratch:  # said in the table: a candidate without packaged weights is not judged against ImageNet-initialised ones silently
        c = replace(c, model=replace(c.model, student_weights="none"))
    run_dir = out / "train" / f"{student}@{size[0]}x{size[1]}"
    trainer = Trainer(c, run_dir, overwrite=True, progress=False)
    trainer.run()
    task, key = trainer.task, trainer.task.primary_metric
    int8 = "int8" in precisions
    rep = run_export(run_dir, "onnx", "int8" if int8 else "fp32", parity_size=2, calib_size=8, max_drop=float("inf"),
                     log=lambda *a, **k: None)
    if int8:
        scores = {"fp32": rep["int8"]["fp32_metrics"][key], "int8": rep["int8"]["int8_metrics"][key]}
    else:
        x, samples = validation_batch(c, task, c.train.val_size)
        scores = {"fp32": evaluate_onnx(rep["fp32"]["onnx"], task, x, samples)[key]}
    scores.setdefault("fp16", scores["fp32"])  # fp16 keeps fp32's metric within export's parity tolerance
    return {"metric": key, "higher_is_better": task.higher_is_better, "scores": scores, "run": str(run_dir), "from_scratch": scratch}


def _base_config(profile: str | None, target: str | None) -> tuple[RunConfig, str | None]:
    """The profile (or, with only --target, the shipped profile for that target), its target replaced by --target."""
    from .config import list_profiles, load_profile, target_config

    tgt = target_config(target) if target else None
    if profile is None:
        profile = "jetson"
        if tgt is not None:
            profile = next((p for p in list_profiles() if RunConfig.from_dict(load_profile(p)).target.name == tgt.name), "jetson")
    cfg = RunConfig.from_dict(load_profile(profile))
    return (cfg if tgt is None else replace(cfg, target=tgt)), target


def resolve_backend(requested: str, target) -> str:
    """The backend that times the candidates: bench's choice for an ONNX file (bench/run.py), refused in one line
    when it does not run ONNX files or not on this machine."""
    from .bench.run import pick_backend
    from .bench.runners import backend_class, list_backends, unavailable

    if requested != "auto" and backend_class(requested).model_kind != "onnx":
        raise EdgekdError(f"edgekd fit benches ONNX files; --backend {requested} does not run them (use one of: auto, {', '.join(list_backends('onnx'))})")
    backend = pick_backend("onnx", requested, target)
    why = None if requested == "auto" else unavailable(backend)  # auto takes an available one
    if why:
        raise EdgekdError(why)
    return backend


def _onnx_backends() -> str:
    from .bench.runners.base import list_backends

    return f"Bench backend for ONNX files: auto (the target's), {', '.join(list_backends('onnx'))}."


@dataclass(frozen=True)
class FitSettings:
    """The options of ``edgekd fit``; each field's help is its option's."""

    profile: str | None = option(None, "Profile whose target, task and input size to fit [the --target's shipped profile, else jetson].")
    target: str | None = option(None, "Target name or TOML (overrides the profile's).")
    candidates: str | None = option(None, "Own candidates, e.g. mobilenetv2_100@192x256@int8 (size and precision optional) "
                                          "[mobilenetv2_050, mobilenetv2_100, efficientnet_lite0 at the profile's size and 3/4 of it].",
                                    metavar="NAME@HxW@PREC,...")
    backend: str = option("auto", _onnx_backends)
    min_time: float = option(0.3, "Seconds of timed runs per candidate and round.")
    rounds: int = option(1, "Interleaved timing rounds (median kept).")
    train_epochs: int = option(0, "Also train each fitting candidate this long (no teacher) and add the task metric, with fit.png.")
    sets: tuple = option((), "Override a training key for --train-epochs (repeatable).", flag="--set", metavar="SECTION.KEY=VALUE")
    out: str | None = option(None, "Output directory [runs/fit-<profile>].", path=True)
    write_profile: str | None = option(None, "Write the chosen candidate as a profile TOML for edgekd distill.", path=True)


def run_fit(s: FitSettings, log=print) -> dict:
    """Export, time (and with ``train_epochs`` train and score) every candidate; write fit.json, fit.md (+ fit.png)."""
    from .bench.runners import backend_class

    cfg, target_ref = _base_config(s.profile, s.target)
    tgt = cfg.target
    backend = resolve_backend(s.backend, tgt)
    precisions = runnable_precisions(tgt, backend)
    size = tuple(cfg.data.image_size)
    cands = parse_candidates(s.candidates, size, precisions) if s.candidates else default_candidates(size, precisions)
    if s.rounds < 1 or s.min_time < 0:
        raise EdgekdError("--rounds must be at least 1 and --min-time at least 0")
    out = Path(s.out or f"runs/fit-{cfg.profile.name}")
    threads = min(tgt.threads, os.cpu_count() or 1)
    log(f"edgekd fit: {len(cands)} candidates for {tgt.name} on {backend} ({threads} threads) -> {out}")
    if tgt.accelerator != backend_class(backend).accelerator:
        log(f"  note: {tgt.name} has a {tgt.accelerator} accelerator but {backend} runs on this machine's "
            f"{backend_class(backend).accelerator}: the latencies are this machine's; run edgekd fit on the device itself")
    exporter = Exporter(cfg, out, symmetric="tensorrt" in tgt.runtimes, log=log)
    rows = []
    for i, c in enumerate(cands):
        rows.append({"candidate": c.name, **asdict(c), **exporter.export(c)})
        log(f"  exported {i + 1}/{len(cands)}: {c.name}")
    timed = bench_rounds({r["candidate"]: r["onnx"] for r in rows}, backend, threads, s.min_time, s.rounds, log)
    budget = float(tgt.latency_budget_ms or 0.0)
    here, why = _on_target(tgt, backend, rows)
    if not here:
        log(f"  not on target: no budget verdict ({why}); the front and the choice ignore the budget")
    for r in rows:
        r.update(timed[r["candidate"]])
        r["fits"] = (budget <= 0 or r["p90_ms"] <= budget) if here else None  # like bench: a verdict only on the target
    key, higher = "macs", True
    if s.train_epochs:
        key, higher = _train_fitting(cfg, rows, s.train_epochs, out, s.sets, log)
    mark_pareto(rows, key, higher)
    rows.sort(key=lambda r: r["p50_ms"])
    chosen = choose(rows, key, higher)
    result = {"profile": cfg.profile.name, "target": tgt.name, "backend": backend, "threads": threads,
              "latency_budget_ms": budget, "rounds": s.rounds, "min_time": s.min_time, "front_key": key,
              "higher_is_better": higher, "candidates": rows, "chosen": chosen["candidate"] if chosen else None,
              "on_target": here, **({} if here else {"why_no_verdict": why}), "environment": _environment(backend, threads)}
    _write_outputs(out, result)
    if s.write_profile:
        if chosen is None:
            raise EdgekdError(f"no candidate fits the {budget:g} ms budget of {tgt.name}; nothing written to {s.write_profile} "
                              f"(results kept in {out}); try smaller candidates or int8")
        log(f"wrote {write_profile_toml(cfg, chosen, s.write_profile, target_ref)}")
    return result


def _on_target(tgt, backend: str, rows: list) -> tuple[bool, str]:
    """Is this machine the target's kind of hardware (bench's rule: edgekd/bench/latency.py)?"""
    from .bench.latency import on_target
    from .bench.runners import backend_class

    return on_target(tgt, backend_class(backend)(rows[0]["onnx"]), backend)  # a closed runner: only its class is asked


def _environment(backend: str, threads: int) -> dict:
    """Where the candidates were timed (bench's environment block, without a model)."""
    from .bench.environment import environment
    from .bench.latency import machine_arch

    return {**environment(None), "backend": backend, "threads": threads, "arch": machine_arch()}


def _train_fitting(cfg, rows, epochs, out, sets, log) -> tuple[str, bool]:
    groups = {}
    for r in rows:
        if r["fits"] is not False:  # None: off target, every candidate is trained
            groups.setdefault((r["student"], tuple(r["size"])), []).append(r)
    key, higher = "metric", True
    for (student, size), group in groups.items():
        log(f"  training {student}@{size[0]}x{size[1]} for {epochs} epoch(s)")
        s = train_and_score(cfg, student, size, [r["precision"] for r in group], epochs, out, sets)
        if s["from_scratch"]:
            log(f"  note: no package ships ImageNet weights for {student}: it was trained from scratch (its metric is not "
                "comparable with an ImageNet-initialised candidate's)")
        higher = s["higher_is_better"]
        for r in group:
            r["metric"], r["metric_name"], r["from_scratch"] = s["scores"][r["precision"]], s["metric"], s["from_scratch"]
    return key, higher


def format_table(result: dict) -> str:
    rows = result["candidates"]
    metric = next((r["metric_name"] for r in rows if r.get("metric_name")), None)
    budget = result["latency_budget_ms"]
    lines = [f"edgekd fit: target {result['target']} (budget p90 <= {budget:g} ms at batch 1), backend {result['backend']}, "
             f"{result['threads']} threads, median of {result['rounds']} round(s)",
             *([] if result.get("on_target", True) else [f"  not on target: no budget verdict ({result['why_no_verdict']})"]),
             f"  * = Pareto front: no other candidate is at least as fast (p50) and {'better on ' + metric if metric else 'has more compute (MACs, a capacity proxy)'}", ""]
    hdr = f"{'candidate':<36} {'p50 ms':>8} {'p90 ms':>8} {'img/s':>8} {'MB':>7} {'params M':>8} {'GMACs':>7} {'fits':>4}"
    hdr += f" {metric:>8}" if metric else ""
    lines += [hdr + "  front", "-" * (len(hdr) + 7)]
    for r in rows:
        line = (f"{r['candidate']:<36} {r['p50_ms']:>8.2f} {r['p90_ms']:>8.2f} {r['throughput_ips']:>8.1f} {r['size_mb']:>7.2f} "
                f"{r['params'] / 1e6:>8.2f} {r['macs'] / 1e9:>7.3f} {_fits_text(r['fits']):>4}")
        if metric:
            line += f" {r['metric']:>8.4f}" if r.get("metric") is not None else f" {'-':>8}"
        lines.append(line + ("  *" if r["pareto"] else ""))
    lines.append("")
    lines.append(f"chosen: {result['chosen']}" if result["chosen"] else "chosen: none (no candidate on the front fits the budget)")
    return "\n".join(lines)


def _fits_text(fits) -> str:
    return "-" if fits is None else ("yes" if fits else "no")


def _write_outputs(out: Path, result: dict) -> None:
    from .fileio import atomic_write_json, atomic_write_text

    atomic_write_json(out / "fit.json", result)
    atomic_write_text(out / "fit.md", "```\n" + format_table(result) + "\n```\n")
    if result["front_key"] == "metric":
        plot_front(result, out / "fit.png")


def plot_front(result: dict, path: Path) -> Path:
    """Latency (p50) against the task metric, the front joined, the budget as a line."""
    from .report.plots import pyplot, save_figure

    plt = pyplot()
    rows = [r for r in result["candidates"] if r.get("metric") is not None]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.scatter([r["p50_ms"] for r in rows], [r["metric"] for r in rows], c=["C3" if r["pareto"] else "C7" for r in rows])
    front = sorted((r for r in rows if r["pareto"]), key=lambda r: r["p50_ms"])
    ax.plot([r["p50_ms"] for r in front], [r["metric"] for r in front], "C3-", lw=1)
    for r in rows:
        ax.annotate(r["candidate"], (r["p50_ms"], r["metric"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    if result["latency_budget_ms"]:
        ax.axvline(result["latency_budget_ms"], color="k", ls="--", lw=1, label="budget (p90)")
        ax.legend()
    ax.set_xlabel(f"p50 latency, batch 1 (ms), {result['backend']}")
    ax.set_ylabel(rows[0]["metric_name"] if rows else "metric")
    ax.set_title(f"edgekd fit: {result['target']}")
    fig.tight_layout()
    return save_figure(fig, Path(path), dpi=120)


def write_profile_toml(cfg: RunConfig | dict, row: dict, path, target_ref: str | None = None) -> Path:
    """The base profile with the chosen student, input size and export precision; ``edgekd distill --profile`` takes it."""
    try:
        import tomllib
    except ModuleNotFoundError:  # pragma: no cover - Python < 3.11
        import tomli as tomllib
    from .config import dump_toml
    from .fileio import atomic_write_text

    cfg = RunConfig.coerce(cfg)
    src = Path(cfg.profile.source)
    raw = tomllib.loads(src.read_text())
    target = target_ref or raw["target"]
    if target.endswith(".toml"):  # a user's target file: make it findable from wherever the new profile lives
        t = Path(target).expanduser()
        target = str((t if t.is_absolute() or target_ref else src.parent / t).resolve())
    t = cfg.target
    where = (f"budget {t.latency_budget_ms:g} ms on {t.name}" if row.get("fits") is not None else
             f"timed on this machine, not on {t.name}: its {t.latency_budget_ms:g} ms budget is unchecked")
    raw.update(name=Path(path).stem, target=target,
               description=f"{row['student']} at {row['size'][0]}x{row['size'][1]} {row['precision']}, chosen by edgekd fit "
                           f"(p90 {row['p90_ms']:.2f} ms, {where})")
    raw.setdefault("model", {})["student"] = row["student"]
    raw.setdefault("data", {})["image_size"] = list(row["size"])
    raw.setdefault("export", {})["precision"] = row["precision"]
    return atomic_write_text(path, dump_toml(raw, f"# Written by edgekd fit from {src.name}: {row['candidate']}"))
