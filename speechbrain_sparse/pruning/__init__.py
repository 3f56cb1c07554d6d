"""Pruning: which weights of a speech model are kept, and what the rest become.

* :mod:`~speechbrain_sparse.pruning.hessian`: the layer-wise Hessian ``2 X Xᵀ / n``
  accumulated from calibration inputs;
* :mod:`~speechbrain_sparse.pruning.obs`: one-shot OBS pruning of one matrix
  (SparseWAV / SparseGPT), and the magnitude baseline;
* :mod:`~speechbrain_sparse.pruning.mixed_sparsity`: Hutchinson sensitivities and
  per-matrix sparsities whose weighted mean is the target (the ``MixedSparsity``
  allocator);
* :mod:`~speechbrain_sparse.pruning.oneshot`: ``OneShotPruner`` (SparseWAV, a
  whole model block by block), an object holding its settings (``!new:`` in a
  YAML);
* :mod:`~speechbrain_sparse.pruning.magnitude`: ``MagnitudePruner``, the baseline
  with the same interface;
* :mod:`~speechbrain_sparse.pruning.choice`: one of several YAML-built objects,
  chosen by a plain key (``prune_method``);
* :mod:`~speechbrain_sparse.pruning.schedules`: sparsity per training step
  (constant, linear steps, Zhu & Gupta's cubic), ``!new:`` in a YAML;
* :mod:`~speechbrain_sparse.pruning.global_magnitude`: the exact global
  magnitude ranking (default scope: the TransformerASR attention/FFN matrices);
* :mod:`~speechbrain_sparse.pruning.iterative`: IMP rounds with nested masks and
  the lottery-ticket rewind to the dense pretrained weights (LTH);
* :mod:`~speechbrain_sparse.pruning.adaptive`: ``AdaptiveMasker``, soft masks
  re-ranked every n steps while training, the final mask enforced hard;
* :mod:`~speechbrain_sparse.pruning.reconstruction`: ``||WX - ŴX||² / ||WX||²``;
* :mod:`~speechbrain_sparse.pruning.sparse_export`: the bitmask + values
  checkpoint format.
"""
