"""The SparseWAV stage's objects, built from YAML as the stage YAMLs build them.

The pruning section of ``prune_obs_<size>.yaml`` (plain keys read by the
pruner, the mixed-sparsity allocator and the calibration settings) is loaded
with ``hyperpyyaml``; a round prunes a tiny Transformer ASR with the pruner it
chose, and the next round keeps that round's zeros.
"""

import pytest
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.epoch_loop import EpochCounter

from speechbrain_sparse.asr.pruning_stage import (
    CalibrationData,
    check_schedule,
    pruning_settings,
    round_checkpointer,
)
from speechbrain_sparse.checkpoints import ResumableCheckpointer
from speechbrain_sparse.pruning.magnitude import MagnitudePruner
from speechbrain_sparse.pruning.mixed_sparsity import MixedSparsity
from speechbrain_sparse.pruning.obs import pruned_count
from speechbrain_sparse.pruning.oneshot import OneShotPruner
from tests.conftest import SYNTHETIC_RECIPE
from tests.unit.pruning_models import asr_batch, asr_family, tiny_transformer_asr


def pruning_section():
    """The pruning keys and objects of the synthetic stage YAML, verbatim."""
    text = (SYNTHETIC_RECIPE / "hparams" / "prune_obs_tiny.yaml").read_text()
    start = text.index("# pruning (SparseWAV)")
    end = text.index("# ---- the pretrained model folder")
    return text[start:end]


def load(**overrides):
    return load_hyperpyyaml(pruning_section(), overrides)


def test_the_yaml_builds_the_objects_and_plain_keys_choose_them():
    settings = pruning_settings(load())
    pruner = settings["pruner"]
    assert isinstance(pruner, OneShotPruner) and pruner.mixed_sparsity is None
    assert (pruner.saliency, pruner.block_size, pruner.damp) == ("improved", 128, 0.01)
    assert settings["sparsities"] == [0.75]
    calibration = settings["calibration"]
    assert (calibration.num_utterances, calibration.batch_size, calibration.seed) == (
        128, 8, 0)

    mixed = load(saliency="obs", mixed_sparsity=True, mixed_num_probes=1)["pruner"]
    assert mixed.describe() == {"method": "obs", "saliency": "obs",
                                "mixed_sparsity": True}
    assert isinstance(mixed.mixed_sparsity, MixedSparsity)
    assert mixed.mixed_sparsity.num_probes == 1
    assert isinstance(load(prune_method="magnitude")["pruner"], MagnitudePruner)
    assert load(prune_sparsities=[0.5, 0.7])["prune_sparsities"] == [0.5, 0.7]


@pytest.mark.parametrize("overrides, message", [
    ({"prune_method": "l1"}, "prune_method must be one of"),
    ({"mixed_sparsity": "yes"}, "mixed_sparsity must be one of"),
    ({"saliency": "best"}, "saliency must be one of"),
    ({"block_size": 0}, "block_size must be >= 1"),
    ({"damp": -1}, "damp must be >= 0"),
    ({"mixed_alpha": 1.5}, "alpha must be in"),
    ({"mixed_num_probes": 0}, "num_probes must be >= 1"),
    ({"num_calibration": 0}, "num_calibration"),
    ({"calibration_batch_size": 0}, "calibration_batch_size"),
])
def test_a_wrong_value_is_an_error_naming_it(overrides, message):
    with pytest.raises(ValueError, match=message):
        load(**overrides)


def test_the_schedule_is_checked():
    with pytest.raises(ValueError, match="must not decrease"):
        pruning_settings(load(prune_sparsities=[0.8, 0.7]))
    with pytest.raises(ValueError, match="prune_sparsities must be a non-empty"):
        check_schedule([])
    with pytest.raises(ValueError, match=r"each of prune_sparsities must be in"):
        check_schedule([0.5, 1.0])
    with pytest.raises(ValueError, match=r"\['pruner'\]"):
        pruning_settings({"prune_sparsities": [0.5], "calibration": CalibrationData()})


@pytest.mark.parametrize("method", ["obs", "magnitude"])
def test_one_round_then_the_next_keeps_its_zeros(method):
    pruner = load(prune_method=method)["pruner"]
    hparams = tiny_transformer_asr()
    model, family = hparams["model"], asr_family(hparams)
    batches = [asr_batch([3200, 2400, 2000], [5, 3, 4])]
    first = pruner.prune(model, family, batches, 0.5, progress=False)
    assert first.method == method
    params = dict(model.named_parameters())
    for name, keep in first.items():
        assert torch.all(params[name].detach()[~keep] == 0), name
        assert int((~keep).sum()) == pruned_count(keep.numel(), 0.5), name
    assert abs((1 - first.density()) - 0.5) < 1e-3

    second = pruner.prune(model, family, batches, 0.7, must_prune=first,
                          progress=False)
    for name, kept in first.items():
        assert not (second[name] & ~kept).any(), name
    assert abs((1 - second.density()) - 0.7) < 1e-3


def test_a_round_checkpointer_has_the_recoverables_of_the_yaml_one(tmp_path):
    model, counter = torch.nn.Linear(2, 2), EpochCounter(3)
    base = Checkpointer(tmp_path / "save", {"model": model, "counter": counter})
    base.add_recoverable("scaler", torch.nn.Linear(1, 1), optional_load=True)
    rounds = EpochCounter(6)
    rounds.current = 3
    checkpointer = round_checkpointer(base, tmp_path / "save" / "round1", counter,
                                      rounds)
    assert isinstance(checkpointer, ResumableCheckpointer)  # skips half-saved ones
    assert checkpointer.checkpoints_dir == tmp_path / "save" / "round1"
    assert base.checkpoints_dir == tmp_path / "save"  # the YAML's one is unchanged
    assert checkpointer.recoverables["model"] is model
    assert checkpointer.recoverables["counter"] is rounds
    assert checkpointer.optional_recoverables["scaler"] is True
    checkpointer.save_checkpoint()
    recovered = EpochCounter(6)
    round_checkpointer(base, tmp_path / "save" / "round1", counter,
                       recovered).recover_if_possible()
    assert recovered.current == 3
