"""``tools/reproduce.py`` end to end on the micro corpus: two methods, one target.

Pretraining, vanilla and diff fine-tuning run for real (1-2 epochs); the table
cells must be the runs' own results, the diff-vs-vanilla claim must come with
its bootstrap interval, and the second invocation must run nothing and give
the same tables.
"""

import csv
import json
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))

import reproduce  # noqa: E402

SCORES = ("en-029 dev", "en-029 test", "Avg")


@pytest.mark.slow  # ~1.5 min on 2 cores; test_reproduction covers the parts fast
def test_micro_reproduction_runs_once_and_reports(micro_corpus, tmp_path, capsys):
    out = tmp_path / "reproduce"
    argv = ["--preset", "micro", "--methods", "vanilla", "diff", "--targets",
            "en-029", "--out", str(out), "--set", f"data_folder={micro_corpus}",
            "--no-progress"]
    assert reproduce.main(argv) == 0
    first = capsys.readouterr().out
    assert "[reproduce] 3 finished in" in first
    status = json.loads((out / "status.json").read_text())
    assert {record["status"] for record in status.values()} == {"finished"}

    report = out / "report"
    table3 = (report / "table3.csv").read_text().splitlines()
    assert table3[0] == "Method,en-029 dev,en-029 test,Avg,trainable %"
    rows = {line.split(",")[0]: line.split(",") for line in table3[1:]}
    tables = {name: list(csv.DictReader((report / f"{name}.csv").read_text()
                                        .splitlines()))
              for name in ("table2", "table3", "table4")}
    for method in ("vanilla", "diff"):
        results = json.loads((out / f"tiny/en-029/{method}/results.json").read_text())
        assert set(results) == {"en-029_dev", "en-029_test"}
        dev, test = results["en-029_dev"]["WER"], results["en-029_test"]["WER"]
        for name, table in tables.items():  # every table's cells are the run's own
            (row,) = [row for row in table if row["Method"] == method]
            cells = [float(row[column]) for column in SCORES]
            assert cells == pytest.approx([dev, test, (dev + test) / 2]), name
        for split in ("dev", "test"):
            assert (out / f"tiny/en-029/{method}/utterances_en-029_{split}.csv"
                    ).is_file()
    assert float(rows["diff"][4]) == pytest.approx(20.0, abs=0.01)  # mask density
    for name, table in tables.items():  # not in this matrix: left empty, never invented
        for row in table:
            if row["Method"] not in ("vanilla", "diff"):
                assert [row[column] for column in SCORES] == ["", "", ""], name
    assert (report / "fig3_trainable_fraction.png").stat().st_size > 0
    assert (report / "diff_masks_by_dialect.png").stat().st_size > 0
    claim = re.search(r"- diff beats vanilla: \*\*(holds|does not hold|not resolved)"
                      r"\*\* \(Δ WER ([+-][0-9.]+), 95 % CI \[([+-][0-9.]+), "
                      r"([+-][0-9.]+)\].*on the test sets of 1 target",
                      (report / "report.md").read_text())
    assert claim, "no bootstrap interval for diff vs vanilla in report.md"
    difference, low, high = (float(claim.group(i)) for i in (2, 3, 4))
    assert low <= high
    test_cells = float(rows["diff"][2]) - float(rows["vanilla"][2])
    assert difference == pytest.approx(test_cells, abs=0.01)  # same test set

    logs = {p: p.stat().st_mtime for p in (out / "logs").iterdir()}
    assert reproduce.main(argv) == 0
    second = capsys.readouterr().out
    assert "[reproduce] 3 reused in" in second
    assert {p: p.stat().st_mtime for p in (out / "logs").iterdir()} == logs
    assert (report / "table3.csv").read_text().splitlines() == table3
