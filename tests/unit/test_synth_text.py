"""The synthetic corpus's text: closed vocabulary, OOV rates, disjoint sentence pools.

The plan-level checks need only the Debian fortunes (no audio); the manifest check
reads the ``micro`` corpus that the session builds once (needs eSpeak NG).
"""

import csv
import json
import shutil

import pytest

from speechbrain_sparse import cli
from speechbrain_sparse.data import sentences
from speechbrain_sparse.data.synth import (
    SPLITS,
    assign_sentences,
    make_options,
    plan_text_stats,
    sentence_pools,
    text_stats,
)

pytestmark = pytest.mark.skipif(
    not (sentences.FORTUNES_DIR / "fortunes").is_file(),
    reason="needs the Debian packages fortunes and fortunes-min",
)
MAX_OOV_PERCENT = 2.0


def plan_texts(preset, text_domain="closed", seed=0):
    lines = sentences.load_text(text_domain)
    options = make_options(lines, preset=preset, seed=seed, text_domain=text_domain)
    return options, lines, assign_sentences(options, lines)


@pytest.mark.parametrize("preset", ["micro", "tiny"])
def test_closed_text_oov_is_at_most_two_percent_for_every_dialect(preset):
    options, _, texts = plan_texts(preset)
    stats = plan_text_stats(texts)
    assert set(stats) == {options["source"], *options["targets"]}
    for dialect, splits in stats.items():
        for split in ("dev", "test"):
            assert splits[split]["oov_percent"] <= MAX_OOV_PERCENT, (dialect, split)
        sizes = options["sizes"]["source" if dialect == "en-us" else "target"]
        assert splits["test"]["utterances"] == sizes["test"][1]
        assert splits["test"]["distinct_sentences"] == sizes["test"][1]


def test_open_text_is_what_the_closed_domain_fixes():
    _, _, texts = plan_texts("tiny", text_domain="open")
    stats = plan_text_stats(texts)
    assert stats["en-029"]["test"]["oov_percent"] > 10


@pytest.mark.parametrize("preset", ["micro", "tiny", "small"])
def test_splits_use_disjoint_sentence_pools(preset):
    options, _, texts = plan_texts(preset)
    by_split = {split: set() for split in SPLITS}
    for (_, split), group in texts.items():
        by_split[split] |= set(group)
    assert not by_split["train"] & by_split["dev"]
    assert not by_split["train"] & by_split["test"]
    assert not by_split["dev"] & by_split["test"]


def test_tiny_targets_train_on_the_whole_cover_and_keep_the_whole_test_pool():
    options, lines, texts = plan_texts("tiny")
    pools, head = sentence_pools(options, lines)
    assert len(lines) >= 4000
    assert len(head) <= options["sizes"]["target"]["train"][1]
    cover = [pools["train"][i] for i in head]
    for target in options["targets"]:
        assert texts[(target, "train")][: len(head)] == cover
    vocabulary = {w for line in lines for w in line.split()}
    trained = {w for line in texts[("en-029", "train")] for w in line.split()}
    assert len(trained) >= 0.98 * len(vocabulary)
    assert len(pools["test"]) >= 0.98 * int(0.1 * len(lines))


def test_targets_differ_beyond_the_shared_cover():
    options, lines, texts = plan_texts("tiny")
    first, second = (set(texts[(t, "train")]) for t in options["targets"])
    assert first != second


def test_assignment_is_deterministic_and_depends_on_the_seed():
    assert plan_texts("micro")[2] == plan_texts("micro")[2]
    assert plan_texts("tiny", seed=1)[2] != plan_texts("tiny")[2]


def test_text_stats_counts_tokens_not_types():
    stats = text_stats(["A B B", "A C"], train_texts=["A C"])
    assert stats == {
        "utterances": 2,
        "distinct_sentences": 2,
        "vocabulary": 3,
        "oov_percent": 40.0,
    }


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_micro_corpus_manifests_have_low_oov_and_report_it(micro_corpus):
    corpus = json.loads((micro_corpus / "corpus.json").read_text())
    assert corpus["options"]["text_domain"] == "closed"
    assert corpus["options"]["sentences_sha256"] == sentences.sentences_sha256(
        sentences.load_text("closed")
    )
    for dialect in (corpus["options"]["source"], *corpus["options"]["targets"]):
        rows = {}
        for split in SPLITS:
            with open(micro_corpus / dialect / f"{split}.csv", newline="") as handle:
                rows[split] = [row["wrd"] for row in csv.DictReader(handle)]
        for split in SPLITS:
            measured = text_stats(rows[split], rows["train"])
            assert measured["oov_percent"] <= MAX_OOV_PERCENT, (dialect, split)
            recorded = corpus["stats"][dialect][split]
            assert {k: recorded[k] for k in measured} == measured
    table = (micro_corpus / "stats.md").read_text().splitlines()
    assert table[0].startswith("| dialect | split |") and "oov_percent" in table[0]
    assert len(table) == 2 + 3 * len(SPLITS)


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_cli_reuses_and_prints_the_stats_table_then_the_root(micro_corpus, capsys):
    assert cli.main(["synth", "--out", str(micro_corpus)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == str(micro_corpus)
    assert lines[0].startswith("| dialect | split |")
    assert [line.split(" | ")[:2] for line in lines[2:5]] == [
        ["| en-us", split] for split in SPLITS
    ]


def test_folder_of_a_version_1_build_is_refused_naming_the_text_keys(tmp_path):
    from speechbrain_sparse.data.synth import BUILD_OPTIONS_FILE, _claim_folder
    from speechbrain_sparse.fileio import write_json_atomic

    options = make_options(sentences.load_text("closed"))
    old = {k: v for k, v in options.items() if k not in ("text_domain",
                                                          "sentences_sha256")}
    write_json_atomic(tmp_path / BUILD_OPTIONS_FILE, {**old, "generator_version": 1})
    with pytest.raises(ValueError) as error:
        _claim_folder(tmp_path, options)
    message = str(error.value)
    assert "generator_version=1 there, 2 asked" in message
    assert "text_domain=None there, 'closed' asked" in message
    assert "sentences_sha256=none there" in message
