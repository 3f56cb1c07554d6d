"""``sb-sparse inspect``: per-layer density of a mask, overlap with another.

Prints the mask's metadata and a per-layer density table; with ``--against``
also the Jaccard overlap (global and per layer); with ``--heatmap`` writes a PNG
of the density per layer (rows) and parameter kind (columns).

Example
-------
>>> parameter_kind("encoder.layers.0.self_att.att.in_proj_weight")
'attention'
>>> parameter_kind("decoder.layers.1.pos_ffn.ffn.0.weight")
'ffn'
"""

import os

from speechbrain_sparse.masks import ParameterMask, layer_of

NAME = "inspect"
HELP = "show a mask's per-layer density, overlap with another, heatmap"
KINDS = {  # matched in this order: "attention.layer_norm" is a norm
    "norm": ("norm", "ln_"),
    "attention": ("att", "q_proj", "k_proj", "v_proj", "in_proj"),
    "ffn": ("ffn", "feed_forward", "fc1", "fc2", "intermediate", "mlp"),
    "embedding": ("emb",),
    "conv": ("conv", "cnn"),
}


def parameter_kind(name):
    """Returns the kind: attention, ffn, norm, embedding, conv or other."""
    lowered = name.lower()
    for kind, keys in KINDS.items():
        if any(key in lowered for key in keys):
            return kind
    return "other"


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


def density_grid(mask):
    """Returns ``(layers, kinds, grid)``: grid[i][j] is a density or None.

    Example
    -------
    >>> import torch
    >>> mask = ParameterMask({"enc.layers.0.att.w": torch.tensor([True, False]),
    ...                       "enc.layers.0.norm.w": torch.tensor([True])})
    >>> density_grid(mask)
    (['enc.layers.0'], ['attention', 'norm'], [[0.5, 1.0]])
    """
    counts = {}
    for name, tensor in mask.items():
        key = (layer_of(name), parameter_kind(name))
        selected, total = counts.get(key, (0, 0))
        counts[key] = (selected + int(tensor.count_nonzero()), total + tensor.numel())
    layers = list(dict.fromkeys(layer for layer, _ in counts))
    order = ["attention", "ffn", "norm", "embedding", "conv", "other"]
    kinds = [k for k in order if any(kind == k for _, kind in counts)]

    def cell(layer, kind):
        selected, total = counts.get((layer, kind), (0, 0))
        return selected / total if total else None

    return layers, kinds, [[cell(layer, kind) for kind in kinds] for layer in layers]


def write_heatmap(mask, path):
    """Writes the per-layer x kind density heatmap of ``mask`` to ``path`` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    layers, kinds, grid = density_grid(mask)
    values = np.array([[np.nan if v is None else v for v in row] for row in grid])
    fig, axis = plt.subplots(figsize=(1.2 * len(kinds) + 3, 0.25 * len(layers) + 1.5))
    image = axis.imshow(values, aspect="auto", cmap="viridis", vmin=0.0, vmax=1.0)
    axis.set_xticks(range(len(kinds)), kinds)
    axis.set_yticks(range(len(layers)), layers, fontsize=7)
    axis.set_title(f"{mask.method} mask, density {mask.density():.4f}")
    fig.colorbar(image, ax=axis, label="selected fraction")
    fig.tight_layout()
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run(args):
    """Prints the report; writes the heatmap if asked."""
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
        except ValueError as error:
            raise ValueError(
                f"{args.mask} and {args.against} cannot be compared: {error}"
            ) from error
    print(format_table(mask, other))
    if args.heatmap:
        write_heatmap(mask, args.heatmap)
        print(f"wrote {args.heatmap}")
    return 0
