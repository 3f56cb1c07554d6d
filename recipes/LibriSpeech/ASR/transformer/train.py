#!/usr/bin/env python3
"""Transformer ASR on LibriSpeech: pretrain on the clean speakers, fine-tune on other.

The sparse fine-tuning paper's setting moved to LibriSpeech: the "clean"
speakers are the high-resource source domain, a few hours of the "other"
speakers the low-resource target. Stages (each a YAML in ``hparams/``, every
key overridable by its name):

* ``pretrain_<size>.yaml``: train on ``pretrain_splits`` (``train-clean-100``;
  add ``train-clean-360`` for 460 h), validate on dev-clean, test on dev-clean,
  test-clean, dev-other and test-other; export the best checkpoint to
  ``<output_folder>/model``;
* ``<method>_<size>.yaml``: fine-tune that model on a deterministic subset of
  ``finetune_split`` (``train-other-500``) of at most ``finetune_hours`` (10 h;
  ``subset_seed`` chooses the utterances) with one of the paper's eight methods
  (``vanilla``, ``diff``, ``fisher``, ``topk``, ``random``, ``adapter``,
  ``union``, ``intersection``), validate on dev-other, test on the four sets.

Sizes ``small`` and ``large`` (the paper's models). The manifests are written
by ``librispeech_prepare.py`` (a link to ``recipes/LibriSpeech/``) into
``manifest_folder``: ``source/`` (the pretraining splits, merged into
``train.csv``), ``<finetune_split>_<finetune_hours>h_seed<subset_seed>/`` (the
subset, as ``train.csv``) and ``eval/`` (the dev and test sets).

The same pipeline and architecture as the synthetic and Tibetan recipes:
:func:`speechbrain_sparse.asr.experiment.run_asr_experiment`, the Brain
:class:`speechbrain_sparse.asr.brain.TransformerASRBrain` (with
:class:`~speechbrain_sparse.training.MaskedTrainingMixin` for masked methods);
only the data differ.

Usage::

    python train.py hparams/pretrain_small.yaml --data_folder /data/LibriSpeech
    python train.py hparams/vanilla_small.yaml --data_folder /data/LibriSpeech
    python train.py hparams/diff_small.yaml --data_folder ... --density 0.1
    python train.py hparams/diff_large.yaml --data_folder ... --device cuda:0
    torchrun --nproc_per_node=4 train.py hparams/pretrain_large.yaml --data_folder ...

A corpus that cannot be used stops the run with ``train.py: error: <file>, line
<n>: <what>`` and exit status 1.
"""

import sys

from librispeech_prepare import prepare_librispeech

from speechbrain_sparse.asr.experiment import run_asr_experiment, start_stage
from speechbrain_sparse.data.manifests import check_declared_manifests
from speechbrain_sparse.distributed import run_on_main_or_raise
from speechbrain_sparse.errors import UserInputError, exit_on_user_error

#: The keys this script reads (the YAML's data block).
RECIPE_KEYS = ("data_folder", "source_dialect", "target_dialects", "pretrain_splits",
               "finetune_split", "finetune_hours", "subset_seed", "valid_split",
               "source_manifests", "target_manifests", "eval_manifests")


def prepare_manifests(hparams):
    """Writes (or reuses) the manifests this stage trains, validates and tests on.

    The source domain (``dialect`` is ``source_dialect``) trains on
    ``pretrain_splits`` merged into ``<source_manifests>/train.csv``; a target
    on the ``finetune_hours`` subset of ``finetune_split``, as
    ``<target_manifests>/train.csv``. The validation split and the test sets
    (the names of ``test_csvs``) go to ``eval_manifests``. Each folder records
    the options it was prepared with, so a later stage with the same ones
    reuses it. The paths the YAML declares must be those written.

    Returns
    -------
    dict
        ``{yaml key: Path}`` of every manifest prepared.
    """
    dialect, source = hparams["dialect"], hparams["source_dialect"]
    targets = list(hparams["target_dialects"])
    data_folder = hparams["data_folder"]
    if dialect == source:
        splits = list(hparams["pretrain_splits"])
        train = prepare_librispeech(data_folder, hparams["source_manifests"],
                                    splits=splits, merge_splits=splits)
    elif dialect in targets:
        split = hparams["finetune_split"]
        train = prepare_librispeech(data_folder, hparams["target_manifests"],
                                    splits=[split], merge_splits=[split],
                                    max_hours=hparams["finetune_hours"],
                                    seed=hparams["subset_seed"])
    else:
        raise UserInputError(f"dialect {dialect!r} is neither the source domain "
                             f"({source}) nor a target ({', '.join(targets)})")
    valid, tests = hparams["valid_split"], list(hparams["test_csvs"])
    evaluation = prepare_librispeech(data_folder, hparams["eval_manifests"],
                                     splits=sorted({valid, *tests}))
    check_declared_manifests(hparams, train["train"], evaluation[valid],
                             {name: evaluation[name] for name in tests},
                             "librispeech_prepare.py")


def main(argv):
    """Runs one stage of the recipe; returns the test results."""
    hparams, run_opts = start_stage(argv, RECIPE_KEYS)
    # a bad corpus stops every rank, with a message that says where
    run_on_main_or_raise(prepare_manifests, kwargs={"hparams": hparams})
    return run_asr_experiment(hparams, run_opts)


def cli(argv):
    """``main``, with a bad corpus or manifest reported in one line, exit status 1."""
    return exit_on_user_error(main, argv, "train.py")


if __name__ == "__main__":
    cli(sys.argv[1:])
