"""edgekd bench tells the whole truth: memory, node placement, power where a sensor exists, the device's state.

Sensors this machine lacks (RAPL, NVML, a Jetson's INA3221) are tested on files and values in the
exact form the real interfaces give (sysfs trees in a tmp dir; NVML return values), for parsing
only; their live tests run where the sensor exists and are skipped with the reason elsewhere.
"""

import json
import time
from collections import namedtuple

import numpy as np
import pytest

from conftest import run_cli
from test_bench import FAST, _third_party_onnx


def write(p, text):
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(str(text))
    return p


# ----------------------------------------------------------------------------------------------- memory
def test_peak_memory_sees_what_the_loop_allocates():
    from edgekd.bench.memory import PeakMemory, rss_mb

    big = np.ones(64 * 2**20, np.uint8)  # resident before the window: in the baseline, and the peak after reset
    del big
    mon = PeakMemory(rss_mb())
    mon.start()
    held = np.ones(48 * 2**20, np.uint8)  # 48 MB touched inside the window
    seen = mon.stop(1, 1)
    del held
    assert seen["increase_mb"] >= 40 and seen["peak_rss_mb"] >= rss_mb()
    if "reset before" in seen["source"]:  # Linux: a window of its own, the earlier 64 MB not in it
        assert seen["increase_mb"] < 60


def test_memory_verdict_only_on_target(depth_onnx, tmp_path):
    import platform

    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine().lower(), platform.machine().lower())
    for gb, verdict in ((64.0, "PASS"), (0.001, "FAIL")):
        t = write(tmp_path / f"t{gb}.toml", f'name = "here"\narch = "{arch}"\naccelerator = "cpu"\nmemory_gb = {gb}\n')
        out = tmp_path / "m.json"
        res = run_cli(["bench", depth_onnx, "--target", t, "--no-accuracy", "--json", out, *FAST])
        r = json.loads(out.read_text())
        assert r["memory_budget"]["pass"] is (verdict == "PASS") and f"GB -> {verdict}" in res.output
        assert ("memory of here exceeded" in res.stderr) is (verdict == "FAIL")


# -------------------------------------------------------------------------------------------- placement
def test_ort_placement_from_its_own_profiler(tmp_path):
    from edgekd.bench.placement import placement_warning
    from edgekd.bench.runners import create_runner

    f = _third_party_onnx(tmp_path / "m.onnx", [1, 3, 16, 16])
    with create_runner("ort-cpu", f, threads=1) as r:
        p = r.placement(np.zeros((1, 3, 16, 16), np.float32))
    assert p["requested"] == "CPUExecutionProvider" and p["nodes"] >= 1
    assert p["units"]["CPUExecutionProvider"]["nodes"] == p["nodes"]
    assert p["units"]["CPUExecutionProvider"]["time_share"] == pytest.approx(1.0)
    assert placement_warning(p) is None
    assert not list(tmp_path.glob("*.json"))  # the profiler's trace went to a temporary folder


def _ort_trace(tmp_path):
    """A real ONNX Runtime profile of a real model (a Conv and a Relu kept apart: no graph fusion)."""
    import onnxruntime as ort

    f = _third_party_onnx(tmp_path / "m.onnx", [1, 3, 16, 16])
    so = ort.SessionOptions()
    so.enable_profiling, so.profile_file_prefix = True, str(tmp_path / "p")
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(str(f), so, providers=["CPUExecutionProvider"])
    for _ in range(3):
        s.run(None, {"x": np.zeros((1, 3, 16, 16), np.float32)})
    return json.loads(open(s.end_profiling()).read())


def test_warning_when_part_of_the_model_leaves_the_requested_provider(tmp_path):
    from edgekd.bench.placement import ort_trace_placement, placement_warning

    events = _ort_trace(tmp_path)
    p = ort_trace_placement(events, "CPUExecutionProvider")
    assert p["nodes"] == 2 and placement_warning(p) is None  # Conv and Relu, each counted once over 3 runs
    # The same trace as a CUDA run with its Relu left on the CPU (this machine has no CUDA provider):
    for e in events:
        if e.get("cat") == "Node" and e["args"]["op_name"] == "Conv":
            e["args"]["provider"] = "CUDAExecutionProvider"
    p = ort_trace_placement(events, "CUDAExecutionProvider")
    assert p["units"]["CUDAExecutionProvider"]["nodes"] == 1 and p["units"]["CPUExecutionProvider"]["nodes"] == 1
    assert sum(u["time_share"] for u in p["units"].values()) == pytest.approx(1.0)
    w = placement_warning(p)
    assert w.startswith("only 1 of 2 nodes ran on CUDAExecutionProvider: 1 on CPUExecutionProvider (")


def test_openvino_placement_per_precision(depth_onnx):
    pytest.importorskip("openvino", reason="OpenVINO is not installed (pip install openvino)")
    from edgekd.bench.runners import create_runner

    with create_runner("openvino", depth_onnx, threads=1) as r:
        p = r.placement(np.zeros((1, 3, 64, 64), np.float32), runs=1)
    assert p["units"]["CPU"]["nodes"] == p["nodes"] > 0
    assert "f32" in p["precisions"] and sum(v["nodes"] for v in p["precisions"].values()) == p["nodes"]


# ------------------------------------------------------------------------------------------------ power
def _rapl_tree(root, uj=1_000_000, max_uj=2**32):
    write(root / "intel-rapl:0" / "name", "package-0\n")
    write(root / "intel-rapl:0" / "energy_uj", f"{uj}\n")
    write(root / "intel-rapl:0" / "max_energy_range_uj", f"{max_uj}\n")
    write(root / "intel-rapl:0:0" / "name", "core\n")  # a sub-zone of package 0: not counted again
    write(root / "intel-rapl:0:0" / "energy_uj", "5\n")
    write(root / "intel-rapl:1" / "name", "psys\n")  # the platform zone overlaps the packages
    write(root / "intel-rapl:1" / "energy_uj", "7\n")
    return root


def test_rapl_counts_packages_once_and_unwraps(tmp_path):
    from edgekd.bench.power.rapl import RaplReader, delta_uj, package_zones

    root = _rapl_tree(tmp_path / "powercap", uj=2**32 - 500_000)
    assert [z.name for z in package_zones(root)] == ["intel-rapl:0"]
    assert delta_uj(100, 300, 2**32) == 200 and delta_uj(2**32 - 100, 50, 2**32) == 150
    assert RaplReader.unavailable(root) is None and "absent" in RaplReader.unavailable(tmp_path / "none")
    r = RaplReader(root)
    r.start()
    write(root / "intel-rapl:0" / "energy_uj", "1500000\n")  # the counter wrapped: 0.5 J + 1.5 J
    got = r.stop()
    assert got["joules"] == pytest.approx(2.0) and got["rails"] == {"package-0": pytest.approx(2.0)}


def test_rapl_live():
    from edgekd.bench.power.rapl import RaplReader

    why = RaplReader.unavailable()
    if why:
        pytest.skip(why)
    r = RaplReader()
    r.start()
    t = time.perf_counter()
    while time.perf_counter() - t < 0.3:
        sum(range(10000))
    got = r.stop()
    assert got["joules"] > 0 and 0.0 < got["joules"] / got["seconds"] < 2000  # watts of a CPU package


def _jetson_hwmon(root, mv=5000, ma=1200):
    """JetPack >= 5 (Orin): INA3221 through hwmon, voltage (mV) and current (mA) per channel."""
    d = root / "ina3221" / "1-0040" / "hwmon" / "hwmon3"
    for k, (label, v, i) in enumerate([("VDD_IN", mv, ma), ("VDD_CPU_GPU_CV", mv, 400), ("VDD_SOC", mv, 300)], 1):
        write(d / f"in{k}_label", label + "\n")
        write(d / f"in{k}_input", f"{v}\n")
        write(d / f"curr{k}_input", f"{i}\n")
    write(d / "in7_label", "sum of shunt voltages\n")
    write(d / "in7_input", "9999\n")
    write(d / "curr7_input", "9999\n")
    return root


def _jetson_iio(root):
    """JetPack 4 (Nano): INA3221 through iio, power (mW) per rail."""
    d = root / "ina3221x" / "6-0040" / "iio:device0"
    for k, (label, mw) in enumerate([("POM_5V_IN", 3000), ("POM_5V_GPU", 800), ("POM_5V_CPU", 900)]):
        write(d / f"rail_name_{k}", label + "\n")
        write(d / f"in_power{k}_input", f"{mw}\n")
    return root


def test_jetson_rails_both_layouts(tmp_path):
    from edgekd.bench.power.jetson import JetsonReader, module_joules, read_rails

    orin = read_rails(_jetson_hwmon(tmp_path / "orin"))
    assert orin == {"VDD_IN": pytest.approx(6000), "VDD_CPU_GPU_CV": pytest.approx(2000), "VDD_SOC": pytest.approx(1500)}
    assert module_joules(orin)[0] == pytest.approx(6000) and "VDD_IN" in module_joules(orin)[1]
    nano = read_rails(_jetson_iio(tmp_path / "nano"))
    assert nano["POM_5V_IN"] == 3000 and module_joules(nano)[0] == 3000
    assert "sum of" in module_joules({"A": 1.0, "B": 2.0})[1] and module_joules({"A": 1.0, "B": 2.0})[0] == 3.0
    assert "no INA3221" in JetsonReader.unavailable(tmp_path / "empty")
    r = JetsonReader(tmp_path / "orin", interval=0.02)
    r.start()
    time.sleep(0.2)
    got = r.stop()
    assert got["joules"] / got["seconds"] == pytest.approx(6.0, rel=1e-6)  # 5 V x 1.2 A, constant


def test_jetson_live():
    from edgekd.bench.power.jetson import JetsonReader

    why = JetsonReader.unavailable()
    if why:
        pytest.skip(why)
    r = JetsonReader()
    r.start()
    time.sleep(0.3)
    assert r.stop()["joules"] > 0


# Values in the form pynvml returns them (c_nvmlProcessInfo_t fields; bytes from pynvml < 11).
ProcessInfo = namedtuple("ProcessInfo", "pid usedGpuMemory gpuInstanceId computeInstanceId")


def test_nvml_values_parsed():
    from edgekd.bench.gpu import cuda_version, process_gpu_memory
    from edgekd.bench.power.nvml import counter_joules

    assert counter_joules(123_456_000, 123_501_000) == pytest.approx(45.0)
    assert cuda_version(12040) == "12.4" and cuda_version(11080) == "11.8"
    procs = [ProcessInfo(10, 300 * 2**20, 0xFFFFFFFF, 0xFFFFFFFF), ProcessInfo(42, 512 * 2**20, 0xFFFFFFFF, 0xFFFFFFFF)]
    got = process_gpu_memory(procs, 42, 80 * 2**30)
    assert got["process_used_mb"] == 512 and got["device_total_mb"] == 80 * 1024
    assert process_gpu_memory(procs, 7)["process_used_mb"] is None and "no compute context" in process_gpu_memory(procs, 7)["why_none"]
    assert process_gpu_memory([ProcessInfo(42, None, 0, 0)], 42)["process_used_mb"] is None  # hidden by a PID namespace


def test_nvml_live():
    from edgekd.bench.power.nvml import NvmlReader

    why = NvmlReader.unavailable()
    if why:
        pytest.skip(why)
    r = NvmlReader()
    r.start()
    time.sleep(0.3)
    got = r.stop()
    assert got["joules"] >= 0 and "NVIDIA GPU" in got["scope"]


def test_energy_figures_and_no_sensor():
    from edgekd.bench.power import PowerMonitor, energy_figures, list_power_readers

    f = energy_figures({"joules": 2.0, "seconds": 4.0, "scope": "s", "rails": {"a": 2.0}}, iters=100, batch=4)
    assert f["mean_w"] == 0.5 and f["mj_per_inference"] == 20.0 and f["mj_per_image"] == 5.0 and f["rails_mean_w"] == {"a": 0.5}
    mon = PowerMonitor([], {"rapl": "RAPL: absent"})
    mon.start()
    assert mon.stop(10, 1) == {"sensor": None, "why": {"rapl": "RAPL: absent"}}
    assert list_power_readers() == ["rapl", "nvml", "jetson"]


# ------------------------------------------------------------------------------------------ device state
def test_device_state_readers(tmp_path):
    from edgekd.bench.device_state import governors, hottest_c, l4t_release, parse_nvpmodel

    cpu = tmp_path / "cpu"
    write(cpu / "cpu0" / "cpufreq" / "scaling_governor", "performance\n")
    write(cpu / "cpu1" / "cpufreq" / "scaling_governor", "performance\n")
    assert governors(cpu) == "performance" and governors(tmp_path / "none") is None
    write(cpu / "cpu1" / "cpufreq" / "scaling_governor", "powersave\n")
    assert governors(cpu) == "performance/powersave"
    write(tmp_path / "th" / "thermal_zone0" / "temp", "48500\n")
    write(tmp_path / "th" / "thermal_zone1" / "temp", "61000\n")
    assert hottest_c(tmp_path / "th") == 61.0
    # recorded outputs: nvpmodel -q on an Orin Nano (JetPack 6), /etc/nv_tegra_release of L4T 36.4.3
    assert parse_nvpmodel("NV Power Mode: 15W\n0\n") == "15W (mode 0)" and parse_nvpmodel("nvpmodel: not found") is None
    rel = write(tmp_path / "nv_tegra_release", "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64, "
                                              "DATE: Wed Jan  8 01:49:37 UTC 2025\n")
    assert l4t_release(rel) == "R36.4.3" and l4t_release(tmp_path / "none") is None


def test_clock_drop_is_throttling(tmp_path):
    from edgekd.bench.device_state import ClockMonitor, throttling_summary

    f = write(tmp_path / "cpu" / "cpu0" / "cpufreq" / "scaling_cur_freq", "2400000\n")
    mon = ClockMonitor(interval=0.02, cpu_root=tmp_path / "cpu", thermal_root=tmp_path / "none")
    mon.start()
    f.write_text("1800000\n")  # the clock falls by a quarter during the loop
    time.sleep(0.1)
    f.write_text("2400000\n")
    got = mon.stop(1, 1)
    assert got["throttled"] is True and got["clock_drop"] == pytest.approx(0.25) and got["cpu_mhz_min"] == 1800
    assert throttling_summary([2400, 2350], [])["throttled"] is False
    assert throttling_summary([], [])["throttled"] is None


# ---------------------------------------------------------------------------------------------- compare
def test_bench_reports_the_truth_and_compares(depth_onnx, tmp_path):
    out = tmp_path / "a.json"
    res = run_cli(["bench", depth_onnx, "--no-accuracy", "--json", out, *FAST])
    r = json.loads(out.read_text())
    mem = r["memory"]
    assert mem["peak_rss_mb"] >= mem["baseline_rss_mb"] > 10 and mem["increase_mb"] >= 0
    assert r["latency"]["batch1"]["memory"]["peak_rss_mb"] <= mem["peak_rss_mb"] and "peak MB" in res.output
    p = r["placement"]
    assert p["units"]["CPUExecutionProvider"]["nodes"] == p["nodes"] > 10 and "placement: CPUExecutionProvider" in res.output
    env = r["environment"]
    assert {"cpu_governor", "cores_allowed", "power_mode", "l4t", "nvidia_driver"} <= set(env) and env["cores_allowed"] >= 1
    assert set(r["power"]["unavailable"]) | set(r["power"]["sensors"]) == {"rapl", "nvml", "jetson"}
    assert ("power: no sensor" in res.output) is (not r["power"]["sensors"])
    assert "throttled" in r["latency"]["batch1"]["throttling"]
    res = run_cli(["bench", depth_onnx, "--no-accuracy", "--compare-to", out, *FAST])
    assert f"vs {out} (same model, precision and backend): batch1 p50 x" in res.output
    env["cpu_governor"], env["threads"] = "powersave", 99
    write(out, json.dumps(r))
    res = run_cli(["bench", depth_onnx, "--no-accuracy", "--compare-to", out, *FAST])
    assert f"incomparable with {out}: cpu_governor differs (powersave vs " in res.output and "threads differs (99 vs" in res.output


def test_incomparable_reasons():
    from edgekd.bench.compare import compare_results, incomparable

    env = {"cpu": "X", "backend": "ort-cpu", "runtime": "onnxruntime 1.20", "power_mode": "MAXN (mode 0)"}
    old = {"model": "a.onnx", "environment": env, "latency": {"batch1": {"p50_ms": 2.0, "p90_ms": 4.0}}}
    new = {"model": "b.onnx", "environment": dict(env), "latency": {"batch1": {"p50_ms": 1.0, "p90_ms": 1.0, "throttling": {"throttled": False}}}}
    c = compare_results(old, new)
    assert c["comparable"] and c["ratios"]["batch1"] == {"p50": 0.5, "p90": 0.25} and c["differs_in"] == {"model": ["a.onnx", "b.onnx"]}
    new["environment"]["power_mode"] = "15W (mode 1)"
    assert incomparable(old, new) == ["power_mode differs (MAXN (mode 0) vs 15W (mode 1))"]
    new["environment"].update(power_mode=env["power_mode"], runtime="onnxruntime 1.22")
    assert incomparable(old, new) == ["runtime differs (onnxruntime 1.20 vs onnxruntime 1.22)"]
    new["environment"]["backend"] = "openvino"  # another backend is what is compared; its version then differs by nature
    assert incomparable(old, new) == []
    new["latency"]["batch1"]["throttling"]["throttled"] = True
    assert incomparable(old, new) == ["this run throttled (its CPU clock dropped during the timed loop)"]


def test_compare_to_a_file_that_is_not_a_result(depth_onnx, tmp_path):
    bad = write(tmp_path / "x.json", '{"a": 1}')
    err = run_cli(["bench", depth_onnx, "--compare-to", bad, *FAST], expect=2).stderr
    assert "is not an edgekd bench result" in err and len(err.strip().splitlines()) == 1
