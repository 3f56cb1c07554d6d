"""XBMU-AMDO31 preparation on fixture trees in the corpus's real layout."""

import csv
import io
import logging
import tarfile

import pytest

from speechbrain_sparse.data.manifests import MANIFEST_FIELDS
from tests.conftest import load_recipe_module
from tests.tibetan_fixtures import TIBETAN_RECIPE, build_xbmu_tree, write_wav

prepare_module = load_recipe_module(TIBETAN_RECIPE, "xbmu_amdo31_prepare")
prepare_xbmu_amdo31 = prepare_module.prepare_xbmu_amdo31


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


def assert_manifests_match(paths, expected, corpus):
    assert sorted(paths) == sorted(f"amdo_{split}" for split in expected)
    for split, rows in expected.items():
        fields, written = read_rows(paths[f"amdo_{split}"])
        assert fields == list(MANIFEST_FIELDS)
        assert [row["ID"] for row in written] == [row["ID"] for row in rows]
        for row, want in zip(written, rows):
            assert row["spk_id"] == want["spk_id"]
            assert row["wrd"] == want["wrd"]
            assert row["dialect"] == "amdo"
            assert float(row["duration"]) == pytest.approx(want["duration"], abs=1e-4)
            wav = corpus / "data" / "wav" / split / want["spk_id"] / f"{want['ID']}.wav"
            assert row["wav"] == str(wav.resolve())


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "xbmu_amdo31"
    return root, build_xbmu_tree(root)


def transcript_of(root):
    return root / "data" / "transcript" / "transcript_clean.txt"


def test_manifests_from_bare_transcript_ids(corpus, tmp_path):
    root, expected = corpus
    paths = prepare_xbmu_amdo31(root, tmp_path / "csv")
    assert_manifests_match(paths, expected, root)
    _, train = read_rows(paths["amdo_train"])
    # NFC: U+0F43 became U+0F42 U+0FB7, U+0F73 became U+0F71 U+0F72; spaces collapsed.
    assert train[1]["wrd"] == "\u0f42\u0fb7\u0f0b\u0f40\u0f71\u0f72 ཡོད། འདུག"
    assert (tmp_path / "csv" / "xbmu_amdo31_skipped.tsv").read_text() == (
        "reason\tsplit\titem\n"
    )


def test_manifests_from_full_transcript_ids(tmp_path):
    root = tmp_path / "xbmu_amdo31"
    expected = build_xbmu_tree(root, id_style="full")
    assert_manifests_match(prepare_xbmu_amdo31(root, tmp_path / "csv"), expected, root)


def test_data_folder_may_be_the_data_folder_itself(corpus, tmp_path):
    root, expected = corpus
    paths = prepare_xbmu_amdo31(root / "data", tmp_path / "csv", splits=("dev",))
    assert_manifests_match(paths, {"dev": expected["dev"]}, root)


def test_tarballs_are_unpacked_in_place(tmp_path):
    root = tmp_path / "xbmu_amdo31"
    expected = build_xbmu_tree(root, tarball_splits=("dev", "test"))
    wav_folder = root / "data" / "wav"
    assert not (wav_folder / "dev").exists()
    paths = prepare_xbmu_amdo31(root, tmp_path / "csv")
    assert_manifests_match(paths, expected, root)
    assert sorted(p.name for p in wav_folder.iterdir()) == [
        "dev",
        "dev.tar.gz",
        "test",
        "test.tar.gz",
        "train",
    ]
    # Unpacked once: a later preparation reads the folders, not the tarballs.
    (wav_folder / "dev.tar.gz").unlink()
    prepare_xbmu_amdo31(root, tmp_path / "csv2", splits=("dev",))


def write_tarball(path, members):
    """A tar.gz with ``(TarInfo, bytes)`` members."""
    with tarfile.open(path, "w:gz") as archive:
        for info, data in members:
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def test_unsafe_tarball_is_refused(corpus, tmp_path):
    root, _ = corpus
    wav_folder = root / "data" / "wav"
    write_tarball(wav_folder / "eval.tar.gz", [(tarfile.TarInfo("../evil.wav"), b"x")])
    with pytest.raises(ValueError, match=r"eval.tar.gz: refusing '../evil.wav'"):
        prepare_xbmu_amdo31(root, tmp_path / "csv", splits=("eval",))
    link = tarfile.TarInfo("eval/spk/link.wav")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    write_tarball(wav_folder / "eval.tar.gz", [(link, b"")])
    with pytest.raises(ValueError, match="not a plain file"):
        prepare_xbmu_amdo31(root, tmp_path / "csv", splits=("eval",))
    assert not (root / "data" / "evil.wav").exists()
    assert sorted(p.name for p in wav_folder.iterdir()) == [
        "dev",
        "eval.tar.gz",
        "test",
        "train",
    ]


def test_damaged_tarball_and_wrong_top_folder(corpus, tmp_path):
    root, _ = corpus
    wav_folder = root / "data" / "wav"
    (wav_folder / "eval.tar.gz").write_bytes(b"not a tarball at all")
    with pytest.raises(ValueError, match="eval.tar.gz: cannot unpack"):
        prepare_xbmu_amdo31(root, tmp_path / "csv", splits=("eval",))
    write_tarball(wav_folder / "eval.tar.gz", [(tarfile.TarInfo("spk/a.wav"), b"x")])
    with pytest.raises(
        ValueError, match=r"no top-level folder eval/ \(found \['spk'\]"
    ):
        prepare_xbmu_amdo31(root, tmp_path / "csv", splits=("eval",))
    assert not (wav_folder / "eval").exists()


def test_skips_when_prepared_with_same_options(corpus, tmp_path):
    root, _ = corpus
    paths = prepare_xbmu_amdo31(root, tmp_path / "csv")
    mtimes = {key: path.stat().st_mtime_ns for key, path in paths.items()}
    again = prepare_xbmu_amdo31(root, tmp_path / "csv")
    assert {key: path.stat().st_mtime_ns for key, path in again.items()} == mtimes
    renamed = prepare_xbmu_amdo31(root, tmp_path / "csv", dialect="amdo-xbmu")
    assert sorted(renamed) == ["amdo-xbmu_dev", "amdo-xbmu_test", "amdo-xbmu_train"]
    _, rows = read_rows(renamed["amdo-xbmu_dev"])
    assert {row["dialect"] for row in rows} == {"amdo-xbmu"}
    # The original options again: prepared again (the options file changed).
    prepare_xbmu_amdo31(root, tmp_path / "csv")
    assert paths["amdo_dev"].stat().st_mtime_ns != mtimes["amdo_dev"]


def test_skip_prep_only_returns_paths(tmp_path):
    paths = prepare_xbmu_amdo31(tmp_path / "nowhere", tmp_path / "csv", skip_prep=True)
    assert paths == {
        f"amdo_{split}": tmp_path / "csv" / f"amdo_{split}.csv"
        for split in ("train", "dev", "test")
    }
    assert not (tmp_path / "csv").exists()


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("བཀྲ་ཤིས་ བདེ་ལེགས།\n", "no utterance id"),
        ("   ང་ བོད་པ་ ཡིན།\n", "no utterance id"),
        ("000099\n", "no transcript after id '000099'"),
        ("000001 ཐུགས་རྗེ་ ཆེ།\n", "duplicated id '000001'"),
    ],
)
def test_malformed_transcript_line_names_file_and_line(
    corpus, tmp_path, bad_line, message
):
    root, _ = corpus
    transcript = transcript_of(root)
    lines = transcript.read_text(encoding="utf-8").splitlines(keepends=True)
    lines.insert(2, bad_line)
    transcript.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(ValueError, match=rf"{transcript}:3: {message}"):
        prepare_xbmu_amdo31(root, tmp_path / "csv")


def test_non_utf8_transcript_names_file_and_line(corpus, tmp_path):
    root, _ = corpus
    transcript = transcript_of(root)
    lines = transcript.read_bytes().splitlines(keepends=True)
    lines[3] = b"000004 \xff\xfe broken\n"
    transcript.write_bytes(b"".join(lines))
    with pytest.raises(ValueError, match=rf"{transcript}:4: not UTF-8 text"):
        prepare_xbmu_amdo31(root, tmp_path / "csv")


def test_byte_order_mark_is_ignored(corpus, tmp_path):
    root, expected = corpus
    transcript = transcript_of(root)
    transcript.write_bytes(b"\xef\xbb\xbf" + transcript.read_bytes())
    assert_manifests_match(prepare_xbmu_amdo31(root, tmp_path / "csv"), expected, root)


def test_unmatched_items_are_skipped_counted_and_listed(corpus, tmp_path, caplog):
    root, expected = corpus
    wav_folder = root / "data" / "wav"
    orphan = wav_folder / "train" / "A01" / "A01-777777.wav"
    misplaced = wav_folder / "test" / "T01-888888.wav"
    write_wav(orphan, 0.3)
    write_wav(misplaced, 0.3)
    with open(transcript_of(root), "a", encoding="utf-8") as handle:
        handle.write("999999 ཁ་ལག་ ཞིམ་པོ་ འདུག\n")
    with caplog.at_level(logging.INFO):
        paths = prepare_xbmu_amdo31(root, tmp_path / "csv")
    assert_manifests_match(paths, expected, root)
    messages = [record.getMessage() for record in caplog.records]
    summary = [message for message in messages if "XBMU-AMDO31: wrote" in message]
    assert len(summary) == 1 and caplog.records[-1].levelname == "WARNING"
    assert "train 6, dev 3, test 3 utterances" in summary[0]
    for count_and_reason in (
        "1 audio without transcript",
        "1 audio outside <split>/<spk>/",
        "1 transcript without audio",
    ):
        assert count_and_reason in summary[0]
    listed = (tmp_path / "csv" / "xbmu_amdo31_skipped.tsv").read_text().splitlines()
    assert sorted(listed[1:]) == sorted(
        [
            f"audio without transcript\ttrain\t{orphan.resolve()}",
            f"audio outside <split>/<spk>/\ttest\t{misplaced.resolve()}",
            "transcript without audio\t-\t999999",
        ]
    )


def test_transcripts_of_other_splits_are_listed_not_errors(corpus, tmp_path):
    root, expected = corpus
    prepare_xbmu_amdo31(root, tmp_path / "csv", splits=("dev",))
    listed = (tmp_path / "csv" / "xbmu_amdo31_skipped.tsv").read_text().splitlines()
    assert len(listed) - 1 == len(expected["train"]) + len(expected["test"])


def test_id_convention_mismatch_is_an_error(corpus, tmp_path):
    root, _ = corpus
    transcript = transcript_of(root)
    lines = transcript.read_text(encoding="utf-8").splitlines(keepends=True)
    transcript.write_text("".join("utt" + line for line in lines), encoding="utf-8")
    with pytest.raises(ValueError, match=r"none of its 6 wav files has a transcript"):
        prepare_xbmu_amdo31(root, tmp_path / "csv")


def test_unreadable_wav_and_duplicated_name(corpus, tmp_path):
    root, _ = corpus
    broken = root / "data" / "wav" / "dev" / "D01" / "D01-000007.wav"
    broken.write_bytes(b"RIFF but not really a wav")
    with pytest.raises(ValueError, match=rf"{broken}: cannot read audio"):
        prepare_xbmu_amdo31(root, tmp_path / "csv", splits=("dev",))
    write_wav(broken, 0.4)
    twin = root / "data" / "wav" / "test" / "D01" / "D01-000007.wav"
    write_wav(twin, 0.4)
    with pytest.raises(ValueError, match=r"D01-000007.wav: utterance name also used"):
        prepare_xbmu_amdo31(root, tmp_path / "csv", splits=("dev", "test"))


def test_missing_corpus_split_and_transcript(corpus, tmp_path):
    root, _ = corpus
    with pytest.raises(FileNotFoundError, match="not an XBMU-AMDO31 folder"):
        prepare_xbmu_amdo31(tmp_path / "nowhere", tmp_path / "csv")
    with pytest.raises(FileNotFoundError, match=r"wav/eval \(and no .*eval.tar.gz\)"):
        prepare_xbmu_amdo31(root, tmp_path / "csv", splits=("eval",))
    transcript_of(root).unlink()
    with pytest.raises(FileNotFoundError, match="transcript_clean.txt"):
        prepare_xbmu_amdo31(root, tmp_path / "csv")
