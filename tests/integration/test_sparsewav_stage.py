"""SparseWAV in the synthetic recipe: prune, fine-tune in prune mode, resume, re-prune.

The pruned model is a randomly initialised tiny Transformer ASR exported as a
model folder with a character tokenizer trained on the micro corpus, so no
pretraining is needed; the recipe's ``train.py`` runs in process.
"""

import json
import sys
from pathlib import Path

import pytest
import torch

from speechbrain_sparse.masks import ParameterMask
from tests.conftest import REPO, SYNTHETIC_RECIPE, load_recipe_module

RECIPE = SYNTHETIC_RECIPE
SIZES = {"d_model": 16, "nhead": 2, "num_encoder_layers": 2, "num_decoder_layers": 1,
         "d_ffn": 32, "vocab_size": 24}


@pytest.fixture(scope="module")
def random_model_folder(micro_corpus, tmp_path_factory):
    """A model folder as pretraining exports it, with random weights."""
    import csv

    import sentencepiece
    from hyperpyyaml import load_hyperpyyaml

    root = tmp_path_factory.mktemp("random_model")
    with open(Path(micro_corpus) / "en-us" / "train.csv", newline="") as handle:
        text = [row["wrd"] for row in csv.DictReader(handle)]
    (root / "text.txt").write_text("\n".join(text) + "\n")
    sentencepiece.SentencePieceTrainer.train(
        input=str(root / "text.txt"), model_prefix=str(root / "tok"),
        vocab_size=SIZES["vocab_size"], model_type="char", bos_id=1, eos_id=2,
        unk_id=0, character_coverage=1.0)
    torch.manual_seed(0)
    with open(RECIPE / "hparams" / "arch" / "transformer_asr.yaml") as handle:
        hparams = load_hyperpyyaml(handle, dict(SIZES))
    features = hparams["compute_features"](torch.randn(2, 3200))
    hparams["normalize"](features, torch.ones(2))
    folder = root / "model"
    folder.mkdir()
    torch.save(hparams["model"].state_dict(), folder / "model.ckpt")
    hparams["normalize"]._save(folder / "normalizer.ckpt")
    (folder / "tokenizer.model").write_bytes((root / "tok.model").read_bytes())
    (folder / "model_info.json").write_text(json.dumps({"nhead": SIZES["nhead"]}))
    return folder


def stage_arguments(corpus, model_folder, output, **keys):
    """``train.py`` arguments of a micro pruning stage (CTC greedy decoding)."""
    keys = {**SIZES, "data_folder": corpus, "pretrained_dir": model_folder,
            "output_folder": output, "corpus_preset": "micro", "decoding": "ctc_greedy",
            "eval_splits": "[test]", "num_calibration": 8, "calibration_batch_size": 4,
            "num_workers": 0, "batch_size": 8, "finetune_max_utterances": 24, **keys}
    return [str(RECIPE / "hparams" / "prune_obs_tiny.yaml"),
            *(f"--{key}={value}" for key, value in keys.items())]


def run_stage(*arguments):
    return load_recipe_module(RECIPE).main(list(arguments))


def model_weights(checkpoint_folder):
    return torch.load(checkpoint_folder / "model.ckpt", map_location="cpu")


def assert_pruned_entries_zero(weights, mask):
    for name, kept in mask.items():
        assert torch.all(weights[name][~kept] == 0), name


def test_prune_mode_finetuning_keeps_zeros_through_training_and_resume(
        micro_corpus, random_model_folder, tmp_path):
    output = tmp_path / "oneshot_ft"
    first = stage_arguments(micro_corpus, random_model_folder, output,
                            prune_sparsities="[0.6]", number_of_epochs=1)
    run_stage(*first)
    mask = ParameterMask.load(output / "mask.pt")
    assert abs((1 - mask.density()) - 0.6) < 1e-3
    (checkpoint,) = (output / "save" / "round0").glob("CKPT+*")
    assert_pruned_entries_zero(model_weights(checkpoint), mask)

    # resume with one more epoch: the same mask, still zero after the new steps
    results = run_stage(*first[:-1], "--number_of_epochs=2")
    assert ParameterMask.load(output / "mask.pt") == mask
    latest = max((output / "save" / "round0").glob("CKPT+*"),
                 key=lambda p: p.stat().st_mtime)
    assert latest != checkpoint
    weights = model_weights(latest)
    assert_pruned_entries_zero(weights, mask)
    assert not torch.equal(weights["1.encoder.layers.0.pos_ffn.ffn.0.weight"],
                           model_weights(checkpoint)[
                               "1.encoder.layers.0.pos_ffn.ffn.0.weight"])
    assert "WER" in results["en-us_test"]


def test_progressive_keeps_earlier_zeros_and_one_shot_evaluates(
        micro_corpus, random_model_folder, tmp_path):
    output = tmp_path / "progressive"
    run_stage(*stage_arguments(micro_corpus, random_model_folder, output,
                               prune_sparsities="[0.5,0.8]", number_of_epochs=1,
                               mixed_sparsity=True, mixed_num_probes=1,
                               mixed_num_batches=1))
    first = ParameterMask.load(output / "save" / "round0" / "mask.pt")
    second = ParameterMask.load(output / "save" / "round1" / "mask.pt")
    for name, kept in first.items():
        assert not (second[name] & ~kept).any(), name
    assert abs((1 - second.density()) - 0.8) < 1e-3
    (checkpoint,) = (output / "save" / "round1").glob("CKPT+*")
    assert_pruned_entries_zero(model_weights(checkpoint), second)
    info = json.loads((output / "pruning_info.json").read_text())
    assert [r["target_sparsity"] for r in info["rounds"]] == [0.5, 0.8]

    oneshot = tmp_path / "oneshot"
    results = run_stage(*stage_arguments(micro_corpus, random_model_folder, oneshot,
                                         prune_sparsities="[0.7]", number_of_epochs=0,
                                         prune_method="magnitude"))
    assert not list((oneshot / "save" / "round0").glob("CKPT+*"))
    assert abs(1 - ParameterMask.load(oneshot / "mask.pt").density() - 0.7) < 1e-3
    assert set(results) == {"en-us_test"}


def test_micro_ablation_tool_end_to_end(micro_corpus, random_model_folder, tmp_path,
                                        capsys):
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import reproduce_sparsewav
    finally:
        sys.path.remove(str(REPO / "tools"))
    out = tmp_path / "ablation"
    argv = ["--preset", "micro", "--pretrained", str(random_model_folder),
            "--out", str(out), "--rows", "dense", "progressive",
            "--fig-sparsities", "--workers", "2", "--threads", "2", "--no-progress",
            "--set", f"data_folder={micro_corpus}",
            *(f"--set={key}={value}" for key, value in SIZES.items())]
    assert reproduce_sparsewav.main(argv) == 0
    assert "2 finished" in capsys.readouterr().out
    table = (out / "report" / "table1.csv").read_text().splitlines()
    assert table[0] == "Method,sparsity %,dev WER,test WER"
    rows = {line.split(",")[0]: line.split(",") for line in table[1:]}
    assert rows["dense (not pruned)"][1] == "0.00"
    assert rows["++++ progressive"][1] == "75.00" and rows["++++ progressive"][3]
    assert (out / "report" / "fig1_wer_vs_sparsity.png").stat().st_size > 0
    assert "progressive beats one-pass fine-tuning: **not measured**" in (
        out / "report" / "report.md").read_text()
    assert reproduce_sparsewav.main(argv) == 0
    assert "2 reused" in capsys.readouterr().out
