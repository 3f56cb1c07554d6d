#!/usr/bin/env python3
"""SparseWAV one-shot pruning of a Hugging Face speech model on LibriSpeech.

Prepares the calibration split's manifest (``librispeech_prepare.py``;
or takes any manifest given as ``calibration_csv``, e.g. the synthetic
corpus's), draws ``num_calibration`` utterances from it, prunes the model in
``pretrained_dir`` (a local Wav2Vec2 / HuBERT / WavLM directory, ``*ForCTC``
or base) to ``sparsity`` with the YAML's ``pruner`` and writes the pruned
model in the same form to ``<output_folder>/model`` with its ``mask.pt``,
``pruning_info.json`` and, with ``sparse_export: True``, ``sparse_model.pt``.

Usage::

    python prune.py hparams/wav2vec2_base.yaml \\
        --pretrained_dir /models/wav2vec2-base-100h --data_folder /data/LibriSpeech
    python prune.py hparams/wavlm_base_plus.yaml --pretrained_dir ... \\
        --data_folder ... --sparsity 0.5 --device cuda:0
"""

import json
import logging
import sys
import time
from pathlib import Path

import speechbrain as sb
from librispeech_prepare import prepare_librispeech

from speechbrain_sparse.asr.options import load_yaml
from speechbrain_sparse.errors import UserInputError, exit_on_user_error
from speechbrain_sparse.pruning.calibration import load_calibration_batches
from speechbrain_sparse.pruning.pretrained import load_huggingface

logger = logging.getLogger(__name__)


def calibration_manifest(hparams):
    """``calibration_csv`` if given, else the LibriSpeech split's manifest."""
    if hparams.get("calibration_csv"):
        return Path(hparams["calibration_csv"])
    if not hparams.get("data_folder"):
        raise UserInputError("give --data_folder (the LibriSpeech folder) or "
                             "--calibration_csv (a manifest with ID,duration,wav)")
    split = hparams["calibration_split"]
    manifests = prepare_librispeech(hparams["data_folder"], hparams["manifest_folder"],
                                    splits=[split])
    return manifests[split]


def main(argv):
    """Prunes the model; returns the path of the pruned model folder."""
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    hparams = load_yaml(hparams_file, overrides)  # a mistyped key: one line
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    calibration_csv = calibration_manifest(hparams)
    pretrained = load_huggingface(hparams["pretrained_dir"],
                                  run_opts.get("device", "cpu"))
    if hparams.get("family") is not None:  # the YAML may override the defaults
        pretrained.family = hparams["family"]
    batches = load_calibration_batches(
        calibration_csv, hparams["num_calibration"], hparams["batch_size"],
        hparams["seed"], max_duration=hparams.get("max_duration"))
    start = time.perf_counter()
    mask = hparams["pruner"].prune(pretrained.model, pretrained.family, batches,
                                   hparams["sparsity"])
    seconds = time.perf_counter() - start
    info = {"method": "obs", "source": str(Path(hparams["pretrained_dir"]).resolve()),
            "calibration": str(calibration_csv), "seconds": seconds,
            "utterances": sum(batch.batchsize for batch in batches),
            "achieved_sparsity": 1.0 - mask.density(),
            "report": mask.options["report"]}
    out = pretrained.save(Path(hparams["output_folder"]) / "model", mask, info=info,
                          sparse_export=hparams.get("sparse_export", False))
    summary = {"sparsity": 1.0 - mask.density(), "seconds": round(seconds, 2),
               "model": str(out)}
    logger.info("pruned: %s", json.dumps(summary))
    return out


if __name__ == "__main__":
    exit_on_user_error(main, sys.argv[1:], "prune.py")
