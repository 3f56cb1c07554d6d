#!/usr/bin/env python3
"""Probing and trimming a frozen wav2vec2 on the synthetic mini-SUPERB.

The upstream is the CTC-trained group-norm wav2vec2 of
``../wav2vec2/hparams/wav2vec2_group_tiny.yaml`` (any local Hugging Face
wav2vec2 / HuBERT / WavLM folder with ``--upstream_dir``). Stages (each a YAML
in ``hparams/``), on one task (``--task asr|dialect_id|speaker_id``):

* ``probe_tiny.yaml``: the frozen upstream and a head (BiLSTM-CTC or MLP);
  the "Base" column of the trimming paper's Table I;
* ``trim_tiny.yaml``: trimming (Genova et al. 2024) at ``--threshold``: unit
  masks on the frozen upstream, the sparsity loss, then the masked units
  removed and the trimmed model tested;
* ``ssf_tiny.yaml``: the SSF baseline (scale and shift, nothing removed);
* ``scratch_tiny.yaml``: the trimmed architecture of a ``trim_tiny.yaml`` run,
  re-initialised and trained in full;
* ``l0_distill_tiny.yaml``, ``l0_noste_tiny.yaml``, ``l0_headlevel_tiny.yaml``:
  task-agnostic L0 pruning with distillation (paper 002: Proposed, w/o STE,
  w/o FAHP); the pruned encoder (``pruned_upstream/``) is then probed with
  ``probe_tiny.yaml --upstream_dir <that folder>``.

Usage::

    python ../wav2vec2/train.py ../wav2vec2/hparams/wav2vec2_group_tiny.yaml
    python train.py hparams/trim_tiny.yaml --task dialect_id --threshold 0.4
    python train.py hparams/scratch_tiny.yaml --task dialect_id --threshold 0.4

The corpus is synthesised on first use and the benchmark's manifests written
(:func:`speechbrain_sparse.data.mini_superb.build_mini_superb`); the run is
:func:`speechbrain_sparse.asr.probing_experiment.run_probing_experiment`.
"""

import sys

from speechbrain_sparse.asr.experiment import start_stage
from speechbrain_sparse.asr.l0_experiment import L0_KEYS, run_l0_experiment
from speechbrain_sparse.asr.probing_experiment import (
    PROBING_KEYS,
    check_upstream,
    run_probing_experiment,
)
from speechbrain_sparse.data.mini_superb import build_mini_superb
from speechbrain_sparse.data.synthetic_prepare import CORPUS_KEYS, prepare_synthetic
from speechbrain_sparse.distributed import run_on_main_or_raise
from speechbrain_sparse.errors import exit_on_user_error

RECIPE_KEYS = (*CORPUS_KEYS, *PROBING_KEYS, *L0_KEYS, "benchmark_folder")


def main(argv):
    """Runs one stage; returns its report (results and trimming figures)."""
    hparams, run_opts = start_stage(argv, RECIPE_KEYS)
    check_upstream(hparams)
    prepare_synthetic(hparams)
    run_on_main_or_raise(build_mini_superb, kwargs={
        "corpus_root": hparams["data_folder"],
        "out_dir": hparams["benchmark_folder"],
        "source": hparams["source_dialect"],
        "targets": hparams["target_dialects"], "seed": hparams["corpus_seed"]})
    if hparams["stage"] == "l0_distill":
        return run_l0_experiment(hparams, run_opts)
    return run_probing_experiment(hparams, run_opts)


if __name__ == "__main__":
    exit_on_user_error(main, sys.argv[1:], "train.py")
