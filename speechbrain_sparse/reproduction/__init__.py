"""Runs a paper's experiment matrix and turns its results into tables and figures.

* :mod:`~speechbrain_sparse.reproduction.plan`: which runs a table needs;
* :mod:`~speechbrain_sparse.reproduction.runner`: runs them (cached, resumable,
  in parallel, failures isolated);
* :mod:`~speechbrain_sparse.reproduction.tables`: Tables II-IV (Markdown + CSV);
* :mod:`~speechbrain_sparse.reproduction.figures`: Fig. 3 and the mask figure;
* :mod:`~speechbrain_sparse.reproduction.bootstrap`: the paired bootstrap over
  test utterances that tells a difference from noise;
* :mod:`~speechbrain_sparse.reproduction.claims`: the paper's claims judged
  with it;
* :mod:`~speechbrain_sparse.reproduction.sparsewav_tables`: the SparseWAV
  paper's Table 1 ablation and Fig. 1 curve (plan, tables, claims).
"""
