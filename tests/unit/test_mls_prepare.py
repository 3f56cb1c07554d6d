"""MLS preparation on fixture trees in the real Multilingual LibriSpeech layout."""

import csv
import logging
import os
import unicodedata

import pytest
from speechbrain.dataio.dataio import read_audio

from speechbrain_sparse.errors import MissingInputError, UserInputError
from tests.conftest import REPO, load_recipe_module
from tests.mls_fixtures import (
    DECOMPOSED,
    NINE_HOURS,
    ONE_HOUR_FOLDS,
    RATE,
    TRAIN,
    samples_of,
    write_mls,
)

prepare = load_recipe_module(REPO / "recipes" / "MLS", "mls_prepare")


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def flac_root(tmp_path):
    write_mls(tmp_path / "data")
    return tmp_path / "data"


def test_full_preparation_in_the_real_layout(flac_root, tmp_path):
    paths = prepare.prepare_mls(flac_root, tmp_path / "out", "french")
    assert paths == {split: tmp_path / "out" / "french" / f"{split}.csv"
                     for split in ("train", "dev", "test")}
    counts = {split: len(read_rows(path)) for split, path in paths.items()}
    assert counts == {"train": 10, "dev": 2, "test": 1}
    rows = read_rows(paths["train"])
    assert list(rows[0]) == ["ID", "duration", "wav", "spk_id", "wrd", "language",
                             "book_id", "gender"]
    assert [row["ID"] for row in rows] == TRAIN  # the order of transcripts.txt
    first, last = rows[0], rows[-1]
    assert first["wrd"] == unicodedata.normalize(
        "NFC", f"{DECOMPOSED} l'arbre grand-père 0") == "café noël l'arbre grand-père 0"
    assert (first["spk_id"], first["book_id"], first["language"], first["gender"]) \
        == ("10", "100", "french", "M")
    assert last["gender"] == "F"
    assert float(rows[4]["duration"]) == pytest.approx(samples_of(4) / RATE, abs=1e-3)
    assert os.path.isabs(first["wav"]) and first["wav"].endswith(
        "mls_french/train/audio/10/100/10_100_000000.flac")
    assert all(os.path.exists(row["wav"]) for row in rows)


@pytest.mark.parametrize("subset, fold, expected", [
    ("9hr", 0, NINE_HOURS),
    ("1hr", 0, TRAIN[3:9]),
    ("10hr", 0, TRAIN[:9]),
    ("10min", 0, ONE_HOUR_FOLDS[0]),
    ("10min", 4, ONE_HOUR_FOLDS[4]),
])
def test_limited_supervision_subsets_follow_the_handles(flac_root, tmp_path, subset,
                                                         fold, expected):
    paths = prepare.prepare_mls(flac_root, tmp_path / "out", "french",
                                splits=["train", "dev"], subset=subset,
                                ten_min_fold=fold)
    assert paths["train"].name == f"{subset}.csv"
    assert [row["ID"] for row in read_rows(paths["train"])] == expected
    assert len(read_rows(paths["dev"])) == 2  # subsets are of train only


def test_max_hours_is_a_deterministic_draw(flac_root, tmp_path):
    hours = 0.5 / 3600
    paths = prepare.prepare_mls(flac_root, tmp_path / "a", "french", splits=["train"],
                                max_hours=hours, seed=3)
    assert paths["train"].name == f"train_max{hours:g}h.csv"
    rows = read_rows(paths["train"])
    assert 0 < sum(float(row["duration"]) for row in rows) <= 0.5
    again = prepare.prepare_mls(flac_root, tmp_path / "b", "french", splits=["train"],
                                max_hours=hours, seed=3)
    assert read_rows(again["train"]) == rows
    nine = prepare.prepare_mls(flac_root, tmp_path / "c", "french", splits=["train"],
                               subset="9hr", max_hours=hours)
    assert paths["train"].name != nine["train"].name == f"9hr_max{hours:g}h.csv"
    assert {row["ID"] for row in read_rows(nine["train"])} <= set(NINE_HOURS)


def test_opus_and_flac_are_both_read(tmp_path):
    write_mls(tmp_path / "data")
    write_mls(tmp_path / "data", audio_format="opus")
    for audio_format in ("flac", "opus"):
        paths = prepare.prepare_mls(tmp_path / "data", tmp_path / audio_format,
                                    "french", splits=["dev"],
                                    audio_format=audio_format, verify_audio=2)
        rows = read_rows(paths["dev"])
        assert all(row["wav"].endswith(f".{audio_format}") for row in rows)
        folder = "mls_french_opus" if audio_format == "opus" else "mls_french"
        assert f"/{folder}/dev/audio/" in rows[0]["wav"]
        for index, row in enumerate(rows):
            audio = read_audio(row["wav"])
            assert audio.shape[0] == pytest.approx(samples_of(index), abs=16)
            assert float(row["duration"]) == pytest.approx(audio.shape[0] / RATE,
                                                           abs=0.01)
    # the corpus folder itself may be given
    paths = prepare.prepare_mls(tmp_path / "data" / "mls_french_opus", tmp_path / "o",
                                "french", splits=["test"])
    assert read_rows(paths["test"])[0]["wav"].endswith(".opus")


def test_reused_when_prepared_with_the_same_options(flac_root, tmp_path):
    out = tmp_path / "out"
    paths = prepare.prepare_mls(flac_root, out, "french", splits=["dev"])
    stamp = paths["dev"].stat().st_mtime_ns - 10**9
    os.utime(paths["dev"], ns=(stamp, stamp))
    assert prepare.prepare_mls(flac_root, out, "french", splits=["dev"]) == paths
    assert paths["dev"].stat().st_mtime_ns == stamp  # not rewritten
    (flac_root / "mls_french" / "dev" / "audio" / "30" / "300" /
     "30_300_000001.flac").unlink()
    prepare.prepare_mls(flac_root, out, "french", splits=["dev"], skip_missing=True)
    assert len(read_rows(paths["dev"])) == 1  # other options: prepared again
    assert prepare.prepare_mls("nowhere", out, "french", splits=["dev"],
                               skip_prep=True) == paths


def test_skip_missing_counts_what_it_leaves_out(flac_root, tmp_path, caplog):
    audio = flac_root / "mls_french" / "train" / "audio" / "20" / "200"
    for path in audio.iterdir():
        path.unlink()
    with caplog.at_level(logging.WARNING):
        paths = prepare.prepare_mls(flac_root, tmp_path / "out", "french",
                                    splits=["train"], skip_missing=True)
    assert [row["ID"] for row in read_rows(paths["train"])] == TRAIN[:5]
    assert "5 utterances left out, their audio is missing" in caplog.text
    paths = prepare.prepare_mls(flac_root, tmp_path / "unchecked", "french",
                                splits=["train"], check_audio=False)
    assert len(read_rows(paths["train"])) == 10


def _replace_line(path, number, line):
    lines = path.read_bytes().splitlines(keepends=True)
    lines[number - 1] = line
    path.write_bytes(b"".join(lines))


def _dev(corpus):
    return corpus / "dev"


BAD_INPUTS = {
    "missing transcripts": (
        lambda c: (_dev(c) / "transcripts.txt").unlink(),
        MissingInputError, r"missing .*mls_french/dev/transcripts.txt"),
    "missing segments": (
        lambda c: (_dev(c) / "segments.txt").unlink(),
        MissingInputError, r"missing .*mls_french/dev/segments.txt"),
    "no tab": (
        lambda c: _replace_line(_dev(c) / "transcripts.txt", 2,
                                b"30_300_000001 no tab here\n"),
        UserInputError, r"dev/transcripts.txt:2: no tab in the line"),
    "segments without a tab": (
        lambda c: _replace_line(_dev(c) / "segments.txt", 1, b"30_300_000001 x\n"),
        UserInputError, r"dev/segments.txt:1: no tab in the line"),
    "bad id": (
        lambda c: _replace_line(_dev(c) / "transcripts.txt", 1, b"30-300-0\ttext\n"),
        UserInputError,
        r"dev/transcripts.txt:1: id '30-300-0' is not <speaker>_<book>_<utterance>"),
    "missing audio": (
        lambda c: (_dev(c) / "audio/30/300/30_300_000001.flac").unlink(),
        MissingInputError, r"audio file not found: .*/30_300_000001.flac"),
    "flac and opus files": (
        lambda c: (_dev(c) / "audio/30/300/30_300_000000.opus").write_bytes(b""),
        UserInputError, r"both .*30_300_000000.flac and .*30_300_000000.opus"),
    "opus where flac is expected": (
        lambda c: (_dev(c) / "audio/30/300/30_300_000000.flac").rename(
            _dev(c) / "audio/30/300/30_300_000000.opus"),
        UserInputError, r"30_300_000000.flac not found but .*\.opus is: choose "
                        r"audio_format opus"),
    "empty text": (
        lambda c: _replace_line(_dev(c) / "transcripts.txt", 1,
                                b"30_300_000000\t  \n"),
        UserInputError, r"dev/transcripts.txt:1: empty text for '30_300_000000'"),
    "not UTF-8": (
        lambda c: _replace_line(_dev(c) / "transcripts.txt", 2,
                                b"30_300_000001\tcaf\xe9\n"),
        UserInputError, r"dev/transcripts.txt:2: not UTF-8"),
    "duplicate id": (
        lambda c: (_dev(c) / "transcripts.txt").write_text(
            (_dev(c) / "transcripts.txt").read_text() + "30_300_000000\tagain\n"),
        UserInputError, r"dev/transcripts.txt:3: id '30_300_000000' already on line 1"),
    "duplicate segment": (
        lambda c: (_dev(c) / "segments.txt").write_text(
            (_dev(c) / "segments.txt").read_text() * 2),
        UserInputError, r"dev/segments.txt:3: id '30_300_000001' already on line 1"),
    "bad segment": (
        lambda c: _replace_line(_dev(c) / "segments.txt", 2,
                                b"30_300_000000\turl\t5.0\t4.0\n"),
        UserInputError, r"dev/segments.txt:2: expected .* with end > start"),
    "no segment": (
        lambda c: _replace_line(_dev(c) / "segments.txt", 2, b"\n"),
        UserInputError, r"dev/transcripts.txt:1: id '30_300_000000' has no line in "
                        r".*dev/segments.txt"),
    "missing metainfo": (
        lambda c: (c / "metainfo.txt").unlink(),
        MissingInputError, r"missing .*mls_french/metainfo.txt"),
    "bad metainfo header": (
        lambda c: _replace_line(c / "metainfo.txt", 1, b"SPEAKER|BOOK\n"),
        UserInputError, r"metainfo.txt:1: expected the header SPEAKER\|GENDER"),
}


@pytest.mark.parametrize("name", BAD_INPUTS)
def test_bad_input_names_the_file_and_line(flac_root, tmp_path, name):
    damage, error, message = BAD_INPUTS[name]
    damage(flac_root / "mls_french")
    with pytest.raises(error, match=message):
        prepare.prepare_mls(flac_root, tmp_path / "out", "french", splits=["dev"])
    assert not (tmp_path / "out" / "french" / "dev.csv").exists()


def test_a_handle_absent_from_the_transcripts(flac_root, tmp_path):
    handles = flac_root / "mls_french" / "train" / "limited_supervision" / "1hr" / "2"
    (handles / "handles.txt").write_text("\n99_9_000009\n")
    with pytest.raises(UserInputError, match=r"1hr/2/handles.txt:2: handle "
                       r"'99_9_000009' is not in .*train/transcripts.txt"):
        prepare.prepare_mls(flac_root, tmp_path / "out", "french", subset="10hr")
    (handles / "handles.txt").unlink()
    with pytest.raises(MissingInputError, match=r"missing .*1hr/2/handles.txt"):
        prepare.prepare_mls(flac_root, tmp_path / "out", "french", subset="1hr")
    # the subsets that do not read that fold still work
    prepare.prepare_mls(flac_root, tmp_path / "out", "french", subset="9hr")


def test_flac_and_opus_folders_need_a_choice(flac_root, tmp_path):
    write_mls(flac_root, audio_format="opus")
    with pytest.raises(UserInputError, match=r"both .*mls_french and "
                       r".*mls_french_opus are there: choose one with audio_format"):
        prepare.prepare_mls(flac_root, tmp_path / "out", "french")


def test_unknown_language_or_folder(flac_root, tmp_path):
    known = "dutch, english, french, german, italian, polish, portuguese, spanish"
    (flac_root / "mls_klingon").mkdir()
    with pytest.raises(UserInputError, match=rf"unknown MLS folder mls_klingon; "
                       rf"known languages: {known}"):
        prepare.prepare_mls(flac_root / "mls_klingon", tmp_path / "out", "french")
    with pytest.raises(UserInputError, match=rf"unknown MLS language 'klingon'; "
                       rf"known languages: {known}"):
        prepare.prepare_mls(flac_root, tmp_path / "out", "klingon")
    with pytest.raises(MissingInputError, match=r"no mls_german or mls_german_opus "
                       r"folder \(found: mls_french, mls_klingon\)"):
        prepare.prepare_mls(flac_root, tmp_path / "out", "german")
    with pytest.raises(UserInputError, match="is the MLS french folder, not german"):
        prepare.prepare_mls(flac_root / "mls_french", tmp_path / "out", "german")


def test_verify_audio_finds_a_wrong_duration(flac_root, tmp_path):
    _replace_line(flac_root / "mls_french" / "dev" / "segments.txt", 1,
                  b"30_300_000001\turl\t0.0\t9.0\n")
    with pytest.raises(UserInputError, match=r"30_300_000001.flac: 0.120 s of audio, "
                       r"but segments.txt says 9.0 s"):
        prepare.prepare_mls(flac_root, tmp_path / "out", "french", splits=["dev"],
                            verify_audio=5)


def test_command_line(flac_root, tmp_path, capsys):
    prepare.main([str(flac_root), str(tmp_path / "out"), "french", "--splits", "train",
                  "--subset", "10min", "--ten_min_fold", "1"])
    rows = read_rows(tmp_path / "out" / "french" / "10min.csv")
    assert [row["ID"] for row in rows] == ONE_HOUR_FOLDS[1]
    with pytest.raises(SystemExit):
        prepare.main([str(flac_root), str(tmp_path / "out"), "french",
                      "--subset", "5hr"])
