"""The synthetic multi-dialect corpus: eSpeak NG speech, many speakers, noise, reverb.

A high-resource *source dialect* and low-resource *target dialects* of one language
(the paper's Tibetan Amdo vs. Khampa / U-Tsang setting), spoken by many synthetic
speakers (see ``dialects``), degraded with reverberation and noise (``acoustics``),
reading real English sentences (``sentences``).

Layout (the *generic per-dialect layout*, read by ``generic_layout`` too)::

    <root>/corpus.json                              options + stats, written last
    <root>/stats.md                                 the stats as a Markdown table
    <root>/.synth_options.json                      options of the build (resume)
    <root>/<dialect>/<split>/<spk_id>/<utt_id>.wav  16 kHz mono int16
    <root>/<dialect>/<split>/text                   lines "<utt_id> <TRANSCRIPT>"
    <root>/<dialect>/<split>.csv                    ID,duration,wav,spk_id,wrd,dialect

with ``<dialect>`` the eSpeak NG voice (``en-us``), ``<split>`` in train / dev / test,
``<spk_id> = <dialect>_s<NNN>`` and ``<utt_id> = <spk_id>_<NNNNN>``. Splits are disjoint
by speaker within each dialect and by sentence across the whole corpus: the sentence
list is cut once into train / dev / test pools that every dialect draws from.

Text (``text_domain``): ``closed`` (the default) reads the closed-vocabulary clauses
of :func:`~speechbrain_sparse.data.sentences.load_closed_sentences`. Every dialect's
train split starts with the train pool in greedy coverage order (the same sentences
for all dialects, :func:`~speechbrain_sparse.data.sentences.coverage_order`), then
the rest of the pool in its own shuffled order; dev and test only use sentences whose
words all occur in the first ``n`` sentences of that order, ``n`` being the smallest
train split of the corpus. So every test word is in every dialect's training text
(out-of-vocabulary rate 0). With ``tiny``, the 340 sentences of a target's train split
hold the whole cover (~250 sentences) and that restriction only drops the rare test
sentence with a word absent from the train pool; with ``micro`` (40 sentences) it
keeps about a third of the dev and test pools. ``open`` reads every fortune sentence
(:func:`~speechbrain_sparse.data.sentences.load_sentences`) and draws every split in a
shuffled order, as generator version 1 did. The SHA-256 of the sentence list is one
of the options.

Multilingual corpus (:func:`build_multilingual_corpus`, presets :data:`ML_PRESETS`):
the same layout with ``<language>`` folders (``fr``, ``nl``, ...), each spoken by its
own eSpeak NG voice's speakers (``fr-fr_s000``, variants as above) and read from its
own closed-vocabulary pool (:mod:`speechbrain_sparse.data.languages`), partitioned on
its own (:func:`language_pools`): splits are disjoint by speaker and by sentence
within each language. The manifests gain a ``language`` column, their ``dialect``
being the voice.

Stats: per dialect and split, speakers, utterances, hours, distinct sentences,
vocabulary size and the token-level out-of-vocabulary rate against that dialect's own
train text (``oov_percent``), logged, in ``corpus.json`` and in ``stats.md``.

Determinism: every random choice comes from a generator seeded by ``(seed, dialect,
...)`` for that speaker or utterance, so the same options give bit-identical wavs,
``text`` files and ``corpus.json`` whatever ``num_workers`` is.

Reuse and resumption: a finished corpus (``corpus.json`` with the same options) is
returned at once. Asking for *different* options in a folder that holds a corpus, even
a partial one, raises ``ValueError`` (delete the folder or choose another): a corpus is
never silently replaced. An interrupted build resumes: wavs are written to temporary
names and renamed, so every ``.wav`` present is complete and is kept; the ``text``
files and CSVs of a split are written (atomically) only once all its audio exists.
To repair a finished corpus whose files were deleted, delete its ``corpus.json``.

Example
-------
>>> resolve_sizes("micro")["target"]["train"]
[4, 40]
>>> pools = partition_sentences([f"SENTENCE {i}" for i in range(20)], seed=0)
>>> {split: len(pool) for split, pool in pools.items()}
{'dev': 2, 'test': 2, 'train': 16}
>>> set(pools["train"]) & set(pools["test"])
set()
>>> text_stats(["A B C", "A D"], train_texts=["A B C"])["oov_percent"]
20.0
"""

import logging
import os
import time
import wave
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from tqdm import tqdm

from speechbrain_sparse.data import voices
from speechbrain_sparse.data.acoustics import SAMPLE_RATE, degrade
from speechbrain_sparse.data.dialects import make_speakers, stable_id
from speechbrain_sparse.data.generic_layout import split_manifest_rows
from speechbrain_sparse.data.languages import (
    check_voice,
    get_language,
    load_language_sentences,
)
from speechbrain_sparse.data.manifests import MANIFEST_FIELDS
from speechbrain_sparse.data.sentences import (
    TEXT_DOMAINS,
    coverage_order,
    load_text,
    sentences_sha256,
)
from speechbrain_sparse.errors import MissingInputError, UserInputError
from speechbrain_sparse.fileio import (
    atomic_write,
    read_json,
    write_csv_atomic,
    write_json_atomic,
    write_text_atomic,
)

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 2
SPLITS = ("train", "dev", "test")
CORPUS_FILE = "corpus.json"
STATS_FILE = "stats.md"
STATS_COLUMNS = (
    "speakers", "utterances", "hours", "distinct_sentences", "vocabulary",
    "oov_percent",
)  # fmt: skip
BUILD_OPTIONS_FILE = ".synth_options.json"
DEV_FRACTION = TEST_FRACTION = 0.1

# [speakers, utterances] per role and split. Measured mean utterance lengths (seed 0,
# closed text): 1.6-2.3 s in dev / test, 1.9-2.7 s in train (the targets' train splits
# start with the long clauses of the coverage order); corpus.json "stats" has each
# build's.
PRESETS = {
    # For CI: ~14 minutes of audio in all; builds in ~7 s on 2 (shared) cores.
    "micro": {
        "source": {"train": [6, 150], "dev": [2, 20], "test": [2, 20]},
        "target": {"train": [4, 40], "dev": [2, 12], "test": [2, 12]},
    },
    # The demo: ~1.5 h source train, 12-16 min per target train, 5-7 min dev / test
    # per dialect; 2.5 h in all.
    "tiny": {
        "source": {"train": [40, 2900], "dev": [6, 190], "test": [6, 190]},
        "target": {"train": [10, 340], "dev": [4, 190], "test": [4, 190]},
    },
    # Estimated from tiny's mean lengths: ~8 h source train (the closed pool's 4,200
    # train sentences, each read ~3.7 times), 1.5-2 h per target train, 15-20 min
    # dev / test each.
    "small": {
        "source": {"train": [120, 15500], "dev": [10, 500], "test": [10, 500]},
        "target": {"train": [30, 3100], "dev": [8, 500], "test": [8, 500]},
    },
}


# The multilingual presets: one role, ``language``, whose sizes every language gets,
# and the default languages (keys of ``languages.LANGUAGES``).
LANGUAGE_ROLE = "language"
ML_PRESETS = {
    # For CI: French and Dutch, 84 utterances each (~6 min of audio in all).
    "ml_micro": {
        "languages": ("fr", "nl"),
        "sizes": {
            LANGUAGE_ROLE: {"train": [4, 60], "dev": [2, 12], "test": [2, 12]}
        },
    },
    # The cross-lingual demo: the paper's four languages, ~1 h of train each.
    "ml_tiny": {
        "languages": ("en", "fr", "it", "nl"),
        "sizes": {
            LANGUAGE_ROLE: {"train": [30, 1200], "dev": [6, 150], "test": [6, 190]}
        },
    },
}
# A multilingual build's dev and test pools hold at least as many sentences as the
# split has utterances, up to this share of the language's sentences each.
MAX_HELD_OUT_FRACTION = 0.25
# A language whose closed pool is smaller is refused (its splits would be a handful
# of sentences read over and over).
MIN_LANGUAGE_SENTENCES = 500


def resolve_sizes(preset, sizes=None):
    """Returns the ``{role: {split: [speakers, utterances]}}`` table to build.

    Arguments
    ---------
    preset : str
        A key of :data:`PRESETS` (roles ``source``, ``target``) or of
        :data:`ML_PRESETS` (one role, ``language``).
    sizes : dict, optional
        Overrides the preset (same structure; e.g. a few utterances for tests).

    Returns
    -------
    dict
        A validated copy, lists rather than tuples.
    """
    if preset in ML_PRESETS:
        table, roles = ML_PRESETS[preset]["sizes"], (LANGUAGE_ROLE,)
    elif preset in PRESETS:
        table, roles = PRESETS[preset], ("source", "target")
    else:
        valid = ", ".join([*PRESETS, *ML_PRESETS])
        raise UserInputError(f"unknown preset {preset!r}; valid: {valid}")
    table = sizes if sizes is not None else table
    resolved = {}
    for role in roles:
        resolved[role] = {}
        for split in SPLITS:
            try:
                speakers, utterances = (int(n) for n in table[role][split])
            except (KeyError, TypeError, ValueError) as error:
                raise UserInputError(
                    f"sizes[{role!r}][{split!r}] must be [speakers, utterances]"
                ) from error
            if utterances < 0 or speakers < (1 if utterances else 0):
                raise UserInputError(
                    f"sizes[{role!r}][{split!r}] = {table[role][split]}"
                )
            resolved[role][split] = [speakers, utterances]
    return resolved


def partition_sentences(sentences, seed, dev=DEV_FRACTION, test=TEST_FRACTION):
    """Cuts the sentence list into disjoint train / dev / test pools (seeded shuffle).

    Arguments
    ---------
    sentences : sequence of str
        Distinct sentences.
    seed : int
        The corpus seed.
    dev, test : float
        Fractions of the sentences for the dev and test pools.

    Returns
    -------
    dict
        ``{split: list of sentences}``.
    """
    order = np.random.default_rng([seed, stable_id("sentences")]).permutation(
        len(sentences)
    )
    shuffled = [sentences[i] for i in order]
    n_dev, n_test = int(len(shuffled) * dev), int(len(shuffled) * test)
    return {
        "dev": shuffled[:n_dev],
        "test": shuffled[n_dev : n_dev + n_test],
        "train": shuffled[n_dev + n_test :],
    }


def make_options(
    sentences,
    preset="micro",
    seed=0,
    source="en-us",
    targets=("en-gb-scotland", "en-029"),
    sizes=None,
    text_domain="closed",
):
    """Returns the options of a build: what a corpus folder is checked against.

    Arguments
    ---------
    sentences : sequence of str
        The sentence list of ``text_domain`` (its SHA-256 is recorded).
    preset, seed, source, targets, sizes, text_domain
        As for :func:`build_corpus`.

    Returns
    -------
    dict
        JSON-ready options.

    Example
    -------
    >>> options = make_options(["A B C"], preset="tiny", text_domain="open")
    >>> options["sizes"]["target"]["train"], options["sentences_sha256"][:8]
    ([10, 340], '3825b9a0')
    """
    if text_domain not in TEXT_DOMAINS:
        valid = ", ".join(TEXT_DOMAINS)
        raise UserInputError(f"unknown text domain {text_domain!r}; valid: {valid}")
    return {
        "generator_version": GENERATOR_VERSION,
        "preset": preset,
        "seed": int(seed),
        "source": source,
        "targets": list(targets),
        "sizes": resolve_sizes(preset, sizes),
        "text_domain": text_domain,
        "sentences_sha256": sentences_sha256(sentences),
    }


def make_multilingual_options(sentences, preset="ml_micro", seed=0, languages=None,
                              sizes=None):  # fmt: skip
    """Returns the options of a multilingual build (see :func:`make_options`).

    Arguments
    ---------
    sentences : dict
        ``{language: sentence list}`` (their SHA-256 are recorded).
    preset : str
        A key of :data:`ML_PRESETS`.
    seed : int
        Everything random derives from it.
    languages : dict, optional
        ``{language: eSpeak NG voice}``, in corpus order (default: the preset's
        languages with their first voice).
    sizes : dict, optional
        ``{"language": {split: [speakers, utterances]}}`` overriding the preset's.

    Returns
    -------
    dict
        JSON-ready options.

    Example
    -------
    >>> options = make_multilingual_options({"fr": ["A B C"], "nl": ["D E F"]})
    >>> options["languages"], options["sizes"]["language"]["test"]
    ({'fr': 'fr-fr', 'nl': 'nl'}, [2, 12])
    """
    if preset not in ML_PRESETS:
        valid = ", ".join(ML_PRESETS)
        raise UserInputError(f"{preset!r} is not a multilingual preset; valid: {valid}")
    if languages is None:
        languages = {c: get_language(c).voice for c in ML_PRESETS[preset]["languages"]}
    return {
        "generator_version": GENERATOR_VERSION,
        "preset": preset,
        "seed": int(seed),
        "languages": dict(languages),
        "sizes": resolve_sizes(preset, sizes),
        "text_domain": "closed",
        "sentences_sha256": {c: sentences_sha256(sentences[c]) for c in languages},
    }


def dialect_roles(options):
    """``[(dialect, role), ...]``: the source first, then the targets in order."""
    return [(options["source"], "source")] + [
        (target, "target") for target in options["targets"]
    ]


def corpus_groups(options):
    """``[(folder, voice, role), ...]``: what each top folder of a corpus holds.

    A dialect corpus has a folder per voice (:func:`dialect_roles`); a multilingual
    one a folder per language, spoken with that language's voice.

    Example
    -------
    >>> corpus_groups({"languages": {"fr": "fr-fr", "nl": "nl"}})
    [('fr', 'fr-fr', 'language'), ('nl', 'nl', 'language')]
    """
    if "languages" in options:
        languages = options["languages"].items()
        return [(code, voice, LANGUAGE_ROLE) for code, voice in languages]
    return [(dialect, dialect, role) for dialect, role in dialect_roles(options)]


def _words(sentences):
    """The set of words of ``sentences``."""
    return {word for sentence in sentences for word in sentence.split()}


def sentence_pools(options, sentences, dev=DEV_FRACTION, test=TEST_FRACTION):
    """The pools every dialect draws its splits from, and the train pool's head.

    Arguments
    ---------
    options : dict
        The build options (``seed``, ``sizes``, ``text_domain``, dialects).
    sentences : sequence of str
        All sentences (partitioned here with :func:`partition_sentences`).
    dev, test : float
        The shares of the dev and test pools.

    Returns
    -------
    pools : dict
        ``{split: list of sentences}``; with the ``closed`` domain, dev and test hold
        only the sentences written with the words of the shared head.
    head : list of int
        Indices into ``pools["train"]`` every dialect's train split starts with: the
        coverage order (``closed``), or nothing (``open``).
    """
    pools = partition_sentences(sentences, options["seed"], dev, test)
    if options["text_domain"] == "open":
        return pools, []
    head = coverage_order(pools["train"])
    sizes = options["sizes"]
    shortest = min(sizes[role]["train"][1] for *_, role in corpus_groups(options))
    vocabulary = _words(pools["train"][i] for i in head[:shortest])
    for split in ("dev", "test"):
        covered = [s for s in pools[split] if set(s.split()) <= vocabulary]
        if covered:
            pools[split] = covered
        else:
            logger.warning("No %s sentence uses only trained words: using all", split)
    return pools, head


def language_pools(options, sentences):
    """:func:`sentence_pools` of every language of a multilingual build.

    Each language is partitioned on its own, its dev and test pools holding at least
    as many sentences as the split has utterances (up to
    :data:`MAX_HELD_OUT_FRACTION`), so the splits are sentence-disjoint within each
    language.

    Arguments
    ---------
    options : dict
        The build options (see :func:`make_multilingual_options`).
    sentences : dict
        ``{language: sentence list}``.

    Returns
    -------
    dict
        ``{language: (pools, head)}``.
    """
    sizes, pools = options["sizes"][LANGUAGE_ROLE], {}
    for code in options["languages"]:
        lines = sentences[code]
        if len(lines) < MIN_LANGUAGE_SENTENCES:
            raise UserInputError(
                f"language {code!r}: its closed-vocabulary sentence pool holds "
                f"{len(lines)} sentences, fewer than the {MIN_LANGUAGE_SENTENCES} a "
                f"corpus needs ({sum(sizes[s][1] for s in SPLITS)} utterances asked); "
                "choose other languages"
            )
        dev, test = (
            min(MAX_HELD_OUT_FRACTION, max(fraction, sizes[split][1] / len(lines)))
            for split, fraction in (("dev", DEV_FRACTION), ("test", TEST_FRACTION))
        )
        pools[code] = sentence_pools(options, lines, dev, test)
    return pools


def _pooled_groups(options, sentences):
    """``[(pools, head, groups)]``: each sentence pool and the folders drawing on it."""
    if "languages" not in options:
        return [(*sentence_pools(options, sentences), corpus_groups(options))]
    pools = language_pools(options, sentences)
    return [(*pools[group[0]], [group]) for group in corpus_groups(options)]


def _draw(pool, count, rng_key, head=()):
    """``count`` sentences of ``pool``: ``head``, then a seeded shuffle; cycled."""
    order = np.random.default_rng(rng_key).permutation(len(pool))
    if head:
        first = set(head)
        order = [*head, *(i for i in order if i not in first)]
    return [pool[order[index % len(order)]] for index in range(count)]


def assign_sentences(options, sentences):
    """The transcript of every utterance, by ``(dialect, split)``; text only.

    Arguments
    ---------
    options : dict
        The build options (see :func:`make_options` and
        :func:`make_multilingual_options`).
    sentences : sequence of str or dict
        All sentences; for a multilingual build ``{language: sentences}``.

    Returns
    -------
    dict
        ``{(dialect, split): [sentence, ...]}``, one sentence per utterance.

    Example
    -------
    >>> lines = [f"WORD{i % 7} AND WORD{i % 5}" for i in range(40)]
    >>> options = make_options(lines, sizes={
    ...     "source": {"train": [1, 8], "dev": [1, 2], "test": [1, 2]},
    ...     "target": {"train": [1, 4], "dev": [1, 2], "test": [1, 2]}})
    >>> texts = assign_sentences(options, lines)
    >>> len(texts[("en-029", "train")]), text_stats(
    ...     texts[("en-029", "test")], texts[("en-029", "train")])["oov_percent"]
    (4, 0.0)
    """
    seed = options["seed"]
    texts = {}
    for pools, head, groups in _pooled_groups(options, sentences):
        for folder, _, role in groups:
            for split_index, split in enumerate(SPLITS):
                rng_key = [seed, stable_id(folder), 2, split_index]
                count = options["sizes"][role][split][1]
                first = head if split == "train" else ()
                texts[(folder, split)] = _draw(pools[split], count, rng_key, first)
    return texts


def plan_corpus(root, options, sentences):
    """Lists every utterance to synthesise, grouped by ``(dialect, split)``.

    Arguments
    ---------
    root : Path
        The corpus root.
    options : dict
        The build options (see :func:`make_options`).
    sentences : sequence of str or dict
        All sentences (partitioned here); ``{language: sentences}`` when
        multilingual.

    Returns
    -------
    dict
        ``{(folder, split): [job, ...]}``; a job is a tuple ``(wav_path, text,
        speaker, rng_key)`` for :func:`synthesize_utterance`.
    """
    seed, texts = options["seed"], assign_sentences(options, sentences)
    installed = voices.list_variants()
    plan = {}
    for dialect, voice, role in corpus_groups(options):
        sizes = options["sizes"][role]
        speakers = make_speakers(
            voice, sum(sizes[s][0] for s in SPLITS), seed, installed
        )
        first_speaker = 0
        for split_index, split in enumerate(SPLITS):
            n_speakers = sizes[split][0]
            split_speakers = speakers[first_speaker : first_speaker + n_speakers]
            first_speaker += n_speakers
            jobs = []
            for index, text in enumerate(texts[(dialect, split)]):
                speaker = split_speakers[index % n_speakers]
                utt_id = f"{speaker.spk_id}_{index:05d}"
                wav = root / dialect / split / speaker.spk_id / f"{utt_id}.wav"
                rng_key = (seed, stable_id(dialect), 3, split_index, index)
                jobs.append((wav, text, speaker, rng_key))
            plan[(dialect, split)] = jobs
    return plan


def text_stats(texts, train_texts):
    """Utterances, distinct sentences, vocabulary and OOV rate of one split's text.

    Arguments
    ---------
    texts : sequence of str
        The split's transcripts, one per utterance.
    train_texts : sequence of str
        The same dialect's train transcripts.

    Returns
    -------
    dict
        ``utterances``, ``distinct_sentences``, ``vocabulary`` (distinct words) and
        ``oov_percent``: the share of word tokens absent from ``train_texts``.
    """
    train_words = _words(train_texts)
    tokens = [word for text in texts for word in text.split()]
    unseen = sum(word not in train_words for word in tokens)
    return {
        "utterances": len(texts),
        "distinct_sentences": len(set(texts)),
        "vocabulary": len(set(tokens)),
        "oov_percent": round(100 * unseen / len(tokens), 2) if tokens else 0.0,
    }


def plan_text_stats(texts):
    """:func:`text_stats` of every split, from :func:`assign_sentences` (no audio).

    Arguments
    ---------
    texts : dict
        ``{(dialect, split): [sentence, ...]}`` with every dialect's train split.

    Returns
    -------
    dict
        ``{dialect: {split: stats}}``.
    """
    stats = {}
    for (dialect, split), group in texts.items():
        train = texts[(dialect, "train")]
        stats.setdefault(dialect, {})[split] = text_stats(group, train)
    return stats


def synthesize_utterance(job):
    """Synthesises, degrades and writes one utterance (skipped when its wav exists).

    Arguments
    ---------
    job : tuple
        ``(wav_path, text, speaker, rng_key)`` from :func:`plan_corpus`.

    Returns
    -------
    Path
        The wav written (or found).
    """
    wav_path, text, speaker, rng_key = job
    if wav_path.exists():
        return wav_path
    clean, sample_rate = voices.synthesize(
        text.lower(),
        speaker.dialect,
        speaker.variant,
        speaker.pitch,
        speaker.rate,
        speaker.word_gap,
    )
    samples = degrade(clean, sample_rate, np.random.default_rng(rng_key), speaker.tilt)
    with atomic_write(wav_path, "wb") as file, wave.open(file, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(SAMPLE_RATE)
        handle.writeframes(samples.astype("<i2").tobytes())
    return wav_path


def _run_jobs(jobs, num_workers):
    """Runs the jobs with a progress bar, in ``num_workers`` processes when > 1."""
    progress = tqdm(total=len(jobs), desc="synth", unit="utt", disable=None)
    if num_workers <= 1 or len(jobs) < 2:
        for job in jobs:
            synthesize_utterance(job)
            progress.update()
    else:
        with get_context().Pool(num_workers) as pool:
            for _ in pool.imap_unordered(synthesize_utterance, jobs, chunksize=8):
                progress.update()
    progress.close()


def _difference(key, recorded, asked):
    """One option that differs, as ``key=<there> there, <asked> asked``."""
    if key == "sentences_sha256" and isinstance(asked, dict):
        recorded = recorded if isinstance(recorded, dict) else {}
        changed = [c for c in asked if recorded.get(c) != asked[c]]
        return (
            f"{key} differs for {', '.join(changed) or 'the language list'}: built "
            "from other sentence lists (other Debian text packages or generator)"
        )
    if key == "sentences_sha256":
        there = f"{recorded[:12]}..." if isinstance(recorded, str) else "none"
        return (
            f"{key}={there} there, {asked[:12]}... asked: built from another sentence "
            "list (other fortunes files, text domain or generator)"
        )
    return f"{key}={recorded!r} there, {asked!r} asked"


def _claim_folder(root, options):
    """Checks ``root`` holds nothing or a build of the same options; records them."""
    recorded = read_json(root / BUILD_OPTIONS_FILE) or read_json(root / CORPUS_FILE)
    if recorded is not None:
        recorded = recorded.get("options", recorded)
        if recorded != options:
            differences = "; ".join(
                _difference(key, recorded.get(key), options[key])
                for key in options
                if recorded.get(key) != options[key]
            )
            raise UserInputError(
                f"{root} holds a corpus built with other options ({differences}); "
                "delete it or choose another output folder"
            )
    elif root.is_dir() and any(root.iterdir()):
        raise UserInputError(f"{root} is not empty and holds no sb-sparse synth corpus")
    root.mkdir(parents=True, exist_ok=True)
    write_json_atomic(root / BUILD_OPTIONS_FILE, options)
    for stale in root.glob("*/*/*/.*.tmp*"):
        stale.unlink()


def _split_stats(rows, train_rows):
    """Speakers, hours and :func:`text_stats` of one split's manifest rows."""
    seconds = sum(row["duration"] for row in rows)
    texts = [row["wrd"] for row in rows]
    return {
        "speakers": len({row["spk_id"] for row in rows}),
        "hours": round(seconds / 3600, 4),
        "mean_duration_s": round(seconds / len(rows), 3) if rows else 0.0,
        **text_stats(texts, [row["wrd"] for row in train_rows]),
    }


def stats_table(stats, dialects=None, label="dialect"):
    """The per-dialect, per-split stats as the lines of a Markdown table.

    Arguments
    ---------
    stats : dict
        ``{dialect: {split: {column: value}}}`` (``corpus.json`` "stats").
    dialects : sequence of str, optional
        The order of the dialects (default: that of ``stats``); splits come in
        :data:`SPLITS` order.
    label : str
        The first column's name (``language`` for a multilingual corpus).

    Returns
    -------
    list of str
        A header, a rule and one line per dialect and split.

    Example
    -------
    >>> row = dict(speakers=2, utterances=4, hours=0.01, distinct_sentences=3,
    ...            vocabulary=9, oov_percent=0.0)
    >>> print("\\n".join(stats_table({"en-us": {"test": row}})))
    | dialect | split | speakers | utterances | hours | distinct_sentences | vocabulary | oov_percent |
    |---|---|---|---|---|---|---|---|
    | en-us | test | 2 | 4 | 0.01 | 3 | 9 | 0.0 |
    """  # noqa: E501
    lines = [
        "| " + " | ".join((label, "split", *STATS_COLUMNS)) + " |",
        "|" + "---|" * (len(STATS_COLUMNS) + 2),
    ]
    for dialect in dialects or stats:
        for split in (s for s in SPLITS if s in stats[dialect]):
            row = stats[dialect][split]
            cells = [dialect, split, *(str(row[c]) for c in STATS_COLUMNS)]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def corpus_stats_table(root):
    """:func:`stats_table` of a finished corpus, dialects in their options' order."""
    corpus = read_json(Path(root) / CORPUS_FILE)
    if corpus is None:
        raise MissingInputError(f"no finished corpus in {root} (no {CORPUS_FILE})")
    return _options_stats_table(corpus["options"], corpus["stats"])


def _options_stats_table(options, stats):
    """:func:`stats_table` with the folders in their options' order."""
    label = LANGUAGE_ROLE if "languages" in options else "dialect"
    folders = [group[0] for group in corpus_groups(options)]
    return stats_table(stats, folders, label)


def _log_stats(lines):
    """Logs the stats table, one line per dialect and split."""
    for line in lines:
        logger.info("%s", line)


def _write_manifests(root, plan, options):
    """Writes every split's ``text`` and CSV; returns the per-split stats.

    A multilingual corpus's manifests have a ``language`` column (the folder) after
    the usual ones, whose ``dialect`` is then the eSpeak NG voice.
    """
    multilingual = "languages" in options
    fields = (*MANIFEST_FIELDS, LANGUAGE_ROLE) if multilingual else MANIFEST_FIELDS
    rows = {}
    for (dialect, split), group in plan.items():
        split_dir = root / dialect / split
        split_dir.mkdir(parents=True, exist_ok=True)
        lines = "".join(f"{job[0].stem} {job[1]}\n" for job in group)
        write_text_atomic(split_dir / "text", lines)
        rows[(dialect, split)] = split_manifest_rows(split_dir, dialect)
        if multilingual:
            for row in rows[(dialect, split)]:
                row["dialect"] = options["languages"][dialect]
                row[LANGUAGE_ROLE] = dialect
        csv_path = root / dialect / f"{split}.csv"
        write_csv_atomic(csv_path, rows[(dialect, split)], fields)
    stats = {}
    for (dialect, split), split_rows in rows.items():
        train_rows = rows[(dialect, "train")]
        stats.setdefault(dialect, {})[split] = _split_stats(split_rows, train_rows)
    return stats


def build_corpus(
    out_dir,
    preset="micro",
    seed=0,
    source="en-us",
    targets=("en-gb-scotland", "en-029"),
    num_workers=2,
    sizes=None,
    text_domain="closed",
):
    """Builds (or reuses, or resumes) the synthetic multi-dialect corpus.

    Arguments
    ---------
    out_dir : str or Path
        The corpus root.
    preset : str
        ``micro``, ``tiny`` or ``small`` (see :data:`PRESETS`).
    seed : int
        Everything random derives from it.
    source : str
        The high-resource dialect (an eSpeak NG voice).
    targets : sequence of str
        The low-resource dialects.
    num_workers : int
        Worker processes (``None``: all cores). Does not change the output.
    sizes : dict, optional
        ``{role: {split: [speakers, utterances]}}`` overriding the preset's sizes.
    text_domain : str
        ``closed`` (closed-vocabulary clauses) or ``open`` (every fortune sentence).

    Returns
    -------
    pathlib.Path
        The corpus root.
    """
    dialects = [voices.validate_voice(v) for v in [source, *targets]]
    if len(set(dialects)) != len(dialects):
        raise UserInputError(f"source and targets must be distinct voices: {dialects}")
    sentences = load_text(text_domain)
    options = make_options(
        sentences, preset, seed, source, targets, sizes, text_domain
    )
    return _build(out_dir, options, sentences, num_workers)


def parse_languages(languages):
    """``{language: voice}`` from codes, ``code:voice`` strings or a dict.

    Example
    -------
    >>> parse_languages(["fr:fr-be", "nl"])
    {'fr': 'fr-be', 'nl': 'nl'}
    """
    if isinstance(languages, dict):
        pairs = list(languages.items())
    else:
        pairs = [tuple(f"{item}:".split(":")[:2]) for item in languages]
    parsed = {}
    for code, voice in pairs:
        if code in parsed:
            raise UserInputError(f"language {code!r} is given twice")
        parsed[code] = voice or get_language(code).voice
    if not parsed:
        raise UserInputError("a multilingual corpus needs at least one language")
    return parsed


def build_multilingual_corpus(
    out_dir, preset="ml_micro", seed=0, languages=None, num_workers=2, sizes=None
):
    """Builds (or reuses, or resumes) the multilingual corpus: a folder per language.

    Each language (:mod:`speechbrain_sparse.data.languages`) is read by its own
    eSpeak NG voice's speakers, from its own closed-vocabulary pool, cut into
    sentence-disjoint train / dev / test pools (:func:`language_pools`); speakers
    are disjoint across splits. The layout is the dialect corpus's with
    ``<language>`` folders, and the manifests have a ``language`` column.

    Arguments
    ---------
    out_dir : str or Path
        The corpus root.
    preset : str
        ``ml_micro`` or ``ml_tiny`` (see :data:`ML_PRESETS`).
    seed : int
        Everything random derives from it.
    languages : sequence of str or dict, optional
        Language codes, ``code:voice`` strings or ``{code: voice}`` (default: the
        preset's languages with their first native voice).
    num_workers : int
        Worker processes (``None``: all cores). Does not change the output.
    sizes : dict, optional
        ``{"language": {split: [speakers, utterances]}}`` overriding the preset's.

    Returns
    -------
    pathlib.Path
        The corpus root.
    """
    if preset not in ML_PRESETS:
        valid = ", ".join(ML_PRESETS)
        raise UserInputError(f"{preset!r} is not a multilingual preset; valid: {valid}")
    languages = parse_languages(languages or ML_PRESETS[preset]["languages"])
    languages = {code: check_voice(code, voice) for code, voice in languages.items()}
    sentences = {code: load_language_sentences(code) for code in languages}
    options = make_multilingual_options(sentences, preset, seed, languages, sizes)
    language_pools(options, sentences)  # a pool too small fails before any folder
    return _build(out_dir, options, sentences, num_workers)


def _pool_summary(lines, pools, head):
    """Sizes of a sentence list, its vocabulary, its cover and its split pools."""
    return {
        "total": len(lines),
        "vocabulary": len(_words(lines)),
        "coverage_head": len(head),
        **{split: len(pool) for split, pool in pools.items()},
    }


def _sentences_summary(options, sentences):
    """The ``sentences`` entry of ``corpus.json``."""
    summary = {"text_domain": options["text_domain"]}
    if "languages" not in options:
        pools, head = sentence_pools(options, sentences)
        return {**summary, **_pool_summary(sentences, pools, head)}
    for code, (pools, head) in language_pools(options, sentences).items():
        summary[code] = {
            "package": get_language(code).package,
            **_pool_summary(sentences[code], pools, head),
        }
    return summary


def _build(out_dir, options, sentences, num_workers):
    """Reuses, resumes or builds the corpus of ``options`` in ``out_dir``."""
    root = Path(out_dir).resolve()
    corpus = read_json(root / CORPUS_FILE)
    if corpus is not None and corpus.get("options") == options:
        logger.info("Reusing the finished corpus in %s", root)
        _log_stats(corpus_stats_table(root))
        return root
    _claim_folder(root, options)
    start = time.time()
    plan = plan_corpus(root, options, sentences)
    jobs = [job for group in plan.values() for job in group if not job[0].exists()]
    total = sum(len(group) for group in plan.values())
    logger.info(
        "Synthesising %d of %d utterances into %s with %s workers",
        len(jobs), total, root, num_workers,
    )
    _run_jobs(jobs, num_workers or os.cpu_count() or 1)
    stats = _write_manifests(root, plan, options)
    hours = sum(s["hours"] for d in stats.values() for s in d.values())
    folder = LANGUAGE_ROLE if "languages" in options else "dialect"
    corpus = {
        "options": options,
        "layout": f"<{folder}>/<split>/<spk_id>/<utt_id>.wav, <split>/text, "
        "<split>.csv",
        "sample_rate": SAMPLE_RATE,
        "sentences": _sentences_summary(options, sentences),
        "espeak": voices.espeak_version(),
        "stats": stats,
        "total_hours": round(hours, 4),
    }
    table = _options_stats_table(options, stats)
    write_text_atomic(root / STATS_FILE, "\n".join(table) + "\n")
    write_json_atomic(root / CORPUS_FILE, corpus)
    _log_stats(table)
    wall = time.time() - start
    logger.info(
        "Corpus ready in %s: %.3f h of audio in %.1f s (%.0fx real time)",
        root, hours, wall, hours * 3600 / max(wall, 1e-9),
    )
    return root
