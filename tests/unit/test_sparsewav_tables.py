"""The SparseWAV ablation plan, tables and claims (no training)."""

import csv

import numpy as np

from speechbrain_sparse.reproduction.sparsewav_tables import (
    TABLE_ROWS,
    ablation_runs,
    claims,
    utterance_counts,
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


def fake_counts(wer, utterances=400, seed=0):
    """Per-utterance test errors at about ``wer`` %: 10 tokens each, binomial."""
    errors = np.random.default_rng(seed).binomial(10, wer / 100, size=utterances)
    return {f"u{i}": (int(e), 10) for i, e in enumerate(errors)}


def test_claims_bootstrap_test_wer_and_say_when_a_run_is_missing():
    wers = {"table/magnitude": 90.0, "table/obs_uniform": 80.0,
            "table/obs_mixed": 86.0, "table/dense_finetuned": 73.0}
    counts = {name: fake_counts(wer, seed=i) for i, (name, wer) in
              enumerate(wers.items())}
    dense = counts["table/dense_finetuned"]
    # pruned + fine-tuned: the dense model's errors plus one every 20 utterances
    # (+0.5 point, all but certainly less than +1)
    counts["table/finetuned"] = {k: (e + (i % 20 == 0), n) for i, (k, (e, n))
                                 in enumerate(dense.items())}
    # progressive: one error more on some utterances, one fewer on as many
    counts["table/progressive"] = {k: (max(0, e + (i % 4 == 0) - (i % 4 == 1)), n)
                                   for i, (k, (e, n)) in
                                   enumerate(counts["table/finetuned"].items())}
    records = {name: {"test": 1.0} for name in counts}
    records["table/obs_mixed_improved"] = {"test": 80.0}  # no per-utterance file
    found = claims(records, counts)
    verdicts = {claim: holds for claim, holds, _ in found}
    evidence = {claim: said for claim, _, said in found}
    obs = "OBS (uniform) beats uniform magnitude pruning"
    assert verdicts[obs] is True
    assert "95 % CI [" in evidence[obs] and "400 utterances" in evidence[obs]
    assert verdicts["mixed sparsity helps (OBS)"] is False
    assert verdicts["the improved saliency helps"] is None
    assert evidence["the improved saliency helps"] == (
        "no per-utterance errors for table/obs_mixed_improved")
    within = [c for c in verdicts if "within 1 WER point" in c]
    assert [verdicts[c] for c in within] == [True]  # CI below +1 point
    assert verdicts["progressive beats one-pass fine-tuning"] == "inconclusive"
    del records["table/progressive"], counts["table/progressive"]
    found = {claim: said for claim, _, said in claims(records, counts)}
    assert found["progressive beats one-pass fine-tuning"] == "missing run"


def test_the_within_claim_fails_when_surely_more_than_a_point_worse():
    records = {"table/finetuned": {"test": 80.0},
               "table/dense_finetuned": {"test": 70.0}}
    counts = {"table/finetuned": fake_counts(80.0, seed=1),
              "table/dense_finetuned": fake_counts(70.0, seed=2)}
    verdicts = {claim: holds for claim, holds, _ in claims(records, counts)}
    assert [v for c, v in verdicts.items() if "within 1 WER point" in c] == [False]


def test_utterance_counts_read_the_test_set_of_the_dialect(tmp_path):
    (tmp_path / "utterances_en-us_test.csv").write_text(
        "ID,wer_errors,wer_tokens,cer_errors,cer_tokens\nu1,2,5,3,20\n")
    assert utterance_counts(tmp_path, "en-us") == {"u1": (2, 5)}
    assert utterance_counts(tmp_path, "en-029") is None


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
