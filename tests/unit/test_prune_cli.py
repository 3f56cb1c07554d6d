"""``sb-sparse prune obs`` on a tiny Hugging Face directory and a SpeechBrain folder."""

import json

import numpy as np
import pytest
import soundfile
import torch

from speechbrain_sparse.cli import main
from speechbrain_sparse.masks import ParameterMask
from speechbrain_sparse.pruning.obs import pruned_count
from speechbrain_sparse.pruning.pretrained import load_pretrained
from tests.unit.pruning_models import (
    calibration_manifest,
    speechbrain_model_folder,
    tiny_hf_model,
)


@pytest.fixture
def manifest(tmp_path):
    """Six short utterances with transcripts, as a SpeechBrain CSV."""
    return calibration_manifest(tmp_path)


def run_cli(*args):
    return main(["prune", "obs", *map(str, args)])


def test_prunes_a_huggingface_directory(tmp_path, manifest):
    from transformers import WavLMForCTC

    _, source = tiny_hf_model("wavlm", tmp_path)
    (source / "preprocessor_config.json").write_text('{"do_normalize": true}')
    out = tmp_path / "pruned"
    assert run_cli("--model", source, "--calibration", manifest, "--sparsity", 0.5,
                   "--num-calibration", 4, "--batch-size", 2, "--out", out,
                   "--sparse-export") == 0
    assert {"config.json", "model.safetensors", "mask.pt", "pruning_info.json",
            "preprocessor_config.json", "sparse_model.pt"} <= {
        p.name for p in out.iterdir()}
    pruned = WavLMForCTC.from_pretrained(out)
    mask = ParameterMask.load(out / "mask.pt")
    params = dict(pruned.named_parameters())
    for name, keep in mask.items():
        assert int((params[name] == 0).sum()) >= pruned_count(keep.numel(), 0.5)
        assert torch.all(params[name][~keep] == 0)
    info = json.loads((out / "pruning_info.json").read_text())
    assert info["utterances"] == 4 and info["achieved_sparsity"] == 0.5
    from speechbrain_sparse.pruning.sparse_export import load_sparse_checkpoint

    restored = load_sparse_checkpoint(out / "sparse_model.pt")
    assert all(torch.equal(restored[n], p) for n, p in pruned.state_dict().items())


def test_prunes_a_speechbrain_model_folder(tmp_path, manifest):
    folder, _ = speechbrain_model_folder(tmp_path)
    out = tmp_path / "pruned"
    assert run_cli("--model", folder, "--calibration", manifest, "--sparsity", 0.6,
                   "--mixed-sparsity", "--num-probes", 1, "--out", out) == 0
    assert {"model.ckpt", "normalizer.ckpt", "tokenizer.model", "mask.pt",
            "model_info.json"} <= {p.name for p in out.iterdir()}
    reloaded = load_pretrained(out)  # nhead now recorded in model_info.json
    mask = ParameterMask.load(out / "mask.pt", model=None)
    params = dict(reloaded.model.named_parameters())
    assert mask.numel() - mask.num_selected() == pruned_count(mask.numel(), 0.6)
    assert any("decoder" in name for name in mask)  # decoder calibrated on tokens
    for name, keep in mask.items():
        assert torch.all(params[name][~keep] == 0), name


@pytest.mark.parametrize("change, message", [
    ({"--model": "missing"}, "--model missing: folder not found"),
    ({"--sparsity": "1.5"}, r"--sparsity must be in \[0, 1\), got 1.5"),
    ({"--calibration": "nothing.csv"}, "--calibration nothing.csv: file not found"),
    ({"--model": "{empty}"}, "--model: .*neither a Hugging Face model directory"),
    ({"--calibration": "{bad_csv}"}, "--calibration: .*bad.csv: missing column"),
])
def test_bad_arguments_exit_2_naming_them(tmp_path, manifest, capsys, change,
                                          message):
    import re

    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.csv").write_text("ID,duration\nu1,1.0\n")
    _, source = tiny_hf_model("wav2vec2", tmp_path)
    args = {"--model": source, "--calibration": manifest, "--sparsity": 0.5,
            "--out": tmp_path / "out"}
    places = {"{empty}": tmp_path / "empty", "{bad_csv}": tmp_path / "bad.csv"}
    args.update({k: places.get(v, v) for k, v in change.items()})
    assert run_cli(*[item for pair in args.items() for item in pair]) == 2
    assert re.search(message, capsys.readouterr().err.replace(str(tmp_path) + "/", ""))
    assert not (tmp_path / "out").exists()


def test_calibration_audio_must_be_16_khz(tmp_path, manifest, capsys):
    rows = manifest.read_text().splitlines()
    wav = rows[1].split(",")[2]
    soundfile.write(wav, np.zeros(800), 8000)
    _, source = tiny_hf_model("hubert", tmp_path)
    assert run_cli("--model", source, "--calibration", manifest, "--sparsity", 0.5,
                   "--out", tmp_path / "out") == 2
    assert "sampled at 8000 Hz, not 16000 Hz" in capsys.readouterr().err
