"""``sb-sparse synth``: build the synthetic multi-dialect eSpeak NG corpus.

The ``ml_*`` presets build the multilingual corpus instead (a folder per language,
``--languages``; see :mod:`speechbrain_sparse.data.languages`).

Example
-------
>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> add_arguments(parser)
>>> args = parser.parse_args(["--out", "corpus", "--targets", "en-029,en-gb"])
>>> args.preset, parse_targets(args.targets), args.text
('micro', ['en-029', 'en-gb'], 'closed')
>>> parser.parse_args(["--out", "c", "--preset", "ml_tiny"]).languages is None
True
"""

from speechbrain_sparse.commands import UserError
from speechbrain_sparse.data.languages import LANGUAGES
from speechbrain_sparse.data.sentences import TEXT_DOMAINS
from speechbrain_sparse.data.synth import (
    ML_PRESETS,
    PRESETS,
    build_corpus,
    build_multilingual_corpus,
    corpus_stats_table,
)

NAME = "synth"
HELP = "build the synthetic multi-dialect or multilingual speech corpus (eSpeak NG)"


def parse_targets(text):
    """Splits ``--targets`` (comma-separated voices) into a list.

    Example
    -------
    >>> parse_targets(" en-029 , en-gb-scotland ")
    ['en-029', 'en-gb-scotland']
    """
    targets = [name.strip() for name in text.split(",") if name.strip()]
    if not targets:
        raise UserError("--targets needs at least one eSpeak NG voice")
    return targets


def add_arguments(parser):
    """Adds the ``synth`` options to ``parser``."""
    parser.add_argument(
        "--preset",
        choices=[*sorted(PRESETS), *sorted(ML_PRESETS)],
        default="micro",
        help="corpus size; ml_micro and ml_tiny build the multilingual corpus",
    )
    parser.add_argument("--out", required=True, help="corpus root folder")
    parser.add_argument("--seed", type=int, default=0, help="random seed")
    parser.add_argument(
        "--source", default="en-us", help="high-resource dialect (eSpeak NG voice)"
    )
    parser.add_argument(
        "--targets",
        default="en-gb-scotland,en-029",
        help="low-resource dialects, comma-separated eSpeak NG voices",
    )
    parser.add_argument(
        "--text",
        choices=TEXT_DOMAINS,
        default="closed",
        help="closed: clauses written with a ~700-word vocabulary that every "
        "dialect's train split covers; open: every English fortune sentence",
    )
    parser.add_argument(
        "--languages",
        default=None,
        help="ml_* presets only: comma-separated languages, each optionally with "
        f"its voice as code:voice (of {', '.join(LANGUAGES)}; default: the "
        "preset's, ml_micro fr,nl and ml_tiny en,fr,it,nl)",
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes")


def run(args):
    """Builds (or reuses) the corpus; prints its stats table, then its root.

    Bad voices raise a UserInputError.
    """
    if args.preset in ML_PRESETS:
        if args.text != "closed":
            raise UserError("the multilingual presets read closed-vocabulary text only")
        languages = args.languages and [
            code.strip() for code in args.languages.split(",") if code.strip()
        ]
        root = build_multilingual_corpus(
            args.out,
            preset=args.preset,
            seed=args.seed,
            languages=languages or None,
            num_workers=args.workers,
        )
    elif args.languages:
        raise UserError("--languages needs a multilingual preset (ml_micro, ml_tiny)")
    else:
        root = build_corpus(
            args.out,
            preset=args.preset,
            seed=args.seed,
            source=args.source,
            targets=parse_targets(args.targets),
            num_workers=args.workers,
            text_domain=args.text,
        )
    print("\n".join(corpus_stats_table(root)))
    print(root)
    return 0
