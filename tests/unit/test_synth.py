"""The synthetic corpus generator: determinism, disjoint splits, manifests, recovery."""

import csv
import json
import re
import shutil

import pytest
import soundfile

from speechbrain_sparse import cli
from speechbrain_sparse.data import sentences, synth, voices
from speechbrain_sparse.data.synth import SPLITS, build_corpus, resolve_sizes

pytestmark = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="needs the Debian package espeak-ng"
)

TARGETS = ("en-gb-scotland", "en-029")
# A few utterances per split: one corpus builds in about a second.
SIZES = {
    "source": {"train": [2, 6], "dev": [1, 2], "test": [1, 2]},
    "target": {"train": [2, 4], "dev": [1, 2], "test": [1, 2]},
}
DIALECTS = ("en-us", *TARGETS)


def build(root, **overrides):
    """Builds the test-sized corpus into ``root``."""
    options = dict(seed=7, targets=TARGETS, num_workers=1, sizes=SIZES)
    options.update(overrides)
    return build_corpus(root, **options)


def read_manifest(path):
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


def corpus_files(root):
    return {
        path.relative_to(root): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build(tmp_path_factory.mktemp("corpus") / "root")


def test_same_seed_gives_identical_corpus_whatever_the_workers(corpus, tmp_path):
    again = build(tmp_path / "again", num_workers=2)
    first, second = corpus_files(corpus), corpus_files(again)
    assert sorted(first) == sorted(second)
    for name, content in first.items():
        if name.suffix == ".csv":  # the wav column holds absolute paths
            content = content.replace(bytes(corpus), bytes(again))
        assert content == second[name], name


def test_other_seed_gives_other_audio(corpus, tmp_path):
    other = build(tmp_path / "other", seed=8)
    wav = next(corpus.rglob("*.wav")).relative_to(corpus)
    assert (corpus / wav).read_bytes() != (other / wav).read_bytes()


def test_splits_are_disjoint_by_speaker_and_sentence(corpus):
    sentences_by_split = {split: set() for split in SPLITS}
    all_ids = []
    for dialect in DIALECTS:
        speakers = {}
        for split in SPLITS:
            _, rows = read_manifest(corpus / dialect / f"{split}.csv")
            assert rows
            speakers[split] = {row["spk_id"] for row in rows}
            sentences_by_split[split] |= {row["wrd"] for row in rows}
            for row in rows:
                assert row["spk_id"].startswith(f"{dialect}_s")
                assert row["ID"].startswith(row["spk_id"] + "_")
            all_ids += [row["ID"] for row in rows]
        assert not speakers["train"] & speakers["dev"]
        assert not speakers["train"] & speakers["test"]
        assert not speakers["dev"] & speakers["test"]
    assert len(all_ids) == len(set(all_ids))
    assert not sentences_by_split["train"] & sentences_by_split["dev"]
    assert not sentences_by_split["train"] & sentences_by_split["test"]
    assert not sentences_by_split["dev"] & sentences_by_split["test"]


def test_manifests_point_at_valid_16k_mono_int16_audio(corpus):
    sizes = resolve_sizes("micro", SIZES)
    for dialect in DIALECTS:
        role = "source" if dialect == "en-us" else "target"
        for split in SPLITS:
            fields, rows = read_manifest(corpus / dialect / f"{split}.csv")
            assert fields == ["ID", "duration", "wav", "spk_id", "wrd", "dialect"]
            assert len(rows) == sizes[role][split][1]
            text = (corpus / dialect / split / "text").read_text().splitlines()
            assert text == [f"{row['ID']} {row['wrd']}" for row in rows]
            for row in rows:
                info = soundfile.info(row["wav"])
                assert row["wav"].startswith("/")
                assert (info.samplerate, info.channels) == (16000, 1)
                assert info.subtype == "PCM_16"
                assert abs(float(row["duration"]) - info.duration) < 1e-3
                assert row["dialect"] == dialect
                assert re.fullmatch(r"[A-Z']+( [A-Z']+)*", row["wrd"])
    stats = json.loads((corpus / "corpus.json").read_text())["stats"]
    assert stats["en-us"]["train"]["utterances"] == 6


def test_unknown_voice_is_a_value_error_listing_valid_ones(tmp_path):
    with pytest.raises(ValueError, match="en-us"):
        build(tmp_path / "bad", targets=("en-nowhere",))
    assert not (tmp_path / "bad").exists()


def test_cli_unknown_voice_exits_2_with_message(tmp_path, capsys):
    status = cli.main(["synth", "--out", str(tmp_path / "c"), "--targets", "xx-yy"])
    assert status == 2
    error = capsys.readouterr().err
    assert "unknown eSpeak NG voice 'xx-yy'" in error and "en-gb-scotland" in error


def test_second_call_reuses_without_rewriting(corpus):
    before = {p: p.stat().st_mtime_ns for p in corpus.rglob("*")}
    assert build(corpus) == corpus
    assert {p: p.stat().st_mtime_ns for p in corpus.rglob("*")} == before


def test_other_options_in_same_folder_are_refused(corpus):
    with pytest.raises(ValueError, match="seed=7 there, 9 asked"):
        build(corpus, seed=9)


def test_folder_built_from_another_sentence_list_is_refused(corpus, monkeypatch):
    recorded = json.loads((corpus / "corpus.json").read_text())["options"]
    assert recorded["text_domain"] == "closed"
    assert recorded["sentences_sha256"] == sentences.sentences_sha256(
        sentences.load_text("closed")
    )
    changed = sentences.load_text("closed")[1:]  # e.g. another fortunes release
    monkeypatch.setattr(synth, "load_text", lambda domain: changed)
    message = r"sentences_sha256=\w{12}\.\.\. there, \w{12}\.\.\. asked: built from"
    with pytest.raises(ValueError, match=message):
        build(corpus)


def test_open_text_is_an_option_recorded_with_its_checksum(corpus, tmp_path):
    with pytest.raises(ValueError, match="text_domain='closed' there, 'open' asked"):
        build(corpus, text_domain="open")
    root = build(tmp_path / "open", text_domain="open")
    options = json.loads((root / "corpus.json").read_text())["options"]
    assert options["text_domain"] == "open"
    assert options["sentences_sha256"] == sentences.sentences_sha256(
        sentences.load_sentences()
    )


def test_foreign_non_empty_folder_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        build(tmp_path)


def test_interrupted_build_resumes_consistently(corpus, tmp_path):
    root = build(tmp_path / "resume")
    wav = next((root / "en-029" / "dev").rglob("*.wav"))
    original = wav.read_bytes()
    expected = corpus_files(root)
    # Simulate a crash: no corpus.json, a lost wav and CSV, a half-written temp file.
    (root / "corpus.json").unlink()
    (root / "en-029" / "dev.csv").unlink()
    wav.unlink()
    stale = wav.with_name(f".{wav.name}.tmp12345")
    stale.write_bytes(b"RIFF")
    build(root)
    assert wav.read_bytes() == original
    assert not stale.exists()
    assert corpus_files(root) == expected


def test_sentences_are_many_clean_and_distinct():
    lines = sentences.load_sentences()
    assert len(lines) >= 5000
    assert len(set(lines)) == len(lines)
    for line in lines[:: max(1, len(lines) // 500)]:
        assert re.fullmatch(r"[A-Z']+( [A-Z']+)*", line)
        assert sentences.MIN_WORDS <= len(line.split()) <= sentences.MAX_WORDS


def test_missing_fortunes_names_the_package(tmp_path):
    with pytest.raises(FileNotFoundError, match="install the Debian package fortunes"):
        sentences.fortune_files(tmp_path / "nowhere")


def test_normalize_rejects_unclean_text():
    assert sentences.normalize_sentence("It's 5 o'clock, Bob.") is None
    assert sentences.normalize_sentence("Email me at bob@example.org now") is None
    assert sentences.normalize_sentence("-- Mark Twain") is None
    assert sentences.normalize_sentence("Hello there, General Kenobi!") == (
        "HELLO THERE GENERAL KENOBI"
    )


def test_voice_lists_hold_the_default_dialects_and_variants():
    assert set(DIALECTS) <= set(voices.list_voices())
    assert {"m1", "f2", "klatt2"} <= set(voices.list_variants())
    with pytest.raises(ValueError, match="en-029"):
        voices.validate_voice("en-mars")


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="unknown preset"):
        resolve_sizes("huge")
    with pytest.raises(ValueError, match="speakers, utterances"):
        resolve_sizes("micro", {"source": {"train": [1, 2]}})
