"""Pruning: which weights of a speech model are kept, and what the rest become.

* :mod:`~speechbrain_sparse.pruning.hessian`: the layer-wise Hessian ``2 X Xᵀ / n``
  accumulated from calibration inputs;
* :mod:`~speechbrain_sparse.pruning.obs`: one-shot OBS pruning of one matrix
  (SparseWAV / SparseGPT), and the magnitude baseline;
* :mod:`~speechbrain_sparse.pruning.mixed_sparsity`: Hutchinson sensitivities and
  per-matrix sparsities whose weighted mean is the target;
* :mod:`~speechbrain_sparse.pruning.reconstruction`: ``||WX - ŴX||² / ||WX||²``;
* :mod:`~speechbrain_sparse.pruning.sparse_export`: the bitmask + values
  checkpoint format.
"""
