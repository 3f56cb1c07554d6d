"""Preparing CSV manifests from the generic per-dialect layout, and its errors."""

import csv
import wave

import pytest

from speechbrain_sparse.data.generic_layout import prepare_generic_corpus
from speechbrain_sparse.data.manifests import MANIFEST_FIELDS
from speechbrain_sparse.fileio import write_csv_atomic

SPLITS = ("train", "dev")


def write_wav(path, frames):
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(16000)
        handle.writeframes(bytes(2 * frames))


@pytest.fixture
def layout(tmp_path):
    """Two dialects, train and dev, two utterances each."""
    root = tmp_path / "corpus"
    for dialect in ("amdo", "kham"):
        for split in SPLITS:
            lines = []
            for index, frames in enumerate((8000, 12345)):
                spk = f"{dialect}_{split}_s{index}"
                utt = f"{spk}_{index:03d}"
                write_wav(root / dialect / split / spk / f"{utt}.wav", frames)
                lines.append(f"{utt} WORD NUMBER {index}\n")
            (root / dialect / split / "text").write_text("".join(lines))
    return root


def read_rows(path):
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


def test_writes_one_csv_per_dialect_and_split(layout, tmp_path):
    paths = prepare_generic_corpus(layout, tmp_path / "csv", splits=SPLITS)
    assert sorted(paths) == ["amdo_dev", "amdo_train", "kham_dev", "kham_train"]
    fields, rows = read_rows(paths["kham_dev"])
    assert fields == list(MANIFEST_FIELDS)
    assert [row["ID"] for row in rows] == ["kham_dev_s0_000", "kham_dev_s1_001"]
    durations = [float(row["duration"]) for row in rows]
    assert durations == [0.5, pytest.approx(12345 / 16000, abs=1e-4)]
    assert rows[1]["spk_id"] == "kham_dev_s1"
    assert rows[1]["wrd"] == "WORD NUMBER 1" and rows[1]["dialect"] == "kham"
    assert rows[0]["wav"] == str(layout / "kham/dev/kham_dev_s0/kham_dev_s0_000.wav")


def test_skips_when_prepared_with_same_options(layout, tmp_path):
    paths = prepare_generic_corpus(layout, tmp_path / "csv", splits=SPLITS)
    mtimes = {key: path.stat().st_mtime_ns for key, path in paths.items()}
    again = prepare_generic_corpus(layout, tmp_path / "csv", splits=SPLITS)
    assert {key: path.stat().st_mtime_ns for key, path in again.items()} == mtimes
    only = prepare_generic_corpus(
        layout, tmp_path / "csv", dialects=["amdo"], splits=("dev",)
    )
    assert list(only) == ["amdo_dev"]


def test_skip_prep_only_returns_paths(layout, tmp_path):
    paths = prepare_generic_corpus(layout, tmp_path / "csv", skip_prep=True)
    assert not any(path.exists() for path in paths.values())


def test_missing_data_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        prepare_generic_corpus(tmp_path / "nowhere", tmp_path / "csv")


def test_missing_split_folder(layout, tmp_path):
    with pytest.raises(FileNotFoundError, match="amdo/test"):
        prepare_generic_corpus(layout, tmp_path / "csv")


def test_line_without_transcript_names_file_and_line(layout, tmp_path):
    text = layout / "amdo" / "dev" / "text"
    text.write_text(text.read_text() + "amdo_dev_s9_009\n")
    with pytest.raises(ValueError, match=rf"{text}:3: no transcript"):
        prepare_generic_corpus(layout, tmp_path / "csv", splits=SPLITS)


def test_duplicated_id_names_file_and_line(layout, tmp_path):
    text = layout / "kham" / "train" / "text"
    first = text.read_text().splitlines()[0]
    text.write_text(text.read_text() + first + "\n")
    with pytest.raises(ValueError, match=rf"{text}:3: duplicated id"):
        prepare_generic_corpus(layout, tmp_path / "csv", splits=SPLITS)


def test_id_without_audio_names_text_file(layout, tmp_path):
    wav = layout / "amdo/train/amdo_train_s1/amdo_train_s1_001.wav"
    wav.unlink()
    with pytest.raises(ValueError, match="'amdo_train_s1_001'.*has no audio"):
        prepare_generic_corpus(layout, tmp_path / "csv", splits=SPLITS)


def test_audio_without_transcript_names_wav(layout, tmp_path):
    extra = layout / "kham/dev/kham_dev_s0/kham_dev_s0_777.wav"
    write_wav(extra, 100)
    with pytest.raises(ValueError, match=rf"{extra}: audio with no transcript"):
        prepare_generic_corpus(layout, tmp_path / "csv", splits=SPLITS)


def test_csv_writer_is_atomic_and_exact(tmp_path):
    rows = [{"a": 1, "b": "x y"}]
    write_csv_atomic(tmp_path / "out.csv", rows, ["a", "b"])
    assert (tmp_path / "out.csv").read_text() == "a,b\n1,x y\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.csv"]
