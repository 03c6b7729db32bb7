"""``edgekd distill``: resolve the recipe, check everything it names, train (or QAD-fine-tune) one run.

Everything is checked before any data is read or model built, all mistakes at once (one line each);
then the run is described, trained, and its result (with, for a shrunk CPU run, the command of the
full recipe) said in one line.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, fields, replace
from pathlib import Path

import click

from ..errors import EdgekdError


def split_options(cls, kw: dict):
    """``cls(options, **its own fields)`` from click's keyword arguments: the recipe's options stay a dict
    (edgekd/config.py maps them to the profile's keys), the verb's own are fields."""
    own = {f.name for f in fields(cls)} - {"options"}
    return cls({k: v for k, v in kw.items() if k not in own}, **{k: v for k, v in kw.items() if k in own})


@dataclass
class DistillSettings:
    """What ``edgekd distill`` was asked: the recipe's options (--profile, the keys they set, --set, --threads) and the run's."""

    options: dict
    out: str | None = None
    resume: bool = False
    overwrite: bool = False
    quiet: bool = False
    print_config: bool = False
    tracker: str | None = None
    qat_from: str | None = None


def resolve_config(kw: dict, base=None):
    """Profile (or ``base``, a saved config: a RunConfig or its dict) + ``--set`` + options -> the resolved, validated
    :class:`~edgekd.config.RunConfig`.  ``kw`` is click's keyword arguments (``None``: not given)."""
    from ..config import RunConfig, apply_overrides, load_profile, option_overrides
    from ..models.teacher_kinds import check_teacher_spec, weights_file

    overrides = option_overrides(kw)  # every option that names a key (the schema's mapping); options beat --set
    sets = tuple(kw.get("sets") or ())
    if base is not None:
        cfg = RunConfig.from_dict(apply_overrides(RunConfig.coerce(base).to_dict(), overrides, sets))
    else:
        cfg = RunConfig.from_dict(load_profile(kw["profile"], overrides, sets))
    # two keys an option sets in its own way (after --set, as every option is):
    weights = weights_file(kw.get("teacher"), kw.get("teacher_weights"))  # FILE, or NAME=FILE as in compare
    distill = cfg.distill if weights is None else replace(cfg.distill, teacher_weights=weights)
    # --warmup-steps N is used as given (not capped at a fraction of the run)
    train = cfg.train if kw.get("warmup_steps") is None else replace(cfg.train, warmup_fraction=1.0)
    check_teacher_spec(distill.teacher, distill.teacher_weights)
    return replace(cfg, distill=distill, train=train, data=replace(cfg.data, data=resolved_data(cfg.data.data)))


def resolved_data(data: str) -> str:
    """A data path that exists, as an absolute path: the run (bench, --resume) then finds it from any directory;
    ``synthetic`` and a path that does not exist (refused later, naming it) stay as given."""
    p = Path(data).expanduser()
    return str(p.resolve()) if data != "synthetic" and p.exists() else data


def print_config(cfg) -> None:
    import json

    click.echo(json.dumps(cfg.to_dict(), indent=2))


def distill(s: DistillSettings) -> None:
    """Check, then train the run in ``s.out`` (``--qat-from``: a QAD run instead)."""
    if s.qat_from:
        return qad(s)
    cfg, out = check_distill(s)
    if s.print_config:
        return print_config(cfg)
    from ..run_lock import RunLock
    from ..train.loop import Trainer
    from ..train.stop import Stopped, Terminated, report_sigterm
    from ..train.threads import set_threads

    set_threads(s.options.get("threads"))
    report_sigterm()  # until the loop takes over: SIGTERM is reported like Ctrl-C, not a silent exit
    try:
        with RunLock(out, "distill", enabled=not is_worker_rank()):
            summary, trainer = _train(Trainer, cfg, out, s)
    except Stopped as e:
        click.echo(f"{e}; continue with: edgekd distill --resume --out {out}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt as e:
        _interrupted(out, 143 if isinstance(e, Terminated) else 130)
    if trainer.dist.is_main:
        click.echo(f"done: {summary['steps']} steps; best {trainer.task.primary_metric} {summary['best'][trainer.task.primary_metric]:.4f}; run in {out}")
        if trainer.device.type == "cpu" and cfg.train.epochs * trainer.steps_per_epoch < 1000:
            click.echo(f"for the full recipe run on a GPU: {full_recipe_command(cfg)}")


def _interrupted(out: Path, code: int) -> None:
    """Ctrl-C or SIGTERM: what is kept, and how to continue."""
    what = "stopped by SIGTERM" if code == 143 else "interrupted"
    if (out / "last.pt").exists():
        click.echo(f"{what}; {out / 'last.pt'} is kept: continue with edgekd distill --resume --out {out}", err=True)
    else:
        click.echo(f"{what} before the first checkpoint: nothing to resume; run the command again", err=True)
    sys.exit(code)


def _train(trainer_class, cfg, out, s: DistillSettings):
    """Build the run, say what it is, train it: (summary, trainer)."""
    from ..train.tracking import open_mirrors

    trainer = trainer_class(cfg, out, resume=s.resume, overwrite=s.overwrite, progress=not s.quiet)
    trainer.mirrors = open_mirrors(s.tracker, out, trainer.step) if trainer.dist.is_main else []
    if trainer.dist.is_main and not s.quiet:
        click.echo(describe_run(trainer))
    if trainer.dist.is_main and trainer.warmup_note:
        click.echo(trainer.warmup_note, err=True)
    for line in trainer.data_warnings if trainer.dist.is_main else ():
        click.echo(line, err=True)
    _warn_gpu_recipe_on_cpu(trainer)
    return trainer.run(), trainer


def check_distill(s: DistillSettings):
    """Every name, file, option and the output folder of ``distill``, checked before any data is read or model built;
    all mistakes at once (one line each).  Then the GPU-recipe-on-CPU warning, before the work it warns about."""
    from ..preflight import Problems
    from ..train.tracking import check_tracker

    problems = Problems()
    if s.resume and s.overwrite:
        problems.append("--resume and --overwrite contradict each other: --resume continues the run in --out, --overwrite replaces it; give one")
    cfg = problems.run(resolve_config, s.options)
    out = Path(s.out or (f"runs/{cfg.model.task}-{cfg.profile.name}" if cfg else "runs/run"))
    if cfg is not None and s.resume and (out / "config.json").exists():
        cfg = problems.run(resume_config, s.options, out)
    if cfg is None:  # the recipe itself is refused: still check what the options name
        _check_raw_options(s.options, problems)
        problems.raise_if_any()
    _check_parts(cfg, s, out, problems)
    problems.run(check_tracker, s.tracker)
    problems.raise_if_any()
    _warn_before_work(cfg)
    return cfg, out


def _check_parts(cfg, s: DistillSettings, out, problems) -> None:
    from ..models.teacher_kinds import teacher_kind_of
    from ..preflight import check_data, check_device, check_student
    from ..train.run_dir import check_run_dir

    d = cfg.distill
    kind = teacher_kind_of(d.teacher)
    problems.run(kind.check_options, d.teacher, d.teacher_weights, s.options)
    problems.run(kind.check_names, (d.teacher or "").strip(), d.teacher_arch)
    problems.run(check_student, cfg)
    problems.run(check_device, cfg.train.device)
    problems.run(check_data, cfg, detect=not s.print_config)  # --print-config shows a recipe for data to come
    if not s.print_config and not is_worker_rank():  # under torchrun rank 0 owns the folder and its lock: the other
        from ..run_lock import check_unlocked        # ranks would see the run it has begun to write, and its lock held

        problems.run(check_run_dir, out, s.resume, s.overwrite, True)
        problems.run(check_unlocked, out)


def _check_raw_options(kw: dict, problems) -> None:
    """The files and the student an option names, when the recipe they belong to could not be resolved."""
    from ..models.teacher_kinds import weights_file_missing
    from ..preflight import check_timm_name

    if kw.get("student"):
        problems.run(check_timm_name, kw["student"], "student")
    if kw.get("data") and kw["data"] != "synthetic" and not Path(kw["data"]).expanduser().exists():
        problems.append(f"data path {kw['data']} does not exist; give an existing folder/file or --data synthetic")
    w = kw.get("teacher_weights")
    if w and w.strip().lower() != "imagenet" and "=" not in w and weights_file_missing(w):
        problems.append(f"teacher weights file {w} does not exist; give a local .pth/.pt/.safetensors file")


def resume_config(kw: dict, out: Path):
    """The saved recipe of the run in ``out`` with the options given now; refused (train/run_dir.py) when they would
    change the model or the data."""
    from ..config import RunConfig
    from ..train.run_dir import check_resume_changes, saved_config

    saved = RunConfig.from_dict(saved_config(out))  # an older edgekd's config.json is migrated here
    saved = replace(saved, data=replace(saved.data, data=resolved_data(saved.data.data)))  # older runs stored it as given
    cfg = resolve_config(kw, base=saved)
    check_resume_changes(saved.to_dict(), cfg.to_dict(), out)
    return cfg


def is_worker_rank() -> bool:
    """Under torchrun, a process other than rank 0 (which alone checks and writes the run folder)."""
    import os

    return os.environ.get("RANK", "0") != "0"


def _warn_before_work(cfg) -> None:
    from ..preflight import gpu_recipe_warning, train_size_known, will_run_on_cpu

    n = train_size_known(cfg)
    if n and will_run_on_cpu(cfg.train.device) and not is_worker_rank():
        line = gpu_recipe_warning(cfg, n)
        if line:
            click.echo(line, err=True)


def _warn_gpu_recipe_on_cpu(trainer) -> None:
    """One line when a recipe sized for a GPU is about to run on a CPU (the full jetson recipe: 1,225 steps
    of 16 images at 256x320, about 1.6e9 image pixels; the README's quick start: 8e5)."""
    from ..preflight import gpu_recipe_warning, train_size_known

    if train_size_known(trainer.cfg):
        return  # said before the data was rendered (_warn_before_work)
    if trainer.dist.is_main and trainer.device.type == "cpu":
        line = gpu_recipe_warning(trainer.cfg, len(trainer.train_src), trainer.total_steps)
        if line:
            click.echo(line, err=True)


# What a CPU run shrinks: the full recipe goes back to the profile's values.
_SHRUNK = {("data", "image_size"), *(("train", k) for k in ("epochs", "batch_size", "train_size", "val_size", "max_steps", "workers",
                                                              "device", "warmup_steps", "warmup_fraction", "save_every_min"))}


def full_recipe_command(cfg) -> str:
    """The command that runs this recipe (a RunConfig or its dict) at the profile's full size: the same profile (by
    path when it is the user's own file), teacher, weights, data and method; only the sizes a CPU run shrinks go back
    to the profile's."""
    import json
    import shlex

    from ..config import PROFILE_DIR, RunConfig, load_profile, option_keys, section_to_dict

    cfg = RunConfig.coerce(cfg)
    src = Path(cfg.profile.source)
    shipped = src.parent.resolve() == PROFILE_DIR.resolve()
    prof = cfg.profile.name if shipped else str(src)
    base = RunConfig.from_dict(load_profile(prof))
    args = ["edgekd", "distill", "--profile", prof, "--task", cfg.model.task]
    named = {(section, k): flag for section, k, flag, _ in option_keys()}  # any other changed key: --set SECTION.KEY=VALUE
    for section in ("model", "data", "distill", "train"):
        profile_values = section_to_dict(getattr(base, section))
        for k, v in section_to_dict(getattr(cfg, section)).items():  # the key names as files and --set spell them
            if (section, k) in _SHRUNK or (section, k) == ("model", "task") or v == profile_values.get(k):
                continue
            opt = named.get((section, k))
            args += [opt, str(v)] if opt else ["--set", f"{section}.{k}={json.dumps(v)}"]
    return shlex.join(args)


def describe_run(trainer) -> str:
    """The run in two lines: task, student, teacher, method, spectral; data, sizes, steps, device."""
    cfg = trainer.cfg  # the typed RunConfig
    t = trainer.teacher
    teacher = "none" if t is None else f"{t.name} ({t.kind}, {t.channels} ch)"
    d = cfg.distill
    method = f"{d.method} / {d.projection} (w={d.weight})" if t is not None else "-"
    spectral = f"r={d.spectral}" if d.spectral else "off"
    return (
        f"edgekd distill: task {trainer.task.name}, student {cfg.model.student} ({trainer.model.student.feature_channels} ch), "
        f"teacher {teacher}, method {method}, spectral {spectral}\n"
        f"  data {cfg.data.data}: {len(trainer.train_src)} train / {len(trainer.val_src)} val at "
        f"{cfg.data.image_size[0]}x{cfg.data.image_size[1]}, {trainer.steps_per_epoch} steps/epoch x {cfg.train.epochs} epochs, "
        f"device {trainer.device}" + (f", {trainer.dist.world} processes" if trainer.dist.enabled else "")
    )


def qad(s: DistillSettings) -> None:
    """``edgekd distill --qat-from RUN``: the source run's recipe, short and gentle unless told otherwise (train/qat.py)."""
    from ..fileio import load_checkpoint
    from ..train.qat import QadRun, source_checkpoint
    from ..train.threads import set_threads

    if s.resume:
        raise EdgekdError("--resume and --qat-from contradict each other: a QAD run is short and starts from RUN's student; "
                          "run it again with --overwrite")
    src = source_checkpoint(s.qat_from)
    base = load_checkpoint(src).get("config")
    if not isinstance(base, dict):
        raise EdgekdError(f"--qat-from {s.qat_from}: {src} holds no edgekd config; give a run directory written by edgekd distill")
    from ..config import RunConfig

    base = RunConfig.from_dict(base)  # a checkpoint of an older edgekd is migrated here
    base = replace(base, train=replace(base.train, epochs=2, lr=base.train.lr / 10))  # defaults an option may override
    cfg = resolve_config(s.options, base=base)
    if s.print_config:
        return print_config(cfg)
    set_threads(s.options.get("threads"))
    out = Path(s.out or Path(src).parent / "qat")
    summary = QadRun(src, cfg, out, s.overwrite, log=click.echo if not s.quiet else (lambda line: None)).run()
    click.echo(f"done: {summary['steps']} QAD steps in {summary['seconds']:.0f} s; run in {out}; "
               f"export it: edgekd export {out} --precision int8")
