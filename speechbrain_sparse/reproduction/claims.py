"""The sparse fine-tuning paper's claims, judged by a paired bootstrap on test.

Each claim compares two methods on the test sets of every target dialect,
pooled (:func:`~speechbrain_sparse.reproduction.bootstrap.paired_bootstrap`,
stratified by test set, 1,000 resamples of the same utterances for both
methods; a method with several seed runs is averaged per utterance first).
Its verdict is

* **holds** when the 95 % interval of the difference excludes 0 in the
  direction the paper claims,
* **does not hold** when it excludes 0 in the other direction,
* **not resolved** when it contains 0 (the difference is within the noise of
  test sets this size), and
* **n/a** when a run, or its ``utterances_<set>.csv``, is missing.

The claims: diff beats vanilla; random is the worst method of Table III
(every other method significantly better than random); the diff30+topk10
union is at least as good as diff (a "not worse" claim, which a confidence
interval cannot prove: it holds when the union is significantly better, does
not hold when it is significantly worse, and is otherwise not resolved); the
best trainable fraction lies in 10-30 % (chosen on dev, as a model selection
is, then compared with fraction 1.0, vanilla, on test).

Example
-------
>>> import tempfile
>>> out = Path(tempfile.mkdtemp())
>>> for label, errors in (("vanilla", [3, 4, 2, 5]), ("diff", [1, 2, 1, 3])):
...     (out / "tiny/a" / label).mkdir(parents=True)
...     lines = ["ID,wer_errors,wer_tokens"] + [f"u{i},{e},10"
...                                             for i, e in enumerate(errors)]
...     _ = (out / "tiny/a" / label / "utterances_a_test.csv").write_text(
...         "\\n".join(lines))
>>> results = {"tiny/a/vanilla": {}, "tiny/a/diff": {}}
>>> comparison, said = Evidence(out, results, "tiny", ["a"], "WER").compare(
...     "vanilla", "diff")
>>> VERDICTS[comparison.outcome()]
'holds'
>>> print(said)  # doctest: +ELLIPSIS
Δ WER -17.50, 95 % CI [...], P(diff better) 1.00: diff - vanilla on the test...
"""

from pathlib import Path

from speechbrain_sparse.reproduction.bootstrap import (
    RESAMPLES,
    average_seeds,
    paired_bootstrap,
    read_utterance_errors,
)
from speechbrain_sparse.reproduction.plan import sweep_run_name
from speechbrain_sparse.reproduction.tables import finished_replicates

VERDICTS = {"better": "holds", "worse": "does not hold",
            "within noise": "not resolved"}
UNION = ("diff(30%) + topk(10%), union", "union_diff30_topk10")


class Evidence:
    """Per-utterance errors of one model size's runs on the targets' test sets.

    Arguments
    ---------
    out_dir : str or Path
        The matrix folder (``<out_dir>/<run name>/utterances_<set>.csv``).
    results : dict
        Run name -> results of the finished runs (which seed runs count).
    size : str
        The model size compared.
    targets : list of str
        Target dialects, whose ``<target>_<split>`` sets are pooled.
    metric : str
        ``WER``, ``CER`` or ``SER``.
    split : str
        The split judged on (``test``).
    resamples, seed : int
        Of the bootstrap.
    """

    def __init__(self, out_dir, results, size, targets, metric, split="test",
                 resamples=RESAMPLES, seed=0):
        self.out_dir = Path(out_dir)
        self.results = results
        self.size = size
        self.targets = list(targets)
        self.metric = metric
        self.split = split
        self.resamples = resamples
        self.seed = seed

    def run_names(self, label):
        """``{target: run name}`` of a run label (or of a ``{target: label}``)."""
        labels = label if isinstance(label, dict) else dict.fromkeys(self.targets,
                                                                      label)
        return {t: f"{self.size}/{t}/{labels[t]}" for t in self.targets}

    def counts(self, label):
        """Seed-averaged counts of each target's set and the number of seeds.

        Raises
        ------
        LookupError
            A run is not finished or has no per-utterance file.
        """
        sets, seeds = [], set()
        for target, name in self.run_names(label).items():
            names = finished_replicates(self.results, name)
            if names is None:
                raise LookupError(f"{name} has no results")
            set_name = f"{target}_{self.split}"
            paths = [self.out_dir / n / f"utterances_{set_name}.csv" for n in names]
            missing = [str(p.relative_to(self.out_dir)) for p in paths
                       if not p.is_file()]
            if missing:
                raise LookupError(f"no per-utterance errors {missing[0]}")
            sets.append(average_seeds([read_utterance_errors(p, self.metric)
                                       for p in paths]))
            seeds.add(len(names))
        if len(seeds) == 1:
            return sets, seeds.pop()
        return sets, f"{min(seeds)}-{max(seeds)}"  # targets with unlike seed counts

    def bootstrap(self, baseline, candidate):
        """``(Comparison of candidate - baseline, seeds of each)``.

        Raises
        ------
        LookupError
            A run or its per-utterance errors are missing.
        ValueError
            The two do not cover the same utterances.
        """
        sets_b, seeds_b = self.counts(baseline)
        sets_c, seeds_c = self.counts(candidate)
        comparison = paired_bootstrap(sets_b, sets_c, self.resamples, self.seed)
        return comparison, seeds_b, seeds_c

    def where(self, comparison):
        """``'on the test sets of 2 targets, 380 utterances'``."""
        sets = len(self.targets)
        return (f"on the {self.split} sets of {sets} target{'s' * (sets > 1)}, "
                f"{comparison.utterances} utterances")

    def compare(self, baseline, candidate, names=None):
        """``(Comparison of candidate - baseline, sentence)`` or ``(None, why)``.

        ``names`` = how the two are called in the sentence (default: the labels).
        """
        name_b, name_c = names or (baseline, candidate)
        try:
            comparison, seeds_b, seeds_c = self.bootstrap(baseline, candidate)
        except (LookupError, ValueError) as error:
            return None, f"n/a: {error}"
        if seeds_b == seeds_c:
            seeds = f"{seeds_b} seed{'s each' if seeds_b != 1 else ''}"
        else:
            seeds = f"{_seeds(name_c, seeds_c)}, {_seeds(name_b, seeds_b)}"
        return comparison, (
            f"{comparison.describe(self.metric)}, P({name_c} better) "
            f"{comparison.p_b_better:.2f}: {name_c} - {name_b} "
            f"{self.where(comparison)}, {seeds}")


def _seeds(name, count):
    """``'diff 3 seeds'``, ``'union 1 seed'``."""
    return f"{name} {count} seed{'s' * (count != 1)}"


def _avg(rows, label):
    for row in rows:
        if row["Method"] == label:
            return row["Avg"]
    return None


def _fmt(value):
    return "-" if value is None else f"{value:.2f}"


def _verdict(comparison):
    return "n/a" if comparison is None else VERDICTS[comparison.outcome()]


def check_claims(evidence, table3_rows, table4_rows, best_fractions, density):
    """The paper's four claims, one Markdown bullet each (see the module docstring).

    Arguments
    ---------
    evidence : Evidence
        The test-set errors of the compared runs.
    table3_rows, table4_rows : list of dict
        Tables III and IV (their ``Avg`` is quoted next to the verdicts).
    best_fractions : dict
        Target -> the trainable fraction best on dev.
    density : float
        The fraction of the diff run (Fig. 3's point at it is that run).

    Returns
    -------
    str
    """
    lines = []
    comparison, said = evidence.compare("vanilla", "diff")
    lines.append(f"- diff beats vanilla: **{_verdict(comparison)}** ({said}; table "
                 f"Avg {_fmt(_avg(table3_rows, 'diff'))} vs "
                 f"{_fmt(_avg(table3_rows, 'vanilla'))})")
    lines.append(_random_is_worst(evidence, table3_rows))
    comparison, said = evidence.compare("diff", UNION[1], ("diff", "union"))
    verdict = {None: "n/a", "better": "holds (union significantly better)",
               "worse": "does not hold (union significantly worse)",
               "within noise": "not resolved (within noise)"}[
        comparison and comparison.outcome()]
    lines.append(f"- diff30+topk10 union >= diff: **{verdict}** ({said}; table Avg "
                 f"{_fmt(_avg(table4_rows, UNION[0]))} vs "
                 f"{_fmt(_avg(table4_rows, 'diff'))})")
    lines.extend(_best_fraction(evidence, best_fractions, density))
    return "\n".join(lines)


def _random_is_worst(evidence, rows):
    """Random against every other method of Table III."""
    others = [row["Method"] for row in rows if row["Method"] != "random"]
    outcomes, parts, where = [], [], ""
    for method in others:
        try:
            comparison, _, seeds = evidence.bootstrap("random", method)
        except (LookupError, ValueError) as error:
            outcomes.append(None)
            parts.append(f"{method}: n/a: {error}")
            continue
        outcomes.append(comparison.outcome())
        seeds = f" ({seeds} seeds)" if seeds != 1 else ""
        parts.append(f"{method}{seeds} {comparison.describe(evidence.metric)}")
        where = f"; each method - random {evidence.where(comparison)}"
    if "worse" in outcomes:
        verdict = "does not hold"
    elif None in outcomes or not outcomes:
        verdict = "n/a"
    elif set(outcomes) == {"better"}:
        verdict = "holds"
    else:
        verdict = "not resolved"
    return (f"- random is worst (Table III; every other method significantly "
            f"better than random): **{verdict}** (" + "; ".join(parts) + where + ")")


def _best_fraction(evidence, best_fractions, density):
    """Where the dev-chosen fractions lie, and whether they beat 1.0 on test."""
    if not best_fractions:
        return ["- best trainable fraction in 10-30 %: **n/a (runs missing)**"]
    inside = all(0.1 <= f <= 0.3 for f in best_fractions.values())
    best = ", ".join(f"{t} {f:g}" for t, f in best_fractions.items())
    lines = [f"- best trainable fraction in 10-30 % (chosen on dev): "
             f"**{'holds' if inside else 'does not hold'}** (best: {best})"]
    if set(best_fractions) != set(evidence.targets):
        lines.append("  - the dev-chosen fractions vs 1.0 (vanilla) on test: **n/a "
                     "(runs missing)**")
    elif set(best_fractions.values()) == {1.0}:
        lines.append("  - the dev-chosen fractions vs 1.0 (vanilla) on test: **n/a** "
                     "(the best fraction is 1.0, vanilla itself)")
    else:
        labels = {t: sweep_run_name(evidence.size, t, f, density).rsplit("/", 1)[1]
                  for t, f in best_fractions.items()}
        comparison, said = evidence.compare("vanilla", labels, ("1.0", "best"))
        lines.append(f"  - the dev-chosen fractions beat 1.0 (vanilla) on test: "
                     f"**{_verdict(comparison)}** ({said})")
    return lines
