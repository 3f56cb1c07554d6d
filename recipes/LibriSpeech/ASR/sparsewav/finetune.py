#!/usr/bin/env python3
"""SparseWAV with post-pruning fine-tuning of a Hugging Face CTC model on LibriSpeech.

Prepares the LibriSpeech manifests (``../../librispeech_prepare.py``), prunes
the ``*ForCTC`` model in ``pretrained_dir`` (a local Wav2Vec2 / HuBERT /
WavLM directory with its ``vocab.json``, e.g. wav2vec2-base-100h) with
layer-wise OBS to each of ``prune_sparsities`` in turn (one = one-pass,
several = progressive, the zeros of a round kept in the next), fine-tunes on
``train_splits`` after each round with the pruned entries held at exactly
zero, and tests the best checkpoint (lowest dev WER, greedy CTC decoding) on
``test_splits``. The pruned, fine-tuned model is written to
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
from pathlib import Path

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from librispeech_prepare import prepare_librispeech  # noqa: E402

from speechbrain_sparse.asr.ctc_experiment import run_ctc_experiment  # noqa: E402
from speechbrain_sparse.distributed import run_on_main_or_raise  # noqa: E402
from speechbrain_sparse.errors import exit_on_user_error  # noqa: E402


def add_manifests(hparams):
    """Prepares every split once; sets ``train_csv``, ``valid_csv``, ``test_csvs``.

    Several ``train_splits`` are merged into ``train.csv``.
    """
    train, valid = list(hparams["train_splits"]), hparams["valid_split"]
    tests = list(hparams["test_splits"])
    kwargs = {"data_folder": hparams["data_folder"],
              "save_folder": hparams["manifest_folder"],
              "splits": sorted({*train, valid, *tests}),
              "merge_splits": train if len(train) > 1 else None}
    run_on_main_or_raise(prepare_librispeech, kwargs=kwargs)
    manifests = prepare_librispeech(**kwargs, skip_prep=True)
    hparams["train_csv"] = manifests["train" if len(train) > 1 else train[0]]
    hparams["valid_csv"] = manifests[valid]
    hparams["test_csvs"] = {split: manifests[split] for split in tests}


def main(argv):
    """Prunes, fine-tunes and tests; returns the test results."""
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    with open(hparams_file, encoding="utf-8") as handle:
        hparams = load_hyperpyyaml(handle, overrides)
    sb.utils.distributed.ddp_init_group(run_opts)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    add_manifests(hparams)
    return run_ctc_experiment(hparams, run_opts)


if __name__ == "__main__":
    exit_on_user_error(main, sys.argv[1:], "finetune.py")
