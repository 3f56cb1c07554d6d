"""Paired bootstrap over test utterances: is system B's error rate really lower?

Bisani & Ney (2004), "Bootstrap estimates for confidence intervals in ASR
performance evaluation": both systems were scored on the same utterances, so
the utterances are resampled with replacement, *the same draw for both
systems*, and the corpus-level error rate (sum of errors / sum of reference
tokens, in %) of each resample is recomputed. The spread of the difference
``rate(B) - rate(A)`` over the resamples gives its percentile confidence
interval; the share of resamples where B has the lower rate is P(B better).

A system's counts are ``{utterance ID: (errors, tokens)}``, as read from the
``utterances_<set>.csv`` every test evaluation writes
(:func:`read_utterance_errors`). Several test sets (both target dialects'
test sets, say) are compared at once by giving a list of such dicts: each
set is resampled within itself (stratified, so every resample keeps each set's
size) and the rate is pooled over all of them, i.e. weighted by tokens.

When a method was trained with several seeds, its seed runs are averaged per
utterance first (:func:`average_seeds`): a resample then draws utterances,
not (utterance, seed) pairs, so the interval reflects the test-set sampling
of a seed-averaged system; the spread between seeds shows separately, as the
± std of the tables.

Example
-------
>>> a = {"u1": (2, 10), "u2": (3, 10), "u3": (1, 10), "u4": (4, 10)}
>>> b = {"u1": (1, 10), "u2": (1, 10), "u3": (0, 10), "u4": (2, 10)}
>>> result = paired_bootstrap(a, b)
>>> round(result.difference, 2), result.outcome(), result.utterances
(-15.0, 'better', 4)
>>> result.low < -15.0 < result.high < 0
True
"""

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from speechbrain_sparse.errors import UserInputError

RESAMPLES = 1000
LEVEL = 0.95
# Index draws per block of resamples (bounds memory for very large test sets).
_BLOCK_ELEMENTS = 4_000_000


@dataclass(frozen=True)
class Comparison:
    """The outcome of :func:`paired_bootstrap` (rates and differences in %).

    Arguments
    ---------
    difference : float
        Observed ``rate(B) - rate(A)`` on the test utterances themselves.
    low, high : float
        The percentile confidence interval of the difference.
    p_b_better : float
        Share of the resamples where B's rate is strictly lower.
    rate_a, rate_b : float
        Observed rates of A and B.
    utterances : int
        Utterances compared (over every set).
    sets : int
        Test sets pooled (strata).
    level : float
        Confidence level of the interval.
    resamples : int
        Bootstrap resamples drawn.
    """

    difference: float
    low: float
    high: float
    p_b_better: float
    rate_a: float
    rate_b: float
    utterances: int
    sets: int
    level: float = LEVEL
    resamples: int = RESAMPLES

    def outcome(self, margin=0.0):
        """Where the interval lies relative to ``margin`` (lower error is better).

        ``'better'`` when it lies entirely below ``margin`` (B better than A, or
        with a margin > 0, B worse by less than it), ``'worse'`` when entirely
        above, ``'within noise'`` when it contains ``margin``.

        Example
        -------
        >>> c = Comparison(-2.0, -3.0, -1.0, 1.0, 30.0, 28.0, 100, 1)
        >>> c.outcome(), c.outcome(margin=-3.5), c.outcome(margin=-2.0)
        ('better', 'worse', 'within noise')
        """
        if self.high < margin:
            return "better"
        if self.low > margin:
            return "worse"
        return "within noise"

    def describe(self, metric="WER"):
        """``'Δ WER -3.10, 95 % CI [-4.20, -2.00]'``.

        Example
        -------
        >>> Comparison(-3.1, -4.2, -2.0, 0.99, 30.0, 26.9, 380, 2).describe()
        'Δ WER -3.10, 95 % CI [-4.20, -2.00]'
        """
        return (f"Δ {metric} {self.difference:+.2f}, {self.level * 100:g} % CI "
                f"[{self.low:+.2f}, {self.high:+.2f}]")


def read_utterance_errors(path, metric="WER"):
    """The per-utterance counts of one metric in an ``utterances_<set>.csv``.

    Arguments
    ---------
    path : str or Path
        A CSV with the columns ``ID,<m>_errors,<m>_tokens,...`` (``m`` = wer,
        cer, ser), as ``speechbrain_sparse.asr.brain.write_utterance_errors``
        writes it.
    metric : str
        ``WER``, ``CER`` or ``SER`` (any case).

    Returns
    -------
    dict
        ``{ID: (errors, tokens)}``.

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        The file has no columns for ``metric``, or an ID twice.

    Example
    -------
    >>> import tempfile, os
    >>> path = os.path.join(tempfile.mkdtemp(), "utterances_a_test.csv")
    >>> _ = open(path, "w").write("ID,wer_errors,wer_tokens\\nu1,1,4\\nu2,0,3\\n")
    >>> read_utterance_errors(path)
    {'u1': (1, 4), 'u2': (0, 3)}
    """
    errors, tokens = f"{metric.lower()}_errors", f"{metric.lower()}_tokens"
    counts = {}
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if not {"ID", errors, tokens} <= set(reader.fieldnames or ()):
            raise UserInputError(f"{path}: no {errors}/{tokens} columns (has "
                                 f"{', '.join(reader.fieldnames or ())})")
        for row in reader:
            if row["ID"] in counts:
                raise UserInputError(f"{path}: utterance {row['ID']} appears twice")
            counts[row["ID"]] = (int(row[errors]), int(row[tokens]))
    return counts


def read_runs(paths, metric="WER"):
    """The seed-averaged counts (:func:`average_seeds`) of several runs' CSVs.

    Returns ``None`` when any file is missing (a run evaluated before the
    per-utterance files existed, or one that failed).
    """
    paths = [Path(p) for p in paths]
    if not paths or not all(p.is_file() for p in paths):
        return None
    return average_seeds([read_utterance_errors(p, metric) for p in paths])


def average_seeds(runs):
    """Per-utterance mean errors over the seed runs of one system.

    Arguments
    ---------
    runs : list of dict
        ``{ID: (errors, tokens)}`` of each seed run, on the same test set.

    Returns
    -------
    dict
        ``{ID: (mean errors, tokens)}`` (errors may be fractional).

    Raises
    ------
    ValueError
        The runs do not cover the same utterances, or disagree on an
        utterance's reference length.

    Example
    -------
    >>> average_seeds([{"u1": (1, 4)}, {"u1": (2, 4)}])
    {'u1': (1.5, 4)}
    """
    if not runs:
        raise ValueError("no runs to average")
    first = runs[0]
    for other in runs[1:]:
        _check_same_ids(first, other, "seed run 1", "another seed run")
    averaged = {}
    for key, (_, tokens) in first.items():
        lengths = {run[key][1] for run in runs}
        if len(lengths) > 1:
            raise ValueError(f"utterance {key}: the seed runs disagree on its "
                             f"reference length ({sorted(lengths)} tokens)")
        errors = [run[key][0] for run in runs]
        averaged[key] = (errors[0] if len(runs) == 1 else sum(errors) / len(runs),
                         tokens)
    return averaged


def _check_same_ids(a, b, name_a, name_b):
    """Raises ValueError naming the utterances one side has and not the other."""
    if a.keys() == b.keys():
        return
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))

    def some(ids):
        more = f" and {len(ids) - 5} more" if len(ids) > 5 else ""
        return ", ".join(ids[:5]) + more

    parts = []
    if only_a:
        parts.append(f"{name_b} lacks {len(only_a)} of {name_a}'s: {some(only_a)}")
    if only_b:
        parts.append(f"{name_a} lacks {len(only_b)} of {name_b}'s: {some(only_b)}")
    raise ValueError("not the same utterances; " + "; ".join(parts))


def _arrays(a, b):
    """Errors and tokens of both systems, aligned on A's utterance order."""
    keys = list(a)
    columns = [[a[k][0] for k in keys], [a[k][1] for k in keys],
               [b[k][0] for k in keys], [b[k][1] for k in keys]]
    return [np.asarray(c, dtype=np.float64) for c in columns]


def paired_bootstrap(a, b, resamples=RESAMPLES, seed=0, level=LEVEL):
    """Paired bootstrap of the corpus-level error rate difference ``B - A``.

    Arguments
    ---------
    a, b : dict or list of dict
        Per-utterance counts ``{ID: (errors, tokens)}`` of systems A and B, one
        dict per test set (the sets are resampled separately and pooled); the
        i-th sets of A and B must hold the same IDs.
    resamples : int
        Bootstrap resamples (Bisani & Ney use 1,000 and more).
    seed : int
        Seed of the ``numpy.random.Generator`` drawing the resamples: the same
        seed and counts give the same interval.
    level : float
        Confidence level of the percentile interval.

    Returns
    -------
    Comparison

    Raises
    ------
    ValueError
        The two systems' sets do not match (the error names the missing IDs),
        or a set is empty or has no reference tokens.

    Example
    -------
    >>> same = {"u1": (2, 10), "u2": (0, 5), "u3": (1, 8)}
    >>> c = paired_bootstrap(same, same)
    >>> c.difference, c.low, c.high, c.p_b_better, c.outcome()
    (0.0, 0.0, 0.0, 0.0, 'within noise')
    >>> paired_bootstrap(same, {"u1": (2, 10), "u2": (0, 5)})
    Traceback (most recent call last):
     ...
    ValueError: test set 1: not the same utterances; B lacks 1 of A's: u3
    """
    sets_a = [a] if isinstance(a, dict) else list(a)
    sets_b = [b] if isinstance(b, dict) else list(b)
    if len(sets_a) != len(sets_b) or not sets_a:
        raise ValueError(f"A has {len(sets_a)} test sets, B {len(sets_b)}")
    strata = []
    for index, (set_a, set_b) in enumerate(zip(sets_a, sets_b), start=1):
        try:
            _check_same_ids(set_a, set_b, "A", "B")
        except ValueError as error:
            raise ValueError(f"test set {index}: {error}") from None
        if not set_a:
            raise ValueError(f"test set {index} has no utterances")
        strata.append(_arrays(set_a, set_b))
    totals = [sum(s[i].sum() for s in strata) for i in range(4)]
    if totals[1] <= 0 or totals[3] <= 0:
        raise ValueError("the test sets have no reference tokens")
    rate_a = 100.0 * totals[0] / totals[1]
    rate_b = 100.0 * totals[2] / totals[3]
    deltas = _resampled_differences(strata, int(resamples),
                                    np.random.default_rng(seed))
    tail = (1.0 - level) / 2.0 * 100.0
    low, high = np.percentile(deltas, [tail, 100.0 - tail])
    return Comparison(
        difference=float(rate_b - rate_a), low=float(low), high=float(high),
        p_b_better=float(np.mean(deltas < 0)), rate_a=float(rate_a),
        rate_b=float(rate_b), utterances=sum(len(s[0]) for s in strata),
        sets=len(strata), level=level, resamples=int(resamples))


def _resampled_differences(strata, resamples, generator):
    """``rate(B) - rate(A)`` (%) of each resample, drawn set by set."""
    total = sum(len(s[0]) for s in strata)
    block = max(1, _BLOCK_ELEMENTS // total)
    deltas = []
    for start in range(0, resamples, block):
        count = min(block, resamples - start)
        sums = np.zeros((4, count))
        for columns in strata:
            draw = generator.integers(0, len(columns[0]), size=(count, len(columns[0])))
            for i, column in enumerate(columns):
                sums[i] += column[draw].sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            deltas.append(100.0 * (sums[2] / sums[3] - sums[0] / sums[1]))
    deltas = np.concatenate(deltas)
    # a resample of token-less utterances only has no rate (possible only when
    # nearly every reference is empty); such resamples are left out
    deltas = deltas[np.isfinite(deltas)]
    if not len(deltas):
        raise ValueError("no resample has reference tokens")
    return deltas
