"""Tables II-IV of the sparse fine-tuning paper from the runs' ``results.json``.

A table is a list of rows (dicts) with the columns of the paper: the method,
then ``<target> dev`` / ``<target> test`` for each target dialect and their
average ``Avg``; Table II adds the model and its size. Error rates come from
the key ``<dialect>_<split>`` of each run's results, in the metric asked for
(``WER``, ``CER`` or, for Tibetan, ``SER``). A cell whose run failed or is
missing is ``None`` (shown as ``-``), and so is the average of a row with a
missing cell: nothing is averaged over fewer numbers than the header says.

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
"""

from speechbrain_sparse.data.manifests import write_csv_atomic, write_text_atomic

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
                value = metric_value(results, f"{size}/{target}/{run_label}",
                                     target, split, metric)
                row[f"{target} {split}"] = value
                cells.append(value)
        row["Avg"] = None if None in cells or not cells else sum(cells) / len(cells)
        if trainable is not None:
            fractions = [trainable.get(f"{size}/{target}/{run_label}")
                         for target in targets]
            fractions = [f for f in fractions if f is not None]
            row["trainable %"] = (100 * sum(fractions) / len(fractions)
                                  if fractions else None)
        rows.append(row)
    return rows


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


def _format(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def to_markdown(rows, columns):
    """A Markdown table of ``rows`` (floats with 2 decimals, ``None`` as ``-``)."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        lines.append("| " + " | ".join(_format(row.get(c)) for c in columns) + " |")
    return "\n".join(lines)


def write_table(rows, columns, stem, title):
    """Writes ``<stem>.md`` (title + table) and ``<stem>.csv``; returns the Markdown."""
    markdown = f"{title}\n\n{to_markdown(rows, columns)}\n"
    write_text_atomic(f"{stem}.md", markdown)
    csv_rows = [{c: "" if row.get(c) is None else row.get(c) for c in columns}
                for row in rows]
    write_csv_atomic(f"{stem}.csv", csv_rows, columns)
    return markdown
