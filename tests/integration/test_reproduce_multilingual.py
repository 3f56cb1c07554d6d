"""``tools/reproduce.py --recipe synthetic-multilingual`` end to end on ``ml_micro``.

Cross-lingual sparse fine-tuning: pretraining on French (with a tokenizer that
also learnt the Dutch training text), then vanilla and diff fine-tuning on
Dutch, for real (1-2 epochs). The tables' cells must be the runs' own
``results.json``, and the diff-vs-vanilla claim must come with its bootstrap
interval.
"""

import csv
import json
import re
import shutil
import sys
from pathlib import Path

import pytest
import sentencepiece

from speechbrain_sparse.data.languages import get_language
from speechbrain_sparse.data.synth import build_multilingual_corpus

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))

import reproduce  # noqa: E402

SCORES = ("nl dev", "nl test", "Avg")


@pytest.fixture(scope="module")
def ml_micro(tmp_path_factory):
    """French and Dutch, what the recipe's micro preset builds."""
    if not shutil.which("espeak-ng") or not all(
        Path(get_language(code).path).exists() for code in ("fr", "nl")
    ):
        pytest.skip("needs espeak-ng, manpages-fr and manpages-nl")
    return build_multilingual_corpus(tmp_path_factory.mktemp("ml") / "micro")


def _rows(path):
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow  # ~1.5 min on 2 cores (corpus ~10 s, 3 runs)
def test_crosslingual_micro_reproduction_reports_the_runs(ml_micro, tmp_path, capsys):
    out = tmp_path / "reproduce"
    argv = ["--recipe", "synthetic-multilingual", "--preset", "micro", "--methods",
            "vanilla", "diff", "--out", str(out), "--set", f"data_folder={ml_micro}",
            "--workers", "1", "--no-progress"]
    assert reproduce.main(argv) == 0
    assert "[reproduce] 3 finished in" in capsys.readouterr().out

    # one tokenizer, learnt at pretraining from the French and the Dutch text
    pretrain = out / "tiny" / "pretrain"
    tokenizer = sentencepiece.SentencePieceProcessor(
        model_file=str(pretrain / "model" / "tokenizer.model"))
    dutch = [row["wrd"] for row in _rows(ml_micro / "nl" / "train.csv")]
    assert tokenizer.unk_id() not in {i for text in dutch
                                      for i in tokenizer.encode(text)}
    results = json.loads((pretrain / "results.json").read_text())
    assert set(results) == {"fr_test", "nl_test"}  # the source, the target zero-shot

    report = out / "report"
    tables = {name: _rows(report / f"{name}.csv")
              for name in ("table2", "table3", "table4")}
    assert list(tables["table3"][0]) == ["Method", *SCORES, "trainable %"]
    for method in ("vanilla", "diff"):
        results = json.loads((out / f"tiny/nl/{method}/results.json").read_text())
        assert set(results) == {"nl_dev", "nl_test"}
        dev, test = results["nl_dev"]["WER"], results["nl_test"]["WER"]
        for name, table in tables.items():  # every table's cells are the run's own
            (row,) = [row for row in table if row["Method"] == method]
            cells = [float(row[column]) for column in SCORES]
            assert cells == pytest.approx([dev, test, (dev + test) / 2]), name
    (diff,) = [row for row in tables["table3"] if row["Method"] == "diff"]
    assert float(diff["trainable %"]) == pytest.approx(20.0, abs=0.01)
    claim = re.search(r"- diff beats vanilla: \*\*(holds|does not hold|not resolved)"
                      r"\*\* \(Δ WER ([+-][0-9.]+), 95 % CI \[([+-][0-9.]+), "
                      r"([+-][0-9.]+)\].*on the test sets of 1 target",
                      (report / "report.md").read_text())
    assert claim, "no bootstrap interval for diff vs vanilla in report.md"
    assert float(claim.group(3)) <= float(claim.group(4))
