#!/usr/bin/env python3
"""Transformer ASR on the embedded synthetic multi-dialect corpus.

Stages (each a YAML in ``hparams/``, every key overridable by its name):

* ``pretrain_<size>.yaml``: train on the high-resource source dialect, test on
  it and zero-shot on every target dialect; export the best checkpoint to
  ``<output_folder>/model``;
* ``<method>_<size>.yaml``: fine-tune that model on one target dialect with
  one method of the sparse fine-tuning paper — ``vanilla`` (all parameters),
  ``diff``, ``fisher``, ``topk``, ``random`` (a mask, the rest bit-identical),
  ``adapter``, ``union`` / ``intersection`` of two masks; test on its dev and
  test sets;
* ``prune_obs_<size>.yaml``: prune the pretrained model with SparseWAV
  (one-shot layer-wise OBS) and fine-tune it with the pruned entries at zero.

Sizes: ``tiny`` (CPU demo), ``small`` and ``large`` (the paper's models).
The corpus is synthesised on first use
(:mod:`speechbrain_sparse.data.synthetic_prepare`).
The Brain is :class:`speechbrain_sparse.asr.brain.TransformerASRBrain` (with
:class:`~speechbrain_sparse.training.MaskedTrainingMixin` for masked methods);
the pipeline, :func:`speechbrain_sparse.asr.experiment.run_asr_experiment`.

Usage::

    python train.py hparams/pretrain_tiny.yaml
    python train.py hparams/vanilla_tiny.yaml --dialect en-029
    python train.py hparams/diff_tiny.yaml --dialect en-029 --density 0.1
    python train.py hparams/pretrain_tiny.yaml --device cuda:0
    torchrun --nproc_per_node=2 train.py hparams/pretrain_small.yaml
"""

import sys

from speechbrain_sparse.asr.experiment import run_asr_experiment, start_stage
from speechbrain_sparse.data.synthetic_prepare import CORPUS_KEYS, prepare_synthetic
from speechbrain_sparse.errors import exit_on_user_error


def main(argv):
    """Runs one stage of the recipe; returns the test results."""
    hparams, run_opts = start_stage(argv, CORPUS_KEYS)
    prepare_synthetic(hparams)
    return run_asr_experiment(hparams, run_opts)


if __name__ == "__main__":
    exit_on_user_error(main, sys.argv[1:], "train.py")
