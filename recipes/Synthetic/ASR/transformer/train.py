#!/usr/bin/env python3
"""Transformer ASR on the embedded synthetic multi-dialect corpus.

Stages (each a YAML in ``hparams/``):

* ``pretrain_<size>.yaml``: train on the high-resource source dialect, evaluate
  on its test set and zero-shot on every target dialect;
* ``vanilla_<size>.yaml``: fine-tune all parameters on one target dialect,
  starting from the pretrained model folder; evaluate on its dev and test sets.

Usage::

    python train.py hparams/pretrain_tiny.yaml
    python train.py hparams/vanilla_tiny.yaml --dialect en-029
    python train.py hparams/pretrain_tiny.yaml --device cuda:0
    torchrun --nproc_per_node=2 train.py hparams/pretrain_small.yaml
"""

import sys
from pathlib import Path

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from synthetic_prepare import prepare_data  # noqa: E402

from speechbrain_sparse.asr.experiment import run_asr_experiment  # noqa: E402
from speechbrain_sparse.errors import exit_on_user_error  # noqa: E402


def main(argv):
    """Runs one stage of the recipe; returns the test results."""
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    with open(hparams_file, encoding="utf-8") as handle:
        hparams = load_hyperpyyaml(handle, overrides)
    sb.utils.distributed.ddp_init_group(run_opts)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    prepare_data(hparams)
    return run_asr_experiment(hparams, run_opts)


if __name__ == "__main__":
    exit_on_user_error(main, sys.argv[1:], "train.py")
