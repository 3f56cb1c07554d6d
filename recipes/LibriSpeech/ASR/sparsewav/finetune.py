#!/usr/bin/env python3
"""SparseWAV with post-pruning fine-tuning of a Hugging Face CTC model on LibriSpeech.

Prepares the LibriSpeech manifests the YAML names (``librispeech_prepare.py``,
a link to the dataset's ``recipes/LibriSpeech/librispeech_prepare.py``), prunes
the ``*ForCTC`` model in ``pretrained_dir`` (a local Wav2Vec2 / HuBERT /
WavLM directory with its ``vocab.json``, e.g. wav2vec2-base-100h) with
layer-wise OBS to each of ``prune_sparsities`` in turn (one = one-pass,
several = progressive, the zeros of a round kept in the next), fine-tunes on
``train_splits`` after each round with the pruned entries held at exactly
zero, and tests the best checkpoint (lowest dev WER, greedy CTC decoding) on
the sets of ``test_csvs``. The pruned, fine-tuned model is written to
``<output_folder>/model`` as a Hugging Face directory with ``mask.pt`` and
``sparse_model.pt``.

Usage::

    python finetune.py hparams/prune_finetune.yaml \\
        --pretrained_dir /models/wav2vec2-base-100h --data_folder /data/LibriSpeech
    python finetune.py hparams/prune_finetune.yaml --pretrained_dir ... \\
        --data_folder ... --prune_sparsities=[0.7,0.8,0.9] --device cuda:0

The pipeline is the synthetic wav2vec2 recipe's:
:func:`speechbrain_sparse.asr.ctc_experiment.run_ctc_experiment`.
"""

import sys

from librispeech_prepare import prepare_librispeech

from speechbrain_sparse.asr.ctc_experiment import run_ctc_experiment
from speechbrain_sparse.asr.experiment import start_stage
from speechbrain_sparse.data.manifests import check_declared_manifests
from speechbrain_sparse.distributed import run_on_main_or_raise
from speechbrain_sparse.errors import exit_on_user_error

#: The keys this script reads (the data block of the YAML).
RECIPE_KEYS = ("data_folder", "manifest_folder", "train_splits", "valid_split")


def prepare_manifests(hparams):
    """Writes (or reuses) the manifests the YAML's ``*_csv`` keys name.

    Every split of ``train_splits`` is merged into ``train.csv``; the valid
    split and the test sets (the names of ``test_csvs``) get their own CSVs.
    """
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
    """Prunes, fine-tunes and tests; returns the test results."""
    hparams, run_opts = start_stage(argv, RECIPE_KEYS)
    prepare_manifests(hparams)
    return run_ctc_experiment(hparams, run_opts)


if __name__ == "__main__":
    exit_on_user_error(main, sys.argv[1:], "finetune.py")
