"""The SparseWAV paper's Table 1 and Fig. 1 as runs of our own recipe.

Every run is one ``train.py hparams/prune_obs_<size>.yaml`` of the synthetic
recipe (:mod:`speechbrain_sparse.asr.pruning_stage`) with its own overrides,
run and cached by :class:`~speechbrain_sparse.reproduction.runner.MatrixRunner`:

* Table 1 (at ``sparsity``, 75 % in the paper): the dense model (also
  fine-tuned the same way, as a control: our pretrained model is not
  converged, so fine-tuning alone improves it), a uniform
  magnitude baseline, OBS with uniform sparsity, + mixed sparsity, + the
  improved saliency (all one-shot), + post-pruning fine-tuning (one pass) and
  + progressive pruning (``progressive`` sparsities, the same total number of
  fine-tuning epochs spread over the rounds);
* Fig. 1: the full method (improved saliency, mixed sparsity) at each of
  ``fig_sparsities``, one-shot and fine-tuned, plus progressive runs where
  ``fig_progressive`` names a schedule.

:func:`write_tables` turns the finished runs into Markdown and CSV tables, the
figure and a list of the paper's claims with whether they hold here, each
judged by a paired bootstrap over the test utterances of the two runs it
compares (:mod:`speechbrain_sparse.reproduction.bootstrap`, read from their
``utterances_<dialect>_test.csv``).

Example
-------
>>> runs = ablation_runs(0.75, [0.5, 0.9], [0.5, 0.75], 2, {0.9: [0.7, 0.9]})
>>> [run.name for run in runs][:3]
['table/dense', 'table/dense_finetuned', 'table/magnitude']
>>> runs[-1].overrides["prune_sparsities"], runs[-1].overrides["number_of_epochs"]
([0.7, 0.9], 1)
"""

import csv
from pathlib import Path

from speechbrain_sparse.reproduction.bootstrap import (
    RESAMPLES,
    paired_bootstrap,
    read_runs,
)
from speechbrain_sparse.reproduction.plan import Run

TABLE_ROWS = {  # name -> (label, overrides without sparsity, fine-tuned?)
    "dense": ("dense (not pruned)", {"prune_method": "obs"}, False),
    "dense_finetuned": ("dense + the same fine-tuning (control)",
                        {"prune_method": "obs"}, True),
    "magnitude": ("magnitude (uniform)", {"prune_method": "magnitude"}, False),
    "obs_uniform": ("OBS (uniform)", {"saliency": "obs", "mixed_sparsity": False},
                    False),
    "obs_mixed": ("+ mixed sparsity", {"saliency": "obs", "mixed_sparsity": True},
                  False),
    "obs_mixed_improved": ("++ improved saliency",
                           {"saliency": "improved", "mixed_sparsity": True}, False),
    "finetuned": ("+++ post-pruning fine-tune",
                  {"saliency": "improved", "mixed_sparsity": True}, True),
    "progressive": ("++++ progressive",
                    {"saliency": "improved", "mixed_sparsity": True}, True),
}
WITHIN_WER = 1.0  # the "within 1 WER point of dense" claim's margin
FULL_METHOD = {"prune_method": "obs", "saliency": "improved", "mixed_sparsity": True}


def ablation_runs(sparsity, fig_sparsities, progressive, epochs,
                  fig_progressive=None, rows=None, needs=(),
                  hparams="prune_obs_tiny.yaml"):
    """Lists the runs of Table 1 and Fig. 1 (see the module docstring).

    Arguments
    ---------
    sparsity : float
        Table 1's sparsity.
    fig_sparsities : list of float
        Fig. 1's sparsities (besides 0, the dense row).
    progressive : list of float
        Table 1's progressive schedule (ends at ``sparsity``).
    epochs : int
        Fine-tuning epochs of a one-pass run (a progressive run splits them
        over its rounds, at least one each).
    fig_progressive : dict, optional
        Fig. 1 sparsity -> progressive schedule.
    rows : list of str, optional
        Table 1 rows to run (default: all of :data:`TABLE_ROWS`).
    needs : tuple
        Runs every run needs first (the pretraining).
    hparams : str
        The stage YAML of every run.

    Returns
    -------
    list of Run
    """
    runs = []
    for name in rows or TABLE_ROWS:
        _, keys, tuned = TABLE_ROWS[name]
        schedule = [0.0] if name.startswith("dense") else [sparsity]
        if name == "progressive":
            schedule = list(progressive)
        runs.append(_run(f"table/{name}", schedule, keys,
                         _per_round(epochs, len(schedule)) if tuned else 0))
    for value in fig_sparsities:
        for tuned in (False, True):
            label = f"fig1/s{value:g}_{'finetuned' if tuned else 'oneshot'}"
            runs.append(_run(label, [value], FULL_METHOD, epochs if tuned else 0))
    for value, schedule in sorted((fig_progressive or {}).items()):
        runs.append(_run(f"fig1/s{value:g}_progressive", schedule, FULL_METHOD,
                         _per_round(epochs, len(schedule))))
    return [Run(name=run.name, hparams=hparams, overrides=run.overrides,
                needs=tuple(needs), method=run.method) for run in runs]


def _per_round(epochs, rounds):
    return max(1, int(epochs) // rounds) if epochs else 0


def _run(name, schedule, keys, epochs):
    overrides = {**keys, "prune_sparsities": [float(s) for s in schedule],
                 "number_of_epochs": int(epochs)}
    return Run(name=name, hparams="", overrides=overrides, method=name.split("/")[1])


def run_record(results, info, dialect):
    """``{"dev", "test", "sparsity"}`` of one finished run (None when missing).

    Example
    -------
    >>> run_record({"x_test": {"WER": 50.0}}, {"rounds": [
    ...     {"achieved_sparsity": 0.75}]}, "x")
    {'dev': None, 'test': 50.0, 'sparsity': 0.75}
    """
    results = results or {}

    def wer(split):
        stats = results.get(f"{dialect}_{split}")
        return None if stats is None else float(stats["WER"])

    rounds = (info or {}).get("rounds") or [{}]
    return {"dev": wer("dev"), "test": wer("test"),
            "sparsity": rounds[-1].get("achieved_sparsity")}


def _cell(value, scale=1.0):
    return "" if value is None else f"{value * scale:.2f}"


def table1_rows(records, sparsity, rows=None):
    """Table 1 as ``[label, sparsity %, dev WER, test WER]`` string rows."""
    table = []
    for name in rows or TABLE_ROWS:
        record = records.get(f"table/{name}", {})
        table.append([TABLE_ROWS[name][0], _cell(record.get("sparsity"), 100),
                      _cell(record.get("dev")), _cell(record.get("test"))])
    return table


def fig1_rows(records, fig_sparsities, fig_progressive=None):
    """Fig. 1 as ``[sparsity %, one-shot, fine-tuned, progressive]`` test WERs."""
    dense = records.get("table/dense", {}).get("test")
    tuned = records.get("table/dense_finetuned", {}).get("test")
    table = [["0", _cell(dense), _cell(dense if tuned is None else tuned), ""]]
    for value in sorted(fig_sparsities):
        get = records.get
        table.append([f"{value * 100:g}",
                      _cell(get(f"fig1/s{value:g}_oneshot", {}).get("test")),
                      _cell(get(f"fig1/s{value:g}_finetuned", {}).get("test")),
                      _cell(get(f"fig1/s{value:g}_progressive", {}).get("test"))
                      if value in (fig_progressive or {}) else ""])
    return table


def utterance_counts(folder, dialect):
    """Per-utterance WER counts of a run's test set (``None`` when not written)."""
    return read_runs([Path(folder) / f"utterances_{dialect}_test.csv"], "WER")


def claims(records, counts, resamples=RESAMPLES, seed=0):
    """The paper's claims, each ``(claim, holds, evidence)``.

    Each compares the test WER of two runs by a paired bootstrap over the test
    utterances (95 % interval of the difference, first run minus second).
    ``holds`` is True when the interval lies below 0 (below +1 point for the
    "within 1 WER point" claim: the pruned model is at most that much worse),
    False when it lies above, ``"inconclusive"`` when it contains it, and None
    when a run or its per-utterance errors are missing.

    Arguments
    ---------
    records : dict
        Run name -> :func:`run_record` (the WERs quoted).
    counts : dict
        Run name -> ``{ID: (errors, tokens)}`` of its test set
        (:func:`utterance_counts`), ``None`` when missing.
    resamples, seed : int
        Of the bootstrap.

    Returns
    -------
    list of tuple

    Example
    -------
    >>> better = {f"u{i}": (i % 3, 10) for i in range(50)}
    >>> worse = {f"u{i}": (i % 3 + 2, 10) for i in range(50)}
    >>> verdicts = claims({}, {"table/magnitude": worse, "table/obs_uniform": better})
    >>> verdicts[0][:2], verdicts[1][1]
    (('OBS (uniform) beats uniform magnitude pruning', True), None)
    >>> print(verdicts[0][2])
    test WER 9.80 vs 29.80 (Δ WER -20.00, 95 % CI [-20.00, -20.00], 50 utterances)
    """
    pairs = [
        ("OBS (uniform) beats uniform magnitude pruning", "table/obs_uniform",
         "table/magnitude"),
        ("mixed sparsity helps (OBS)", "table/obs_mixed", "table/obs_uniform"),
        ("the improved saliency helps", "table/obs_mixed_improved",
         "table/obs_mixed"),
        ("post-pruning fine-tuning recovers", "table/finetuned",
         "table/obs_mixed_improved"),
        ("the pruned, fine-tuned model is within 1 WER point of the dense model "
         "fine-tuned alike", "table/finetuned", "table/dense_finetuned", WITHIN_WER),
        ("progressive beats one-pass fine-tuning", "table/progressive",
         "table/finetuned"),
    ]
    progressive_fig = sorted(n for n in records if n.endswith("_progressive"))
    for name in progressive_fig:
        level = name.split("/s")[1].split("_")[0]
        pairs.append((f"progressive beats one-pass at {float(level) * 100:g} %",
                      name, name.replace("_progressive", "_finetuned")))
    verdicts = []
    for claim, better, worse, *margin in pairs:
        a, b = counts.get(better), counts.get(worse)
        if a is None or b is None:
            missing = better if a is None else worse
            why = ("missing run" if records.get(missing, {}).get("test") is None
                   else f"no per-utterance errors for {missing}")
            verdicts.append((claim, None, why))
            continue
        comparison = paired_bootstrap(b, a, resamples, seed)
        outcome = comparison.outcome(sum(margin))
        holds = {"better": True, "worse": False}.get(outcome, "inconclusive")
        evidence = (f"test WER {comparison.rate_b:.2f} vs {comparison.rate_a:.2f} "
                    f"({comparison.describe()}, {comparison.utterances} utterances)")
        verdicts.append((claim, holds, evidence))
    return verdicts


def markdown_table(header, rows):
    """A Markdown table.

    Example
    -------
    >>> print(markdown_table(["a", "b"], [["1", "2"]]))
    | a | b |
    |---|---|
    | 1 | 2 |
    """
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def write_tables(report_dir, records, sparsity, fig_sparsities, fig_progressive=None,
                 rows=None, header="", counts=None):
    """Writes ``table1.{md,csv}``, ``fig1.{csv,png}`` and ``report.md``.

    ``counts`` (run name -> per-utterance test errors, see :func:`claims`)
    decides the claims; without it every claim is "not measured".

    Returns
    -------
    str
        The Markdown report.
    """
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    table1_header = ["Method", "sparsity %", "dev WER", "test WER"]
    table1 = table1_rows(records, sparsity, rows)
    fig_header = ["sparsity %", "one-shot", "fine-tuned", "progressive"]
    fig = fig1_rows(records, fig_sparsities, fig_progressive)
    for name, head, body in (("table1", table1_header, table1),
                             ("fig1", fig_header, fig)):
        with open(report_dir / f"{name}.csv", "w", newline="") as handle:
            csv.writer(handle).writerows([head, *body])
    plot_fig1(fig, report_dir / "fig1_wer_vs_sparsity.png")
    verdicts = claims(records, counts or {})
    lines = [header,
             f"## Table 1: ablation at {sparsity * 100:g} % sparsity (WER %)\n",
             markdown_table(table1_header, table1),
             "\n## Fig. 1: test WER % vs sparsity (improved saliency, mixed "
             "sparsity)\n", markdown_table(fig_header, fig),
             "\n![WER vs sparsity](fig1_wer_vs_sparsity.png)\n",
             "## The paper's claims here\n",
             "Each claim compares two runs' test WER by a paired bootstrap over the "
             f"test utterances ({RESAMPLES} resamples, the same for both; Bisani & Ney "
             "2004): it holds when the 95 % confidence interval of the difference "
             "(Δ, first run minus second) excludes 0 in the claimed direction "
             f"(lies below +{WITHIN_WER:g} for the \"within\" claim), does not "
             "hold when it lies on the other side, and is not resolved when it "
             "contains that value.\n"]
    words = {True: "holds", False: "does not hold", None: "not measured",
             "inconclusive": "not resolved (within noise)"}
    lines += [f"- {claim}: **{words[holds]}** ({evidence})"
              for claim, holds, evidence in verdicts]
    text = "\n".join(lines) + "\n"
    (report_dir / "report.md").write_text(text)
    (report_dir / "table1.md").write_text(markdown_table(table1_header, table1) + "\n")
    return text


def plot_fig1(rows, path):
    """Test WER vs sparsity: one-shot, fine-tuned and progressive points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def series(column):
        points = [(float(r[0]), float(r[column])) for r in rows if r[column]]
        return [p[0] for p in points], [p[1] for p in points]

    figure, axis = plt.subplots(figsize=(5, 3.5))
    for column, label, style in ((1, "one-shot", "o--"), (2, "fine-tuned", "s-"),
                                 (3, "progressive", "^")):
        xs, ys = series(column)
        if xs:
            axis.plot(xs, ys, style, label=label)
    axis.set_xlabel("sparsity of the pruned matrices (%)")
    axis.set_ylabel("test WER (%)")
    axis.grid(True, alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
