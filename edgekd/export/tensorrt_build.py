"""TensorRT engine build with the TensorRT Python API (imported lazily).

* TensorRT 10 (JetPack 6) still has the weak-typing builder flags: fp16 from
  ``BuilderFlag.FP16`` on the fp32 ONNX, int8 from the QDQ ONNX with
  ``BuilderFlag.INT8`` (explicit quantization).
* TensorRT 11 removed them: networks are strongly typed, so fp16 comes from
  the fp16 ONNX (``edgekd export --precision fp16``) and int8 from the QDQ file.

A timing cache next to the engine makes rebuilds fast; an optimisation profile
covers the dynamic batch axis.
"""

from __future__ import annotations

from pathlib import Path

from ..bench.tensorrt_runtime import import_tensorrt
from ..card import ModelCard, engine_card_path
from ..errors import MissingDependencyError


def trt_major(trt) -> int:
    return int(str(trt.__version__).split(".")[0])


def _builder(trt, logger):
    try:
        builder = trt.Builder(logger)
    except Exception as e:
        raise MissingDependencyError(f"TensorRT cannot create a builder ({str(e)[:120]}): is a CUDA GPU visible?") from None
    if builder is None:
        raise MissingDependencyError("TensorRT cannot create a builder: no CUDA GPU is visible on this machine")
    return builder


def _parse(trt, builder, logger, onnx_path):
    """The network of ``onnx_path`` (explicit batch; strongly typed from TensorRT 11, where it is the only mode)."""
    flags = 0
    if trt_major(trt) < 10:  # explicit batch is the only mode from 10 on, and the flag is gone
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise MissingDependencyError(f"TensorRT cannot parse {onnx_path}: {errors[0][:200] if errors else 'unknown error'}")
    return network, parser  # the parser owns weights the network refers to: keep it alive until the build


def _builder_config(trt, builder, network, precision, input_shape, batch_range, workspace_gb, cache_path):
    """Workspace, precision flags (weakly typed TensorRT < 11 only), timing cache and the dynamic-batch profile."""
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_gb * (1 << 30)))
    if trt_major(trt) < 11:
        if precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        elif precision == "int8":
            config.set_flag(trt.BuilderFlag.INT8)  # explicit quantization: scales come from the Q/DQ nodes
            config.set_flag(trt.BuilderFlag.FP16)  # layers left in float may still use fp16
    cache = config.create_timing_cache(cache_path.read_bytes() if cache_path.exists() else b"")
    config.set_timing_cache(cache, ignore_mismatch=False)
    inp = network.get_input(0)
    c, h, w = input_shape[1:]
    profile = builder.create_optimization_profile()
    lo, opt, hi = batch_range
    profile.set_shape(inp.name, (lo, c, h, w), (opt, c, h, w), (hi, c, h, w))
    config.add_optimization_profile(profile)
    return config


def build_engine(onnx_path, engine_path, precision: str, input_shape, max_batch: int = 8, opt_batch: int = 1,
                 workspace_gb: float = 2.0, timing_cache=None, log=print) -> dict:
    """Build and write a serialized engine for ``onnx_path``; returns a report."""
    from ..fileio import atomic_write_bytes

    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = _builder(trt, logger)
    network, _parser = _parse(trt, builder, logger, onnx_path)
    cache_path = Path(timing_cache) if timing_cache else Path(engine_path).with_suffix(".timing.cache")
    config = _builder_config(trt, builder, network, precision, input_shape, (1, opt_batch, max_batch), workspace_gb, cache_path)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise MissingDependencyError("TensorRT failed to build the engine (see its log above)")
    atomic_write_bytes(engine_path, bytes(serialized))
    atomic_write_bytes(cache_path, bytes(config.get_timing_cache().serialize()))
    report = {"engine": str(engine_path), "tensorrt": trt.__version__, "strongly_typed": trt_major(trt) >= 11,
              "precision": precision, "batch_range": [1, opt_batch, max_batch], "from_onnx": str(onnx_path)}
    log(f"wrote {engine_path} (TensorRT {trt.__version__}, {precision}, batch 1..{max_batch})")
    return report


def export_engine(job, source: Path) -> dict:
    """The tensorrt format step: ``model.<precision>.engine`` from the precision's ONNX file, with its metadata beside it."""
    precision = job.report["precision"]
    fp32_path = job.fp32_path
    if precision == "fp16" and trt_major(import_tensorrt()) < 11:
        source = fp32_path  # TensorRT 10 builds fp16 from the fp32 graph with BuilderFlag.FP16
    engine = job.run_dir / f"model.{precision}.engine"
    rep = build_engine(source, engine, precision, job.report["fp32"]["input_shape"], max_batch=job.options.max_batch, log=job.log)
    # The engine's precision is the build's, whichever ONNX file it was parsed from.
    write_engine_card(engine, ModelCard.from_props(read_onnx_metadata(source), str(source)).replace(precision=precision))
    return job.add("tensorrt", rep, file_key="engine")


def write_engine_card(engine_path, card: ModelCard) -> Path:
    """Engines carry no metadata: keep the ONNX file's card next to the engine (card.engine_card_path)."""
    from ..fileio import atomic_write_json

    return atomic_write_json(engine_card_path(engine_path), card.to_props())


def read_onnx_metadata(onnx_path) -> dict:
    import onnx

    m = onnx.load(str(onnx_path), load_external_data=False)
    return {p.key: p.value for p in m.metadata_props}

