"""The reproduction tool's matrix, runner (on a fake recipe), tables and report."""

import json
import sys
import textwrap

import pytest

from speechbrain_sparse.reproduction.plan import build_matrix, sweep_run_name
from speechbrain_sparse.reproduction.report import write_report
from speechbrain_sparse.reproduction.runner import MatrixRunner, summarize_status
from speechbrain_sparse.reproduction.tables import method_rows, table2

FAKE_TRAIN = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    args = dict(a[2:].split("=", 1) for a in sys.argv[2:] if a.startswith("--"))
    out = Path(args["output_folder"])
    with open(os.environ["FAKE_TRAIN_CALLS"], "a") as calls:
        calls.write(out.name + "\\n")
    if args.get("fail") == out.name:
        sys.exit("train.py: error: asked to fail")
    if args.get("dialect"):
        (out / "save" / "CKPT+1").mkdir(parents=True, exist_ok=True)
    wer = float(args.get("density", 1.0)) * 10
    d = args.get("dialect", "src")
    results = {f"{d}_dev": {"WER": wer}, f"{d}_test": {"WER": wer + 1}}
    (out / "results.json").write_text(json.dumps(results))
    """
)


@pytest.fixture
def fake_recipe(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_TRAIN_CALLS", str(tmp_path / "runs" / "calls.txt"))
    recipe = tmp_path / "recipe"
    (recipe / "hparams").mkdir(parents=True)
    (recipe / "train.py").write_text(FAKE_TRAIN)
    return recipe


def calls(out):
    path = out.parent / "calls.txt"
    return path.read_text().split() if path.exists() else []


def make_runner(recipe, out, extra=None):
    return MatrixRunner(recipe, out, lambda run: dict(extra or {}), workers=2,
                        cores=2, progress=False)


def test_matrix_orders_needs_and_reuses_vanilla_and_diff_for_fig3():
    runs = build_matrix(["tiny"], "src", ["a", "b"], fractions=[0.1, 0.2, 0.7, 1.0])
    names = [run.name for run in runs]
    assert len(names) == len(set(names))
    position = {name: i for i, name in enumerate(names)}
    for run in runs:
        assert all(position[need] < position[run.name] for need in run.needs)
    per_target = [n for n in names if n.startswith("tiny/a/")]
    # 6 single methods + 4 combinations + the sweep without 0.2 (diff) and 1.0
    assert len(per_target) == 6 + 4 + 2
    assert sweep_run_name("tiny", "a", 0.7) in names
    union = next(r for r in runs if r.name == "tiny/a/union_diff30_topk10")
    assert union.overrides["diff_density"] == 0.3
    assert union.overrides["second_method"] == "topk"
    assert union.needs == ("tiny/pretrain", "tiny/a/vanilla")
    with pytest.raises(ValueError, match="unknown methods"):
        build_matrix(["tiny"], "src", ["a"], methods=["magic"])


def test_runner_runs_once_then_reuses_everything(fake_recipe, tmp_path):
    out = tmp_path / "runs" / "out"
    runs = build_matrix(["tiny"], "src", ["a"], methods=["diff"],
                        out_of=lambda n: str(out / n))
    status = make_runner(fake_recipe, out).run_all(runs)
    assert summarize_status(status) == "3 finished"
    assert sorted(calls(out)) == ["diff", "pretrain", "vanilla"]
    status = make_runner(fake_recipe, out).run_all(runs)
    assert summarize_status(status) == "3 reused"
    assert len(calls(out)) == 3  # nothing ran again
    saved = json.loads((out / "status.json").read_text())
    assert saved["tiny/a/diff"]["status"] == "cached"


def test_a_failed_run_skips_its_dependents_only(fake_recipe, tmp_path):
    out = tmp_path / "runs" / "out"
    runs = build_matrix(["tiny"], "src", ["a"], methods=["diff", "topk"],
                        out_of=lambda n: str(out / n))
    status = make_runner(fake_recipe, out, {"fail": "vanilla"}).run_all(runs)
    assert status["tiny/a/vanilla"]["status"] == "failed"
    assert status["tiny/a/diff"] == {"status": "skipped",
                                     "reason": "needs tiny/a/vanilla"}
    assert status["tiny/a/topk"]["status"] == "finished"
    log = status["tiny/a/vanilla"]["log"]
    assert "asked to fail" in open(log).read()


def test_changed_options_are_refused_for_a_started_run(fake_recipe, tmp_path):
    out = tmp_path / "runs" / "out"
    runs = build_matrix(["tiny"], "src", ["a"], methods=["vanilla"],
                        out_of=lambda n: str(out / n))
    make_runner(fake_recipe, out).run_all(runs)
    status = make_runner(fake_recipe, out, {"lr": "0.1"}).run_all(runs)
    assert status["tiny/pretrain"]["status"] == "failed"
    assert "--lr=0.1" in status["tiny/pretrain"]["error"]
    assert status["tiny/a/vanilla"]["status"] == "skipped"


def test_an_interrupted_run_is_started_again(fake_recipe, tmp_path):
    out = tmp_path / "runs" / "out"
    runs = build_matrix(["tiny"], "src", ["a"], methods=["vanilla"],
                        out_of=lambda n: str(out / n))
    make_runner(fake_recipe, out).run_all(runs)
    (out / "tiny" / "a" / "vanilla" / "results.json").unlink()  # as if killed
    status = make_runner(fake_recipe, out).run_all(runs)
    assert status["tiny/pretrain"]["status"] == "cached"
    assert status["tiny/a/vanilla"]["status"] == "finished"
    assert calls(out).count("vanilla") == 2


def fake_results(targets, values):
    results = {}
    for (method, size), value in values.items():
        for target in targets:
            results[f"{size}/{target}/{method}"] = {
                f"{target}_dev": {"WER": value}, f"{target}_test": {"WER": value + 2}}
    return results


def test_tables_average_only_complete_rows():
    results = fake_results(["a", "b"], {("vanilla", "tiny"): 20.0})
    results["tiny/b/diff"] = {"b_dev": {"WER": 10.0}, "b_test": {"WER": 12.0}}
    rows = method_rows(results, "tiny", ["a", "b"],
                       [("vanilla", "vanilla"), ("diff", "diff")], "WER")
    assert rows[0]["Avg"] == pytest.approx(21.0)
    assert rows[1]["a dev"] is None and rows[1]["Avg"] is None
    rows = table2(results, ["tiny"], ["a", "b"], "WER", {"tiny": 1_830_000})
    assert rows[0]["Model"] == "Transformer (tiny)"
    assert rows[0]["Params (M)"] == pytest.approx(1.83)


def test_report_checks_the_papers_claims(tmp_path):
    targets = ["a", "b"]
    values = {(m, "tiny"): v for m, v in [
        ("vanilla", 30.0), ("fisher", 29.0), ("diff", 25.0), ("topk", 31.0),
        ("random", 40.0), ("adapter", 35.0), ("union_diff30_topk10", 24.0),
        ("diff_d0.1", 26.0), ("diff_d0.5", 28.0)]}
    results = fake_results(targets, values)
    runs = build_matrix(["tiny"], "src", targets, fractions=[0.1, 0.2, 0.5, 1.0])
    text, paths = write_report(tmp_path, runs, results, ["tiny"], targets, "WER",
                               [0.1, 0.2, 0.5, 1.0], 0.2)
    assert "diff beats vanilla: **holds**" in text
    assert "random is worst (Table III): **holds**" in text
    assert "union >= diff (lower or equal error): **holds**" in text
    assert "(chosen on dev): **holds** (best: a 0.2, b 0.2)" in text
    for stem in ("table2", "table3", "table4"):
        assert (tmp_path / "report" / f"{stem}.md").is_file()
        assert (tmp_path / "report" / f"{stem}.csv").read_text().count("\n") > 2
    assert (tmp_path / "report" / "fig3_trainable_fraction.png").stat().st_size > 0
    assert paths["masks"] is None  # no mask.pt files here


def test_reproduce_cli_rejects_bad_arguments(capsys):
    sys.path.insert(0, "tools")
    import reproduce

    for argv in (["--preset", "paper"], ["--fractions", "1.5"], ["--set", "novalue"],
                 ["--methods", "magic"]):
        with pytest.raises(SystemExit) as error:
            reproduce.parse_arguments(argv)
        assert error.value.code == 2
    assert "--preset paper is not a preset of the synthetic recipe" in (
        capsys.readouterr().err)


@pytest.mark.parametrize("recipe, preset", [("synthetic", "micro"),
                                            ("synthetic", "tiny"),
                                            ("synthetic", "small"),
                                            ("tibetan", "paper")])
def test_every_override_names_a_key_of_its_yaml(recipe, preset):
    """A matrix whose runs would die on 'Override not found' is caught here."""
    sys.path.insert(0, "tools")
    import reproduce

    spec, settings = reproduce.RECIPES[recipe], reproduce.PRESETS[(recipe, preset)]
    runs = build_matrix(settings["sizes"], spec["source"], spec["targets"],
                        fractions=settings["fractions"])
    used = set()
    for run in runs:
        yaml_file = spec["folder"] / "hparams" / run.hparams
        known = reproduce.top_level_keys(yaml_file)
        unknown = set(run.overrides) - known
        assert not unknown, f"{yaml_file.name}: {sorted(unknown)}"
        assert "output_folder" in known
        stage = settings["pretrain"] if run.method == "pretrain" else (
            settings["finetune"])
        used |= (set(settings["common"]) | set(stage)) & known
    # a preset key no YAML of the matrix has is a typo the filter would hide
    preset_keys = set(settings["common"]) | set(settings["pretrain"]) | set(
        settings["finetune"])
    assert preset_keys <= used, sorted(preset_keys - used)
