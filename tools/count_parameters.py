#!/usr/bin/env python3
"""Prints the parameter count of each model size of the synthetic recipe.

Usage::

    python tools/count_parameters.py [tiny small large]

Builds each ``pretrain_<size>.yaml`` model with random weights (no data) and
counts the parameters of ``model`` (CNN, Transformer, CTC and decoder heads).
Ends with ``RESULT params_<size>=<count> ...``.
"""

import sys
from pathlib import Path

from hyperpyyaml import load_hyperpyyaml

REPO = Path(__file__).resolve().parents[1]
HPARAMS = REPO / "recipes" / "Synthetic" / "ASR" / "transformer" / "hparams"


def count_parameters(size):
    """Number of parameters of the ``size`` model."""
    with open(HPARAMS / f"pretrain_{size}.yaml") as handle:
        hparams = load_hyperpyyaml(handle)
    return sum(p.numel() for p in hparams["model"].parameters())


def main(sizes):
    """Prints a table and the RESULT line."""
    counts = {size: count_parameters(size) for size in sizes}
    for size, count in counts.items():
        print(f"{size:>6}: {count:>12,d} parameters ({count / 1e6:.1f}M)")
    print("RESULT " + " ".join(f"params_{s}={c}" for s, c in counts.items()))


if __name__ == "__main__":
    main(sys.argv[1:] or ["tiny", "small", "large"])
