"""Subcommands of ``sb-sparse``.

Each module here defines ``NAME`` (the subcommand), ``HELP`` (one line) and
``add_arguments(parser)`` plus ``run(args) -> int``. The CLI discovers them, so a
new command is one new module. A mistake in the user's input raises
:class:`UserError`, which ``sb-sparse`` prints as one line.

Example
-------
>>> isinstance(UserError("--density: must be in (0, 1]"), UserInputError)
True
"""

from speechbrain_sparse.errors import UserInputError


class UserError(UserInputError):
    """A problem with the command-line arguments: printed as one line, exit status 2."""
