"""The generic per-dialect layout with Tibetan transcripts (U-Tsang, Khampa)."""

import csv

import pytest

from speechbrain_sparse.data.generic_layout import prepare_generic_corpus
from speechbrain_sparse.metrics import normalize_tibetan
from tests.tibetan_fixtures import DECOMPOSABLE, build_generic_tree


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture
def layout(tmp_path):
    root = tmp_path / "dialects"
    return root, build_generic_tree(root)


def test_tibetan_manifests_are_nfc(layout, tmp_path):
    root, expected = layout
    paths = prepare_generic_corpus(root, tmp_path / "csv", normalize=normalize_tibetan)
    assert sorted(paths) == sorted(
        f"{dialect}_{split}"
        for dialect in ("khampa", "utsang")
        for split in ("train", "dev", "test")
    )
    for (dialect, split), rows in expected.items():
        written = read_rows(paths[f"{dialect}_{split}"])
        assert [(row["ID"], row["wrd"]) for row in written] == rows
        assert {row["dialect"] for row in written} == {dialect}
    first = read_rows(paths["utsang_train"])[0]["wrd"]
    assert first == normalize_tibetan(DECOMPOSABLE) and "\u0f43" not in first


def test_normalize_is_part_of_the_options(layout, tmp_path):
    root, _ = layout
    csv_folder = tmp_path / "csv"
    plain = prepare_generic_corpus(root, csv_folder, dialects=["utsang"])
    assert "\u0f43" in read_rows(plain["utsang_train"])[0]["wrd"]  # not NFC
    nfc = prepare_generic_corpus(
        root, csv_folder, dialects=["utsang"], normalize=normalize_tibetan
    )
    assert "\u0f43" not in read_rows(nfc["utsang_train"])[0]["wrd"]
    options = (csv_folder / "generic_prepare.json").read_text()
    assert "speechbrain_sparse.metrics.normalize_tibetan" in options


def test_non_utf8_text_names_file_and_line(layout, tmp_path):
    root, _ = layout
    text = root / "khampa" / "dev" / "text"
    lines = text.read_bytes().splitlines(keepends=True)
    lines[1] = lines[1][:-3] + b"\xe0\xbd\n"  # a UTF-8 sequence cut short
    text.write_bytes(b"".join(lines))
    with pytest.raises(ValueError, match=rf"{text}:2: not UTF-8 text"):
        prepare_generic_corpus(root, tmp_path / "csv", normalize=normalize_tibetan)


def test_line_without_id_names_file_and_line(layout, tmp_path):
    root, _ = layout
    text = root / "utsang" / "test" / "text"
    with open(text, "a", encoding="utf-8") as handle:
        handle.write("ཐུགས་རྗེ་ ཆེ།\n")
    with pytest.raises(ValueError, match=rf"{text}:4: no utterance id"):
        prepare_generic_corpus(root, tmp_path / "csv")
