"""The Dynamic ASR Pathways recipe on ``ml_micro`` (French and Dutch), for real.

A smoke test runs three stages in-process on a width-32 model (dense
multilingual -> LAP -> dynamic pathways from LAP-50) and checks what each
writes; the slow test runs ``tools/reproduce_pathways.py --preset micro``, the
whole matrix, and checks that the tables are the runs' own ``results.json``
and that the claims come with their bootstrap intervals.
"""

import csv
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import torch

from speechbrain_sparse.data.languages import get_language
from speechbrain_sparse.data.synth import build_multilingual_corpus
from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.masks import ParameterMask
from speechbrain_sparse.pruning.pathways import PathwayMasks
from tests.conftest import load_recipe_module
from tests.recipe_checks import TINY_MODEL

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "SyntheticMultilingual" / "ASR" / "pathways"
sys.path.insert(0, str(REPO / "tools"))

import reproduce_pathways  # noqa: E402


@pytest.fixture(scope="module")
def ml_micro(tmp_path_factory):
    """French and Dutch, what the micro preset builds."""
    if not shutil.which("espeak-ng") or not all(
        Path(get_language(code).path).exists() for code in ("fr", "nl")
    ):
        pytest.skip("needs espeak-ng, manpages-fr and manpages-nl")
    try:
        return build_multilingual_corpus(tmp_path_factory.mktemp("ml") / "micro")
    except UserInputError as error:  # e.g. a text package without its pages
        pytest.skip(f"the ml_micro corpus cannot be built here: {error}")


def run_stage(name, corpus, output_folder, *overrides):
    """One stage of the recipe in-process, width-32 model, test sets only."""
    train = load_recipe_module(RECIPE)
    return train.main([str(RECIPE / "hparams" / name), f"--data_folder={corpus}",
                       "--corpus_preset=ml_micro", "--corpus_languages=[fr, nl]",
                       f"--output_folder={output_folder}", "--eval_splits=[test]",
                       "--decoding=ctc_greedy", "--device=cpu", "--noprogressbar",
                       *TINY_MODEL, *overrides])


def test_dense_lap_dynamic_pathways_smoke(ml_micro, tmp_path):
    dense = tmp_path / "dense_multi"
    results = run_stage("dense_multi_tiny.yaml", ml_micro, dense,
                        "--number_of_epochs=1", "--n_warmup_steps=5")
    assert set(results) == {"fr_test", "nl_test"}  # each language, oracle ID
    merged = (dense / "manifests" / "train.csv").read_text().splitlines()
    assert len(merged) == 1 + 60 + 60  # both languages' training sets

    model = ["--pretrained_dir", str(dense / "model")]
    lap = tmp_path / "lap"
    results = run_stage("lap_tiny.yaml", ml_micro, lap, *model, "--prune_interval=1")
    masks = [ParameterMask.load(lap / "masks" / f"s{s}.pt") for s in (0.2, 0.5, 0.7)]
    numel = masks[0].numel()
    assert [m.num_selected() for m in masks] == [numel - round(s * numel)
                                                 for s in (0.2, 0.5, 0.7)]
    assert all((later - earlier).num_selected() == 0
               for earlier, later in zip(masks, masks[1:]))  # nested
    state = torch.load(lap / "model" / "model.ckpt")
    assert all(not state[name][~keep].any() for name, keep in masks[-1].items())
    info = json.loads((lap / "pathways_info.json").read_text())
    assert info["sparsity"] == 0.7 and info["optimizer_steps"] == 3

    dynamic = tmp_path / "dynamic"
    results = run_stage("dynamic_pathways_tiny.yaml", ml_micro, dynamic, *model,
                        "--pathway_init=lap", f"--init_folder={lap}",
                        "--init_level=0.5", "--prune_interval=2", "--rerank_every=1",
                        "--num_intervals=1")
    assert set(results) == {"fr_test", "nl_test"}
    pathways = PathwayMasks.load(dynamic / "pathways")
    for language in ("fr", "nl"):  # each pathway exactly at the target
        assert pathways[language].num_selected() == numel - round(0.7 * numel)
        assert (dynamic / f"utterances_{language}_test.csv").is_file()
    state = torch.load(dynamic / "model" / "model.ckpt")
    assert all(not state[name][unused].any()
               for name, unused in pathways.unused().items())  # in no pathway: 0


def _rows(path):
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow  # the whole micro matrix: 21 runs
def test_micro_reproduction_reports_the_runs(ml_micro, tmp_path, capsys):
    out = tmp_path / "reproduce"
    argv = ["--preset", "micro", "--out", str(out), "--set", f"data_folder={ml_micro}",
            "--workers", "2", "--threads", "2", "--no-progress"]
    assert reproduce_pathways.main(argv) == 0
    assert "[pathways] 21 finished in" in capsys.readouterr().out
    report = out / "report"
    table1 = {row["Model"]: row for row in _rows(report / "table1.csv")}
    for model, run in (("Dense multi", "dense_multi"), ("LAP", "lap"),
                       ("ASR Pathways (LTH-70%)", "pathways_lth70_fr+nl")):
        results = json.loads((out / run / "results.json").read_text())
        for language in ("fr", "nl"):
            assert float(table1[model][language]) == pytest.approx(
                results[f"{language}_test"]["WER"])
            assert float(table1[model][f"CER {language}"]) == pytest.approx(
                results[f"{language}_test"]["CER"])
    imp_nl = json.loads((out / "imp_nl" / "results.json").read_text())
    assert float(table1["IMP"]["nl"]) == pytest.approx(imp_nl["nl_test"]["WER"])
    assert len(_rows(report / "table2.csv")) == 8
    assert len(_rows(report / "table3.csv")) == 2
    text = (report / "report.md").read_text()
    verdict = r"\*\*(holds|does not hold|not resolved)"
    for claim in ("adaptive masking beats fixed masks", "dynamic pathways from "
                  "LTH-50 is the best of Table 2", "LAP hurts the language farthest"):
        assert re.search(re.escape(claim) + r".*: " + verdict, text), claim
    assert re.search(r"Δ WER [+-][0-9.]+, 95 % CI \[[+-][0-9.]+, [+-][0-9.]+\]", text)
    assert (report / "jaccard_lth70.png").is_file()
    assert (report / "jaccard_dynamic.png").is_file()
