"""The synthetic multi-dialect corpus: eSpeak NG speech, many speakers, noise, reverb.

A high-resource *source dialect* and low-resource *target dialects* of one language
(the paper's Tibetan Amdo vs. Khampa / U-Tsang setting), spoken by many synthetic
speakers (see ``dialects``), degraded with reverberation and noise (``acoustics``),
reading real sentences (``sentences``).

Layout (the *generic per-dialect layout*, read by ``generic_layout`` too)::

    <root>/corpus.json                              options + stats, written last
    <root>/.synth_options.json                      options of the build (resume)
    <root>/<dialect>/<split>/<spk_id>/<utt_id>.wav  16 kHz mono int16
    <root>/<dialect>/<split>/text                   lines "<utt_id> <TRANSCRIPT>"
    <root>/<dialect>/<split>.csv                    ID,duration,wav,spk_id,wrd,dialect

with ``<dialect>`` the eSpeak NG voice (``en-us``), ``<split>`` in train / dev / test,
``<spk_id> = <dialect>_s<NNN>`` and ``<utt_id> = <spk_id>_<NNNNN>``. Splits are disjoint
by speaker within each dialect and by sentence across the whole corpus: the sentence
list is cut once into train / dev / test pools that every dialect draws from.

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
from speechbrain_sparse.data.manifests import (
    MANIFEST_FIELDS,
    read_json,
    write_csv_atomic,
    write_json_atomic,
    write_text_atomic,
)
from speechbrain_sparse.data.sentences import load_sentences

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 1
SPLITS = ("train", "dev", "test")
CORPUS_FILE = "corpus.json"
BUILD_OPTIONS_FILE = ".synth_options.json"
DEV_FRACTION = TEST_FRACTION = 0.1

# [speakers, utterances] per role and split. Measured mean utterance lengths (seed 0):
# en-us 3.1 s, en-gb-scotland 3.7 s, en-029 2.9 s; corpus.json "stats" has each build's.
PRESETS = {
    # For CI: ~17 minutes of audio in all; builds in ~8 s on 2 (shared) cores.
    "micro": {
        "source": {"train": [6, 150], "dev": [2, 20], "test": [2, 20]},
        "target": {"train": [4, 40], "dev": [2, 12], "test": [2, 12]},
    },
    # The demo: ~2.5 h source train, 16-21 min per target train, ~9-12 min dev/test.
    "tiny": {
        "source": {"train": [40, 2900], "dev": [6, 190], "test": [6, 190]},
        "target": {"train": [10, 340], "dev": [4, 190], "test": [4, 190]},
    },
    # ~13 h source train, 2.5-3.2 h per target train, ~25-30 min dev/test each.
    "small": {
        "source": {"train": [120, 15500], "dev": [10, 500], "test": [10, 500]},
        "target": {"train": [30, 3100], "dev": [8, 500], "test": [8, 500]},
    },
}


def resolve_sizes(preset, sizes=None):
    """Returns the ``{role: {split: [speakers, utterances]}}`` table to build.

    Arguments
    ---------
    preset : str
        A key of :data:`PRESETS`.
    sizes : dict, optional
        Overrides the preset (same structure; e.g. a few utterances for tests).

    Returns
    -------
    dict
        A validated copy, lists rather than tuples.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; valid: {', '.join(PRESETS)}")
    table = sizes if sizes is not None else PRESETS[preset]
    resolved = {}
    for role in ("source", "target"):
        resolved[role] = {}
        for split in SPLITS:
            try:
                speakers, utterances = (int(n) for n in table[role][split])
            except (KeyError, TypeError, ValueError) as error:
                raise ValueError(
                    f"sizes[{role!r}][{split!r}] must be [speakers, utterances]"
                ) from error
            if utterances < 0 or speakers < (1 if utterances else 0):
                raise ValueError(f"sizes[{role!r}][{split!r}] = {table[role][split]}")
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


def plan_corpus(root, options, sentences):
    """Lists every utterance to synthesise, grouped by ``(dialect, split)``.

    Arguments
    ---------
    root : Path
        The corpus root.
    options : dict
        The build options (``seed``, ``source``, ``targets``, ``sizes``).
    sentences : sequence of str
        All sentences (partitioned here).

    Returns
    -------
    dict
        ``{(dialect, split): [job, ...]}``; a job is a tuple ``(wav_path, text,
        speaker, rng_key)`` for :func:`synthesize_utterance`.
    """
    seed, pools = options["seed"], partition_sentences(sentences, options["seed"])
    installed = voices.list_variants()
    plan = {}
    roles = [(options["source"], "source")]
    roles += [(target, "target") for target in options["targets"]]
    for dialect, role in roles:
        sizes = options["sizes"][role]
        speakers = make_speakers(
            dialect, sum(sizes[s][0] for s in SPLITS), seed, installed
        )
        first_speaker = 0
        for split_index, split in enumerate(SPLITS):
            n_speakers, n_utterances = sizes[split]
            split_speakers = speakers[first_speaker : first_speaker + n_speakers]
            first_speaker += n_speakers
            pool = pools[split]
            order = np.random.default_rng(
                [seed, stable_id(dialect), 2, split_index]
            ).permutation(len(pool))
            jobs = []
            for index in range(n_utterances):
                speaker = split_speakers[index % n_speakers]
                utt_id = f"{speaker.spk_id}_{index:05d}"
                wav = root / dialect / split / speaker.spk_id / f"{utt_id}.wav"
                rng_key = (seed, stable_id(dialect), 3, split_index, index)
                jobs.append((wav, pool[order[index % len(pool)]], speaker, rng_key))
            plan[(dialect, split)] = jobs
    return plan


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
    wav_path.parent.mkdir(parents=True, exist_ok=True)
    temporary = wav_path.with_name(f".{wav_path.name}.tmp{os.getpid()}")
    with wave.open(str(temporary), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(SAMPLE_RATE)
        handle.writeframes(samples.astype("<i2").tobytes())
    os.replace(temporary, wav_path)
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


def _claim_folder(root, options):
    """Checks ``root`` holds nothing or a build of the same options; records them."""
    recorded = read_json(root / BUILD_OPTIONS_FILE) or read_json(root / CORPUS_FILE)
    if recorded is not None:
        recorded = recorded.get("options", recorded)
        if recorded != options:
            differences = ", ".join(
                f"{key}={recorded.get(key)!r} there, {options[key]!r} asked"
                for key in options
                if recorded.get(key) != options[key]
            )
            raise ValueError(
                f"{root} holds a corpus built with other options ({differences}); "
                "delete it or choose another output folder"
            )
    elif root.is_dir() and any(root.iterdir()):
        raise ValueError(f"{root} is not empty and holds no sb-sparse synth corpus")
    root.mkdir(parents=True, exist_ok=True)
    write_json_atomic(root / BUILD_OPTIONS_FILE, options)
    for stale in root.glob("*/*/*/.*.tmp*"):
        stale.unlink()


def _split_stats(rows):
    """Speakers, utterances and hours of one split's manifest rows."""
    seconds = sum(row["duration"] for row in rows)
    return {
        "speakers": len({row["spk_id"] for row in rows}),
        "utterances": len(rows),
        "hours": round(seconds / 3600, 4),
        "mean_duration_s": round(seconds / len(rows), 3) if rows else 0.0,
    }


def build_corpus(
    out_dir,
    preset="micro",
    seed=0,
    source="en-us",
    targets=("en-gb-scotland", "en-029"),
    num_workers=2,
    sizes=None,
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

    Returns
    -------
    pathlib.Path
        The corpus root.
    """
    dialects = [voices.validate_voice(v) for v in [source, *targets]]
    if len(set(dialects)) != len(dialects):
        raise ValueError(f"source and targets must be distinct voices: {dialects}")
    options = {
        "generator_version": GENERATOR_VERSION,
        "preset": preset,
        "seed": int(seed),
        "source": source,
        "targets": list(targets),
        "sizes": resolve_sizes(preset, sizes),
    }
    root = Path(out_dir).resolve()
    corpus = read_json(root / CORPUS_FILE)
    if corpus is not None and corpus.get("options") == options:
        logger.info("Reusing the finished corpus in %s", root)
        return root
    _claim_folder(root, options)
    start = time.time()
    sentences = load_sentences()
    plan = plan_corpus(root, options, sentences)
    jobs = [job for group in plan.values() for job in group if not job[0].exists()]
    total = sum(len(group) for group in plan.values())
    logger.info(
        "Synthesising %d of %d utterances into %s with %s workers",
        len(jobs), total, root, num_workers,
    )
    _run_jobs(jobs, num_workers or os.cpu_count() or 1)
    stats = {}
    for (dialect, split), group in plan.items():
        split_dir = root / dialect / split
        split_dir.mkdir(parents=True, exist_ok=True)
        lines = "".join(f"{job[0].stem} {job[1]}\n" for job in group)
        write_text_atomic(split_dir / "text", lines)
        rows = split_manifest_rows(split_dir, dialect)
        write_csv_atomic(root / dialect / f"{split}.csv", rows, MANIFEST_FIELDS)
        stats.setdefault(dialect, {})[split] = _split_stats(rows)
    hours = sum(s["hours"] for d in stats.values() for s in d.values())
    corpus = {
        "options": options,
        "layout": "<dialect>/<split>/<spk_id>/<utt_id>.wav, <split>/text, <split>.csv",
        "sample_rate": SAMPLE_RATE,
        "sentences": {
            "total": len(sentences),
            **{split: len(pool) for split, pool in partition_sentences(
                sentences, options["seed"]).items()},
        },
        "espeak": voices.espeak_version(),
        "stats": stats,
        "total_hours": round(hours, 4),
    }
    write_json_atomic(root / CORPUS_FILE, corpus)
    wall = time.time() - start
    logger.info(
        "Corpus ready in %s: %.3f h of audio in %.1f s (%.0fx real time)",
        root, hours, wall, hours * 3600 / max(wall, 1e-9),
    )
    return root
