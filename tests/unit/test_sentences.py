"""The English text of the synthetic corpus: which fortune files, the closed pool."""

import os
import re

import pytest

from speechbrain_sparse.data import sentences

HAS_FORTUNES = (sentences.FORTUNES_DIR / "fortunes").is_file()
needs_fortunes = pytest.mark.skipif(
    not HAS_FORTUNES, reason="needs the Debian packages fortunes and fortunes-min"
)

ENGLISH = {
    "fortunes": "Money is the root of all evil, and man needs roots.\n%\n"
    "A closed mouth gathers no feet.\n",
    "computers": "The computer is always right, except when it is wrong.\n%\n"
    "  -- Someone Famous\n%\nNever trust a program you did not write yourself.\n",
}
# What fortunes-de / -it / -br / -off put next to them: prose that normalises cleanly
# (plain ASCII), so reading it would change the pool.
FOREIGN = {
    "de/sprueche": "Wer nicht wagt, der nicht gewinnt und bleibt daheim.\n",
    "it/adams": "La vita non ha senso ma si vive lo stesso ogni giorno.\n",
    "brasil": "Quem espera sempre alcanca o que quer da vida.\n",
    "off/fortunes": "This offensive line must never be read by anyone.\n",
}


def write_tree(root, files):
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="latin-1")


@pytest.fixture
def trees(tmp_path):
    """An English-only fortunes folder and one with the other packages installed."""
    english, mixed = tmp_path / "english", tmp_path / "mixed"
    write_tree(english, ENGLISH)
    write_tree(mixed, {**ENGLISH, **FOREIGN})
    for name in ENGLISH:
        (mixed / f"{name}.dat").write_bytes(b"\x00\x02")
        os.symlink(name, mixed / f"{name}.u8")
    os.symlink("it/adams", mixed / "adams")
    os.symlink("it/adams", mixed / "work")  # an English file name, but a symlink
    return english, mixed


def test_only_the_english_files_are_read(trees):
    english, mixed = trees
    assert [p.name for p in sentences.fortune_files(mixed)] == ["computers", "fortunes"]
    pool = sentences.load_sentences(str(mixed))
    assert pool == sentences.load_sentences(str(english))
    assert sentences.load_clauses(str(mixed)) == sentences.load_clauses(str(english))
    assert "A CLOSED MOUTH GATHERS NO FEET" in pool
    assert not [line for line in pool if re.search("WAGT|VITA|ESPERA|OFFENSIVE", line)]


def test_english_files_are_the_debian_packages_minus_exclusions():
    assert {"fortunes", "literature", "riddles", "computers", "zippy"} <= set(
        sentences.ENGLISH_FILES
    )
    assert not sentences.EXCLUDED_NAMES & set(sentences.ENGLISH_FILES)
    assert "off" in sentences.EXCLUDED_NAMES


def test_folder_without_english_files_names_the_package(tmp_path):
    write_tree(tmp_path, FOREIGN)
    with pytest.raises(FileNotFoundError, match="install the Debian package fortunes"):
        sentences.fortune_files(tmp_path)


def test_clauses_are_cut_at_punctuation_and_keep_the_length_limits():
    clauses = sentences.split_clauses("If you can't be good, be careful; or be quick.")
    assert clauses == ["IF YOU CAN'T BE GOOD", "OR BE QUICK"]  # not "BE CAREFUL"
    assert sentences.split_clauses("It costs 5 dollars, or so they say.") == []


def test_closed_vocabulary_prunes_until_every_word_is_frequent_enough():
    lines = ["A B C", "A B D", "A C D", "B C D", "A B E", "E F G"]
    vocabulary, kept = sentences.closed_vocabulary(lines, size=5, min_sentences=3)
    assert sorted(vocabulary) == ["A", "B", "C", "D"]
    assert kept == ("A B C", "A B D", "A C D", "B C D")


def test_coverage_order_covers_every_word_in_a_short_prefix():
    lines = ["THE CAT", "THE DOG SAT", "A CAT SAT ON THE MAT", "A DOG", "THE END"]
    order = sentences.coverage_order(lines)
    covered = {word for index in order for word in lines[index].split()}
    assert covered == {word for line in lines for word in line.split()}
    assert order[0] == 2 and len(order) < len(lines)


def test_checksum_changes_with_the_list():
    base = ["ONE TWO THREE", "FOUR FIVE SIX"]
    assert sentences.sentences_sha256(base) == sentences.sentences_sha256(tuple(base))
    assert sentences.sentences_sha256(base) != sentences.sentences_sha256(base[::-1])
    assert sentences.sentences_sha256(base) != sentences.sentences_sha256(base[:1])


def test_unknown_text_domain_is_refused():
    with pytest.raises(ValueError, match="closed, open"):
        sentences.load_text("medium")


@needs_fortunes
def test_closed_pool_is_large_and_within_its_vocabulary():
    clauses = sentences.load_clauses()
    vocabulary, pool = sentences.closed_vocabulary(clauses)
    assert pool == sentences.load_text("closed")
    assert len(pool) >= 4000
    assert len(set(pool)) == len(pool) and set(pool) <= set(clauses)
    counts = {word: 0 for word in vocabulary}
    for line in pool:
        words = line.split()
        assert set(words) <= vocabulary
        assert sentences.MIN_WORDS <= len(words) <= sentences.MAX_WORDS
        for word in set(words):
            counts[word] += 1
    assert min(counts.values()) >= sentences.MIN_SENTENCES_PER_WORD
    assert len(vocabulary) <= sentences.CLOSED_VOCABULARY_SIZE


@needs_fortunes
def test_open_pool_is_the_english_sentences():
    pool = sentences.load_text("open")
    assert pool == sentences.load_sentences() and len(pool) >= 5000
    assert len({word for line in pool for word in line.split()}) > 10_000
