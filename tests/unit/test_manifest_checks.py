"""Bad manifests fail with a message that names the file, row and column."""

import csv

import numpy as np
import pytest
import soundfile

from speechbrain_sparse.asr.data import ManifestError, check_manifest


def write_manifest(path, rows, fields=("ID", "duration", "wav", "spk_id", "wrd")):
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow({key: row[key] for key in fields})
    return path


@pytest.fixture
def good_row(tmp_path):
    wav = tmp_path / "u1.wav"
    soundfile.write(wav, np.zeros(1600, dtype=np.int16), 16000)
    return {"ID": "u1", "duration": "0.1", "wav": str(wav), "spk_id": "s1", "wrd": "HI"}


def test_good_manifest_counts_rows(tmp_path, good_row):
    assert check_manifest(write_manifest(tmp_path / "ok.csv", [good_row])) == 1


def test_missing_file(tmp_path):
    with pytest.raises(ManifestError, match="nope.csv: manifest not found"):
        check_manifest(tmp_path / "nope.csv")


def test_missing_column_is_named(tmp_path, good_row):
    path = write_manifest(
        tmp_path / "m.csv", [good_row], ("ID", "duration", "wav", "wrd")
    )
    with pytest.raises(ManifestError, match=r"m.csv: missing column\(s\) spk_id"):
        check_manifest(path)


def test_empty_transcript_names_row(tmp_path, good_row):
    rows = [good_row, {**good_row, "ID": "u2", "wrd": "  "}]
    with pytest.raises(
        ManifestError, match=r"m.csv, row 2 \(ID 'u2'\): empty transcript"
    ):
        check_manifest(write_manifest(tmp_path / "m.csv", rows))


def test_missing_audio_names_path(tmp_path, good_row):
    row = {**good_row, "wav": str(tmp_path / "gone.wav")}
    with pytest.raises(ManifestError, match="row 1.*audio file not found: .*gone.wav"):
        check_manifest(write_manifest(tmp_path / "m.csv", [row]))


def test_unreadable_audio_names_path(tmp_path, good_row):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really a wav")
    row = {**good_row, "wav": str(broken)}
    with pytest.raises(ManifestError, match="cannot read audio .*broken.wav"):
        check_manifest(write_manifest(tmp_path / "m.csv", [row]))


def test_bad_duration_names_column(tmp_path, good_row):
    row = {**good_row, "duration": "long"}
    with pytest.raises(ManifestError, match="column 'duration' is not a number"):
        check_manifest(write_manifest(tmp_path / "m.csv", [row]))


def test_empty_manifest(tmp_path):
    path = write_manifest(tmp_path / "m.csv", [])
    with pytest.raises(ManifestError, match="no utterances"):
        check_manifest(path)


def write_wav(path, samples, rate=16000):
    soundfile.write(path, samples, rate)
    return str(path)


@pytest.mark.parametrize(
    "samples, rate, duration, message",
    [
        (np.zeros(0, dtype=np.int16), 16000, "0.0", r"bad.wav has no samples"),
        (np.zeros(8, dtype=np.int16), 16000, "1.48",
         r"bad.wav lasts 0.001 s, but column 'duration' says 1.48 s"),
        (np.zeros(800, dtype=np.int16), 8000, "0.1",
         r"bad.wav is sampled at 8000 Hz, not 16000 Hz"),
        (np.zeros((1600, 2), dtype=np.int16), 16000, "0.1",
         r"bad.wav has 2 channels, not 1 \(mono\)"),
    ],
    ids=["zero-length", "truncated", "8kHz", "stereo"],
)
def test_audio_that_cannot_be_trained_on_names_row_and_file(
    tmp_path, good_row, samples, rate, duration, message
):
    bad = {**good_row, "ID": "u2", "duration": duration,
           "wav": write_wav(tmp_path / "bad.wav", samples, rate)}
    path = write_manifest(tmp_path / "m.csv", [good_row, bad])
    with pytest.raises(ManifestError, match=r"m.csv, row 2 \(ID 'u2'\): audio .*"
                                            + message):
        check_manifest(path)


def test_length_within_tolerance_of_duration_passes(tmp_path, good_row):
    row = {**good_row, "duration": "0.14"}  # 0.1 s of audio, 0.04 s off
    assert check_manifest(write_manifest(tmp_path / "m.csv", [row])) == 1


def test_non_utf8_transcript_names_row_and_column(tmp_path, good_row):
    rows = [good_row, {**good_row, "ID": "u2", "wrd": "CAFE"}]
    path = write_manifest(tmp_path / "m.csv", rows)
    path.write_bytes(path.read_bytes().replace(b"CAFE", b"CAF\xc9"))  # Latin-1
    with pytest.raises(ManifestError, match=r"m.csv, row 2 \(ID 'u2'\): column "
                                            r"'wrd' is not UTF-8 text: b'CAF\\xc9'"):
        check_manifest(path)


def test_duplicate_ids_name_both_rows(tmp_path, good_row):
    rows = [good_row, {**good_row, "ID": "u2"}, {**good_row}]
    with pytest.raises(ManifestError,
                       match=r"m.csv: ID 'u1' is listed twice, in rows 1 and 3"):
        check_manifest(write_manifest(tmp_path / "m.csv", rows))


def test_calibration_checks_headers_before_decoding(tmp_path, good_row):
    from speechbrain_sparse.pruning.calibration import load_calibration_batches

    bad = {**good_row, "ID": "u2",
           "wav": write_wav(tmp_path / "bad.wav", np.zeros(800, dtype=np.int16), 8000)}
    path = write_manifest(tmp_path / "m.csv", [good_row, bad])
    with pytest.raises(ManifestError, match=r"m.csv \(ID 'u2'\): audio .*bad.wav is "
                                            r"sampled at 8000 Hz"):
        load_calibration_batches(path)
