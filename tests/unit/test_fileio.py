"""The ground-floor file helpers: atomic writes, manifest reading, records."""

import os
import stat

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


@pytest.mark.parametrize("umask, file_mode, folder_mode",
                         [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_files_and_folders_get_the_users_umask(tmp_path, umask, file_mode,
                                               folder_mode):
    from speechbrain_sparse.masks import ParameterMask

    mask = ParameterMask({"w": torch.tensor([True, False])})
    previous = os.umask(umask)
    try:
        mask.save(tmp_path / "mask.pt")
        with atomic_folder(tmp_path / "model") as staging:
            write_text_atomic(staging / "info.txt", "x")
    finally:
        os.umask(previous)

    def mode(path):
        return stat.S_IMODE(os.stat(path).st_mode)

    assert mode(tmp_path / "mask.pt") == file_mode
    assert mode(tmp_path / "model") == folder_mode
    assert mode(tmp_path / "model" / "info.txt") == file_mode


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
