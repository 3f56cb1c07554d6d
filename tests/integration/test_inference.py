"""A trained micro model used the SpeechBrain way and with ``sb-sparse transcribe``.

One micro pretraining (one epoch, test decoding one utterance at a time so that
no padding enters the recipe's hypotheses) is shared by the module: its
``model/`` folder must load with ``EncoderDecoderASR.from_hparams`` and decode
exactly as the recipe's test stage did, also when copied elsewhere, and
``sb-sparse transcribe`` must print those hypotheses and score them.
"""

import csv
import shutil

import pytest

from speechbrain_sparse.cli import main as sb_sparse
from tests.integration.test_synthetic_recipe import (
    assert_loads_with_encoder_decoder_asr,
    run_stage,
)

TEST_SET = "en-us_test"


@pytest.fixture(scope="module")
def trained(micro_corpus, tmp_path_factory):
    """A micro model pretrained for one epoch, tested on the source dialect."""
    folder = tmp_path_factory.mktemp("inference_pretrain")
    run_stage("pretrain_tiny.yaml", folder, micro_corpus, "--number_of_epochs=1",
              "--eval_dialects=[en-us]", "--eval_batch_size=1")
    return folder


def recipe_hypotheses(wer_file):
    """Utterance ID -> hypothesis text, read from a ``wer_<set>.txt`` alignment."""
    lines = wer_file.read_text(encoding="utf-8").splitlines()
    hypotheses = {}
    for index, line in enumerate(lines):
        if line.startswith("=" * 10) and index + 4 < len(lines) and ", %WER" in (
                lines[index + 1]):
            utterance = lines[index + 1].split(",")[0]
            tokens = [token.strip() for token in lines[index + 4].split(";")]
            hypotheses[utterance] = " ".join(t for t in tokens if t and t != "<eps>")
    return hypotheses


def manifest_rows(corpus, dialect="en-us", split="test"):
    with open(corpus / dialect / f"{split}.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_encoder_decoder_asr_decodes_as_the_recipe(trained, micro_corpus, tmp_path):
    from speechbrain.inference.ASR import EncoderDecoderASR

    expected = recipe_hypotheses(trained / f"wer_{TEST_SET}.txt")
    rows = manifest_rows(micro_corpus)
    assert set(expected) == {row["ID"] for row in rows}
    copy = tmp_path / "copied_model"  # self-contained: no path outside the folder
    shutil.copytree(trained / "model", copy)
    assert_loads_with_encoder_decoder_asr(copy, tmp_path / "sb")
    asr = EncoderDecoderASR.from_hparams(source=str(copy), savedir=tmp_path / "sb")
    for row in rows[:4]:
        hypothesis = asr.transcribe_file(row["wav"])
        assert hypothesis.split() == expected[row["ID"]].split(), row["ID"]


def test_copied_folder_is_pruned_without_nhead(trained, tmp_path):
    from speechbrain_sparse.pruning.pretrained import load_pretrained

    copy = tmp_path / "model"
    shutil.copytree(trained / "model", copy)
    (copy / "model_info.json").write_text("{}")  # the record is hyperparams.yaml
    pretrained = load_pretrained(copy)
    assert pretrained.hparams["nhead"] == 2
    assert pretrained.hparams["d_model"] == 32


def test_transcribe_prints_ids_and_hypotheses(trained, micro_corpus, capsys):
    expected = recipe_hypotheses(trained / f"wer_{TEST_SET}.txt")
    rows = manifest_rows(micro_corpus)[:3]
    status = sb_sparse(["transcribe", str(trained / "model"),
                        *(row["wav"] for row in rows), "--batch-size", "1"])
    assert status == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    for line, row in zip(lines, rows):
        name, text = line.split("\t")
        assert name == row["ID"] and text == expected[row["ID"]]


def test_transcribe_manifest_scores_with_references(trained, micro_corpus, tmp_path,
                                                    capsys):
    results = (trained / "results.json").read_text()
    out = tmp_path / "hyps.tsv"
    status = sb_sparse(["transcribe", str(trained / "model"), "--manifest",
                        str(micro_corpus / "en-us" / "test.csv"), "--batch-size",
                        "1", "--out", str(out)])
    assert status == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    expected = recipe_hypotheses(trained / f"wer_{TEST_SET}.txt")
    written = dict(line.split("\t") for line in out.read_text().splitlines())
    assert written == expected
    import json

    wer = json.loads(results)[TEST_SET]["WER"]
    assert f"WER {wer:.2f}" in captured.err and "CER" in captured.err


def test_transcribe_ctc_greedy_batched(trained, micro_corpus, capsys):
    status = sb_sparse(["transcribe", str(trained / "model"), "--manifest",
                        str(micro_corpus / "en-us" / "test.csv"),
                        "--decoding", "ctc_greedy", "--batch-size", "3"])
    assert status == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [
        row["ID"] for row in manifest_rows(micro_corpus)]


def test_transcribe_with_a_delta(trained, micro_corpus, tmp_path, capsys):
    """Base + delta decodes as the fine-tuned folder it was made from."""
    import torch

    finetuned = tmp_path / "finetuned"
    shutil.copytree(trained / "model", finetuned)
    state = torch.load(finetuned / "model.ckpt")
    for tensor in list(state.values())[::3]:  # a sparse change of some tensors
        tensor.view(-1)[::5] += 0.05
    torch.save(state, finetuned / "model.ckpt")
    delta = tmp_path / "dialect.delta"
    assert sb_sparse(["delta", "create", "--base", str(trained / "model"),
                      "--finetuned", str(finetuned), "--out", str(delta)]) == 0
    manifest = str(micro_corpus / "en-us" / "test.csv")
    capsys.readouterr()
    assert sb_sparse(["transcribe", str(finetuned), "--manifest", manifest]) == 0
    expected = capsys.readouterr().out
    assert sb_sparse(["transcribe", str(trained / "model"), "--manifest", manifest,
                      "--delta", str(delta)]) == 0
    assert capsys.readouterr().out == expected
