"""Bad input to the recipe and to ``sb-sparse``: one line naming the file, row or key.

The cases of issue 15, one by one, on the micro corpus: bad audio and text in a
training manifest, a misspelled override, a bad density, an unknown second
method, a mask of another model, an unwritable output folder, a non-finite
training loss. Every run must stop with ``train.py: error: <one line>`` (or
``sb-sparse <command>: error: <one line>``), exit non-zero and export nothing.
"""

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch

from speechbrain_sparse.errors import exit_on_user_error
from tests.conftest import SYNTHETIC_RECIPE, load_recipe_module
from tests.integration.test_synthetic_recipe import MICRO_MODEL

SYSFS = Path("/sys/kernel")  # refuses new files, even to root


def stage_error(hparams_name, output_folder, corpus, *overrides):
    """Runs a stage as ``python train.py`` would; returns its one-line error."""
    train = load_recipe_module(SYNTHETIC_RECIPE)
    argv = [str(SYNTHETIC_RECIPE / "hparams" / hparams_name),
            f"--output_folder={output_folder}", f"--data_folder={corpus}",
            "--corpus_preset=micro", *MICRO_MODEL, "--num_workers=0",
            "--device=cpu", *overrides]
    with pytest.raises(SystemExit) as exit_info:
        exit_on_user_error(train.main, argv, "train.py")
    message = str(exit_info.value.code)
    assert message.startswith("train.py: error: ") and "\n" not in message
    return message


def assert_nothing_exported(output_folder):
    assert not (Path(output_folder) / "model").exists()


@pytest.fixture
def corpus_copy(micro_corpus, tmp_path):
    """The micro corpus' manifests (wav paths still pointing at it), to spoil."""
    copy = tmp_path / "corpus"
    shutil.copytree(micro_corpus, copy, ignore=shutil.ignore_patterns("*.wav"))
    return copy


def spoil_row(manifest, number, **values):
    """Replaces columns of data row ``number`` (1-based) of a manifest."""
    with open(manifest, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    rows[number - 1].update(values)
    with open(manifest, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows[number - 1]


@pytest.mark.parametrize(
    "samples, rate, duration, problem",
    [
        (np.zeros(0, dtype=np.int16), 16000, "0.0", "has no samples"),
        (np.zeros(8, dtype=np.int16), 16000, "1.48",
         "lasts 0.001 s, but column 'duration' says 1.48 s"),
        (np.zeros(16000, dtype=np.int16), 8000, "2.0", "is sampled at 8000 Hz"),
        (np.zeros((16000, 2), dtype=np.int16), 16000, "1.0",
         "has 2 channels, not 1"),
    ],
    ids=["zero-length", "truncated", "8kHz", "stereo"],
)
def test_bad_audio_stops_the_stage_naming_file_and_row(
    corpus_copy, tmp_path, samples, rate, duration, problem
):
    wav = tmp_path / "bad.wav"
    soundfile.write(wav, samples, rate)
    manifest = corpus_copy / "en-us" / "train.csv"
    row = spoil_row(manifest, 3, wav=str(wav), duration=duration)
    message = stage_error("pretrain_tiny.yaml", tmp_path / "out", corpus_copy)
    assert f"{manifest}, row 3 (ID {row['ID']!r}): audio {wav} {problem}" in message
    assert_nothing_exported(tmp_path / "out")


def test_non_utf8_transcript_names_file_row_and_column(corpus_copy, tmp_path):
    manifest = corpus_copy / "en-us" / "train.csv"
    row = spoil_row(manifest, 2, wrd="CAFE")
    manifest.write_bytes(manifest.read_bytes().replace(b",CAFE,", b",CAF\xc9,"))
    message = stage_error("pretrain_tiny.yaml", tmp_path / "out", corpus_copy)
    assert (f"{manifest}, row 2 (ID {row['ID']!r}): column 'wrd' is not UTF-8 text"
            in message)
    assert_nothing_exported(tmp_path / "out")


def test_duplicate_ids_name_both_rows(corpus_copy, tmp_path):
    manifest = corpus_copy / "en-us" / "train.csv"
    first = spoil_row(manifest, 2)
    spoil_row(manifest, 7, ID=first["ID"])
    message = stage_error("pretrain_tiny.yaml", tmp_path / "out", corpus_copy)
    assert f"{manifest}: ID {first['ID']!r} is listed twice, in rows 2 and 7" in message
    assert_nothing_exported(tmp_path / "out")


def test_misspelled_override_names_the_key(micro_corpus, tmp_path):
    message = stage_error("diff_tiny.yaml", tmp_path, micro_corpus, "--densty=0.2")
    assert "diff_tiny.yaml: --densty: no such key in the file" in message
    assert "(did you mean --density?)" in message


@pytest.mark.parametrize("density", ["0", "1.5", "abc", ".nan"])
def test_bad_density_names_the_value(micro_corpus, tmp_path, density):
    message = stage_error("diff_tiny.yaml", tmp_path, micro_corpus,
                          f"--density={density}")
    assert "diff selection: density must be in (0, 1]" in message


def test_unknown_second_method_names_the_choices(micro_corpus, tmp_path):
    message = stage_error("union_tiny.yaml", tmp_path, micro_corpus,
                          "--second_method=magnitude")
    assert "unknown selection method 'magnitude'; valid: diff, fisher" in message


def test_unwritable_output_folder_stops_before_any_work(micro_corpus, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    message = stage_error("pretrain_tiny.yaml", blocker / "out", micro_corpus)
    assert f"{blocker}" in message and "Not a directory" in message


@pytest.mark.skipif(not SYSFS.is_dir(), reason="needs Linux sysfs")
def test_output_folder_without_permission_is_one_line(micro_corpus):
    message = stage_error("pretrain_tiny.yaml", SYSFS / "sb_sparse_out", micro_corpus)
    assert "sb_sparse_out" in message


@pytest.fixture(scope="module")
def micro_model(micro_corpus, tmp_path_factory):
    """A micro model folder (one epoch of pretraining)."""
    folder = tmp_path_factory.mktemp("pretrained")
    train = load_recipe_module(SYNTHETIC_RECIPE)
    train.main([str(SYNTHETIC_RECIPE / "hparams" / "pretrain_tiny.yaml"),
                f"--output_folder={folder}", f"--data_folder={micro_corpus}",
                "--corpus_preset=micro", *MICRO_MODEL, "--num_workers=0",
                "--device=cpu", "--number_of_epochs=1", "--eval_dialects=[en-us]"])
    return folder / "model"


def test_mask_of_another_model_names_file_and_parameter(
    micro_model, micro_corpus, tmp_path
):
    from speechbrain_sparse.masks import ParameterMask

    ParameterMask.full({"other.weight": (3, 4)}).save(tmp_path / "mask.pt")
    message = stage_error(
        "diff_tiny.yaml", tmp_path, micro_corpus, f"--pretrained_dir={micro_model}",
        f"--finetuned_dir={micro_model}", "--dialect=en-029", "--number_of_epochs=1")
    assert (f"{tmp_path / 'mask.pt'}: parameter 'other.weight' has shape (3, 4) "
            "in the mask but None in the model") in message
    assert_nothing_exported(tmp_path)


def test_non_finite_loss_stops_naming_the_batch(micro_corpus, tmp_path):
    # a NaN clipping norm turns the weights NaN at the first step: the second
    # batch's loss is NaN, as a zero-length wav's was before the manifest check
    message = stage_error("pretrain_tiny.yaml", tmp_path, micro_corpus,
                          "--max_grad_norm=nan", "--number_of_epochs=1")
    assert ("training loss is nan at epoch 1, step 2, in the batch of utterances"
            in message)
    assert "en-us_s" in message  # the utterance IDs
    assert_nothing_exported(tmp_path)
    assert not list((tmp_path / "save").glob("CKPT*"))


def run_cli(argv, capsys):
    """``sb-sparse ARGV`` in-process; returns (status, stderr)."""
    from speechbrain_sparse.cli import main

    status = main(argv)
    return status, capsys.readouterr().err.strip()


def test_prune_obs_checks_its_output_before_calibrating(
    micro_model, micro_corpus, tmp_path, capsys, monkeypatch
):
    from speechbrain_sparse.pruning import calibration

    def must_not_run(*args, **kwargs):
        raise AssertionError("calibration started before the output was checked")

    monkeypatch.setattr(calibration, "load_calibration_batches", must_not_run)
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    status, error = run_cli(
        ["prune", "obs", "--model", str(micro_model), "--calibration",
         str(micro_corpus / "en-us" / "train.csv"), "--sparsity", "0.5",
         "--out", str(blocker / "pruned")], capsys)
    assert status == 2
    assert error == (f"sb-sparse prune: error: --out: cannot write {blocker}/pruned: "
                     f"{blocker} is a file, not a folder")


@pytest.mark.skipif(not SYSFS.is_dir(), reason="needs Linux sysfs")
def test_mask_command_unwritable_output_is_one_line(micro_model, tmp_path, capsys):
    status, error = run_cli(
        ["mask", "--strategy", "topk", "--pretrained", str(micro_model / "model.ckpt"),
         "--density", "0.2", "--out", str(SYSFS / "x.mask")], capsys)
    assert status == 2 and "\n" not in error
    assert error.startswith(
        f"sb-sparse mask: error: --out: cannot write {SYSFS}/x.mask")


def test_diff_mask_of_another_model_names_both_files(micro_model, tmp_path, capsys):
    other = tmp_path / "other.ckpt"
    state = torch.load(micro_model / "model.ckpt")
    name = next(iter(state))
    state[name] = torch.zeros(7, 3)
    torch.save(state, other)
    status, error = run_cli(
        ["mask", "--strategy", "diff", "--pretrained", str(micro_model / "model.ckpt"),
         "--finetuned", str(other), "--density", "0.2",
         "--out", str(tmp_path / "m.mask")], capsys)
    assert status == 2 and "\n" not in error
    assert str(other) in error and name in error
    assert not (tmp_path / "m.mask").exists()


def test_prune_obs_refuses_a_nan_model_before_calibrating(
    micro_model, micro_corpus, tmp_path, capsys, monkeypatch
):
    from speechbrain_sparse.pruning import calibration

    def must_not_run(*args, **kwargs):
        raise AssertionError("calibration started on a NaN model")

    monkeypatch.setattr(calibration, "load_calibration_batches", must_not_run)
    broken = tmp_path / "model"
    shutil.copytree(micro_model, broken)
    state = torch.load(broken / "model.ckpt")
    name = next(iter(state))
    state[name] = torch.full_like(state[name], float("nan"))
    torch.save(state, broken / "model.ckpt")
    status, error = run_cli(
        ["prune", "obs", "--model", str(broken), "--calibration",
         str(micro_corpus / "en-us" / "train.csv"), "--sparsity", "0.5",
         "--out", str(tmp_path / "pruned"), "--nhead", "2"], capsys)
    assert status == 2 and "\n" not in error
    assert error.startswith(f"sb-sparse prune: error: --model {broken}: tensor ")
    assert "non-finite entries" in error and not (tmp_path / "pruned").exists()
