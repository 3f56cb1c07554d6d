"""A recipe stage killed after an intra-epoch checkpoint resumes bit-identically.

The micro Transformer is pretrained with dropout on and an intra-epoch
checkpoint every two steps; one run dies (an exception standing for kill -9)
in the middle of its second epoch, the next run of the same command resumes,
and its exported weights equal those of a run that was never interrupted.
"""

import pytest
import torch

from speechbrain_sparse.asr.brain import TransformerASRBrain
from tests.integration.test_synthetic_recipe import run_stage

RESUMABLE = [
    "--number_of_epochs=2",
    "--transformer_dropout=0.1",
    "--cnn_dropout=0.1",
    "--ckpt_interval_minutes=0",
    "--ckpt_interval_steps=2",
]


class Killed(Exception):
    """Stands for kill -9."""


@pytest.mark.slow  # ~1 min on 2 cores; test_checkpoints.py runs a toy Brain fast
def test_a_killed_stage_resumes_bit_identical_with_dropout(
    micro_corpus, tmp_path, monkeypatch
):
    run_stage("pretrain_tiny.yaml", tmp_path / "once", micro_corpus, *RESUMABLE)

    fit_batch = TransformerASRBrain.fit_batch

    def dies_in_epoch_two(brain, batch):
        if brain.hparams.epoch_counter.current == 2 and brain.step == 3:
            raise Killed
        return fit_batch(brain, batch)

    with monkeypatch.context() as patch:
        patch.setattr(TransformerASRBrain, "fit_batch", dies_in_epoch_two)
        with pytest.raises(Killed):
            run_stage("pretrain_tiny.yaml", tmp_path / "twice", micro_corpus,
                      *RESUMABLE)
    run_stage("pretrain_tiny.yaml", tmp_path / "twice", micro_corpus, *RESUMABLE)

    log = (tmp_path / "twice" / "log.txt").read_text()
    assert "Loading a checkpoint" in log
    once = torch.load(tmp_path / "once" / "model" / "model.ckpt")
    twice = torch.load(tmp_path / "twice" / "model" / "model.ckpt")
    assert once.keys() == twice.keys()
    for name, value in once.items():
        assert torch.equal(twice[name], value), name
