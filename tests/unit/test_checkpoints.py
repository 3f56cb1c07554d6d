"""Resuming: incomplete checkpoints are skipped, random-number states come back."""

import logging
import random

import numpy as np
import pytest
import speechbrain as sb
import torch
from speechbrain.dataio.sampler import DynamicBatchSampler
from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.epoch_loop import EpochCounter

from speechbrain_sparse.checkpoints import COMPLETE_RECORD, ResumableCheckpointer


def model_and_optimizer():
    model = torch.nn.Linear(3, 2)
    return model, torch.optim.AdamW(model.parameters(), lr=0.1)


def test_a_checkpoint_with_truncated_files_is_skipped_with_a_log_line(
    tmp_path, caplog
):
    model, optimizer = model_and_optimizer()
    recoverables = {"model": model, "optimizer": optimizer}
    checkpointer = ResumableCheckpointer(tmp_path, recoverables)
    previous = checkpointer.save_checkpoint(meta={"n": 1})
    newest = checkpointer.save_checkpoint(meta={"n": 2})
    for path in newest.path.glob("*.ckpt"):  # kill -9 while they were written
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])

    fresh = ResumableCheckpointer(tmp_path, dict(zip(recoverables,
                                                     model_and_optimizer())))
    with caplog.at_level(logging.WARNING):
        recovered = fresh.recover_if_possible()
    assert recovered.path == previous.path and recovered.meta["n"] == 1
    assert f"Ignoring the incomplete checkpoint {newest.path}" in caplog.text


def test_a_save_killed_before_the_optimizer_file_is_skipped(tmp_path, caplog):
    model, optimizer = model_and_optimizer()
    checkpointer = ResumableCheckpointer(
        tmp_path, {"model": model, "optimizer": optimizer})
    previous = checkpointer.save_checkpoint()

    def killed(obj, path):
        raise KeyboardInterrupt  # CKPT.yaml and model.ckpt exist, nothing else

    checkpointer.custom_save_hooks["optimizer"] = killed
    with pytest.raises(KeyboardInterrupt):
        checkpointer.save_checkpoint()
    assert len(Checkpointer(tmp_path).list_checkpoints()) == 2  # SpeechBrain sees both

    model, optimizer = model_and_optimizer()
    fresh = ResumableCheckpointer(tmp_path, {"model": model, "optimizer": optimizer})
    with caplog.at_level(logging.WARNING):
        assert fresh.recover_if_possible().path == previous.path
    assert "Ignoring the incomplete checkpoint" in caplog.text
    # An unreadable CKPT.yaml is skipped too.
    fresh.save_checkpoint()
    newest = fresh.find_checkpoint()
    (newest.path / COMPLETE_RECORD).unlink()
    (newest.path / "CKPT.yaml").write_text("unixtime: [")
    assert fresh.find_checkpoint().path == previous.path


def test_checkpoints_written_by_speechbrain_still_resume(tmp_path):
    model, optimizer = model_and_optimizer()
    saved = Checkpointer(tmp_path, {"model": model, "optimizer": optimizer})
    written = saved.save_checkpoint()
    weights = model.weight.detach().clone()

    model, optimizer = model_and_optimizer()
    fresh = ResumableCheckpointer(tmp_path, {"model": model, "optimizer": optimizer})
    assert fresh.recover_if_possible().path == written.path  # no rng_state: fine
    assert torch.equal(model.weight, weights)


class Interrupted(Exception):
    """Stands for kill -9 after a checkpoint."""


class NoisyBrain(sb.Brain):
    """Dropout, numpy and Python ``random`` in every step; an end-of-epoch
    checkpoint; optionally dies at (epoch, step)."""

    die_at = None

    def compute_forward(self, batch, stage):
        noise = np.random.rand() + random.random()
        return self.modules.net(batch[0]) + noise

    def compute_objectives(self, predictions, batch, stage):
        return torch.nn.functional.mse_loss(predictions, batch[1])

    def on_stage_start(self, stage, epoch=None):
        self.epoch = epoch

    def fit_batch(self, batch):
        if self.die_at == (self.epoch, self.step):
            raise Interrupted
        return super().fit_batch(batch)

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN:
            self.checkpointer.save_and_keep_only(num_to_keep=5)


def train(folder, die_at=None):
    """Three epochs from a fresh process state, batches of varying size in a new
    order every pass (as the recipes' ``bucketed`` sorting); intra-epoch
    checkpoints every 3 steps. Returns the final weights."""
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Dropout(0.5),
                              torch.nn.Linear(16, 1))
    data = torch.utils.data.TensorDataset(torch.randn(16, 4), torch.randn(16, 1))
    counter = EpochCounter(3)
    checkpointer = ResumableCheckpointer(folder, {"net": net, "counter": counter})
    brain = NoisyBrain({"net": net}, lambda p: torch.optim.SGD(p, lr=0.05),
                       run_opts={"device": "cpu", "ckpt_interval_steps": 3},
                       checkpointer=checkpointer)
    brain.die_at = die_at
    sampler = DynamicBatchSampler(
        data, max_batch_length=4.0, num_buckets=2, lengths_list=[1.0, 2.0] * 8,
        shuffle=True, batch_ordering="random", seed=7)
    brain.fit(counter, data, progressbar=False,
              train_loader_kwargs={"batch_sampler": sampler})
    return {name: value.clone() for name, value in net.state_dict().items()}


@pytest.mark.parametrize("die_at", [(2, 5), (2, 1), (1, 8)],
                         ids=["mid-epoch", "after-an-epoch", "after-intra-epoch"])
def test_a_resumed_run_ends_bit_identical_to_an_uninterrupted_one(tmp_path, die_at):
    uninterrupted = train(tmp_path / "once")
    with pytest.raises(Interrupted):
        train(tmp_path / "twice", die_at=die_at)
    resumed = train(tmp_path / "twice")
    for name, value in uninterrupted.items():
        assert torch.equal(resumed[name], value), name
