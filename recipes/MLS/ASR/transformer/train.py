#!/usr/bin/env python3
"""Transformer ASR across MLS languages: French, then Polish or Portuguese.

The sparse fine-tuning paper's setting moved from dialects to languages.
Stages (each a YAML in ``hparams/``, every key overridable by its name):
``pretrain_<size>.yaml`` (the high-resource source language, then zero-shot
on every target) and ``<method>_<size>.yaml`` for the eight fine-tuning
methods (``vanilla``, ``diff``, ``fisher``, ``topk``, ``random``,
``adapter``, ``union``, ``intersection``) on a low-resource target language's
limited-supervision subset (``finetune_subset``: 9hr by default), sizes
``small`` and ``large``.

The same pipeline and architecture as the synthetic and Tibetan recipes
(:func:`speechbrain_sparse.asr.experiment.run_asr_experiment`); only the data
differ. The pipeline's ``source_dialect``, ``target_dialects``, ``dialect``
and ``eval_dialects`` are MLS language names here. Manifests come from
``mls_prepare.py`` (``<manifest_folder>/<language>/<name>.csv``). The
pretraining stage also prepares each target's ``tokenizer_subset`` (text read
by the tokenizer, see README.md): one SentencePiece model covers the source's
and the targets' characters, so every method fine-tunes the same output layer.

Usage::

    python train.py hparams/pretrain_small.yaml --data_folder /data/mls
    python train.py hparams/vanilla_small.yaml --data_folder /data/mls \\
        --dialect portuguese
    python train.py hparams/diff_small.yaml --data_folder /data/mls \\
        --dialect portuguese --density 0.1
    python train.py hparams/diff_large.yaml --data_folder /data/mls \\
        --finetune_subset 1hr --device cuda:0

The Dynamic ASR Pathways stages (``dense_multi``, ``dense_mono``, ``lap``,
``imp``, ``lth``, ``adaptive``, ``pathways``, ``dynamic_pathways``; README.md)
are YAMLs of this folder too: their manifests are each language's
``train_subset`` and dev / test (:func:`prepare_language_manifests`) and
:func:`speechbrain_sparse.asr.pathways_experiment.run_pathways_experiment`
runs them::

    python train.py hparams/dense_multi_small.yaml --data_folder /data/mls
    python train.py hparams/lth_small.yaml --data_folder /data/mls --dialect dutch

A corpus that cannot be used stops the run with ``train.py: error: <file>:<line>:
<what>`` and exit status 1.
"""

import sys

from mls_prepare import prepare_mls

from speechbrain_sparse.asr.experiment import run_asr_experiment, start_stage
from speechbrain_sparse.asr.pathways_experiment import (
    PATHWAYS_KEYS,
    STAGES,
    run_pathways_experiment,
)
from speechbrain_sparse.distributed import run_on_main_or_raise
from speechbrain_sparse.errors import UserInputError, exit_on_user_error

#: The train subsets a stage may name (``train``: all of it; see mls_prepare.py).
TRAIN_SUBSETS = ("train", "9hr", "1hr", "10hr", "10min")

#: The keys this script reads (the YAML's data block).
RECIPE_KEYS = ("source_dialect", "target_dialects", "data_folder", "audio_format",
               "manifest_folder", "eval_dialects", "eval_splits", "finetune_subset",
               "tokenizer_subset", *PATHWAYS_KEYS)


def _subset(hparams, key):
    """The ``mls_prepare`` subset named by ``hparams[key]`` (checked)."""
    name = hparams[key]
    if name not in TRAIN_SUBSETS:
        raise UserInputError(f"{key} must be one of {', '.join(TRAIN_SUBSETS)}, "
                             f"not {name!r}")
    return "full" if name == "train" else name


def manifest_plan(hparams):
    """Language -> ``(train subset, splits)`` that this stage needs prepared.

    The language trained on needs its train subset (all of train when
    pretraining, ``finetune_subset`` when fine-tuning) and dev; every evaluated
    language its ``eval_splits``; with ``tokenizer_subset`` (the pretraining
    stage), every target language that subset of train, whose text the
    tokenizer learns.

    Example
    -------
    >>> plan = manifest_plan({"source_dialect": "french", "dialect": "polish",
    ...     "target_dialects": ["polish"], "eval_dialects": ["polish"],
    ...     "eval_splits": ["dev", "test"], "finetune_subset": "9hr"})
    >>> plan
    {'polish': ('9hr', ['train', 'dev', 'test'])}
    """
    source, targets = hparams["source_dialect"], list(hparams["target_dialects"])
    if source in targets:
        raise UserInputError(f"target_dialects: {source!r} is the source language")
    trained = hparams["dialect"]
    unknown = sorted({trained, *hparams["eval_dialects"]} - {source, *targets})
    if unknown:
        raise UserInputError(f"dialect {unknown[0]!r} is neither the source language "
                             f"({source}) nor a target ({', '.join(targets)})")
    subsets, splits = {}, {}  # language -> its train subset, its splits

    def need(language, wanted, subset):
        splits.setdefault(language, set()).update(wanted)
        if subsets.setdefault(language, subset) != subset:
            raise UserInputError(f"{language}: its train subset would be both "
                                 f"{subsets[language]} and {subset} in one stage")

    finetuning = "finetune_subset" in hparams
    need(trained, ["train", "dev"],
         _subset(hparams, "finetune_subset") if finetuning else "full")
    if "tokenizer_subset" in hparams:
        for target in targets:
            need(target, ["train"], _subset(hparams, "tokenizer_subset"))
    for language in hparams["eval_dialects"]:
        splits.setdefault(language, set()).update(hparams["eval_splits"])
    return {language: (subsets.get(language, "full"),
                       [split for split in ("train", "dev", "test")
                        if split in splits[language]])
            for language in splits}


def prepare_manifests(hparams):
    """Writes (or reuses) the MLS manifests this stage uses (see :func:`manifest_plan`).

    The YAML's ``train_csv``, ``valid_csv``, ``test_csvs`` and
    ``tokenizer_extra_csvs`` point at what ``mls_prepare.py`` writes:
    ``<manifest_folder>/<language>/<subset or split>.csv``.
    """
    for language, (subset, splits) in manifest_plan(hparams).items():
        prepare_mls(hparams["data_folder"], hparams["manifest_folder"], language,
                    splits=splits, subset=subset, audio_format=hparams["audio_format"])


def prepare_language_manifests(hparams):
    """A pathways stage's manifests: each of ``languages``' ``train_subset``,
    dev and test (``<manifest_folder>/<language>/<name>.csv``)."""
    subset = _subset(hparams, "train_subset")
    for language in hparams["languages"]:
        prepare_mls(hparams["data_folder"], hparams["manifest_folder"], language,
                    splits=["train", "dev", "test"], subset=subset,
                    audio_format=hparams["audio_format"])


def main(argv):
    """Runs one stage of the recipe; returns the test results."""
    hparams, run_opts = start_stage(argv, RECIPE_KEYS)
    if hparams["stage"] in STAGES:  # Dynamic ASR Pathways
        run_on_main_or_raise(prepare_language_manifests, kwargs={"hparams": hparams})
        return run_pathways_experiment(hparams, run_opts)
    # a bad corpus stops every rank, with a message that says where
    run_on_main_or_raise(prepare_manifests, kwargs={"hparams": hparams})
    return run_asr_experiment(hparams, run_opts)


def cli(argv):
    """``main``, with a bad corpus or manifest reported in one line, exit status 1."""
    return exit_on_user_error(main, argv, "train.py")


if __name__ == "__main__":
    cli(sys.argv[1:])
