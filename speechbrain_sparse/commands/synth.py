"""``sb-sparse synth``: build the synthetic multi-dialect eSpeak NG corpus.

Example
-------
>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> add_arguments(parser)
>>> args = parser.parse_args(["--out", "corpus", "--targets", "en-029,en-gb"])
>>> args.preset, parse_targets(args.targets), args.text
('micro', ['en-029', 'en-gb'], 'closed')
"""

from speechbrain_sparse.commands import UserError
from speechbrain_sparse.data.sentences import TEXT_DOMAINS
from speechbrain_sparse.data.synth import PRESETS, build_corpus, corpus_stats_table

NAME = "synth"
HELP = "build the synthetic multi-dialect speech corpus (eSpeak NG)"


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
        "--preset", choices=sorted(PRESETS), default="micro", help="corpus size"
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
    parser.add_argument("--workers", type=int, default=2, help="worker processes")


def run(args):
    """Builds (or reuses) the corpus; prints its stats table, then its root.

    Bad voices raise a UserInputError.
    """
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
