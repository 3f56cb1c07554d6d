"""Measures ``recipes/MLS/mls_prepare.py`` on a large transcripts/segments fixture.

Writes ``mls_french/train/{transcripts,segments}.txt`` of ``--lines`` utterances
(about 200 characters of text each, some with decomposed accents that NFC
composes) and a ``metainfo.txt`` into a temporary folder, without any audio,
then times ``prepare_mls(..., check_audio=False)``: transcripts and segments
read, ids checked, text normalised and the whole manifest written; the audio
paths are not checked (there is no audio; ``skip_missing`` would leave every
row out). The targets (issue 12) are 60 s and 2 GB of peak RSS for 1 M lines.

Usage: ``python tools/bench/mls_prepare_speed.py [--lines 1000000]``
Last line: ``RESULT seconds=<float> peak_rss_mb=<float> lines=<int>``
"""

import argparse
import csv
import importlib.util
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
WORDS = ("le", "petit", "prince", "était", "cafe\u0301", "dans", "une", "forêt",
         "où", "l'arbre", "grand-père", "parlait", "de", "la", "mer", "et", "du",
         "ciel", "noe\u0308l", "très", "doucement")
UTTERANCES_PER_BOOK = 200
BOOKS_PER_SPEAKER = 10


def load_prepare():
    """Imports the recipe's ``mls_prepare.py`` (recipes are not packages)."""
    path = REPO / "recipes" / "MLS" / "mls_prepare.py"
    spec = importlib.util.spec_from_file_location("mls_prepare", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def utterance_id(index):
    """The ``<spk>_<book>_<utt>`` id of utterance ``index``.

    Example
    -------
    >>> utterance_id(0), utterance_id(2001)
    ('1000_5000_000000', '1001_5000_000001')
    """
    per_speaker = UTTERANCES_PER_BOOK * BOOKS_PER_SPEAKER
    speaker = 1000 + index // per_speaker
    book = 5000 + (index // UTTERANCES_PER_BOOK) % BOOKS_PER_SPEAKER
    return f"{speaker}_{book}_{index % UTTERANCES_PER_BOOK:06d}"


def write_fixture(corpus, lines, chunk=50_000):
    """Writes the train split's text files and ``metainfo.txt`` under ``corpus``."""
    train = corpus / "train"
    train.mkdir(parents=True)
    sentences = [" ".join(WORDS[(k * 7 + j * 3) % len(WORDS)] for j in range(35))
                 for k in range(997)]
    with open(train / "transcripts.txt", "w", encoding="utf-8") as texts, \
            open(train / "segments.txt", "w", encoding="utf-8") as segments:
        for first in range(0, lines, chunk):
            ids = [(i, utterance_id(i))
                   for i in range(first, min(first + chunk, lines))]
            texts.write("".join(f"{utt}\t{sentences[i % 997]}\n" for i, utt in ids))
            segments.write("".join(
                f"{utt}\thttp://www.archive.org/download/b/{utt[:9]}.mp3\t"
                f"{12.5 * (i % 200):.2f}\t{12.5 * (i % 200) + 10 + i % 7:.2f}\n"
                for i, utt in ids))
    speakers = sorted({utterance_id(i).split("_")[0] for i in range(0, lines, 1000)})
    with open(corpus / "metainfo.txt", "w", encoding="utf-8") as meta:
        meta.write(" SPEAKER | GENDER | PARTITION | MINUTES | BOOK ID | TITLE | "
                   "CHAPTER\n")
        meta.writelines(f" {spk} | {'MF'[int(spk) % 2]} | train | 60.0 | 5000 | "
                        "A Book | Chapter 1\n" for spk in speakers)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    prepare = load_prepare()
    with tempfile.TemporaryDirectory(prefix="bench_mls_prepare_") as folder:
        corpus = Path(folder) / "mls_french"
        write_fixture(corpus, args.lines)
        start = time.perf_counter()
        paths = prepare.prepare_mls(folder, Path(folder) / "out", "french",
                                    splits=["train"], check_audio=False)
        seconds = time.perf_counter() - start
        with open(paths["train"], newline="", encoding="utf-8") as handle:
            rows = sum(1 for _ in csv.reader(handle)) - 1
    if rows != args.lines:
        sys.exit(f"expected {args.lines} manifest rows, got {rows}")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"RESULT seconds={seconds:.2f} peak_rss_mb={peak_mb:.0f} lines={rows}")


if __name__ == "__main__":
    main()
