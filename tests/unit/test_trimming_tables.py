"""Tables I-II and claims of the trimming reproduction, on hand-made runs."""

import pytest

from speechbrain_sparse.fileio import write_csv_atomic
from speechbrain_sparse.reproduction import trimming_tables as tables
from tests.conftest import REPO, load_recipe_module


def run(tmp_path, task, kind, score, errors, fraction=0.0, threshold=None):
    """A record and its utterances CSV (``errors``: 0/1 per utterance)."""
    folder = tmp_path / f"{task}_{kind}_{threshold}"
    rows = [{"ID": f"u{i}", "err_errors": e, "err_tokens": 1}
            for i, e in enumerate(errors)]
    write_csv_atomic(folder / f"utterances_{task}_test.csv", rows,
                     ["ID", "err_errors", "err_tokens"])
    return {"task": task, "kind": kind, "score": score, "fraction": fraction,
            "threshold": threshold, "folder": folder}


@pytest.fixture
def records(tmp_path):
    good = [0] * 160 + [1] * 40            # ACC 0.80
    same = [0] * 158 + [1] * 42            # ACC 0.79
    bad = [1] * 120 + [0] * 80             # ACC 0.40
    return [run(tmp_path, "dialect_id", "base", 0.80, good),
            run(tmp_path, "dialect_id", "ssf", 0.80, good),
            run(tmp_path, "dialect_id", "trim", 0.79, same, 0.27, 0.6),
            run(tmp_path, "dialect_id", "trim", 0.40, bad, 0.71, 0.3),
            run(tmp_path, "dialect_id", "scratch", 0.40, bad, 0.27, 0.6)]


def test_table_one_takes_the_nearest_runs_and_the_best_within_5_percent(records):
    text, rows = tables.table_one(records, ["dialect_id"])
    row = rows[0]
    assert row["ours25"] == "0.790 (27 %)" and row["ours75"] == "0.400 (71 %)"
    assert row["ours50"] == "0.400 (71 %)"  # |0.71 - 0.5| < |0.27 - 0.5|
    assert row["scratch25"] == "0.400 (27 %)"
    assert row["best_trim_pct"] == "27.0" and row["best_score"] == "0.790"
    assert text.splitlines()[2].startswith("| dialect_id | ACC | 0.800 | 0.800 |")


def test_claims_are_judged_by_paired_bootstraps(records):
    verdicts = {claim: ok for claim, ok, _ in tables.claims(records, ["dialect_id"])}
    assert verdicts["dialect_id: trimming 27 % is not worse than Base"]
    assert verdicts["dialect_id: trimming beats Scratch at 27 %"]
    assert verdicts["dialect_id: SSF is not worse than trimming 27 %"]


def test_within_drop_follows_the_metric_direction():
    assert tables.within_drop(10.4, 10.0, "asr") and not tables.within_drop(
        10.6, 10.0, "asr")
    assert tables.within_drop(0.77, 0.80, "speaker_id") and not tables.within_drop(
        0.75, 0.80, "speaker_id")


def test_table_two_ratio_and_a_bad_target_is_refused(capsys):
    costs = {"base": {"params": 100, "mb": 0.4, "gflops": 2.0, "gmacs": 1.0},
             "trim": {"params": 50, "mb": 0.2, "gflops": 1.0, "gmacs": 0.5,
                      "speedup": 1.8}}
    assert "| trim | 50 | 0.20 | 1.000 | 0.500 | x1.80 | 0.90 |" in tables.table_two(
        costs)
    tool = load_recipe_module(REPO / "tools", "reproduce_structured")
    with pytest.raises(SystemExit) as stopped:
        tool.parse_arguments(["--paper", "l0", "--target", "1.0"])
    assert stopped.value.code == 2
    assert "--target 1.0: must lie in [0, 1)" in capsys.readouterr().err


def test_l0_tables_count_whole_blocks_and_judge_the_target():
    import torch

    from speechbrain_sparse.reproduction import l0_tables

    mask = {"l0.attention:head_qk_dim": torch.zeros(4, dtype=torch.bool),
            "l0.attention:head_vo_dim": torch.zeros(4, dtype=torch.bool),
            "l0.feed_forward:ffn": torch.tensor([True]),
            "l0.feed_forward:ffn_unit": torch.tensor([True, False]),
            "l1.attention:mha": torch.tensor([True]),
            "l1.feed_forward:ffn": torch.tensor([False])}
    assert l0_tables.removed_blocks(mask) == {"mha": 1, "ffn": 1}
    runs = {"proposed": {"achieved_sparsity": 0.795, "target_sparsity": 0.8},
            "no_ste": {"achieved_sparsity": 0.77, "target_sparsity": 0.8}}
    verdicts = {c: ok for c, ok, _ in l0_tables.claims([], runs, {}, {})}
    assert verdicts == {
        "Proposed (FAHP + STE): achieved sparsity within 1 % of the target": True,
        "w/o STE: achieved sparsity within 1 % of the target": False}
