"""edgekd compare (grid, seeds, restart) and edgekd report (figures and pages)."""

import json

from conftest import run_cli, tiny

GRID = ["compare", "--task", "depth", "--teachers", "none,random:resnet18", "--methods", "fitnet",
        "--projections", "inverted,traditional", "--spectral", "0", "--seeds", "2", *tiny()]


def test_compare_table_restart_and_report(tmp_path):
    out = tmp_path / "claims"
    run_cli([*GRID, "--out", out])
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 3 * 2  # none + two projections, two seeds each
    assert {r["seed"] for r in rows} == {0, 1}
    md = (out / "table.md").read_text()
    assert "| fitnet | inverted |" in md and "| fitnet | traditional |" in md and "±" in md and "%" in md
    diffs = json.loads((out / "differences.json").read_text())["differences"]
    assert {(d["cell"], d["against"]) for d in diffs} == {("random-resnet18-fitnet-inverted", "no teacher"),
                                                         ("random-resnet18-fitnet-traditional", "no teacher"),
                                                         ("random-resnet18-fitnet-inverted", "traditional")}
    assert all(d["n"] == 2 for d in diffs)
    # an interval wherever the paired differences vary; a tiny run's d1 can tie exactly on both seeds (the fraction
    # of pixels within 1.25x moves in steps), and then there is no interval and the verdict says so
    assert all(d["ci_low"] is not None and d["ci_low"] <= d["mean"] <= d["ci_high"] for d in diffs if d["sd"] > 0)
    assert all(d["ci_low"] is None and "no difference" in d["verdict"] for d in diffs if d["sd"] == 0)
    assert any(d["sd"] > 0 for d in diffs)
    if not any(d["verdict"] == "better" and d["against"] == "no teacher" for d in diffs):
        assert "**" not in md  # a tiny run resolves nothing: no winner is bolded
    assert "| verdict |" in (out / "differences.md").read_text()
    csv = (out / "table.csv").read_text().splitlines()
    assert csv[0].startswith("teacher,method,projection,spectral,seeds,d1_mean,d1_std") and len(csv) == 4
    # seeds really differ (different initialisation, same data)
    seeds = {r["seed"]: r["metrics"]["d1"] for r in rows if r["id"] == "random-resnet18-fitnet-inverted"}
    assert seeds[0] != seeds[1]
    # restart: nothing is trained again; a new cell is added to the same comparison
    mtimes = {p: p.stat().st_mtime for p in out.glob("runs/*/*/summary.json")}
    run_cli(["compare", "--task", "depth", "--teachers", "none", "--spectral", "2", "--seeds", "2", *tiny(), "--out", out])
    assert all(p.stat().st_mtime == t for p, t in mtimes.items())
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 8 and "spectral r=2" in (out / "table.md").read_text()
    run_cli(["report", out])
    for f in ("forest.png", "compare.png", "spectra.png", "report.md", "report.html", "effective_ranks.json"):
        assert (out / "report" / f).stat().st_size > 0, f
    assert "compare.png" in (out / "report" / "report.md").read_text()


def test_report_of_one_run(tmp_path):
    out = tmp_path / "run"
    run_cli(["distill", "--task", "segmentation", "--teacher", "random:resnet18", *tiny(epochs=2), "--out", out])
    run_cli(["report", out])
    for f in ("curves.png", "spectrum.png", "predictions.png", "report.md", "report.html"):
        assert (out / "report" / f).stat().st_size > 1000 or f.startswith("report"), f
    page = (out / "report" / "report.md").read_text()
    assert "effective rank of P per epoch" in page and "predictions.png" in page


def test_effective_rank():
    from edgekd.report.plots import effective_rank, rank_at

    assert abs(effective_rank([1, 1, 1, 1]) - 4) < 1e-9
    assert effective_rank([1, 0, 0]) == 1.0
    assert rank_at([1.0, 0.5, 0.001]) == 2


def test_compare_refuses_a_grid_of_another_recipe_and_unused_options(tmp_path):
    """Issue #26, finding 3: a new budget into an old --out is refused (naming the key) or, with --restart, retrained."""
    out = tmp_path / "cmp"
    grid = ["compare", "--task", "depth", "--teachers", "none", "--seeds", "1", "--out", out]
    run_cli([*grid, *tiny(epochs=1)])
    res = run_cli([*grid, *tiny(epochs=2)], expect=2)
    assert "holds runs of another recipe: train.epochs (1 -> 2)" in res.output and "--restart" in res.output
    assert json.loads((out / "compare.json").read_text())["config"]["train"]["epochs"] == 1  # nothing rewritten
    res = run_cli([*grid, *tiny(epochs=2), "--restart"])
    assert "removed 1 runs of the old recipe" in res.output
    run_cfg = json.loads((out / "runs" / "none" / "seed0" / "config.json").read_text())
    assert run_cfg["train"]["epochs"] == 2 and json.loads((out / "runs" / "none" / "seed0" / "summary.json").read_text())["epochs"] == 2
    # options compare sets itself per cell are refused, not ignored
    res = run_cli([*grid, *tiny(epochs=2), "--seed", "5"], expect=2)
    assert "compare does not use --seed 5" in res.output
    res = run_cli([*grid, *tiny(epochs=2), "--set", "distill.method=at"], expect=2)
    assert "compare sets distill.method itself" in res.output


def test_compare_vary_scenes_gives_each_seed_its_own_scenes(tmp_path):
    """Issue 24, item 6: with --vary-scenes a seed is also the data seed (intervals then cover the draw of scenes);
    without it every seed sees data.seed's scenes; a resumed call keeps the choice, a contradicting --set is refused."""
    grid = ["compare", "--task", "depth", "--teachers", "none", "--seeds", "2", *tiny(epochs=1)]
    run_cli([*grid, "--vary-scenes", "--out", tmp_path / "vary"])
    seeds = [json.loads((tmp_path / "vary" / "runs" / "none" / f"seed{s}" / "config.json").read_text())["data"]["seed"] for s in (0, 1)]
    assert seeds == [0, 1]
    assert all(c["vary_scenes"] for c in json.loads((tmp_path / "vary" / "compare.json").read_text())["cells"])
    run_cli([*grid, "--out", tmp_path / "fixed", "--set", "data.seed=7"])
    seeds = [json.loads((tmp_path / "fixed" / "runs" / "none" / f"seed{s}" / "config.json").read_text())["data"]["seed"] for s in (0, 1)]
    assert seeds == [7, 7]
    # the same --out without the flag would mix two designs: refused, naming the key
    res = run_cli([*grid, "--out", tmp_path / "vary"], expect=2)
    assert "holds runs of another recipe: data.seed (1 -> 0)" in res.output
    res = run_cli([*grid, "--vary-scenes", "--set", "data.seed=3", "--out", tmp_path / "x"], expect=2)
    assert "--vary-scenes sets data.seed itself" in res.output
