#!/usr/bin/env python3
"""Transformer ASR for Tibetan dialects: pretrain on Amdo, fine-tune on U-Tsang, Khampa.

Stages (each a YAML in ``hparams/``, every key overridable by its name):
``pretrain_<size>.yaml`` (Amdo, then zero-shot on every dialect) and
``<method>_<size>.yaml`` for the eight fine-tuning methods of the paper
(``vanilla``, ``diff``, ``fisher``, ``topk``, ``random``, ``adapter``,
``union``, ``intersection``), sizes ``small`` and ``large``.

The same pipeline and architecture as the synthetic recipe
(:func:`speechbrain_sparse.asr.experiment.run_asr_experiment`, the Brain
:class:`speechbrain_sparse.asr.brain.TransformerASRBrain`); only the data
differ. Amdo (the high-resource source) comes from XBMU-AMDO31
(``source_format: xbmu_amdo31``, see ``xbmu_amdo31_prepare.py``) or from the
generic per-dialect layout (``source_format: generic``); U-Tsang and Khampa (the
low-resource targets) from the generic layout (see README.md). Every stage
reports WER, CER and the Tibetan syllable error rate (SER).

Usage::

    python train.py hparams/pretrain_small.yaml --xbmu_folder /data/xbmu_amdo31 \\
        --dialects_folder /data/tibetan_dialects
    python train.py hparams/vanilla_small.yaml --dialect khampa
    python train.py hparams/diff_small.yaml --dialect khampa --density 0.1
    python train.py hparams/diff_large.yaml --dialect utsang --device cuda:0

A corpus that cannot be used stops the run with ``train.py: error: <file>:<line>:
<what>`` and exit status 1.
"""

import sys

from xbmu_amdo31_prepare import prepare_xbmu_amdo31

from speechbrain_sparse.asr.experiment import run_asr_experiment, start_stage
from speechbrain_sparse.data.generic_layout import prepare_generic_corpus
from speechbrain_sparse.distributed import run_on_main_or_raise
from speechbrain_sparse.errors import UserInputError, exit_on_user_error
from speechbrain_sparse.metrics import normalize_tibetan

SOURCE_FORMATS = ("xbmu_amdo31", "generic")

#: The keys this script reads (the YAML's data block).
RECIPE_KEYS = ("source_dialect", "target_dialects", "source_format", "xbmu_folder",
               "dialects_folder", "source_manifests", "target_manifests",
               "eval_dialects")


class CorpusError(UserInputError):
    """A corpus that cannot be prepared; the message names the file (and line)."""


def prepare_manifests(hparams):
    """Writes (or reuses) the manifests of the dialects this stage uses.

    The source's manifests go to ``source_manifests`` (one folder per
    ``source_format``, each with its own record of options) and the targets'
    to ``target_manifests``, so a fine-tuning stage never needs the source
    corpus. The YAML's ``train_csv``, ``valid_csv`` and ``test_csvs`` point
    into these folders.
    """
    source, targets = hparams["source_dialect"], list(hparams["target_dialects"])
    source_format = hparams["source_format"]
    if source_format not in SOURCE_FORMATS:
        raise CorpusError(
            f"source_format must be one of {', '.join(SOURCE_FORMATS)}, "
            f"not {source_format!r}"
        )
    used = {hparams["dialect"], *hparams["eval_dialects"]}
    unknown = sorted(used - {source, *targets})
    if unknown:
        raise CorpusError(
            f"dialect {unknown[0]!r} is neither the source ({source}) "
            f"nor a target ({', '.join(targets)})"
        )
    if source in used and source_format == "xbmu_amdo31":
        prepare_xbmu_amdo31(hparams["xbmu_folder"], hparams["source_manifests"],
                            dialect=source)
    elif source in used:
        prepare_generic_corpus(
            hparams["dialects_folder"],
            hparams["source_manifests"],
            dialects=[source],
            normalize=normalize_tibetan,
        )
    if used & set(targets):
        prepare_generic_corpus(
            hparams["dialects_folder"],
            hparams["target_manifests"],
            dialects=targets,
            normalize=normalize_tibetan,
        )


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
