"""Everything the reproduction writes after its runs: tables, figures, claims.

:func:`write_report` reads the finished runs of a matrix and writes, under
``<out>/report/``: ``table2``, ``table3``, ``table4`` (``.md`` and ``.csv``),
``fig3_trainable_fraction.png``, ``diff_masks_by_dialect.png`` and
``report.md`` (all of it, plus a check of the paper's four claims computed
from the same numbers). Tables II's model sizes are every size of the matrix;
Tables III and IV, Fig. 3 and the mask figure use the largest one, as the
paper does with Transformer (Large).
"""

import os
from pathlib import Path

import torch

from speechbrain_sparse.data.manifests import write_text_atomic
from speechbrain_sparse.mask_plots import load_masks, write_dialect_comparison
from speechbrain_sparse.masks import ParameterMask
from speechbrain_sparse.reproduction.figures import (
    fraction_curves,
    write_fraction_figure,
)
from speechbrain_sparse.reproduction.tables import (
    TABLE3_METHODS,
    TABLE4_METHODS,
    method_rows,
    score_columns,
    table2,
    to_markdown,
    write_table,
)

# The recipes' ``model`` ModuleList, whose indices start the mask's names.
MODEL_PARTS = ("CNN", "Transformer", "seq_lin", "ctc_lin")


def layer_label(layer):
    """``'1.encoder.layers.0'`` -> ``'Transformer.encoder.layers.0'``.

    Example
    -------
    >>> layer_label("1.encoder.layers.0"), layer_label("3"), layer_label("x.y")
    ('Transformer.encoder.layers.0', 'ctc_lin', 'x.y')
    """
    head, _, rest = layer.partition(".")
    if head.isdigit() and int(head) < len(MODEL_PARTS):
        return MODEL_PARTS[int(head)] + (f".{rest}" if rest else "")
    return layer


def count_parameters(size_folder):
    """Parameters of the model of one size (``None`` when nothing tells).

    A mask of any run of that size covers every parameter; without one, the
    entries of the pretrained ``model.ckpt`` are counted (buffers included).
    """
    for mask_file in sorted(Path(size_folder).glob("*/*/mask.pt")):
        return ParameterMask.load(mask_file).numel()
    path = Path(size_folder) / "pretrain" / "model" / "model.ckpt"
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)
    return sum(t.numel() for t in state.values() if torch.is_tensor(t))


def trainable_fractions(out_dir, runs):
    """Run name -> density of its ``mask.pt`` (1.0 for vanilla), when known."""
    fractions = {}
    for run in runs:
        mask_file = Path(out_dir) / run.name / "mask.pt"
        if run.method == "vanilla":
            fractions[run.name] = 1.0
        elif mask_file.is_file():
            fractions[run.name] = ParameterMask.load(mask_file).density()
    return fractions


def _avg(rows, label):
    for row in rows:
        if row["Method"] == label:
            return row["Avg"]
    return None


def check_claims(table3_rows, table4_rows, curves, fractions_dev_best):
    """The paper's four claims against our numbers, one Markdown bullet each.

    Every check compares the ``Avg`` column (dev and test of every target),
    except the best trainable fraction, which is chosen on dev only.
    """
    lines = []

    def verdict(ok):
        if ok is None:
            return "n/a (runs missing)"
        return "holds" if ok else "does not hold"

    diff, vanilla = _avg(table3_rows, "diff"), _avg(table3_rows, "vanilla")
    ok = None if None in (diff, vanilla) else diff < vanilla
    lines.append(f"- diff beats vanilla: **{verdict(ok)}** "
                 f"(Avg {_fmt(diff)} vs {_fmt(vanilla)})")
    averages = {row["Method"]: row["Avg"] for row in table3_rows}
    ok = None
    if averages and None not in averages.values():
        ok = max(averages, key=averages.get) == "random"
    ranked = ", ".join(f"{m} {_fmt(v)}" for m, v in
                       sorted(averages.items(), key=lambda kv: -(kv[1] or 0)))
    lines.append(f"- random is worst (Table III): **{verdict(ok)}** (worst first: "
                 f"{ranked})")
    union = _avg(table4_rows, "diff(30%) + topk(10%), union")
    diff4 = _avg(table4_rows, "diff")
    ok = None if None in (union, diff4) else union <= diff4
    lines.append(f"- diff30+topk10 union >= diff (lower or equal error): "
                 f"**{verdict(ok)}** (Avg {_fmt(union)} vs {_fmt(diff4)})")
    if fractions_dev_best:
        inside = all(0.1 <= f <= 0.3 for f in fractions_dev_best.values())
        best = ", ".join(f"{t} {f:g}" for t, f in fractions_dev_best.items())
        lines.append(f"- best trainable fraction in 10-30 % (chosen on dev): "
                     f"**{verdict(inside)}** (best: {best})")
    else:
        lines.append("- best trainable fraction in 10-30 %: **n/a (runs missing)**")
    return "\n".join(lines)


def _fmt(value):
    return "-" if value is None else f"{value:.2f}"


def best_fraction_on_dev(curves, targets):
    """Target -> the fraction with the lowest dev error (ties: the smallest)."""
    best = {}
    for target in targets:
        points = curves.get((target, "dev")) or []
        if points:
            best[target] = min(points, key=lambda p: (p[1], p[0]))[0]
    return best


def write_report(out_dir, runs, results, sizes, targets, metric, fractions, density,
                 header=""):
    """Writes the tables, figures and ``report.md``; returns the report text."""
    folder = Path(out_dir) / "report"
    folder.mkdir(parents=True, exist_ok=True)
    largest = sizes[-1]
    scores = score_columns(targets)
    trainable = trainable_fractions(out_dir, runs)
    parameters = {s: count_parameters(Path(out_dir) / s) for s in sizes}
    about = (f"{metric} (%) on each target dialect's dev and test sets; Avg = mean "
             f"of the {len(scores)} cells")
    rows2 = table2(results, sizes, targets, metric, parameters)
    text2 = write_table(rows2, ["Model", "Params (M)", "Method", *scores, "Avg"],
                        folder / "table2", f"### Table II: vanilla / fisher / diff "
                        f"({about})")
    rows3 = method_rows(results, largest, targets, TABLE3_METHODS, metric, trainable)
    text3 = write_table(rows3, ["Method", *scores, "Avg", "trainable %"],
                        folder / "table3", f"### Table III: other sparse methods, "
                        f"Transformer ({largest}) ({about})")
    rows4 = method_rows(results, largest, targets, TABLE4_METHODS, metric, trainable)
    text4 = write_table(rows4, ["Method", *scores, "Avg", "trainable %"],
                        folder / "table4", f"### Table IV: combined masks, "
                        f"Transformer ({largest}) ({about})")
    curves = fraction_curves(results, largest, targets, fractions, metric, density)
    fig3 = folder / "fig3_trainable_fraction.png"
    write_fraction_figure(curves, fig3, metric,
                          f"diff: {metric} vs trainable fraction "
                          f"(Transformer {largest})")
    mask_paths = {t: str(Path(out_dir) / largest / t / "diff" / "mask.pt")
                  for t in targets}
    masks = load_masks(mask_paths)
    mask_png = folder / "diff_masks_by_dialect.png"
    overlap = {"jaccard": None}
    if masks:
        overlap = write_dialect_comparison(
            masks, str(mask_png),
            title=f"diff masks (density {density:g}), Transformer ({largest})",
            layer_label=layer_label)
    best = best_fraction_on_dev(curves, targets)
    claims = check_claims(rows3, rows4, curves, best)
    curve_rows = [{"curve": f"{t} {s} ({metric})", **{f"{f:g}": v for f, v in points}}
                  for (t, s), points in curves.items()]
    curve_table = to_markdown(curve_rows, ["curve", *(f"{f:g}" for f in fractions)])
    jaccard = overlap.get("jaccard")
    text = "\n".join([
        header,
        text2, text3, text4,
        "### Fig. 3: error rate vs trainable fraction (diff)\n",
        f"![fig3]({fig3.name})\n",
        "trainable fraction ->\n", curve_table, "",
        "### Where the dialect-specific parameters are\n",
        f"![masks]({mask_png.name})\n" if masks else "(no diff masks yet)\n",
        (f"Jaccard overlap of the two targets' diff masks: {jaccard:.3f}\n"
         if jaccard is not None else ""),
        "### The paper's claims on this benchmark\n",
        claims, "",
    ])
    write_text_atomic(folder / "report.md", text)
    return text, {"fig3": str(fig3), "masks": str(mask_png) if masks else None,
                  "report": str(folder / "report.md")}


def relative(path, start=None):
    """``path`` relative to ``start`` (the cwd) when inside it."""
    try:
        return os.path.relpath(path, start or os.getcwd())
    except ValueError:
        return str(path)
