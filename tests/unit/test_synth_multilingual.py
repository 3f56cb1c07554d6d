"""The multilingual synthetic corpus: languages, per-language pools, splits, manifests.

The text-level checks need the Debian text packages (``tools/ensure_system_deps.sh``
installs them as root) but no audio; the build checks also need eSpeak NG.
"""

import csv
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from speechbrain_sparse import cli
from speechbrain_sparse.data import languages, sentences, voices
from speechbrain_sparse.data.synth import (
    LANGUAGE_ROLE,
    ML_PRESETS,
    SPLITS,
    assign_sentences,
    build_corpus,
    build_multilingual_corpus,
    language_pools,
    make_multilingual_options,
    plan_text_stats,
    text_stats,
)
from speechbrain_sparse.errors import MissingInputError, UserInputError

MAX_OOV_PERCENT = 2.0
PAPER_LANGUAGES = ("en", "fr", "it", "nl")


def installed(code):
    return Path(languages.get_language(code).path).exists()


needs_texts = pytest.mark.skipif(
    not all(installed(code) for code in PAPER_LANGUAGES),
    reason="needs fortunes, fortunes-it, manpages-fr and manpages-nl",
)
needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None, reason="needs the Debian package espeak-ng"
)
# A few utterances per split: a two-language corpus builds in about a second.
SMALL = {LANGUAGE_ROLE: {"train": [2, 4], "dev": [1, 2], "test": [1, 2]}}


def plan(preset, codes=None, seed=0):
    codes = codes or ML_PRESETS[preset]["languages"]
    lines = {code: languages.load_language_sentences(code) for code in codes}
    chosen = {code: languages.get_language(code).voice for code in codes}
    options = make_multilingual_options(lines, preset, seed, chosen)
    return options, lines, assign_sentences(options, lines)


def read_rows(path):
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return reader.fieldnames, list(reader)


# --- text only ------------------------------------------------------------------


def test_alphabets_keep_each_language_s_letters():
    french = languages.get_language("fr").alphabet
    raw = french.decode("« Ça ne marche pas », dit-il à l’élève.".encode())
    assert sentences.normalize_sentence(raw, alphabet=french) == (
        "ÇA NE MARCHE PAS DIT IL À L'ÉLÈVE"
    )
    german = languages.get_language("de").alphabet
    assert sentences.split_clauses("Die Straße ist naß, sagt er.", german) == [
        "DIE STRAßE IST NAß"
    ]
    polish = languages.get_language("pl").alphabet
    assert sentences.normalize_sentence("Idę z psem w góry.", alphabet=polish) == (
        "IDĘ Z PSEM W GÓRY"
    )
    # English is untouched: no accents, no one-letter words beyond A, I, O
    assert sentences.normalize_sentence("À la carte, please.") is None


def test_roff_paragraphs_join_text_and_inline_fonts():
    lines = [
        '.\\" comment', ".SH DESCRIPTION", "Afficher le \\fINOM\\fP sans",
        "chemin\\ ; voir", ".BR ls (1)", "aussi.", ".TP", "\\fB\\-a\\fP",
    ]  # fmt: skip
    assert languages.roff_paragraphs(lines) == [
        "DESCRIPTION", "Afficher le NOM sans chemin ; voir ls(1) aussi.", "-a",
    ]  # fmt: skip


def test_language_files_skip_indexes_links_and_subfolders(tmp_path, monkeypatch):
    tree = tmp_path / "fortunes" / "de"
    (tree / "off").mkdir(parents=True)
    (tree / "sprueche").write_text("Wer nicht wagt, der nicht gewinnt je etwas.\n")
    (tree / "sprueche.dat").write_bytes(b"\x00\x02")
    (tree / "sprueche.u8").write_text("")
    (tree / "off" / "grob").write_text("Das darf niemand hier jemals lesen.\n")
    os.symlink("sprueche", tree / "link")
    german = languages.get_language("de")
    monkeypatch.setitem(
        languages.LANGUAGES, "de",
        languages.Language(**{**german.__dict__, "path": str(tree)}),
    )  # fmt: skip
    assert languages.text_files("de") == [tree / "sprueche"]
    assert list(languages._paragraphs("de")) == [
        "Wer nicht wagt, der nicht gewinnt je etwas."
    ]


def test_missing_text_package_is_named(tmp_path, monkeypatch):
    french = languages.get_language("fr")
    monkeypatch.setitem(
        languages.LANGUAGES, "fr",
        languages.Language(**{**french.__dict__, "path": str(tmp_path / "man/fr")}),
    )  # fmt: skip
    with pytest.raises(MissingInputError, match=r"apt-get install manpages-fr"):
        languages.text_files("fr")


def test_unknown_language_and_voices_are_named(monkeypatch):
    with pytest.raises(UserInputError, match=r"unknown language 'xx'; valid: en, de"):
        languages.get_language("xx")
    with pytest.raises(UserInputError, match=r"'en-us' is not a native French"):
        languages.check_voice("fr", "en-us")
    monkeypatch.setattr(voices, "list_voices", lambda: ["en-us"])
    with pytest.raises(MissingInputError, match=r"'nl' .*espeak-ng-data"):
        languages.check_voice("nl")


@pytest.mark.skipif(not installed("en"), reason="needs fortunes")
def test_english_pool_is_the_english_corpus_s():
    assert languages.load_language_sentences("en") == sentences.load_text("closed")
    assert languages.load_language_clauses("en") == sentences.load_clauses()


@pytest.mark.skipif(not installed("pt"), reason="needs fortunes-br")
def test_a_pool_too_small_is_refused_with_its_counts():
    lines = {"pt": languages.load_language_sentences("pt")}
    options = make_multilingual_options(lines, languages={"pt": "pt"})
    with pytest.raises(UserInputError, match=r"'pt': .* holds \d+ sentences, fewer"):
        language_pools(options, lines)


@needs_texts
@pytest.mark.parametrize("preset", sorted(ML_PRESETS))
def test_plans_are_sentence_disjoint_and_in_vocabulary_per_language(preset):
    options, lines, texts = plan(preset)
    stats = plan_text_stats(texts)
    assert list(stats) == list(options["languages"])
    sizes = options["sizes"][LANGUAGE_ROLE]
    for code in options["languages"]:
        assert len(lines[code]) >= 1000, code
        by_split = {split: set(texts[(code, split)]) for split in SPLITS}
        assert not by_split["train"] & by_split["dev"], code
        assert not by_split["train"] & by_split["test"], code
        assert not by_split["dev"] & by_split["test"], code
        for split in SPLITS:
            assert stats[code][split]["utterances"] == sizes[split][1]
            assert stats[code][split]["oov_percent"] <= MAX_OOV_PERCENT, (code, split)
        # nearly every test sentence is read once
        assert stats[code]["test"]["distinct_sentences"] >= 0.95 * sizes["test"][1]


@needs_texts
def test_plans_are_deterministic_and_depend_on_the_seed():
    assert plan("ml_micro")[2] == plan("ml_micro")[2]
    assert plan("ml_micro", seed=1)[2] != plan("ml_micro")[2]


@pytest.mark.skipif(
    not all(installed(c) for c in ("de", "es", "pl")), reason="needs fortunes-de/es/pl"
)
def test_other_languages_have_a_pool_where_the_text_exists():
    _, _, texts = plan("ml_micro", ["de", "es", "pl"])
    stats = plan_text_stats(texts)
    for code in ("de", "es", "pl"):
        assert stats[code]["test"]["oov_percent"] <= MAX_OOV_PERCENT


# --- built corpora --------------------------------------------------------------


@pytest.fixture(scope="module")
def ml_micro(tmp_path_factory):
    if not all(installed(code) for code in ("fr", "nl")) or not shutil.which(
        "espeak-ng"
    ):
        pytest.skip("needs espeak-ng, manpages-fr and manpages-nl")
    start = time.perf_counter()
    root = build_multilingual_corpus(tmp_path_factory.mktemp("ml") / "micro")
    assert time.perf_counter() - start <= 60, "ml_micro must build within 60 s"
    return root


def test_ml_micro_manifests_have_a_language_column_and_disjoint_splits(ml_micro):
    corpus = json.loads((ml_micro / "corpus.json").read_text())
    assert corpus["options"]["languages"] == {"fr": "fr-fr", "nl": "nl"}
    sizes = corpus["options"]["sizes"][LANGUAGE_ROLE]
    for code, voice in corpus["options"]["languages"].items():
        rows, speakers, texts = {}, {}, {}
        for split in SPLITS:
            fields, rows[split] = read_rows(ml_micro / code / f"{split}.csv")
            assert fields == ["ID", "duration", "wav", "spk_id", "wrd", "dialect",
                              "language"]  # fmt: skip
            assert len(rows[split]) == sizes[split][1]
            assert {(r["language"], r["dialect"]) for r in rows[split]} == {
                (code, voice)
            }
            assert all(Path(r["wav"]).is_file() for r in rows[split])
            speakers[split] = {r["spk_id"] for r in rows[split]}
            texts[split] = [r["wrd"] for r in rows[split]]
        for first, second in (("train", "dev"), ("train", "test"), ("dev", "test")):
            assert not speakers[first] & speakers[second], (code, first, second)
            assert not set(texts[first]) & set(texts[second]), (code, first, second)
        for split in ("dev", "test"):
            measured = text_stats(texts[split], texts["train"])
            assert measured["oov_percent"] <= MAX_OOV_PERCENT, (code, split)
            recorded = corpus["stats"][code][split]
            assert {k: recorded[k] for k in measured} == measured
    assert corpus["sentences"]["fr"]["package"] == "manpages-fr"
    table = (ml_micro / "stats.md").read_text().splitlines()
    assert table[0].startswith("| language | split |")
    assert [line.split(" | ")[:2] for line in table[2:]] == [
        [f"| {code}", split] for code in ("fr", "nl") for split in SPLITS
    ]


def test_a_dialect_corpus_folder_is_refused_naming_the_options(ml_micro, tmp_path):
    with pytest.raises(UserInputError, match=r"source=None there, 'en-us' asked"):
        build_corpus(ml_micro)
    english = build_corpus(
        tmp_path / "english", num_workers=1, sizes={
            role: {"train": [1, 1], "dev": [1, 1], "test": [1, 1]}
            for role in ("source", "target")
        },
    )  # fmt: skip
    with pytest.raises(UserInputError, match=r"sentences_sha256 differs for fr, nl"):
        build_multilingual_corpus(english)


def test_cli_reuses_ml_micro_and_prints_the_language_table(ml_micro, capsys):
    status = cli.main(["synth", "--preset", "ml_micro", "--out", str(ml_micro)])
    assert status == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("| language |") and lines[-1] == str(ml_micro)


def test_cli_names_unknown_languages_and_misplaced_options(tmp_path, capsys):
    out = str(tmp_path / "c")
    assert cli.main(["synth", "--preset", "ml_micro", "--languages", "xx",
                     "--out", out]) == 2  # fmt: skip
    assert "unknown language 'xx'" in capsys.readouterr().err
    assert cli.main(["synth", "--languages", "fr", "--out", out]) == 2
    assert "--languages needs a multilingual preset" in capsys.readouterr().err
    assert not Path(out).exists()


@needs_espeak
@pytest.mark.skipif(not installed("fr") or not installed("en"), reason="needs texts")
def test_same_options_give_identical_files_whatever_the_workers(tmp_path):
    def build(name, workers):
        root = build_multilingual_corpus(
            tmp_path / name, languages=["en", "fr:fr-be"], num_workers=workers,
            sizes=SMALL,
        )  # fmt: skip
        return {
            path.relative_to(root): path.read_bytes().replace(bytes(root), b"")
            for path in sorted(root.rglob("*")) if path.is_file()
        }  # fmt: skip

    first, second = build("one", 1), build("two", 2)
    assert first == second
    assert Path("fr/train.csv") in first and Path("en/test/text") in first
    options = json.loads(first[Path("corpus.json")])["options"]
    assert options["languages"] == {"en": "en-us", "fr": "fr-be"}
    with pytest.raises(UserInputError, match=r"seed=0 there, 3 asked"):
        build_multilingual_corpus(
            tmp_path / "one", seed=3, languages=["en", "fr:fr-be"], sizes=SMALL
        )
