"""``sb-sparse transcribe`` on a tiny Hugging Face CTC folder, and its one-line errors.

The folder is what the wav2vec2 recipe saves (``PretrainedModel.save`` of a
randomly initialised ``Wav2Vec2ForCTC``); it must also load with
``transformers.pipeline("automatic-speech-recognition")``, which decodes the
same text. The Transformer model folders are tested after a micro training in
``tests/integration/test_inference.py``.
"""

import numpy
import pytest
import soundfile

from speechbrain_sparse.asr.ctc_characters import CharacterCTCTokenizer
from speechbrain_sparse.asr.ctc_experiment import build_ctc_model
from speechbrain_sparse.cli import main as sb_sparse
from speechbrain_sparse.pruning.model_families import HuggingFaceSSLFamily
from speechbrain_sparse.pruning.pretrained import PretrainedModel

TINY = {"model_type": "wav2vec2", "hidden_size": 16, "num_hidden_layers": 1,
        "num_attention_heads": 2, "intermediate_size": 32, "conv_dim": [8, 8],
        "conv_stride": [5, 4], "conv_kernel": [10, 4], "num_conv_pos_embeddings": 4,
        "num_conv_pos_embedding_groups": 2}


@pytest.fixture(scope="module")
def ctc_folder(tmp_path_factory):
    """A randomly initialised wav2vec2 CTC folder as the recipe saves it."""
    import torch

    torch.manual_seed(0)
    tokenizer = CharacterCTCTokenizer.from_transcripts(["HELLO WORLD", "A B"])
    model = build_ctc_model(TINY, tokenizer)
    family = HuggingFaceSSLFamily(normalize_audio=True, use_attention_mask=True)
    folder = tmp_path_factory.mktemp("ctc") / "model"
    return PretrainedModel("huggingface", None, model, family,
                           tokenizer=tokenizer).save(folder)


@pytest.fixture(scope="module")
def wavs(tmp_path_factory):
    """Three 16 kHz noise files of different lengths."""
    folder = tmp_path_factory.mktemp("wavs")
    generator = numpy.random.default_rng(0)
    paths = []
    for name, seconds in (("short", 0.4), ("long", 1.0), ("mid", 0.7)):
        path = folder / f"{name}.wav"
        soundfile.write(path, generator.normal(0, 0.1, int(16000 * seconds)), 16000)
        paths.append(path)
    return paths


def test_transformers_pipeline_loads_the_folder(ctc_folder, wavs, capsys):
    from transformers import pipeline

    asr = pipeline("automatic-speech-recognition", model=str(ctc_folder))
    expected = [asr(soundfile.read(path, dtype="float32")[0])["text"]
                for path in wavs]
    assert sb_sparse(["transcribe", str(ctc_folder), *map(str, wavs),
                      "--batch-size", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["short", "long", "mid"]
    assert [line.split("\t")[1] for line in lines] == [
        " ".join(text.split()) for text in expected]


def test_batches_keep_the_input_order(ctc_folder, wavs, tmp_path, capsys):
    out = tmp_path / "hyps.tsv"
    assert sb_sparse(["transcribe", str(ctc_folder), *map(str, wavs),
                      "--batch-size", "2", "--out", str(out)]) == 0
    assert capsys.readouterr().out == ""
    assert [line.split("\t")[0] for line in out.read_text().splitlines()] == [
        "short", "long", "mid"]


def test_manifest_references_give_wer_and_cer(ctc_folder, wavs, tmp_path, capsys):
    manifest = tmp_path / "test.csv"
    rows = [f"{path.stem},{path},HELLO WORLD" for path in wavs]
    manifest.write_text("ID,wav,wrd\n" + "\n".join(rows) + "\n")
    assert sb_sparse(["transcribe", str(ctc_folder), "--manifest", str(manifest),
                      "--syllables"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 3
    metrics = [line.split()[0] for line in captured.err.splitlines()
               if line.split() and line.split()[0] in ("WER", "CER", "SER")]
    assert metrics == ["WER", "CER", "SER"]
    assert "/ 6," in captured.err  # 3 references of 2 words


def one_line_error(argv, capsys):
    assert sb_sparse(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("sb-sparse transcribe: error")
    return err


def test_user_errors_are_one_line(ctc_folder, wavs, tmp_path, capsys):
    assert "no/such/model: model folder not found" in one_line_error(
        ["transcribe", "no/such/model", str(wavs[0])], capsys)
    assert "missing.wav: audio file not found" in one_line_error(
        ["transcribe", str(ctc_folder), str(tmp_path / "missing.wav")], capsys)
    bad = tmp_path / "bad.csv"
    bad.write_text("ID,path\nu1,a.wav\n")
    assert "missing column(s) wav" in one_line_error(
        ["transcribe", str(ctc_folder), "--manifest", str(bad)], capsys)
    gone = tmp_path / "gone.csv"
    gone.write_text(f"ID,wav\nu1,{wavs[0]}\nu2,{tmp_path / 'gone.wav'}\n")
    assert "row 2 (ID 'u2'): audio file not found" in one_line_error(
        ["transcribe", str(ctc_folder), "--manifest", str(gone)], capsys)
    assert "one of the two" in one_line_error(["transcribe", str(ctc_folder)], capsys)
    assert "ctc_greedy only" in one_line_error(
        ["transcribe", str(ctc_folder), str(wavs[0]), "--decoding", "beam"], capsys)
    assert "--out: folder" in one_line_error(
        ["transcribe", str(ctc_folder), str(wavs[0]), "--out",
         str(tmp_path / "no" / "dir" / "h.tsv")], capsys)
    assert "--delta" in one_line_error(
        ["transcribe", str(ctc_folder), str(wavs[0]), "--delta",
         str(tmp_path / "none.delta")], capsys)
