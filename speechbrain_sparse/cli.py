"""The ``sb-sparse`` command: one entry point, one module per subcommand.

Example
-------
>>> parser = build_parser()
>>> sorted(parser._subparsers._group_actions[0].choices)[:1] != []
True
"""

import argparse
import importlib
import logging
import pkgutil
import sys

from speechbrain_sparse import __version__, commands
from speechbrain_sparse.errors import UserInputError, user_error_message


def _command_modules():
    """Yields the subcommand modules found in ``speechbrain_sparse.commands``."""
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda i: i.name):
        if not info.name.startswith("_"):
            yield importlib.import_module(f"{commands.__name__}.{info.name}")


def build_parser():
    """Returns the argument parser with every discovered subcommand."""
    parser = argparse.ArgumentParser(
        prog="sb-sparse",
        description="Sparse fine-tuning and pruning for SpeechBrain speech models.",
    )
    parser.add_argument("--version", action="version", version=__version__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _command_modules():
        sub = subparsers.add_parser(
            module.NAME, help=module.HELP, description=module.HELP
        )
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv=None):
    """Runs ``sb-sparse`` with ``argv``; returns the exit status.

    A :class:`~speechbrain_sparse.errors.UserInputError`, or an ``OSError`` of
    a permission or a full disk, is printed as one line ``sb-sparse <command>:
    error: <message>`` (status 2,
    :func:`~speechbrain_sparse.errors.user_error_message`); any other exception
    propagates with its traceback.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except (UserInputError, OSError) as error:
        message = user_error_message(error)
        if message is None:
            raise
        print(f"sb-sparse {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
