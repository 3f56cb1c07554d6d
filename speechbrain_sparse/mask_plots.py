"""Where a mask's selected entries are: per-layer density grids and their PNGs.

Rows are layers (:func:`~speechbrain_sparse.masks.layer_of`), columns are
parameter kinds (attention, FFN, norm, embedding, conv, other), a cell is the
fraction of that block's entries the mask selects. :func:`write_heatmap` draws
one mask (``sb-sparse inspect --heatmap``); :func:`write_dialect_comparison`
draws the masks of two target dialects side by side with their per-layer
Jaccard overlap (the reproduction tool), since users ask where the
dialect-specific parameters are and whether two dialects share them.

Example
-------
>>> parameter_kind("encoder.layers.0.self_att.att.in_proj_weight")
'attention'
>>> parameter_kind("decoder.layers.1.pos_ffn.ffn.0.weight")
'ffn'
"""

import os

from speechbrain_sparse.masks import ParameterMask, layer_of

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


def _grid_array(mask, layers, kinds):
    """The density grid of ``mask`` on given rows/columns as a NaN-padded array."""
    import numpy as np

    mask_layers, mask_kinds, grid = density_grid(mask)
    values = np.full((len(layers), len(kinds)), np.nan)
    for i, layer in enumerate(mask_layers):
        for j, kind in enumerate(mask_kinds):
            if grid[i][j] is not None:
                values[layers.index(layer), kinds.index(kind)] = grid[i][j]
    return values


def write_dialect_comparison(masks, path, title="", layer_label=str):
    """Writes the per-layer densities of two or more masks and their overlap.

    Arguments
    ---------
    masks : dict
        Label (e.g. the dialect) -> :class:`~speechbrain_sparse.masks.ParameterMask`
        over the same model.
    path : str
        The PNG to write.
    title : str
        Figure title.
    layer_label : callable
        Layer name -> the label shown (e.g. ``"1.encoder.layers.0"`` ->
        ``"Transformer.encoder.layers.0"``).

    Returns
    -------
    dict
        ``{"jaccard": float or None, "jaccard_per_layer": {layer: float}}`` of the
        first two masks (``None`` with a single mask).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = list(masks)
    raw = {label: density_grid(mask) for label, mask in masks.items()}
    layers = list(dict.fromkeys(x for g in raw.values() for x in g[0]))
    kinds = list(dict.fromkeys(k for g in raw.values() for k in g[1]))
    overlap = {"jaccard": None, "jaccard_per_layer": {}}
    if len(labels) >= 2:
        first, second = masks[labels[0]], masks[labels[1]]
        overlap = {"jaccard": first.jaccard(second),
                   "jaccard_per_layer": first.jaccard_per_layer(second)}
    panels = len(labels) + (1 if len(labels) >= 2 else 0)
    fig, axes = plt.subplots(1, panels, figsize=(3.2 * panels + 2,
                                                 0.25 * len(layers) + 2),
                             sharey=True, squeeze=False)
    axes = axes[0]
    image = None
    grids = {label: _grid_array(masks[label], layers, kinds) for label in labels}
    top = max([float(np.nanmax(g)) for g in grids.values() if np.isfinite(g).any()]
              + [0.05])  # colour scale up to the densest block, for contrast
    for axis, label in zip(axes, labels):
        values = grids[label]
        image = axis.imshow(values, aspect="auto", cmap="viridis", vmin=0, vmax=top)
        axis.set_xticks(range(len(kinds)), kinds, rotation=45, ha="right")
        axis.set_title(f"{label}\ndensity {masks[label].density():.3f}", fontsize=9)
    axes[0].set_yticks(range(len(layers)), [layer_label(x) for x in layers],
                       fontsize=7)
    if len(labels) >= 2:
        axis = axes[-1]
        per_layer = overlap["jaccard_per_layer"]
        axis.barh(range(len(layers)), [per_layer.get(x, np.nan) for x in layers],
                  color="tab:orange")
        axis.set_xlim(0, 1)
        axis.set_xlabel("Jaccard")
        axis.set_title(f"overlap {labels[0]} vs {labels[1]}\n"
                       f"global {overlap['jaccard']:.3f}", fontsize=9)
    if image is not None:
        fig.colorbar(image, ax=list(axes[: len(labels)]), label="selected fraction")
    if title:
        fig.suptitle(title, fontsize=10)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return overlap


def write_pair_heatmap(labels, matrix, path, title=""):
    """Writes a labelled square matrix in [0, 1] (e.g. per-language-pair Jaccard).

    Arguments
    ---------
    labels : list of str
        Row and column labels (e.g. languages).
    matrix : list of list of float
        ``matrix[i][j]`` for labels ``i``, ``j``; each cell is printed too.
    path : str
        The PNG to write.
    title : str
        Figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    size = 1.0 + 0.7 * len(labels)
    fig, axis = plt.subplots(figsize=(size + 1.2, size))
    image = axis.imshow(matrix, cmap="viridis", vmin=0.0, vmax=1.0)
    axis.set_xticks(range(len(labels)), labels)
    axis.set_yticks(range(len(labels)), labels)
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            axis.text(j, i, f"{value:.2f}", ha="center", va="center",
                      color="white" if value < 0.6 else "black", fontsize=8)
    axis.set_title(title, fontsize=9)
    fig.colorbar(image, ax=axis)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def load_masks(paths):
    """``{label: ParameterMask}`` from ``{label: path}``, skipping missing files."""
    return {label: ParameterMask.load(path) for label, path in paths.items()
            if os.path.isfile(path)}
