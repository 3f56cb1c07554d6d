"""End to end on the micro corpus: pretrain -> vanilla fine-tune -> resume.

A very small Transformer (width 32, one layer each side) keeps this under a
few minutes on two CPU cores; what is checked is the plumbing, not accuracy.
"""

import math
import re

import pytest
import torch

from tests.conftest import SYNTHETIC_RECIPE, load_recipe_module
from tests.recipe_checks import assert_only_the_mask_trained

MICRO_MODEL = [
    "--d_model=32",
    "--nhead=2",
    "--d_ffn=64",
    "--num_encoder_layers=1",
    "--num_decoder_layers=1",
    "--test_beam_size=2",
    "--vocab_size=40",
]


def run_stage(hparams_name, output_folder, corpus, *overrides):
    """Runs one recipe stage in-process and returns its results."""
    train = load_recipe_module(SYNTHETIC_RECIPE)
    return train.main(
        [
            str(SYNTHETIC_RECIPE / "hparams" / hparams_name),
            f"--output_folder={output_folder}",
            f"--data_folder={corpus}",
            "--corpus_preset=micro",
            *MICRO_MODEL,
            "--num_workers=0",
            "--device=cpu",
            *overrides,
        ]
    )


@pytest.fixture(scope="module")
def pretrained(micro_corpus, tmp_path_factory):
    """A pretrained micro model (two epochs on the source dialect)."""
    folder = tmp_path_factory.mktemp("pretrain")
    results = run_stage(
        "pretrain_tiny.yaml", folder, micro_corpus, "--number_of_epochs=2"
    )
    return folder, results


def test_pretrain_evaluates_source_and_zero_shot_targets(pretrained):
    folder, results = pretrained
    assert set(results) == {"en-us_test", "en-gb-scotland_test", "en-029_test"}
    for stats in results.values():
        assert math.isfinite(stats["WER"]) and stats["WER"] >= 0
    for name in ("model.ckpt", "normalizer.ckpt", "tokenizer.model", "model_info.json"):
        assert (folder / "model" / name).is_file()
    log = (folder / "train_log.txt").read_text()
    assert "epoch: 1," in log and "epoch: 2," in log and "epoch: 3," not in log


def test_vanilla_fine_tuning_changes_weights_and_resumes(
    pretrained, micro_corpus, tmp_path
):
    pretrain_folder, _ = pretrained
    common = [f"--pretrained_dir={pretrain_folder / 'model'}", "--dialect=en-029"]
    results = run_stage(
        "vanilla_tiny.yaml", tmp_path, micro_corpus, *common, "--number_of_epochs=1"
    )
    assert set(results) == {"en-029_dev", "en-029_test"}
    assert all(math.isfinite(stats["WER"]) for stats in results.values())

    before = torch.load(pretrain_folder / "model" / "model.ckpt")
    after = torch.load(tmp_path / "model" / "model.ckpt")
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)

    # Asking for one more epoch resumes from the checkpoint instead of restarting.
    run_stage(
        "vanilla_tiny.yaml", tmp_path, micro_corpus, *common, "--number_of_epochs=2"
    )
    log = (tmp_path / "train_log.txt").read_text()
    assert log.count("epoch: 1,") == 1 and log.count("epoch: 2,") == 1
    assert "Loading a checkpoint" in (tmp_path / "log.txt").read_text()


def test_missing_pretrained_folder_is_named(micro_corpus, tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere/model"):
        run_stage(
            "vanilla_tiny.yaml",
            tmp_path,
            micro_corpus,
            f"--pretrained_dir={tmp_path / 'nowhere' / 'model'}",
        )


@pytest.fixture(scope="module")
def vanilla(pretrained, micro_corpus, tmp_path_factory):
    """A vanilla fine-tuned micro model on en-029 (the reference for diff)."""
    folder = tmp_path_factory.mktemp("vanilla")
    pretrain_folder, _ = pretrained
    run_stage(
        "vanilla_tiny.yaml",
        folder,
        micro_corpus,
        f"--pretrained_dir={pretrain_folder / 'model'}",
        "--dialect=en-029",
        "--number_of_epochs=1",
        "--eval_splits=[test]",
    )
    return folder


def test_diff_fine_tuning_trains_only_the_mask(
    pretrained, vanilla, micro_corpus, tmp_path
):
    from speechbrain_sparse.masks import ParameterMask

    pretrain_folder, _ = pretrained
    results = run_stage(
        "diff_tiny.yaml",
        tmp_path,
        micro_corpus,
        f"--pretrained_dir={pretrain_folder / 'model'}",
        f"--finetuned_dir={vanilla / 'model'}",
        "--dialect=en-029",
        "--density=0.2",
        "--number_of_epochs=1",
        "--eval_splits=[test]",
    )
    assert math.isfinite(results["en-029_test"]["WER"])
    mask = ParameterMask.load(tmp_path / "mask.pt")
    assert abs(mask.density() - 0.2) < 1e-4 and mask.method == "diff"
    assert_only_the_mask_trained(pretrain_folder / "model", tmp_path / "model", mask)


def test_adapter_fine_tuning_keeps_the_backbone(pretrained, micro_corpus, tmp_path):
    pretrain_folder, _ = pretrained
    run_stage(
        "adapter_tiny.yaml",
        tmp_path,
        micro_corpus,
        f"--pretrained_dir={pretrain_folder / 'model'}",
        "--dialect=en-029",
        "--adapter_projection_size=4",
        "--number_of_epochs=1",
        "--eval_splits=[test]",
    )
    before = torch.load(pretrain_folder / "model" / "model.ckpt")
    after = torch.load(tmp_path / "model" / "model.ckpt")
    assert any("adapter_up_proj" in name for name in after)
    # The wrappers that hold an adapter next to a pretrained layer rename it:
    # ``<layer>.pretrained_linear.<param>`` is ``<layer>.<param>`` before.
    backbone = {
        re.sub(r"\.pretrained_(linear|attention)", "", name): tensor
        for name, tensor in after.items()
        if "adapter_" not in name
    }
    assert backbone.keys() == before.keys()
    for name, tensor in before.items():
        assert torch.equal(backbone[name], tensor), name
    assert_loads_with_encoder_decoder_asr(tmp_path / "model", tmp_path / "sb")


def assert_loads_with_encoder_decoder_asr(folder, savedir):
    """``EncoderDecoderASR`` builds the folder's model and loads every tensor.

    SpeechBrain's Pretrainer loads non-strictly, so the weights are compared.
    """
    from speechbrain.inference.ASR import EncoderDecoderASR

    asr = EncoderDecoderASR.from_hparams(source=str(folder), savedir=savedir)
    saved = torch.load(folder / "model.ckpt")
    loaded = asr.hparams.model.state_dict()
    assert loaded.keys() == saved.keys()
    assert all(torch.equal(loaded[name], saved[name]) for name in saved)
