#!/usr/bin/env python3
"""Probing and trimming a frozen wav2vec2 / WavLM / HuBERT base on LibriSpeech.

The trimming paper's ASR setting (Genova et al. 2024, Table I, LibriSpeech):
the upstream from a local Hugging Face folder (``--upstream_dir``; no
download), frozen; a 2-layer BiLSTM(256)-CTC head on characters trained on
``train_splits`` (Adam, lr 1e-3, ~100k steps); greedy CTC decoding of
test-clean and test-other with the lowest dev-clean WER checkpoint. Stages:
``probe.yaml`` (Base), ``trim.yaml`` (``--threshold`` 0.3 .. 0.7), ``ssf.yaml``,
``scratch.yaml`` (the architecture a ``trim.yaml`` run left, re-initialised,
25k warm-up steps).

Usage::

    python train.py hparams/trim.yaml --upstream_dir /models/wav2vec2-base \\
        --model_name wav2vec2_base --data_folder /data/LibriSpeech --threshold 0.5

The pipeline is the synthetic recipe's
(:func:`speechbrain_sparse.asr.probing_experiment.run_probing_experiment`).
"""

import sys

from librispeech_prepare import prepare_librispeech

from speechbrain_sparse.asr.experiment import start_stage
from speechbrain_sparse.asr.probing_experiment import (
    PROBING_KEYS,
    check_upstream,
    run_probing_experiment,
)
from speechbrain_sparse.data.manifests import check_declared_manifests
from speechbrain_sparse.distributed import run_on_main_or_raise
from speechbrain_sparse.errors import exit_on_user_error

#: The keys this script reads (the data block of the YAML) and the probing ones.
RECIPE_KEYS = ("data_folder", "manifest_folder", "train_splits", "valid_split",
               *PROBING_KEYS)


def prepare_manifests(hparams):
    """Writes (or reuses) the manifests the YAML's ``*_csv`` keys name."""
    train, valid = list(hparams["train_splits"]), hparams["valid_split"]
    tests = list(hparams["test_csvs"])
    manifests = run_on_main_or_raise(prepare_librispeech, kwargs={
        "data_folder": hparams["data_folder"],
        "save_folder": hparams["manifest_folder"],
        "splits": sorted({*train, valid, *tests}),
        "merge_splits": train})
    check_declared_manifests(hparams, manifests["train"], manifests[valid],
                             {name: manifests[name] for name in tests},
                             "librispeech_prepare.py")


def main(argv):
    """Runs one stage; returns its report."""
    hparams, run_opts = start_stage(argv, RECIPE_KEYS)
    check_upstream(hparams)
    prepare_manifests(hparams)
    return run_probing_experiment(hparams, run_opts)


if __name__ == "__main__":
    exit_on_user_error(main, sys.argv[1:], "train.py")
