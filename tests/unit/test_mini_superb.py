"""The mini-SUPERB manifests: labels, balanced dialects, speakers split 80/10/10."""

import pytest

from speechbrain_sparse.data.manifests import MANIFEST_FIELDS
from speechbrain_sparse.data.mini_superb import SPLITS, build_mini_superb, read_classes
from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.fileio import read_manifest, write_csv_atomic

SIZES = {"src": {"train": 40, "dev": 6, "test": 6},
         "t1": {"train": 12, "dev": 4, "test": 4},
         "t2": {"train": 15, "dev": 4, "test": 4}}


@pytest.fixture
def corpus(tmp_path):
    for dialect, sizes in SIZES.items():
        for split, count in sizes.items():
            rows = [{"ID": f"{dialect}-{split}-{i}", "duration": 1.0,
                     "wav": f"{i}.wav", "spk_id": f"{dialect}_{split}_s{i % 4}",
                     "wrd": "A B", "dialect": dialect} for i in range(count)]
            write_csv_atomic(tmp_path / dialect / f"{split}.csv", rows,
                             MANIFEST_FIELDS)
    return tmp_path


def rows(path):
    return read_manifest(path, ("ID", "label"))


def test_three_tasks_with_labels(corpus, tmp_path):
    tasks = build_mini_superb(corpus, tmp_path / "bench", "src", ["t1", "t2"])
    assert [len(rows(tasks["asr"][s])) for s in SPLITS] == [40, 6, 6]
    dialect = {s: rows(tasks["dialect_id"][s]) for s in SPLITS}
    assert read_classes(tasks["dialect_id"]["train"]) == ["src", "t1", "t2"]
    for label in ("src", "t1", "t2"):  # train cut to the smallest class (12)
        assert sum(row["label"] == label for row in dialect["train"]) == 12
    assert len(dialect["dev"]) == 14 and all(
        row["label"] == row["dialect"] for split in dialect.values() for row in split)


def test_speaker_id_splits_each_train_speaker_80_10_10(corpus, tmp_path):
    tasks = build_mini_superb(corpus, tmp_path / "bench", "src", ["t1"], seed=3)
    splits = {s: rows(tasks["speaker_id"][s]) for s in SPLITS}
    speakers = [f"src_train_s{i}" for i in range(4)]
    assert read_classes(tasks["speaker_id"]["train"]) == speakers
    for speaker in speakers:  # 10 utterances each: 8 / 1 / 1
        counts = [sum(r["label"] == speaker for r in splits[s]) for s in SPLITS]
        assert counts == [8, 1, 1]
    ids = [row["ID"] for split in splits.values() for row in split]
    assert len(ids) == len(set(ids)) == 40
    again = build_mini_superb(corpus, tmp_path / "again", "src", ["t1"], seed=3)
    assert rows(again["speaker_id"]["dev"]) == splits["dev"]
    other = build_mini_superb(corpus, tmp_path / "other", "src", ["t1"], seed=4)
    assert rows(other["speaker_id"]["dev"]) != splits["dev"]


def test_unknown_dialect_and_no_target_are_named_errors(corpus, tmp_path):
    with pytest.raises(UserInputError, match="en-xx/train.csv: no such manifest"):
        build_mini_superb(corpus, tmp_path / "b", "src", ["en-xx"])
    with pytest.raises(UserInputError, match="distinct source and targets"):
        build_mini_superb(corpus, tmp_path / "b", "src", [])
    assert not (tmp_path / "b").exists()
