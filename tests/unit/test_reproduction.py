"""The reproduction tool's matrix, runner (on a fake recipe), tables and report."""

import json
import sys
import textwrap
import zlib

import numpy as np
import pytest

from speechbrain_sparse.reproduction.bootstrap import read_utterance_errors
from speechbrain_sparse.reproduction.claims import Evidence, check_claims
from speechbrain_sparse.reproduction.plan import (
    SEEDABLE,
    build_matrix,
    sweep_run_name,
)
from speechbrain_sparse.reproduction.report import write_report
from speechbrain_sparse.reproduction.runner import MatrixRunner, summarize_status
from speechbrain_sparse.reproduction.tables import method_rows, table2, write_table

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


def test_seed_runs_of_vanilla_and_diff_take_masks_from_their_own_seed():
    runs = build_matrix(["tiny"], "src", ["a", "b"], fractions=[0.1, 0.2, 1.0],
                        seeds=3, out_of=lambda n: f"/out/{n}")
    by_name = {run.name: run for run in runs}
    seeded = sorted(n for n in by_name if "_s" in n.rsplit("/", 1)[1])
    assert seeded == [f"tiny/{t}/{m}_s{k}" for t in "ab" for m in ("diff", "vanilla")
                      for k in (2, 3)]
    diff3 = by_name["tiny/a/diff_s3"]
    assert diff3.needs == ("tiny/pretrain", "tiny/a/vanilla_s3")
    assert diff3.overrides["finetuned_dir"] == "/out/tiny/a/vanilla_s3/model"
    assert diff3.overrides["seed"] == 3 and diff3.seed == 3
    assert diff3.method == "diff" and diff3.density == 0.2
    assert "seed" not in by_name["tiny/a/diff"].overrides  # seed 1: the YAML's
    assert by_name["tiny/a/vanilla_s2"].overrides["seed"] == 2
    position = {run.name: i for i, run in enumerate(runs)}
    assert all(position[need] < position[run.name] for run in runs
               for need in run.needs)
    # diff's seeds imply vanilla's; methods not asked for get no seed runs
    names = [r.name for r in build_matrix(["tiny"], "src", ["a"],
                                          methods=["diff", "topk"], seeds=2,
                                          seed_methods=["diff"])]
    assert names[-2:] == ["tiny/a/vanilla_s2", "tiny/a/diff_s2"]
    names = [r.name for r in build_matrix(["tiny"], "src", ["a"], methods=["topk"],
                                          seeds=2)]
    assert names == ["tiny/pretrain", "tiny/a/topk"]
    union = build_matrix(["tiny"], "src", ["a"], methods=["union_diff30_topk10"],
                         seeds=2, seed_methods=["union_diff30_topk10"])[-1]
    assert union.name == "tiny/a/union_diff30_topk10_s2"
    assert union.needs == ("tiny/pretrain", "tiny/a/vanilla_s2")
    with pytest.raises(ValueError, match="cannot be run with several seeds"):
        build_matrix(["tiny"], "src", ["a"], seeds=2, seed_methods=["sweep"])
    with pytest.raises(ValueError, match="at least 1"):
        build_matrix(["tiny"], "src", ["a"], seeds=0)


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


def test_seed_runs_give_mean_and_std_cells(tmp_path):
    results = fake_results(["a"], {("vanilla", "tiny"): 20.0,
                                   ("vanilla_s2", "tiny"): 24.0,
                                   ("diff", "tiny"): 10.0})
    rows = method_rows(results, "tiny", ["a"],
                       [("vanilla", "vanilla"), ("diff", "diff")], "WER")
    assert rows[0]["a dev"] == pytest.approx(22.0)
    assert rows[0]["a dev std"] == pytest.approx(np.std([20, 24], ddof=1))
    assert rows[0]["Avg"] == pytest.approx(23.0)  # seeds' Avg: 21 and 25
    assert rows[0]["Avg std"] == pytest.approx(np.std([21, 25], ddof=1))
    assert rows[1]["Avg"] == pytest.approx(11.0) and rows[1]["Avg std"] is None
    markdown = write_table(rows, ["Method", "a dev", "Avg"], tmp_path / "t", "T")
    assert "| vanilla | 22.00 ± 2.83 | 23.00 ± 2.83 |" in markdown
    assert "| diff | 10.00 | 11.00 |" in markdown
    csv_lines = (tmp_path / "t.csv").read_text().splitlines()
    assert csv_lines[0] == "Method,a dev,a dev std,Avg,Avg std"
    assert csv_lines[2] == "diff,10.0,,11.0,"
    # a seed run of the matrix that did not finish: no mean over fewer seeds
    results["tiny/a/vanilla_s3"] = None
    rows = method_rows(results, "tiny", ["a"], [("vanilla", "vanilla")], "WER")
    assert rows[0]["a dev"] is None and rows[0]["Avg"] is None


def write_utterances(out, results, rates, split="test", utterances=200):
    """Each run's ``utterances_<target>_<split>.csv``: 10 tokens per utterance,
    binomial errors at the run's WER (its own noise, seeded by its name)."""
    for name, value in rates.items():
        target = name.split("/")[1]
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        errors = rng.binomial(10, value / 100, size=utterances)
        lines = ["ID,wer_errors,wer_tokens,cer_errors,cer_tokens"] + [
            f"{target}-{i},{e},10,{e},40" for i, e in enumerate(errors)]
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"utterances_{target}_{split}.csv").write_text("\n".join(lines))
        results.setdefault(name, {})


def test_report_checks_the_papers_claims(tmp_path):
    targets = ["a", "b"]
    values = {(m, "tiny"): v for m, v in [
        ("vanilla", 30.0), ("fisher", 29.0), ("diff", 25.0), ("topk", 31.0),
        ("random", 40.0), ("adapter", 35.0), ("union_diff30_topk10", 25.0),
        ("diff_d0.1", 26.0), ("diff_d0.5", 28.0)]}
    results = fake_results(targets, values)
    write_utterances(tmp_path, results, {f"{s}/{t}/{m}": v for (m, s), v in
                                         values.items() for t in targets})
    runs = build_matrix(["tiny"], "src", targets, fractions=[0.1, 0.2, 0.5, 1.0])
    text, paths = write_report(tmp_path, runs, results, ["tiny"], targets, "WER",
                               [0.1, 0.2, 0.5, 1.0], 0.2)
    assert "diff beats vanilla: **holds** (Δ WER -" in text
    assert ("P(diff better) 1.00: diff - vanilla on the test sets of 2 targets, "
            "400 utterances, 1 seed; table Avg 26.00 vs 31.00)") in text
    assert "significantly better than random): **holds** (vanilla Δ WER -" in text
    assert "each method - random on the test sets of 2 targets, 400 utterances)" in text
    assert "union >= diff: **not resolved (within noise)** (Δ WER " in text
    assert "(chosen on dev): **holds** (best: a 0.2, b 0.2)" in text
    assert "the dev-chosen fractions beat 1.0 (vanilla) on test: **holds**" in text
    assert text.count("95 % CI [") == 1 + 4 + 1 + 1
    for stem in ("table2", "table3", "table4"):
        assert (tmp_path / "report" / f"{stem}.md").is_file()
        assert (tmp_path / "report" / f"{stem}.csv").read_text().count("\n") > 2
    assert (tmp_path / "report" / "fig3_trainable_fraction.png").stat().st_size > 0
    assert paths["masks"] is None  # no mask.pt files here


def test_claims_say_what_does_not_hold_and_what_is_missing(tmp_path):
    targets = ["a", "b"]
    rates = {"vanilla": 25.0, "diff": 32.0, "random": 30.0, "topk": 30.5,
             "adapter": 45.0, "union_diff30_topk10": 40.0}
    results = {}
    write_utterances(tmp_path, results, {f"tiny/{t}/{m}": v for m, v in rates.items()
                                         for t in targets})
    del results["tiny/b/topk"]  # not finished
    rows3 = [{"Method": m, "Avg": None} for m in
             ("vanilla", "topk", "random", "adapter", "diff")]
    evidence = Evidence(tmp_path, results, "tiny", targets, "WER")
    text = check_claims(evidence, rows3, [], {"a": 1.0, "b": 1.0}, 0.2)
    assert "diff beats vanilla: **does not hold** (Δ WER +" in text
    assert "random): **does not hold** (" in text  # adapter is worse than random
    assert "topk: n/a: tiny/b/topk has no results" in text
    assert "union >= diff: **does not hold (union significantly worse)**" in text
    assert "(chosen on dev): **does not hold** (best: a 1, b 1)" in text
    assert "(the best fraction is 1.0, vanilla itself)" in text
    (tmp_path / "tiny/a/diff/utterances_a_test.csv").unlink()
    text = check_claims(evidence, rows3, [], {}, 0.2)
    assert ("diff beats vanilla: **n/a** (n/a: no per-utterance errors "
            "tiny/a/diff/utterances_a_test.csv;") in text
    assert "best trainable fraction in 10-30 %: **n/a (runs missing)**" in text


def test_claims_average_the_seed_runs_per_utterance(tmp_path):
    rates = {"tiny/a/vanilla": 30.0, "tiny/a/vanilla_s2": 31.0,
             "tiny/a/vanilla_s3": 29.0, "tiny/a/diff": 20.0, "tiny/a/diff_s2": 22.0,
             "tiny/a/diff_s3": 21.0}
    results = {}
    write_utterances(tmp_path, results, rates)
    evidence = Evidence(tmp_path, results, "tiny", ["a"], "WER")
    sets, seeds = evidence.counts("diff")
    assert seeds == 3 and len(sets) == 1 and len(sets[0]) == 200
    three = [read_utterance_errors(tmp_path / f"tiny/a/{label}/utterances_a_test.csv")
             for label in ("diff", "diff_s2", "diff_s3")]
    assert sets[0]["a-7"][0] == pytest.approx(sum(c["a-7"][0] for c in three) / 3)
    comparison, said = evidence.compare("vanilla", "diff")
    assert comparison.outcome() == "better"
    assert said.endswith("200 utterances, 3 seeds each")


def test_reproduce_cli_rejects_bad_arguments(capsys):
    sys.path.insert(0, "tools")
    import reproduce

    for argv in (["--preset", "paper"], ["--fractions", "1.5"], ["--set", "novalue"],
                 ["--methods", "magic"], ["--seeds", "0"],
                 ["--seed-methods", "sweep"], ["--seeds", "3", "--set", "seed=5"]):
        with pytest.raises(SystemExit) as error:
            reproduce.parse_arguments(argv)
        assert error.value.code == 2
    err = capsys.readouterr().err
    assert "--preset paper is not a preset of the synthetic recipe" in err
    assert "would give every seed run the same seed" in err
    assert reproduce.parse_arguments(["--preset", "tiny"]).seeds == 3
    assert reproduce.parse_arguments(["--preset", "micro"]).seeds == 1
    args = reproduce.parse_arguments(["--preset", "tiny", "--seeds", "1", "--set",
                                      "seed=5"])
    assert args.seeds == 1 and args.seed_methods == ["vanilla", "diff"]


@pytest.mark.parametrize("recipe, preset", [("synthetic", "micro"),
                                            ("synthetic", "tiny"),
                                            ("synthetic", "small"),
                                            ("synthetic-multilingual", "micro"),
                                            ("synthetic-multilingual", "tiny"),
                                            ("tibetan", "paper")])
def test_every_override_names_a_key_of_its_yaml(recipe, preset):
    """A matrix whose runs would die on 'Override not found' is caught here."""
    sys.path.insert(0, "tools")
    import reproduce

    spec, settings = reproduce.RECIPES[recipe], reproduce.PRESETS[(recipe, preset)]
    runs = build_matrix(settings["sizes"], spec["source"], spec["targets"],
                        fractions=settings["fractions"], seeds=2,
                        seed_methods=SEEDABLE)  # every seed run sets `seed`
    used = set()
    for run in runs:
        yaml_file = spec["folder"] / "hparams" / run.hparams
        known = reproduce.top_level_keys(yaml_file)
        overrides = set(run.overrides)
        if spec.get("languages"):  # the corpus's languages, given to every run
            overrides |= set(reproduce.language_overrides(
                spec["source"], spec["targets"], spec["targets"],
                run.method == "pretrain"))
        unknown = overrides - known
        assert not unknown, f"{yaml_file.name}: {sorted(unknown)}"
        assert "output_folder" in known
        stage = settings["pretrain"] if run.method == "pretrain" else (
            settings["finetune"])
        used |= (set(settings["common"]) | set(stage)) & known
    # a preset key no YAML of the matrix has is a typo the filter would hide
    preset_keys = set(settings["common"]) | set(settings["pretrain"]) | set(
        settings["finetune"])
    assert preset_keys <= used, sorted(preset_keys - used)
