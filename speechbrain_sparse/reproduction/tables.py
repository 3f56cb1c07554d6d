"""Tables II-IV of the sparse fine-tuning paper from the runs' ``results.json``.

A table is a list of rows (dicts) with the columns of the paper: the method,
then ``<target> dev`` / ``<target> test`` for each target dialect and their
average ``Avg``; Table II adds the model and its size. Error rates come from
the key ``<dialect>_<split>`` of each run's results, in the metric asked for
(``WER``, ``CER`` or, for Tibetan, ``SER``). A cell whose run failed or is
missing is ``None`` (shown as ``-``), and so is the average of a row with a
missing cell: nothing is averaged over fewer numbers than the header says.

A method trained with several seeds (runs ``<label>_s<k>``, see
:mod:`~speechbrain_sparse.reproduction.plan`) has in each cell the mean over
its seed runs, and in ``<column> std`` their sample standard deviation (shown
as ``mean ± std``); its ``Avg`` std is that of the seed runs' own averages. A
cell with a missing seed run is ``None`` like any other missing cell.

Example
-------
>>> results = {"tiny/a/vanilla": {"a_dev": {"WER": 20.0}, "a_test": {"WER": 22.0}}}
>>> rows = method_rows(results, "tiny", ["a"], [("vanilla", "vanilla")], "WER")
>>> rows[0]["a dev"], rows[0]["Avg"]
(20.0, 21.0)
>>> print(to_markdown(rows, ["Method", "a dev", "a test", "Avg"]))
| Method | a dev | a test | Avg |
|---|---|---|---|
| vanilla | 20.00 | 22.00 | 21.00 |
>>> results["tiny/a/vanilla_s2"] = {"a_dev": {"WER": 22.0}, "a_test": {"WER": 26.0}}
>>> rows = method_rows(results, "tiny", ["a"], [("vanilla", "vanilla")], "WER")
>>> print(to_markdown(rows, ["Method", "a dev", "a test", "Avg"]))
| Method | a dev | a test | Avg |
|---|---|---|---|
| vanilla | 21.00 ± 1.41 | 24.00 ± 2.83 | 22.50 ± 2.12 |
"""

import statistics

from speechbrain_sparse.fileio import write_csv_atomic, write_text_atomic
from speechbrain_sparse.reproduction.plan import seed_replicates

SPLITS = ("dev", "test")
TABLE2_METHODS = [("vanilla", "vanilla"), ("fisher", "fisher"), ("diff", "diff")]
TABLE3_METHODS = [("vanilla", "vanilla"), ("topk", "topk"), ("random", "random"),
                  ("adapter", "adapter"), ("diff", "diff")]
TABLE4_METHODS = [
    ("vanilla", "vanilla"),
    ("fisher", "fisher"),
    ("diff", "diff"),
    ("diff + fisher, union", "union_diff_fisher"),
    ("diff + fisher, intersection", "intersection_diff_fisher"),
    ("diff(30%) + topk(10%), union", "union_diff30_topk10"),
    ("diff(30%) + topk(10%), intersection", "intersection_diff30_topk10"),
]


def metric_value(results, run_name, dialect, split, metric):
    """The ``metric`` of ``<dialect>_<split>`` in a run's results, or ``None``."""
    stats = (results.get(run_name) or {}).get(f"{dialect}_{split}") or {}
    value = stats.get(metric)
    return None if value is None else float(value)


def finished_replicates(results, run_name):
    """The seed runs of ``run_name`` in ``results`` (by seed), or ``None`` when
    there is none or one of them has no results."""
    names = seed_replicates(run_name, results)
    if not names or any(results.get(name) is None for name in names):
        return None
    return names


def seed_values(results, run_name, dialect, split, metric):
    """The ``metric`` of each seed run of ``run_name`` (``None`` if one lacks it).

    Example
    -------
    >>> results = {"t/a/diff": {"a_test": {"WER": 20.0}},
    ...            "t/a/diff_s2": {"a_test": {"WER": 22.0}}}
    >>> seed_values(results, "t/a/diff", "a", "test", "WER")
    [20.0, 22.0]
    """
    names = finished_replicates(results, run_name)
    if names is None:
        return None
    values = [metric_value(results, name, dialect, split, metric) for name in names]
    return None if None in values else values


def mean_std(values):
    """``(mean, sample std)`` of ``values``; the std is ``None`` for one value.

    Example
    -------
    >>> mean_std([20.0]), mean_std([20.0, 22.0])
    ((20.0, None), (21.0, 1.4142135623730951))
    """
    mean = sum(values) / len(values)
    return mean, (statistics.stdev(values) if len(values) > 1 else None)


def calibration_rows(results, size, source, targets, metric):
    """The benchmark's calibration: (a) source, (b) zero-shot, (d) vanilla, on test.

    Arguments
    ---------
    results : dict
        Run name -> ``results.json`` content (or ``None``).
    size : str
        The model size whose runs are read.
    source : str
        The dialect pretrained on.
    targets : list of str
        The target dialects.
    metric : str
        ``WER``, ``CER`` or ``SER``.

    Returns
    -------
    list of dict
        Rows ``{"row", "model", "test set", metric, "vs (a)"}``; vanilla is the
        mean over its seed runs. Cells missing from the results are ``None``.

    Example
    -------
    >>> results = {"t/pretrain": {"s_test": {"WER": 10.0}, "x_test": {"WER": 25.0}},
    ...            "t/x/vanilla": {"x_test": {"WER": 15.0}}}
    >>> [row["vs (a)"] for row in calibration_rows(results, "t", "s", ["x"], "WER")]
    [1.0, 2.5, 1.5]
    """
    pretrain = f"{size}/pretrain"
    source_value = metric_value(results, pretrain, source, "test", metric)

    def row(label, model, dialect, value):
        ratio = None
        if value is not None and source_value:
            ratio = round(value / source_value, 2)
        return {"row": label, "model": model, "test set": dialect, metric: value,
                "vs (a)": ratio}

    rows = [row("(a)", f"pretrained on {source}", source, source_value)]
    for target in targets:
        rows.append(row("(b)", f"pretrained on {source}, zero-shot", target,
                        metric_value(results, pretrain, target, "test", metric)))
        values = seed_values(results, f"{size}/{target}/vanilla", target, "test",
                             metric)
        rows.append(row("(d)", f"vanilla fine-tuning on {target}", target,
                        None if values is None else mean_std(values)[0]))
    return rows


def score_columns(targets):
    """``['<t> dev', '<t> test', ...]`` for the target dialects."""
    return [f"{target} {split}" for target in targets for split in SPLITS]


def method_rows(results, size, targets, methods, metric, trainable=None):
    """One row per ``(label, run label)`` of ``methods`` for the model ``size``.

    Arguments
    ---------
    results : dict
        Run name -> that run's results (``None`` when it has none).
    size : str
        The model size (the runs are ``<size>/<target>/<run label>``).
    targets : list of str
        Target dialects, in column order.
    methods : list of (str, str)
        Row label and run label.
    metric : str
        ``WER``, ``CER`` or ``SER``.
    trainable : dict, optional
        Run name -> trainable fraction per target; adds a ``trainable %`` column
        (mean over targets).

    Returns
    -------
    list of dict
    """
    rows = []
    for label, run_label in methods:
        row = {"Method": label}
        cells = []
        for target in targets:
            for split in SPLITS:
                values = seed_values(results, f"{size}/{target}/{run_label}",
                                     target, split, metric)
                column = f"{target} {split}"
                row[column], row[f"{column} std"] = (
                    (None, None) if values is None else mean_std(values))
                cells.append(values)
        row["Avg"], row["Avg std"] = _average(cells)
        if trainable is not None:
            fractions = [trainable.get(f"{size}/{target}/{run_label}")
                         for target in targets]
            fractions = [f for f in fractions if f is not None]
            row["trainable %"] = (100 * sum(fractions) / len(fractions)
                                  if fractions else None)
        rows.append(row)
    return rows


def _average(cells):
    """Mean and std over seeds of the per-seed mean of ``cells`` (lists of
    per-seed values); ``(None, None)`` when a cell is missing."""
    if not cells or None in cells:
        return None, None
    if len({len(values) for values in cells}) > 1:  # unlike seed counts
        return sum(mean_std(v)[0] for v in cells) / len(cells), None
    per_seed = [sum(values) / len(values) for values in zip(*cells)]
    return mean_std(per_seed)


def table2(results, sizes, targets, metric, parameters):
    """Table II: vanilla / fisher / diff for every model size.

    ``parameters`` maps a size to its parameter count (or ``None``).
    """
    rows = []
    for size in sizes:
        count = parameters.get(size)
        for row in method_rows(results, size, targets, TABLE2_METHODS, metric):
            rows.append({"Model": f"Transformer ({size})",
                         "Params (M)": None if count is None else count / 1e6, **row})
    return rows


def _format(value, std=None):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}" + ("" if std is None else f" ± {std:.2f}")
    return str(value)


def to_markdown(rows, columns):
    """A Markdown table of ``rows`` (floats with 2 decimals, ``None`` as ``-``,
    ``mean ± std`` where the row has a ``<column> std``)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = (_format(row.get(c), row.get(f"{c} std")) for c in columns)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_table(rows, columns, stem, title):
    """Writes ``<stem>.md`` (title + table) and ``<stem>.csv``; returns the Markdown.

    The CSV has the means in ``columns`` and, after each column where some row
    has several seeds, a ``<column> std`` column."""
    markdown = f"{title}\n\n{to_markdown(rows, columns)}\n"
    write_text_atomic(f"{stem}.md", markdown)
    csv_columns = []
    for column in columns:
        csv_columns.append(column)
        if any(row.get(f"{column} std") is not None for row in rows):
            csv_columns.append(f"{column} std")
    csv_rows = [{c: "" if row.get(c) is None else row.get(c) for c in csv_columns}
                for row in rows]
    write_csv_atomic(f"{stem}.csv", csv_rows, csv_columns)
    return markdown
