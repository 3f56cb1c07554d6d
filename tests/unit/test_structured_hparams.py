"""The structured recipes' YAMLs: every key used, strategies built, keys overridable."""

import pytest

from speechbrain_sparse.asr.options import load_stage_hparams
from speechbrain_sparse.asr.probing_heads import BiLSTMCTCHead, MLPClassifierHead
from speechbrain_sparse.pruning.l0_distillation import (
    FAHP_LEVELS,
    HEAD_LEVELS,
    L0Distillation,
)
from speechbrain_sparse.pruning.trimming import SSF, Scratch, Trimming
from tests.conftest import REPO, load_recipe_module

SYNTHETIC = REPO / "recipes" / "Synthetic" / "ASR" / "structured"
LIBRISPEECH = REPO / "recipes" / "LibriSpeech" / "ASR" / "structured"
STRATEGIES = {"probe": type(None), "trim": Trimming, "ssf": SSF, "scratch": Scratch}
PLACEHOLDERS = {"data_folder": "/data/LibriSpeech", "upstream_dir": "/models/w2v2",
                "model_name": "wav2vec2_base"}


def load(folder, name, overrides=None):
    keys = load_recipe_module(folder).RECIPE_KEYS
    extra = PLACEHOLDERS if folder == LIBRISPEECH else {}
    return load_stage_hparams(folder / "hparams" / name, {**extra, **(overrides or {})},
                              keys)


@pytest.mark.parametrize("folder,suffix", [(SYNTHETIC, "_tiny"), (LIBRISPEECH, "")])
@pytest.mark.parametrize("stage", list(STRATEGIES))
def test_every_stage_builds_its_strategy_and_the_papers_heads(folder, suffix, stage):
    hparams = load(folder, f"{stage}{suffix}.yaml")
    assert isinstance(hparams["strategy"], STRATEGIES[stage])
    head = hparams["ctc_head"](input_size=8, vocab_size=5)
    assert isinstance(head, BiLSTMCTCHead)
    assert (head.lstm.num_layers, head.lstm.hidden_size) == (2, 256)
    classifier = hparams["classifier_head"](input_size=8, num_classes=3)
    assert isinstance(classifier, MLPClassifierHead)
    assert classifier.mlp[0].out_features == 1024
    assert hparams["opt_class"].func.__name__ == "Adam"
    assert hparams["opt_class"].keywords["lr"] == 0.001


def test_trimming_keys_reach_the_strategy():
    hparams = load(SYNTHETIC, "trim_tiny.yaml", {
        "threshold": 0.3, "sparsity_weight": 2.0, "trim_levels": ["head"],
        "mask_lr": 0.05, "task": "speaker_id"})
    trimming = hparams["strategy"]
    assert (trimming.threshold, float(trimming.sparsity_weight), trimming.levels,
            trimming.lr) == (0.3, 2.0, ("head",), 0.05)
    assert str(hparams["train_csv"]).endswith("mini_superb/speaker_id/train.csv")
    assert str(hparams["output_folder"]).endswith("speaker_id/trim_0.3/1234")
    assert list(hparams["test_csvs"]) == ["speaker_id_test"]


def test_scratch_reads_the_mask_of_the_trim_run_at_its_threshold():
    trim = load(SYNTHETIC, "trim_tiny.yaml", {"threshold": 0.4})
    scratch = load(SYNTHETIC, "scratch_tiny.yaml", {"threshold": 0.4})
    assert str(scratch["strategy"].mask_file) == f"{trim['output_folder']}/unit_mask.pt"
    trim = load(LIBRISPEECH, "trim.yaml", {"threshold": 0.4})
    scratch = load(LIBRISPEECH, "scratch.yaml", {"threshold": 0.4})
    assert str(scratch["strategy"].mask_file) == f"{trim['output_folder']}/unit_mask.pt"
    assert scratch["lr_annealing"].n_warmup_steps == 25000


def test_upstream_of_the_synthetic_yamls_is_what_the_wav2vec2_recipe_writes():
    from hyperpyyaml import load_hyperpyyaml

    folder = REPO / "recipes" / "Synthetic" / "ASR" / "wav2vec2" / "hparams"
    with open(folder / "wav2vec2_group_tiny.yaml") as handle:
        upstream = load_hyperpyyaml(handle)
    assert upstream["hf_config"]["feat_extract_norm"] == "group"
    for stage in STRATEGIES:
        hparams = load(SYNTHETIC, f"{stage}_tiny.yaml")
        assert hparams["upstream_dir"] == upstream["model_export_dir"]


@pytest.mark.parametrize("name,ste,levels", [
    ("l0_distill_tiny.yaml", True, FAHP_LEVELS),
    ("l0_noste_tiny.yaml", False, FAHP_LEVELS),
    ("l0_headlevel_tiny.yaml", True, HEAD_LEVELS)])
def test_l0_yamls_build_the_papers_three_settings(name, ste, levels):
    hparams = load(SYNTHETIC, name, {"target_sparsity": 0.7})
    l0 = hparams["l0"]
    assert isinstance(l0, L0Distillation) and hparams["stage"] == "l0_distill"
    assert (l0.ste, l0.levels, l0.controller.target) == (ste, levels, 0.7)
    assert str(hparams["output_folder"]).endswith(f"{name[:-10]}_0.7/1234")
