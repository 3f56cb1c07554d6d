"""The ground-floor file helpers: atomic writes, manifest reading, records."""

import pytest
import torch

from speechbrain_sparse.fileio import (
    ManifestError,
    atomic_folder,
    load_record,
    pack_bits,
    read_manifest,
    save_record,
    unpack_bits,
    write_text_atomic,
)


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "notes.txt"
    write_text_atomic(path, "old")
    with pytest.raises(TypeError):  # write() takes str: fails mid-write
        write_text_atomic(path, 5)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def test_a_failed_folder_keeps_the_old_folder(tmp_path):
    with atomic_folder(tmp_path / "model") as staging:
        (staging / "a.txt").write_text("first")
    with pytest.raises(RuntimeError), atomic_folder(tmp_path / "model") as staging:
        (staging / "b.txt").write_text("half")
        raise RuntimeError("crash")
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    assert [p.name for p in (tmp_path / "model").iterdir()] == ["a.txt"]


def test_manifest_errors_name_file_row_and_column(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("ID,duration,wav\nu1,1.0,a.wav\nu2,long,b.wav\n")
    with pytest.raises(ManifestError, match=r"m.csv, row 2 \(ID 'u2'\): column "
                       "'duration' is not a number: 'long'"):
        read_manifest(path)
    with pytest.raises(ManifestError, match=r"missing column\(s\) wrd"):
        read_manifest(path, ("ID", "wrd"))
    with pytest.raises(ManifestError, match="gone.csv: manifest not found"):
        read_manifest(tmp_path / "gone.csv")


@pytest.mark.parametrize("count", [0, 1, 7, 8, 9, 100])
def test_bits_round_trip_and_wrong_lengths_are_refused(count):
    bits = torch.rand(count) > 0.5
    packed = pack_bits(bits)
    assert torch.equal(unpack_bits(packed, count), bits)
    with pytest.raises(ValueError, match="packed bytes"):
        unpack_bits(packed, count + 8)


def test_newer_records_and_parse_errors_name_the_file(tmp_path):
    path = tmp_path / "r.pt"
    save_record(path, "demo", 2, {"x": 1})
    with pytest.raises(ValueError, match=r"r.pt: format version 2 is newer .*\(1\)"):
        load_record(path, "demo", 1, dict, "demo file")
    with pytest.raises(ValueError, match="r.pt: corrupted demo file: 'y'"):
        load_record(path, "demo", 2, lambda record: record["y"], "demo file")
    with pytest.raises(FileNotFoundError, match="demo file not found: .*none.pt"):
        load_record(tmp_path / "none.pt", "demo", 2, dict, "demo file")
