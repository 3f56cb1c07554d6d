"""Tests of the paper module's steps: the mask computed once, then enforced."""

import torch

from speechbrain_sparse.dialect_sparse_finetuning import (
    language_specific_mask,
    restrict_training_to_mask,
)
from speechbrain_sparse.selection import MagnitudeSelection


class CountingStrategy(MagnitudeSelection):
    """A magnitude strategy that records the data it was given."""

    def __init__(self, density):
        super().__init__(density)
        self.calls = []

    def select(self, model=None, pretrained_state=None, brain=None, data=None):
        self.calls.append(data)
        return super().select(model, pretrained_state, brain, data)


def test_mask_is_saved_then_reused_without_computing_again(tmp_path):
    model = torch.nn.Linear(5, 4)
    strategy = CountingStrategy(0.2)
    built = []

    def target_batches():
        built.append(True)
        return ["batch"]

    mask_file = tmp_path / "mask.pt"
    first = language_specific_mask(strategy, model, data=target_batches,
                                   mask_file=mask_file)
    assert mask_file.exists() and strategy.calls == [["batch"]] and built == [True]
    assert first.num_selected() == 5  # K = round(0.2 * 24)
    with torch.no_grad():
        model.weight.copy_(torch.arange(20.0).view(4, 5))  # a new magnitude order
    again = language_specific_mask(strategy, model, data=target_batches,
                                   mask_file=mask_file)
    assert again == first and len(strategy.calls) == 1 and built == [True]
    assert strategy.select(model) != first  # recomputing would have changed it


def test_without_a_mask_file_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mask = language_specific_mask(MagnitudeSelection(0.5), torch.nn.Linear(2, 2))
    assert mask.num_selected() == 3 and not list(tmp_path.iterdir())


def test_restrict_training_passes_mode_and_l1_to_the_brain():
    class Recorder:
        def attach_mask(self, mask, **options):
            self.attached = (mask, options)
            return "enforcer"

    brain, mask = Recorder(), {"w": torch.ones(2, dtype=torch.bool)}
    enforcer = restrict_training_to_mask(brain, mask, "prune", 0.5, module="m")
    assert enforcer == "enforcer"
    assert brain.attached == (mask, {"mode": "prune", "l1_weight": 0.5, "module": "m"})
