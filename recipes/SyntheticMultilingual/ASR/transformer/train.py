#!/usr/bin/env python3
"""Transformer ASR on the multilingual synthetic corpus: cross-lingual fine-tuning.

The sparse fine-tuning paper's stages with languages in place of dialects
(each a YAML in ``hparams/``, every key overridable by its name):

* ``pretrain_tiny.yaml``: train on the high-resource source language (English),
  with one SentencePiece tokenizer learnt from its training text and the
  targets' (``tokenizer_extra_csvs``); test on it and zero-shot on every target;
* ``<method>_tiny.yaml``: fine-tune that model on one target language (French
  or Dutch) with ``vanilla``, ``diff``, ``fisher``, ``topk``, ``random``,
  ``adapter``, ``union`` or ``intersection``; test on its dev and test sets.

The YAMLs are the Synthetic dialect recipe's but for their data block (both
written by ``tools/write_hparams.py``); the corpus, ``sb-sparse synth
--preset ml_tiny``, is synthesised on first use
(:mod:`speechbrain_sparse.data.synthetic_prepare`).

Usage::

    python train.py hparams/pretrain_tiny.yaml
    python train.py hparams/vanilla_tiny.yaml --dialect nl
    python train.py hparams/diff_tiny.yaml --dialect nl --density 0.1
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
