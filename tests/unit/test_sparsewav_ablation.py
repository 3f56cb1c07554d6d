"""The SparseWAV ablation plan, tables and claims (no training)."""

import csv

from speechbrain_sparse.pruning.ablation import (
    TABLE_ROWS,
    ablation_runs,
    claims,
    write_tables,
)


def test_plan_covers_table1_and_fig1_with_matching_epochs():
    runs = ablation_runs(0.75, [0.5, 0.9], [0.55, 0.65, 0.75], 3,
                         {0.9: [0.7, 0.8, 0.9]}, needs=("pretrain",),
                         hparams="prune_obs_small.yaml")
    by_name = {run.name: run for run in runs}
    assert [n for n in by_name if n.startswith("table/")] == [
        f"table/{row}" for row in TABLE_ROWS]
    assert by_name["table/dense"].overrides["prune_sparsities"] == [0.0]
    assert by_name["table/dense_finetuned"].overrides["number_of_epochs"] == 3
    assert by_name["table/magnitude"].overrides["prune_method"] == "magnitude"
    assert by_name["table/obs_uniform"].overrides["mixed_sparsity"] is False
    assert by_name["table/obs_mixed"].overrides["saliency"] == "obs"
    assert by_name["table/obs_mixed_improved"].overrides["number_of_epochs"] == 0
    progressive = by_name["table/progressive"].overrides
    assert progressive["prune_sparsities"] == [0.55, 0.65, 0.75]
    assert progressive["number_of_epochs"] == 1  # 3 epochs over 3 rounds
    assert by_name["fig1/s0.9_progressive"].overrides["prune_sparsities"] == [
        0.7, 0.8, 0.9]
    assert by_name["fig1/s0.5_oneshot"].overrides["number_of_epochs"] == 0
    assert {run.needs for run in runs} == {("pretrain",)}
    assert {run.hparams for run in runs} == {"prune_obs_small.yaml"}


def test_claims_compare_test_wer_and_say_when_a_run_is_missing():
    records = {"table/magnitude": {"test": 90.0}, "table/obs_uniform": {"test": 85.0},
               "table/obs_mixed": {"test": 86.0}, "table/finetuned": {"test": 73.5},
               "table/dense_finetuned": {"test": 73.0},
               "table/progressive": {"test": 73.2}}
    verdicts = {claim: holds for claim, holds, _ in claims(records)}
    assert verdicts["OBS (uniform) beats uniform magnitude pruning"] is True
    assert verdicts["mixed sparsity helps (OBS)"] is False
    assert verdicts["the improved saliency helps"] is None
    assert [v for c, v in verdicts.items() if "within 1 WER point" in c] == [True]
    assert verdicts["progressive beats one-pass fine-tuning"] == "inconclusive"


def test_tables_leave_missing_runs_empty(tmp_path):
    records = {"table/dense": {"dev": 70.0, "test": 72.0, "sparsity": 0.0},
               "fig1/s0.5_oneshot": {"test": 75.0}}
    text = write_tables(tmp_path, records, 0.75, [0.5], rows=["dense", "magnitude"])
    with open(tmp_path / "table1.csv", newline="") as handle:
        table = list(csv.reader(handle))
    assert table[1] == ["dense (not pruned)", "0.00", "70.00", "72.00"]
    assert table[2] == ["magnitude (uniform)", "", "", ""]
    with open(tmp_path / "fig1.csv", newline="") as handle:
        assert list(csv.reader(handle))[1:] == [["0", "72.00", "72.00", ""],
                                                ["50", "75.00", "", ""]]
    assert (tmp_path / "fig1_wer_vs_sparsity.png").stat().st_size > 0
    assert "**not measured**" in text
