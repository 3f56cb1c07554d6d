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

import speechbrain as sb

from speechbrain_sparse.asr.ctc_experiment import run_ctc_experiment
from speechbrain_sparse.asr.experiment import check_prerequisites
from speechbrain_sparse.asr.options import load_stage_hparams
from speechbrain_sparse.data.synthetic_prepare import CORPUS_KEYS, prepare_synthetic
from speechbrain_sparse.errors import exit_on_user_error


def main(argv):
    """Runs one stage; returns the test results."""
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    hparams = load_stage_hparams(hparams_file, overrides, recipe_keys=CORPUS_KEYS)
    check_prerequisites(hparams)
    sb.utils.distributed.ddp_init_group(run_opts)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    prepare_synthetic(hparams)
    return run_ctc_experiment(hparams, run_opts)


if __name__ == "__main__":
    exit_on_user_error(main, sys.argv[1:], "train.py")
