"""The LibriSpeech SparseWAV recipe end to end on a fixture corpus and tiny models."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from speechbrain_sparse.masks import ParameterMask
from tests.conftest import REPO, load_recipe_module
from tests.unit.pruning_models import tiny_hf_model
from tests.unit.test_librispeech_prepare import write_corpus

RECIPE = REPO / "recipes" / "LibriSpeech" / "ASR" / "sparsewav"
HPARAMS = sorted(p for p in (RECIPE / "hparams").glob("*.yaml")
                 if p.stem != "prune_finetune")
CORPUS = {"train-clean-100": {"19": {"198": [
    (f"{i:04d}", 2400 + 300 * i, "SOME WORDS") for i in range(6)]}}}
FINETUNE_CORPUS = {
    **CORPUS,
    "dev-clean": {"84": {"121": [(f"{i:04d}", 3000, "WORDS") for i in range(2)]}},
    "test-clean": {"61": {"70": [(f"{i:04d}", 3200, "SOME") for i in range(2)]}},
    "test-other": {"94": {"32": [(f"{i:04d}", 2800, "SOME WORDS") for i in range(2)]}},
}


def test_one_yaml_per_model_and_they_agree():
    assert [p.stem for p in HPARAMS] == ["wav2vec2_base", "wav2vec2_large",
                                         "wavlm_base_plus"]
    bodies = [p.read_text().split("model_name:", 1)[1].split("\n", 3)[3]
              for p in HPARAMS]
    strip = [b.replace("batch_size: 4", "batch_size: 8") for b in bodies]
    assert strip[0] == strip[1] == strip[2]  # only names and the batch size differ


@pytest.mark.parametrize("kind, hparams", [("wav2vec2", "wav2vec2_base"),
                                           ("wavlm", "wavlm_base_plus")])
def test_prune_script_on_a_fixture_corpus(tmp_path, kind, hparams):
    prune = load_recipe_module(RECIPE, "prune")
    data = write_corpus(tmp_path / "LibriSpeech", CORPUS)
    _, source = tiny_hf_model(kind, tmp_path)
    out = prune.main([
        str(RECIPE / "hparams" / f"{hparams}.yaml"), "--pretrained_dir", str(source),
        "--data_folder", str(data), "--output_folder", str(tmp_path / "exp"),
        "--manifest_folder", str(tmp_path / "manifests"), "--num_calibration", "4",
        "--batch_size", "2", "--sparsity", "0.5", "--num_probes", "1",
    ])
    assert Path(out) == tmp_path / "exp" / "model"
    mask = ParameterMask.load(out / "mask.pt")
    assert mask.numel() - mask.num_selected() == mask.numel() // 2
    assert (out / "sparse_model.pt").is_file()
    from speechbrain_sparse.pruning.sparse_export import load_sparse_checkpoint

    state = load_sparse_checkpoint(out / "sparse_model.pt")
    for name, keep in mask.items():
        assert torch.all(state[name][~keep] == 0)


def test_prune_script_needs_a_corpus_or_a_manifest(tmp_path):
    prune = load_recipe_module(RECIPE, "prune")
    _, source = tiny_hf_model("wav2vec2", tmp_path)
    with pytest.raises(ValueError, match="--data_folder .* or --calibration_csv"):
        prune.main([str(RECIPE / "hparams" / "wav2vec2_base.yaml"),
                    "--pretrained_dir", str(source),
                    "--output_folder", str(tmp_path / "exp")])


@pytest.mark.parametrize("kind", ["wav2vec2", "wavlm"])
def test_prune_and_finetune_on_a_fixture_corpus(tmp_path, kind):
    from transformers import AutoModelForCTC

    from speechbrain_sparse.asr.ctc_characters import CharacterCTCTokenizer

    finetune = load_recipe_module(RECIPE, "finetune")
    data = write_corpus(tmp_path / "LibriSpeech", FINETUNE_CORPUS)
    tokenizer = CharacterCTCTokenizer.from_transcripts(["SOME WORDS"])
    dense, source = tiny_hf_model(kind, tmp_path, vocab_size=len(tokenizer),
                                  pad_token_id=tokenizer.blank_index)
    tokenizer.save(source)
    results = finetune.main([
        str(RECIPE / "hparams" / "prune_finetune.yaml"), "--model_name", kind,
        "--pretrained_dir", str(source), "--data_folder", str(data),
        "--output_folder", str(tmp_path / "exp"),
        "--manifest_folder", str(tmp_path / "manifests"), "--num_calibration", "4",
        "--calibration_batch_size", "2", "--prune_sparsities=[0.4,0.6]",
        "--mixed_num_probes", "1", "--number_of_epochs", "1", "--num_workers", "0",
        "--grad_accumulation_factor", "1", "--lr", "0.01",
    ])
    assert set(results) == {"test-clean", "test-other"}
    out = tmp_path / "exp" / "model"
    mask = ParameterMask.load(out / "mask.pt")
    assert abs((1 - mask.density()) - 0.6) < 0.01
    model = AutoModelForCTC.from_pretrained(out, local_files_only=True)
    state, before = model.state_dict(), dense.state_dict()
    for name, keep in mask.items():
        assert torch.count_nonzero(state[name][~keep]) == 0, name
    assert any(not torch.equal(state[name][keep], before[name][keep])
               for name, keep in mask.items())
    assert (out / "vocab.json").read_text() == (source / "vocab.json").read_text()
    assert (tmp_path / "exp" / "wer_test-other.txt").is_file()


def run_prune_script(tmp_path, *overrides, before=""):
    """``prune.py`` as its own process (``before``: code run first); the result."""
    argv = [str(RECIPE / "hparams" / "wav2vec2_base.yaml"),
            "--pretrained_dir", str(tmp_path / "model"),
            "--output_folder", str(tmp_path / "exp"), *overrides]
    code = (f"import runpy, sys\nsys.path.insert(0, {str(RECIPE)!r})\n{before}\n"
            f"sys.argv = {['prune.py', *argv]!r}\n"
            f"runpy.run_path({str(RECIPE / 'prune.py')!r}, run_name='__main__')\n")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=300)


def test_user_error_is_one_line_and_a_library_bug_keeps_its_traceback(tmp_path):
    done = run_prune_script(tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.splitlines()[-1] == (
        "prune.py: error: give --data_folder (the LibriSpeech folder) or "
        "--calibration_csv (a manifest with ID,duration,wav)")

    broken_library = (
        "import speechbrain_sparse.pruning.pretrained as pretrained\n"
        "def from_pretrained(*args, **kwargs):\n"
        "    raise ValueError('raised inside transformers')\n"
        "pretrained.load_huggingface = from_pretrained\n")
    done = run_prune_script(tmp_path, "--calibration_csv", str(tmp_path / "c.csv"),
                            before=broken_library)
    output = done.stdout + done.stderr  # SpeechBrain logs uncaught errors to stdout
    assert done.returncode == 1 and "Traceback (most recent call last)" in output
    assert "ValueError: raised inside transformers" in output.splitlines()
    assert "prune.py: error" not in output
