"""The synthetic wav2vec2-family recipe: train from scratch, prune, fine-tune, resume.

A tiny Wav2Vec2 / WavLM CTC model is trained for one epoch on the micro corpus
by the recipe's ``train.py`` (in process), saved as a Hugging Face directory,
then pruned with SparseWAV and fine-tuned in prune mode; the LibriSpeech
pruning script and ``sb-sparse prune obs`` take the same directory.
"""

import json

import pytest
import torch
import yaml

from speechbrain_sparse.masks import ParameterMask
from tests.conftest import REPO, load_recipe_module

RECIPE = REPO / "recipes" / "Synthetic" / "ASR" / "wav2vec2"
TINY_MODEL = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
              "intermediate_size": 64, "conv_dim": [32] * 7,
              "num_conv_pos_embeddings": 8, "num_conv_pos_embedding_groups": 2}
COMMON = {"corpus_preset": "micro", "num_workers": 0, "batch_size": 8,
          "eval_splits": "[test]"}


def run_stage(yaml_name, corpus, output, **keys):
    """Runs ``train.py hparams/<yaml_name>`` on the micro corpus; returns results."""
    train = load_recipe_module(RECIPE)
    keys = {**COMMON, "data_folder": corpus, "output_folder": output, **keys}
    return train.main([str(RECIPE / "hparams" / yaml_name),
                       *(f"--{key}={value}" for key, value in keys.items())])


def train_scratch(model_type, corpus, output):
    return run_stage(f"{model_type}_tiny.yaml", corpus, output, number_of_epochs=1,
                     n_warmup_steps=10, hf_config=json.dumps(TINY_MODEL))


@pytest.fixture(scope="module", params=["wav2vec2", "wavlm"])
def trained(request, micro_corpus, tmp_path_factory):
    """(model_type, output folder, results) of one epoch from scratch."""
    output = tmp_path_factory.mktemp(request.param)
    results = train_scratch(request.param, micro_corpus, output)
    return request.param, output, results


def test_scratch_training_writes_a_hugging_face_directory(trained):
    from transformers import AutoModelForCTC

    model_type, output, results = trained
    assert set(results) == {"en-us_test"}
    assert {"WER", "CER", "loss"} <= set(results["en-us_test"])
    model_dir = output / "model"
    for name in ("config.json", "model.safetensors", "vocab.json",
                 "preprocessor_config.json", "model_info.json"):
        assert (model_dir / name).is_file(), name
    model = AutoModelForCTC.from_pretrained(model_dir, local_files_only=True)
    assert model.config.model_type == model_type
    assert model.config.hidden_size == TINY_MODEL["hidden_size"]
    preprocessor = json.loads((model_dir / "preprocessor_config.json").read_text())
    assert preprocessor["do_normalize"] and preprocessor["return_attention_mask"]
    assert json.loads((output / "results.json").read_text()) == results
    assert (output / "wer_en-us_test.txt").is_file()


def test_scratch_training_resumes_from_its_checkpoint(trained, micro_corpus):
    model_type, output, _ = trained
    log = (output / "train_log.txt").read_text()
    train_scratch(model_type, micro_corpus, output)  # epoch 1 done: nothing to fit
    assert (output / "train_log.txt").read_text().count("epoch: 1,") == log.count(
        "epoch: 1,") == 1


def test_pruned_and_fine_tuned_model_keeps_its_zeros(trained, micro_corpus, tmp_path):
    from transformers import AutoModelForCTC

    from speechbrain_sparse.pruning.sparse_export import load_sparse_checkpoint

    model_type, output, _ = trained
    pruned_output = tmp_path / "pruned"
    results = run_stage(
        f"prune_obs_{model_type}_tiny.yaml", micro_corpus, pruned_output,
        pretrained_dir=output / "model", prune_sparsities="[0.3,0.6]",
        number_of_epochs=1, num_calibration=8, calibration_batch_size=4,
        finetune_max_utterances=16)
    assert "en-us_test" in results
    model_dir = pruned_output / "model"
    mask = ParameterMask.load(model_dir / "mask.pt")
    assert abs((1 - mask.density()) - 0.6) < 0.01
    assert len(mask) == 6 * TINY_MODEL["num_hidden_layers"]
    model = AutoModelForCTC.from_pretrained(model_dir, local_files_only=True)
    state = model.state_dict()
    for name, kept in mask.items():
        assert torch.count_nonzero(state[name][~kept]) == 0, name
    dense = AutoModelForCTC.from_pretrained(output / "model", local_files_only=True)
    changed = [name for name, kept in mask.items()
               if not torch.equal(state[name][kept], dense.state_dict()[name][kept])]
    assert changed, "fine-tuning (and OBS updates) changed no surviving weight"
    restored = load_sparse_checkpoint(model_dir / "sparse_model.pt")
    for name, value in state.items():
        assert torch.equal(restored[name], value), name
    info = json.loads((model_dir / "model_info.json").read_text())
    assert info["achieved_sparsity"] == pytest.approx(1 - mask.density())
    rounds = json.loads((pruned_output / "pruning_info.json").read_text())["rounds"]
    assert [r["target_sparsity"] for r in rounds] == [0.3, 0.6]


def test_librispeech_pruning_script_takes_the_synthetic_model(trained, micro_corpus,
                                                               tmp_path):
    model_type, output, _ = trained
    prune = load_recipe_module(REPO / "recipes" / "LibriSpeech" / "ASR" / "sparsewav",
                               "prune")
    hparams = "wavlm_base_plus.yaml" if model_type == "wavlm" else "wav2vec2_base.yaml"
    out = prune.main([
        str(REPO / "recipes" / "LibriSpeech" / "ASR" / "sparsewav" / "hparams" /
            hparams),
        f"--pretrained_dir={output / 'model'}",
        f"--calibration_csv={micro_corpus / 'en-us' / 'train.csv'}",
        f"--output_folder={tmp_path / 'libri'}", "--num_calibration=8",
        "--batch_size=4", "--sparsity=0.5"])
    mask = ParameterMask.load(out / "mask.pt")
    assert abs((1 - mask.density()) - 0.5) < 0.01
    assert (out / "vocab.json").is_file() and (out / "sparse_model.pt").is_file()
    info = yaml.safe_load((out / "pruning_info.json").read_text())
    assert info["calibration"].endswith("train.csv")


@pytest.mark.slow  # ~2 min on 2 cores; test_sparsewav_stage runs the tool fast
def test_ablation_tool_prunes_the_ctc_model(trained, micro_corpus, tmp_path, capsys):
    model_type, output, _ = trained
    if model_type != "wav2vec2":
        pytest.skip("the tool runs the same YAMLs for both; once is enough in CI")
    reproduce_sparsewav = load_recipe_module(REPO / "tools", "reproduce_sparsewav")
    out = tmp_path / "ablation"
    argv = ["--preset", "micro", "--model", model_type,
            "--pretrained", str(output / "model"), "--out", str(out),
            "--rows", "dense", "magnitude", "finetuned", "--fig-sparsities",
            "--workers", "1", "--threads", "2", "--no-progress",
            "--set", f"data_folder={micro_corpus}", "--set", "num_workers=0"]
    assert reproduce_sparsewav.main(argv) == 0
    assert "3 finished" in capsys.readouterr().out
    table = (out / "report" / "table1.csv").read_text().splitlines()
    rows = {line.split(",")[0]: line.split(",") for line in table[1:]}
    assert rows["dense (not pruned)"][1] == "0.00"
    assert rows["magnitude (uniform)"][1] == "75.00"
    assert rows["+++ post-pruning fine-tune"][3]  # a test WER
    with pytest.raises(SystemExit):
        reproduce_sparsewav.parse_arguments(
            ["--model", model_type, "--pretrained", str(micro_corpus)])
