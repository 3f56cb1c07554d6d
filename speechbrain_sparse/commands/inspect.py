"""``sb-sparse inspect``: per-layer density of a mask, overlap with another.

Prints the mask's metadata and a per-layer density table; with ``--against``
also the Jaccard overlap (global and per layer); with ``--heatmap`` writes a PNG
of the density per layer (rows) and parameter kind (columns).

The grid and the PNG come from :mod:`speechbrain_sparse.mask_plots`.
"""

from speechbrain_sparse.commands import UserError
from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.fileio import check_writable
from speechbrain_sparse.mask_plots import write_heatmap
from speechbrain_sparse.masks import ParameterMask

NAME = "inspect"
HELP = "show a mask's per-layer density, overlap with another, heatmap"
def add_arguments(parser):
    """Adds the ``inspect`` options to ``parser``."""
    parser.add_argument("mask", help="mask file")
    parser.add_argument(
        "--against", metavar="MASK2", help="second mask file: print the Jaccard overlap"
    )
    parser.add_argument(
        "--heatmap",
        metavar="PNG",
        help="write a per-layer x parameter-kind density heatmap",
    )


def format_table(mask, other=None):
    """Returns the per-layer table (with per-layer Jaccard against ``other``)."""
    rows = mask.layer_table()
    per_layer = mask.jaccard_per_layer(other) if other is not None else {}
    width = max([len("layer")] + [len(row["layer"]) for row in rows])
    header = f"{'layer':<{width}}  {'selected':>12}  {'total':>12}  {'density':>8}"
    lines = [header + ("  jaccard" if other is not None else "")]
    for row in rows:
        line = (
            f"{row['layer']:<{width}}  {row['selected']:>12}  {row['total']:>12}"
            f"  {row['density']:>8.4f}"
        )
        if other is not None:
            line += f"  {per_layer[row['layer']]:>7.4f}"
        lines.append(line)
    return "\n".join(lines)


def run(args):
    """Prints the report; writes the heatmap if asked."""
    if args.heatmap:
        check_writable(args.heatmap, "--heatmap")
    mask = ParameterMask.load(args.mask)
    other = ParameterMask.load(args.against) if args.against else None
    print(f"mask: {args.mask}")
    print(f"method: {mask.method}  options: {mask.options}")
    target = "-" if mask.target_density is None else f"{mask.target_density:.6f}"
    print(
        f"density: {mask.density():.6f} (target {target}), "
        f"{mask.num_selected()} of {mask.numel()} entries in {len(mask)} tensors"
    )
    print(f"coverage: {mask.coverage.to_dict()}")
    if other is not None:
        try:
            print(f"jaccard vs {args.against}: {mask.jaccard(other):.6f}")
        except UserInputError as error:
            raise UserError(
                f"{args.mask} and {args.against} cannot be compared: {error}"
            ) from error
    print(format_table(mask, other))
    if args.heatmap:
        write_heatmap(mask, args.heatmap)
        print(f"wrote {args.heatmap}")
    return 0
