"""``sb-sparse combine``: union or intersection of two mask files (Table IV).

Example
-------
>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> add_arguments(parser)
>>> args = parser.parse_args(["--op", "union", "a.pt", "b.pt", "--out", "c.pt"])
>>> args.op, args.first, args.second
('union', 'a.pt', 'b.pt')
"""

from speechbrain_sparse.commands import UserError
from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.fileio import check_writable
from speechbrain_sparse.masks import ParameterMask

NAME = "combine"
HELP = "combine two masks: union, intersection or difference"
OPERATIONS = {
    "union": lambda a, b: a | b,
    "intersection": lambda a, b: a & b,
    "difference": lambda a, b: a - b,
}


def add_arguments(parser):
    """Adds the ``combine`` options to ``parser``."""
    parser.add_argument(
        "--op",
        required=True,
        choices=sorted(OPERATIONS),
        help="set operation (difference: in FIRST, not in SECOND)",
    )
    parser.add_argument("first", help="first mask file")
    parser.add_argument("second", help="second mask file")
    parser.add_argument("--out", required=True, help="mask file to write")


def run(args):
    """Writes the combined mask; masks over different parameters raise UserError."""
    check_writable(args.out, "--out")
    first = ParameterMask.load(args.first)
    second = ParameterMask.load(args.second)
    try:
        combined = OPERATIONS[args.op](first, second)
    except UserInputError as error:
        raise UserError(
            f"{args.first} and {args.second} cannot be combined: {error}"
        ) from error
    combined.options["files"] = [str(args.first), str(args.second)]
    combined.save(args.out)
    print(
        f"wrote {args.out}: {args.op} of densities {first.density():.6f} and "
        f"{second.density():.6f} -> {combined.density():.6f} "
        f"({combined.num_selected()} of {combined.numel()} entries)"
    )
    return 0
