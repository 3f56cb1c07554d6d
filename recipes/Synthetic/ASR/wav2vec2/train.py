#!/usr/bin/env python3
"""Wav2vec2-family CTC models on the embedded synthetic corpus: train, prune.

Stages (each a YAML in ``hparams/``):

* ``wav2vec2_tiny.yaml`` / ``wavlm_tiny.yaml``: a small Wav2Vec2 / WavLM
  ``*ForCTC`` model trained from scratch on the source dialect (characters,
  CTC); saved as a Hugging Face directory in ``<output_folder>/model``;
* ``prune_obs_wav2vec2_tiny.yaml`` / ``prune_obs_wavlm_tiny.yaml``: that
  directory pruned with SparseWAV (layer-wise OBS, improved saliency, optional
  mixed sparsity) and fine-tuned with the pruned entries kept at zero
  (one-pass, or progressive with several ``prune_sparsities``).

Usage::

    python train.py hparams/wav2vec2_tiny.yaml
    python train.py hparams/prune_obs_wav2vec2_tiny.yaml --sparsity 0.75
    python train.py hparams/prune_obs_wav2vec2_tiny.yaml \\
        --prune_sparsities=[0.5,0.7,0.8] --device cuda:0

The pipeline is :func:`speechbrain_sparse.asr.ctc_experiment.run_ctc_experiment`.
"""

import sys

from speechbrain_sparse.asr.ctc_experiment import run_ctc_experiment
from speechbrain_sparse.asr.experiment import start_stage
from speechbrain_sparse.data.synthetic_prepare import CORPUS_KEYS, prepare_synthetic
from speechbrain_sparse.errors import exit_on_user_error


def main(argv):
    """Runs one stage; returns the test results."""
    hparams, run_opts = start_stage(argv, CORPUS_KEYS)
    prepare_synthetic(hparams)
    return run_ctc_experiment(hparams, run_opts)


if __name__ == "__main__":
    exit_on_user_error(main, sys.argv[1:], "train.py")
