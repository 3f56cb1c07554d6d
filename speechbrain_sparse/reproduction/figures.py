"""Fig. 3 of the sparse fine-tuning paper: error rate vs trainable fraction.

One line per target dialect and split (test solid, dev dashed), diff masks at
each trainable fraction; the point at 1.0 is vanilla fine-tuning (every entry
trainable, which is what diff at 100 % is).
"""

import os

from speechbrain_sparse.reproduction.plan import sweep_run_name
from speechbrain_sparse.reproduction.tables import SPLITS, metric_value


def fraction_curves(results, size, targets, fractions, metric, density):
    """``{(target, split): [(fraction, value), ...]}`` over the finished runs.

    Example
    -------
    >>> results = {"tiny/a/vanilla": {"a_test": {"WER": 30.0}, "a_dev": {"WER": 29.0}},
    ...            "tiny/a/diff": {"a_test": {"WER": 25.0}}}
    >>> fraction_curves(results, "tiny", ["a"], [0.2, 1.0], "WER", 0.2)[("a", "test")]
    [(0.2, 25.0), (1.0, 30.0)]
    """
    curves = {}
    for target in targets:
        for split in SPLITS:
            points = []
            for fraction in fractions:
                name = sweep_run_name(size, target, fraction, density)
                value = metric_value(results, name, target, split, metric)
                if value is not None:
                    points.append((fraction, value))
            curves[(target, split)] = points
    return curves


def write_fraction_figure(curves, path, metric, title):
    """Draws :func:`fraction_curves` to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(6.0, 4.0))
    colors = {}
    for (target, split), points in curves.items():
        if not points:
            continue
        color = colors.setdefault(target, f"C{len(colors)}")
        xs, ys = zip(*points)
        axis.plot(xs, ys, marker="o", color=color,
                  linestyle="-" if split == "test" else "--",
                  label=f"{target} {split}")
    axis.set_xlabel("trainable fraction (diff mask; 1.0 = vanilla)")
    axis.set_ylabel(f"{metric} (%)")
    axis.set_title(title, fontsize=10)
    axis.grid(alpha=0.3)
    if colors:
        axis.legend(fontsize=8)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
