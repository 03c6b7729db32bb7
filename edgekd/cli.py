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
from .bench.settings import BenchSettings
from .commands.options import (FloatOrAuto, data_formats_help, distill_options, key_option, profile_defaults, settings_options,
                              training_options)
from .distill.registry import list_distances, list_projections
from .errors import EdgekdError
from .export.job import ExportOptions
from .export.pipeline import ExportRequest
from .fit import FitSettings
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
            from .torch_stack import stack_problem  # torchvision's compiled operators did not load: say which install is wrong

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
@cli.command()
@training_options
@distill_options
@click.option("--out", default=None, type=click.Path(), help="Run directory [runs/<task>-<profile>].")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last.pt (same data order) [off].")
@click.option("--overwrite", is_flag=True, help="Replace an existing run in --out [off].")
@key_option("train", "save_every_min")
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
    from .commands.distill import DistillSettings, distill, split_options

    distill(split_options(DistillSettings, kw))


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
@click.option("--distill-weight", type=FloatOrAuto(), default=None,
              help=f"w of the distillation term, or auto (see distill --help) {profile_defaults('distill', 'weight')}.")
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True, help="Runs per cell (seeds 0..N-1).")
@click.option("--vary-scenes", is_flag=True,
              help="Each seed also draws its own scenes (data.seed = the seed), so the intervals cover the scenes as well as the "
                   "initialisation and order [every seed sees the same scenes].")
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
    from .commands.compare import CompareSettings, compare
    from .commands.distill import split_options

    compare(split_options(CompareSettings, kw))


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


# --------------------------------------------------------------------------- export
@cli.command()
@click.argument("run", type=click.Path())
@settings_options((ExportRequest, ("fmt", "precision")), ExportOptions, (ExportRequest, ("expect_task", "target", "allow_unfinished")))
@_user_errors
def export(run, **kw):
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
    from .commands.export import export

    options = ExportOptions(**{k: kw.pop(k) for k in list(kw) if k in ExportOptions.__dataclass_fields__})
    export(ExportRequest(run, options=options, **kw))


# --------------------------------------------------------------------------- bench
_BENCH_TIMING = ("profile", "target", "backend", "data", "data_format", "val_size", "batch", "threads", "min_iters", "min_time",
                 "warmup_iters", "warmup_time", "accuracy_check", "shape")


@cli.command()
@click.argument("model", type=click.Path())
@settings_options((BenchSettings, _BENCH_TIMING))
@click.option("--json", "json_path", type=click.Path(), default=None,
              help="Write every figure and the environment here [RUN/bench/<file>.json for a model in a run directory].")
@settings_options((BenchSettings, ("compare_to", "show_progress")))
@_user_errors
def bench(model, json_path, **kw):
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
    from .commands.bench import bench

    bench(BenchSettings(model, **kw), json_path)


# --------------------------------------------------------------------------- teacher
@cli.group()
def teacher():
    """Teachers: the kinds --teacher accepts, and the feature outputs of an ONNX teacher."""


@teacher.command("kinds")
def teacher_kinds():
    """List the teacher kinds (the registry in edgekd/models/teacher_kinds.py) and the packaged weights."""
    from .commands.teacher import kinds_lines

    for line in kinds_lines():
        click.echo(line)


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
    from .commands.teacher import inspect_lines

    for line in inspect_lines(model, image_size, stride, show_all):
        click.echo(line)


# --------------------------------------------------------------------------- fit
@cli.command()
@settings_options(FitSettings)
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

    click.echo(format_table(run_fit(FitSettings(**kw), log=click.echo)))


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
    from .commands.doctor import doctor_lines

    lines, code = doctor_lines()
    for line in lines:
        click.echo(line)
    if code:
        sys.exit(code)


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
    from .commands.data import synth

    click.echo(synth(out, n, val_n, image_size, seed, overwrite))


@data.command("inspect")
@click.argument("path", type=click.Path())
@click.option("--task", default=None, help="The task the data is for (guides format detection) [any: every format that fits is listed].")
@click.option("--data-format", default="auto", show_default=True, help=f"auto, {data_formats_help()}.")
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

    from .commands.data import inspect

    click.echo(json.dumps(inspect(path, task, data_format, depth_scale, max_samples), indent=2))


def main():
    cli(prog_name="edgekd")


if __name__ == "__main__":
    main()
