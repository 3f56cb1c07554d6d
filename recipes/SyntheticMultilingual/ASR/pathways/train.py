#!/usr/bin/env python3
"""Dynamic ASR Pathways on the multilingual synthetic corpus: one stage per YAML.

The stages of ``shared/papers/dynamic-asr-pathways-adaptive-masking.md`` (each a
YAML in ``hparams/``, every key overridable by its name; README.md):

* ``dense_multi_tiny.yaml``: the dense multilingual model (all languages, one
  tokenizer); every other stage starts from its model folder;
* ``dense_mono_tiny.yaml``: a dense monolingual reference (~0.3 of its size);
* ``lap_tiny.yaml``: IMP on multilingual data -> one mask for all languages;
* ``imp_tiny.yaml`` / ``lth_tiny.yaml``: IMP / LTH on one language's data;
* ``adaptive_tiny.yaml``: adaptive masking on one language's data;
* ``pathways_tiny.yaml``: fixed per-language masks, monolingual batches;
* ``dynamic_pathways_tiny.yaml``: per-language masks adapted with a free zone.

The corpus (``sb-sparse synth --preset ml_tiny``: English, French, Italian and
Dutch) is synthesised on first use into ``data_folder``. The model is our joint
CTC/attention Transformer, not the paper's streaming Emformer RNN-T.

Usage::

    python train.py hparams/dense_multi_tiny.yaml
    python train.py hparams/lth_tiny.yaml --dialect fr
    python train.py hparams/dynamic_pathways_tiny.yaml --languages=[fr,nl] \\
        --pathway_init lth --init_level 0.5
"""

import sys
from pathlib import Path

from speechbrain_sparse.asr.experiment import start_stage
from speechbrain_sparse.asr.pathways_experiment import (
    PATHWAYS_KEYS,
    run_pathways_experiment,
)
from speechbrain_sparse.data.synth import build_multilingual_corpus
from speechbrain_sparse.distributed import run_on_main_or_raise
from speechbrain_sparse.errors import exit_on_user_error
from speechbrain_sparse.fileio import read_json

#: The keys this script reads (the corpus) and those of the stages.
RECIPE_KEYS = ("data_folder", "corpus_preset", "corpus_seed", "corpus_languages",
               *PATHWAYS_KEYS)


def corpus_is_built(hparams):
    """Whether ``data_folder`` holds a finished corpus of this preset, seed and
    languages (its ``corpus.json``), checked without reading the text packages.

    The full check (:func:`build_multilingual_corpus`, which also compares the
    sentence pools: ~1 s of reading per language) is done when this says no.
    """
    record = read_json(Path(hparams["data_folder"]) / "corpus.json") or {}
    options = record.get("options", {})
    return (options.get("preset") == hparams["corpus_preset"]
            and options.get("seed") == hparams["corpus_seed"]
            and list(options.get("languages", {})) == list(hparams["corpus_languages"]))


def prepare_corpus(hparams):
    """Builds (or reuses) the corpus of ``corpus_languages`` on the main process."""
    if corpus_is_built(hparams):
        return
    run_on_main_or_raise(build_multilingual_corpus, kwargs={
        "out_dir": hparams["data_folder"], "preset": hparams["corpus_preset"],
        "seed": hparams["corpus_seed"],
        "languages": tuple(hparams["corpus_languages"])})


def main(argv):
    """Runs one stage of the recipe; returns the test results."""
    hparams, run_opts = start_stage(argv, RECIPE_KEYS)
    prepare_corpus(hparams)
    return run_pathways_experiment(hparams, run_opts)


if __name__ == "__main__":
    exit_on_user_error(main, sys.argv[1:], "train.py")
