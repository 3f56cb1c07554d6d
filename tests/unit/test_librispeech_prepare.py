"""LibriSpeech preparation on a fixture tree in the real corpus layout."""

import csv
import os

import numpy as np
import pytest
import soundfile

from tests.conftest import REPO, load_recipe_module

prepare = load_recipe_module(REPO / "recipes" / "LibriSpeech", "librispeech_prepare")

CORPUS = {  # split -> speaker -> chapter -> [(utterance, samples, transcript)]
    "dev-clean": {"84": {"121123": [("0000", 1600, "GO DO YOU HEAR"),
                                    ("0001", 2400, "BUT IN LESS THAN FIVE MINUTES")]},
                  "174": {"50561": [("0000", 800, "FORGOTTEN TOO THE NAME")]}},
    "test-clean": {"1089": {"134686": [("0000", 3200, "HE HOPED THERE WAS STEW")]}},
}


def write_corpus(root, corpus=CORPUS):
    """Writes ``.flac`` files (soundfile) and ``.trans.txt`` files like LibriSpeech."""
    generator = np.random.default_rng(0)
    for split, speakers in corpus.items():
        for speaker, chapters in speakers.items():
            for chapter, utterances in chapters.items():
                folder = root / split / speaker / chapter
                folder.mkdir(parents=True)
                lines = []
                for utt, samples, words in utterances:
                    utt_id = f"{speaker}-{chapter}-{utt}"
                    audio = 0.1 * generator.standard_normal(samples)
                    soundfile.write(folder / f"{utt_id}.flac", audio, 16000)
                    lines.append(f"{utt_id} {words}\n")
                (folder / f"{speaker}-{chapter}.trans.txt").write_text("".join(lines))
    return root


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_manifests_in_speechbrain_convention(tmp_path):
    data = write_corpus(tmp_path / "LibriSpeech")
    paths = prepare.prepare_librispeech(data, tmp_path / "out",
                                        splits=["dev-clean", "test-clean"],
                                        merge_splits=["dev-clean", "test-clean"],
                                        merge_name="all")
    assert sorted(paths) == ["all", "dev-clean", "test-clean"]
    rows = read_rows(paths["dev-clean"])
    assert list(rows[0]) == ["ID", "duration", "wav", "spk_id", "wrd"]
    assert [r["ID"] for r in rows] == ["174-50561-0000", "84-121123-0000",
                                       "84-121123-0001"]
    first = rows[1]
    assert first["spk_id"] == "84-121123" and first["wrd"] == "GO DO YOU HEAR"
    assert float(first["duration"]) == pytest.approx(0.1)
    assert os.path.isabs(first["wav"]) and first["wav"].endswith("84-121123-0000.flac")
    assert len(read_rows(paths["all"])) == 4


def test_skipped_when_prepared_with_the_same_options(tmp_path):
    data = write_corpus(tmp_path / "LibriSpeech")
    out = tmp_path / "out"
    paths = prepare.prepare_librispeech(data, out, splits=["dev-clean"])
    stamp = paths["dev-clean"].stat().st_mtime_ns
    os.utime(paths["dev-clean"], ns=(stamp - 10**9, stamp - 10**9))
    prepare.prepare_librispeech(data, out, splits=["dev-clean"])
    assert paths["dev-clean"].stat().st_mtime_ns == stamp - 10**9  # not rewritten
    prepare.prepare_librispeech(data, out, splits=["dev-clean"], select_n_sentences=1)
    assert len(read_rows(paths["dev-clean"])) == 1  # other options: prepared again


def _chapter(root):
    return root / "dev-clean" / "84" / "121123"


@pytest.mark.parametrize("damage, message", [
    (lambda c: (c / "84-121123.trans.txt").write_text("84-121123-0000\n"),
     r"84-121123.trans.txt, line 1: expected '<utterance id> TRANSCRIPT'"),
    (lambda c: (c / "84-121123.trans.txt").write_text(
        "84-121123-0000 GO\n84-121123-0000 GO\n"),
     r"line 2: id '84-121123-0000' appears twice"),
    (lambda c: (c / "84-121123.trans.txt").write_text("99-1-0000 GO\n"),
     r"line 1: id '99-1-0000' is not of chapter 84-121123"),
    (lambda c: (c / "84-121123-0001.flac").unlink(),
     r"line 2: audio file not found: .*84-121123-0001.flac"),
    (lambda c: (c / "84-121123.trans.txt").write_text("84-121123-0000 GO\n"),
     r"84-121123-0001.flac: no line for 84-121123-0001 in .*84-121123.trans.txt"),
    (lambda c: (c / "84-121123-0000.flac").write_bytes(b"not audio"),
     r"84-121123-0000.flac: cannot read audio"),
    (lambda c: (c / "84-121123.trans.txt").unlink(),
     r"121123: missing transcript file 84-121123.trans.txt"),
])
def test_bad_input_names_the_file_and_line(tmp_path, damage, message):
    data = write_corpus(tmp_path / "LibriSpeech")
    damage(_chapter(data))
    with pytest.raises(ValueError, match=message):
        prepare.prepare_librispeech(data, tmp_path / "out", splits=["dev-clean"])
    assert not (tmp_path / "out" / "dev-clean.csv").exists()


def test_missing_split_folder(tmp_path):
    data = write_corpus(tmp_path / "LibriSpeech")
    with pytest.raises(FileNotFoundError, match="train-clean-100"):
        prepare.prepare_librispeech(data, tmp_path / "out",
                                    splits=["train-clean-100"])
    with pytest.raises(ValueError, match="not among splits"):
        prepare.prepare_librispeech(data, tmp_path / "out", splits=["dev-clean"],
                                    merge_splits=["test-clean"])


SUBSET_CORPUS = {"train-other-500": {  # 10 utterances of 1 s, 0.5 s, 1 s, ...
    "20": {"1000": [(f"{i:04d}", 16000 if i % 2 == 0 else 8000, f"WORD NUMBER {i}")
                    for i in range(6)]},
    "30": {"2000": [(f"{i:04d}", 16000 if i % 2 == 0 else 8000, f"WORD NUMBER {i}")
                    for i in range(4)]},
}}


def test_an_hours_subset_is_deterministic_and_within_the_budget(tmp_path):
    data = write_corpus(tmp_path / "LibriSpeech", SUBSET_CORPUS)
    budget = 4.0 / 3600  # four seconds of the 7.5 s split
    paths = prepare.prepare_librispeech(data, tmp_path / "a",
                                        splits=["train-other-500"],
                                        merge_splits=["train-other-500"],
                                        max_hours=budget, seed=3)
    assert paths["train-other-500"].name == f"train-other-500_{budget:g}h.csv"
    rows = read_rows(paths["train-other-500"])
    assert 3.0 < sum(float(r["duration"]) for r in rows) <= 4.0
    every = [r["ID"] for r in read_rows(
        prepare.prepare_librispeech(data, tmp_path / "all",
                                    splits=["train-other-500"])["train-other-500"])]
    ids = [r["ID"] for r in rows]
    assert ids == [i for i in every if i in ids]  # corpus order
    assert read_rows(paths["train"]) == rows  # the merged CSV holds the subset
    # the same seed draws the same subset; a larger budget keeps it
    again = prepare.prepare_librispeech(data, tmp_path / "b",
                                        splits=["train-other-500"],
                                        max_hours=budget, seed=3)
    assert read_rows(again["train-other-500"]) == rows
    larger = prepare.prepare_librispeech(data, tmp_path / "b",
                                         splits=["train-other-500"],
                                         max_hours=2 * budget, seed=3)
    assert set(ids) < {r["ID"] for r in read_rows(larger["train-other-500"])}
    other_seeds = {tuple(r["ID"] for r in read_rows(prepare.prepare_librispeech(
        data, tmp_path / f"seed{seed}", splits=["train-other-500"],
        max_hours=budget, seed=seed)["train-other-500"])) for seed in range(4)}
    assert len(other_seeds) > 1
    # a budget above the split keeps all of it
    everything = prepare.prepare_librispeech(data, tmp_path / "c",
                                             splits=["train-other-500"], max_hours=1.0)
    assert [r["ID"] for r in read_rows(everything["train-other-500"])] == every


def test_an_hours_subset_that_holds_nothing_is_an_error(tmp_path):
    data = write_corpus(tmp_path / "LibriSpeech", SUBSET_CORPUS)
    with pytest.raises(ValueError, match=r"train-other-500: max_hours=.* holds no "
                                         r"utterance .* the shortest is 0.5 s"):
        prepare.prepare_librispeech(data, tmp_path / "out", splits=["train-other-500"],
                                    max_hours=0.1 / 3600)
    with pytest.raises(ValueError, match="max_hours must be a positive number"):
        prepare.prepare_librispeech(data, tmp_path / "out", splits=["train-other-500"],
                                    max_hours=0)
