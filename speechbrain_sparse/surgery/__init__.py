"""Surgery: remove pruned units for real, save and load the smaller model.

* :mod:`~speechbrain_sparse.surgery.modules`: :class:`ConstantOutput` and
  :class:`PrunedSelfAttention`, what replaces pruned blocks;
* :mod:`~speechbrain_sparse.surgery.remove`: :func:`remove_units` (a unit mask
  -> smaller Linears, fewer heads and per-head dims, constant blocks, fewer
  conv channels), in place;
* :mod:`~speechbrain_sparse.surgery.io`: :func:`save_structured` /
  :func:`load_structured` (a folder with ``structure.json``).

Authors
 * speechbrain_sparse contributors 2026
"""

from speechbrain_sparse.surgery.io import load_structured, save_structured
from speechbrain_sparse.surgery.modules import (
    ConstantOutput,
    PrunedSelfAttention,
    count_flops,
)
from speechbrain_sparse.surgery.remove import count_parameters, remove_units

__all__ = ["ConstantOutput", "PrunedSelfAttention", "count_flops", "count_parameters",
           "load_structured", "remove_units", "save_structured"]
