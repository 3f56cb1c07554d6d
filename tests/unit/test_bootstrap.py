"""The paired bootstrap over test utterances (Bisani & Ney 2004)."""

import numpy as np
import pytest

from speechbrain_sparse.reproduction.bootstrap import (
    Comparison,
    average_seeds,
    paired_bootstrap,
    read_runs,
    read_utterance_errors,
)


def simulated_pair(rng, utterances, rate_a, rate_b):
    """Two systems' counts on the same utterances, binomial errors per token."""
    tokens = rng.integers(3, 25, size=utterances)
    errors_a = rng.binomial(tokens, rate_a)
    errors_b = rng.binomial(tokens, rate_b)
    ids = [f"utt{i:04d}" for i in range(utterances)]
    a = {k: (int(e), int(n)) for k, e, n in zip(ids, errors_a, tokens)}
    b = {k: (int(e), int(n)) for k, e, n in zip(ids, errors_b, tokens)}
    return a, b


def rate(counts):
    return 100 * sum(e for e, _ in counts.values()) / sum(n for _, n in counts.values())


def test_the_interval_covers_a_known_difference():
    """B's true error rate is 5 points lower: the interval covers -5, excludes 0,
    and over many simulated test sets covers -5 about 95 % of the time."""
    rng = np.random.default_rng(7)
    a, b = simulated_pair(rng, 400, 0.30, 0.25)
    result = paired_bootstrap(a, b)
    assert result.difference == pytest.approx(rate(b) - rate(a))
    assert result.rate_a == pytest.approx(rate(a))
    assert result.low < -5.0 < result.high < 0
    assert result.outcome() == "better" and result.p_b_better > 0.99
    assert result.utterances == 400 and result.sets == 1
    assert result.resamples == 1000 and result.level == 0.95

    covered = 0
    trials = 100
    for trial in range(trials):
        a, b = simulated_pair(rng, 150, 0.30, 0.25)
        result = paired_bootstrap(a, b, seed=trial)
        covered += result.low <= -5.0 <= result.high
    assert 0.85 <= covered / trials <= 1.0


def test_identical_systems_differ_by_zero_and_are_not_resolved():
    a, _ = simulated_pair(np.random.default_rng(0), 200, 0.3, 0.3)
    result = paired_bootstrap(a, dict(a))
    assert result.difference == 0.0
    assert result.low <= 0.0 <= result.high
    assert result.outcome() == "within noise"
    assert result.p_b_better == 0.0


def test_equal_systems_with_noise_give_an_interval_containing_zero():
    a, b = simulated_pair(np.random.default_rng(3), 300, 0.3, 0.3)
    result = paired_bootstrap(a, b)
    assert result.low < 0 < result.high
    assert 0.05 < result.p_b_better < 0.95


def test_the_same_seed_gives_the_same_interval():
    a, b = simulated_pair(np.random.default_rng(1), 120, 0.3, 0.28)
    first, again = paired_bootstrap(a, b, seed=11), paired_bootstrap(a, b, seed=11)
    assert first == again
    other = paired_bootstrap(a, b, seed=12)
    assert (other.low, other.high) != (first.low, first.high)
    assert other.difference == first.difference  # observed: no resampling
    # the order the utterances come in does not change the observed difference
    shuffled = dict(reversed(list(b.items())))
    assert paired_bootstrap(a, shuffled).difference == pytest.approx(first.difference)


def test_swapping_the_systems_mirrors_the_interval():
    a, b = simulated_pair(np.random.default_rng(2), 200, 0.3, 0.25)
    forward, backward = paired_bootstrap(a, b), paired_bootstrap(b, a)
    assert backward.difference == pytest.approx(-forward.difference)
    assert backward.outcome() == "worse" and backward.p_b_better < 0.01


def test_mismatched_utterances_are_an_error_naming_them():
    a = {"u1": (1, 5), "u2": (0, 5), "u3": (2, 5)}
    b = {"u1": (1, 5), "u2": (0, 5), "u4": (2, 5)}
    with pytest.raises(ValueError, match="B lacks 1 of A's: u3; A lacks 1 of B's: u4"):
        paired_bootstrap(a, b)
    with pytest.raises(ValueError, match="test set 2: not the same utterances"):
        paired_bootstrap([a, a], [a, b])
    with pytest.raises(ValueError, match="A has 2 test sets, B 1"):
        paired_bootstrap([a, a], [a])
    many = {f"x{i}": (0, 1) for i in range(8)}
    with pytest.raises(ValueError, match="x0, x1, x2, x3, x4 and 3 more"):
        paired_bootstrap({**a, **many}, a)


def test_test_sets_are_resampled_within_themselves_and_pooled():
    """Every utterance of a set alike: a stratified resample reproduces each
    set exactly, so the pooled difference has no spread at all."""
    set1_a = {f"a{i}": (1, 10) for i in range(30)}
    set2_a = {f"b{i}": (5, 10) for i in range(10)}
    set2_b = {f"b{i}": (2, 10) for i in range(10)}
    result = paired_bootstrap([set1_a, set2_a], [set1_a, set2_b])
    pooled_a = 100 * (30 * 1 + 10 * 5) / 400
    pooled_b = 100 * (30 * 1 + 10 * 2) / 400
    assert result.difference == pytest.approx(pooled_b - pooled_a)  # -7.5
    assert result.low == pytest.approx(-7.5) and result.high == pytest.approx(-7.5)
    assert result.sets == 2 and result.utterances == 40


def test_comparison_outcome_against_a_margin():
    within_one = Comparison(0.4, -0.3, 0.9, 0.2, 70.0, 70.4, 190, 1)
    assert within_one.outcome() == "within noise"
    assert within_one.outcome(margin=1.0) == "better"  # at most 1 point worse
    assert within_one.describe("CER") == "Δ CER +0.40, 95 % CI [-0.30, +0.90]"


def test_seed_runs_are_averaged_per_utterance():
    seeds = [{"u1": (1, 4), "u2": (3, 6)}, {"u1": (2, 4), "u2": (0, 6)},
             {"u1": (0, 4), "u2": (3, 6)}]
    assert average_seeds(seeds) == {"u1": (1.0, 4), "u2": (2.0, 6)}
    with pytest.raises(ValueError, match="lacks 1 of seed run 1's: u2"):
        average_seeds([seeds[0], {"u1": (1, 4)}])
    with pytest.raises(ValueError, match="u1: the seed runs disagree"):
        average_seeds([seeds[0], {"u1": (1, 5), "u2": (0, 6)}])
    # fractional errors go through the bootstrap like counts
    result = paired_bootstrap({"u1": (2, 4), "u2": (2, 6)}, average_seeds(seeds))
    assert result.difference == pytest.approx(100 * 3 / 10 - 100 * 4 / 10)


def test_reads_what_the_brain_writes(tmp_path):
    from speechbrain.utils.metric_stats import ErrorRateStats

    from speechbrain_sparse.asr.brain import write_utterance_errors

    wer, cer = ErrorRateStats(), ErrorRateStats(split_tokens=True)
    ids = ["u1", "u2"]
    refs, hyps = [["A", "B", "C"], ["D"]], [["A", "X", "C"], ["E", "F"]]
    wer.append(ids, hyps, refs)
    cer.append(ids, hyps, refs)
    path = tmp_path / "utterances_en-029_test.csv"
    write_utterance_errors(path, {"wer": wer, "cer": cer})
    counts = read_utterance_errors(path, "WER")
    assert counts == {"u1": (1, 3), "u2": (2, 1)}
    assert rate(counts) == pytest.approx(wer.summarize("error_rate"))
    assert set(read_utterance_errors(path, "cer")) == {"u1", "u2"}
    with pytest.raises(ValueError, match="no ser_errors/ser_tokens columns"):
        read_utterance_errors(path, "SER")
    assert read_runs([path, tmp_path / "missing.csv"]) is None
    assert read_runs([path, path]) == counts


def test_a_repeated_utterance_is_an_error(tmp_path):
    path = tmp_path / "utterances_x_test.csv"
    path.write_text("ID,wer_errors,wer_tokens\nu1,1,2\nu1,0,2\n")
    with pytest.raises(ValueError, match="u1 appears twice"):
        read_utterance_errors(path)
