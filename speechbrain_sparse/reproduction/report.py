"""Everything the reproduction writes after its runs: tables, figures, claims.

:func:`write_report` reads the finished runs of a matrix and writes, under
``<out>/report/``: ``table2``, ``table3``, ``table4`` (``.md`` and ``.csv``),
``fig3_trainable_fraction.png``, ``diff_masks_by_dialect.png`` and
``report.md`` (all of it, plus the paper's four claims judged by a paired
bootstrap over the test utterances of the same runs,
:mod:`~speechbrain_sparse.reproduction.claims`). Tables II's model sizes are
every size of the matrix; Tables III and IV, Fig. 3, the mask figure and the
claims use the largest one, as the paper does with Transformer (Large).
Methods run with several seeds show mean ± std over them in the tables;
Fig. 3 shows seed 1.
"""

import os
from pathlib import Path

import torch

from speechbrain_sparse.fileio import write_text_atomic
from speechbrain_sparse.mask_plots import load_masks, write_dialect_comparison
from speechbrain_sparse.masks import ParameterMask
from speechbrain_sparse.reproduction.bootstrap import RESAMPLES
from speechbrain_sparse.reproduction.claims import Evidence, check_claims
from speechbrain_sparse.reproduction.figures import (
    fraction_curves,
    write_fraction_figure,
)
from speechbrain_sparse.reproduction.tables import (
    TABLE3_METHODS,
    TABLE4_METHODS,
    calibration_rows,
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


def seeds_note(runs):
    """``'; vanilla, diff: mean ± std over 3 seeds'`` (empty with one seed).

    Example
    -------
    >>> from speechbrain_sparse.reproduction.plan import build_matrix
    >>> seeds_note(build_matrix(["tiny"], "s", ["a"], methods=["diff"], seeds=3))
    '; vanilla, diff: mean ± std over 3 seeds'
    """
    seeded = list(dict.fromkeys(run.method for run in runs if run.seed > 1))
    if not seeded:
        return ""
    count = max(run.seed for run in runs)
    return f"; {', '.join(seeded)}: mean ± std over {count} seeds"


def best_fraction_on_dev(curves, targets):
    """Target -> the fraction with the lowest dev error (ties: the smallest)."""
    best = {}
    for target in targets:
        points = curves.get((target, "dev")) or []
        if points:
            best[target] = min(points, key=lambda p: (p[1], p[0]))[0]
    return best


def write_report(out_dir, runs, results, sizes, targets, metric, fractions, density,
                 header="", source=None):
    """Writes the tables, figures and ``report.md``; returns the report text."""
    folder = Path(out_dir) / "report"
    folder.mkdir(parents=True, exist_ok=True)
    largest = sizes[-1]
    scores = score_columns(targets)
    trainable = trainable_fractions(out_dir, runs)
    parameters = {s: count_parameters(Path(out_dir) / s) for s in sizes}
    about = (f"{metric} (%) on each target dialect's dev and test sets; Avg = mean "
             f"of the {len(scores)} cells{seeds_note(runs)}")
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
    evidence = Evidence(out_dir, results, largest, targets, metric)
    claims = check_claims(evidence, rows3, rows4, best, density)
    curve_rows = [{"curve": f"{t} {s} ({metric})", **{f"{f:g}": v for f, v in points}}
                  for (t, s), points in curves.items()]
    curve_table = to_markdown(curve_rows, ["curve", *(f"{f:g}" for f in fractions)])
    jaccard = overlap.get("jaccard")
    calibration = ""
    if source is not None:
        calibration = write_table(
            calibration_rows(results, largest, source, targets, metric),
            ["row", "model", "test set", metric, "vs (a)"], folder / "calibration",
            f"### Calibration of the benchmark: Transformer ({largest}), {metric} (%) "
            f"on test sets (zero-shot wants >= 1.5x the source)")
    text = "\n".join([
        header,
        calibration,
        text2, text3, text4,
        "### Fig. 3: error rate vs trainable fraction (diff)\n",
        f"![fig3]({fig3.name})\n",
        "trainable fraction ->\n", curve_table, "",
        "### Where the dialect-specific parameters are\n",
        f"![masks]({mask_png.name})\n" if masks else "(no diff masks yet)\n",
        (f"Jaccard overlap of the two targets' diff masks: {jaccard:.3f}\n"
         if jaccard is not None else ""),
        "### The paper's claims on this benchmark\n",
        f"Judged on the test sets of the targets, pooled, by a paired bootstrap over "
        f"their utterances ({RESAMPLES} resamples, the same for both methods; "
        f"Bisani & Ney 2004; a method with several seed runs is averaged per "
        f"utterance): **holds** when the 95 % confidence interval of the "
        f"difference excludes 0 in the claimed direction, **does not hold** when "
        f"it excludes 0 in the other, **not resolved** when it contains 0. Δ is in "
        f"{metric} points, negative when the method claimed better has the lower "
        f"error.\n",
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
