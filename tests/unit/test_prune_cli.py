"""``sb-sparse prune obs`` on a tiny Hugging Face directory and a SpeechBrain folder."""

import csv
import json

import numpy as np
import pytest
import soundfile
import torch

from speechbrain_sparse.cli import main
from speechbrain_sparse.masks import ParameterMask
from speechbrain_sparse.pruning.obs import pruned_count
from speechbrain_sparse.pruning.pretrained import load_pretrained
from tests.unit.pruning_models import tiny_hf_model, tiny_transformer_asr

SENTENCES = ["THE CAT SAT", "A DOG RAN FAR", "WE SAW HIM", "BIG RED BOX",
             "JUMP QUICKLY NOW", "LOVE TO EAT", "VIEW THE SKY", "ZEBRA WALKS"]


@pytest.fixture
def manifest(tmp_path):
    """Six short utterances with transcripts, as a SpeechBrain CSV."""
    generator = np.random.default_rng(0)
    rows = []
    for i, words in enumerate(SENTENCES[:6]):
        path = tmp_path / "audio" / f"u{i}.wav"
        path.parent.mkdir(exist_ok=True)
        samples = 2400 + 400 * i
        soundfile.write(path, 0.1 * generator.standard_normal(samples), 16000)
        rows.append({"ID": f"u{i}", "duration": samples / 16000, "wav": str(path),
                     "spk_id": "s", "wrd": words})
    path = tmp_path / "calibration.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def speechbrain_model_folder(root):
    """A model folder as the recipe exports it, with ``hyperparams.yaml`` beside."""
    import sentencepiece

    hparams = tiny_transformer_asr()
    folder = root / "experiment" / "model"
    folder.mkdir(parents=True)
    torch.save(hparams["model"].state_dict(), folder / "model.ckpt")
    hparams["normalize"]._save(folder / "normalizer.ckpt")
    (root / "text.txt").write_text("\n".join(SENTENCES) + "\n")
    sentencepiece.SentencePieceTrainer.train(
        input=str(root / "text.txt"), model_prefix=str(root / "tok"), vocab_size=20,
        model_type="char", bos_id=1, eos_id=2, unk_id=0, character_coverage=1.0)
    (folder / "tokenizer.model").write_bytes((root / "tok.model").read_bytes())
    (folder / "model_info.json").write_text(json.dumps({"size": "tiny"}))
    (root / "experiment" / "hyperparams.yaml").write_text("seed: 1\nnhead: 2\n")
    return folder, hparams


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
