"""The project's error types: bad input that the user can fix.

Code that finds a mistake in what the user gave (a file, a manifest row, a
YAML key, a command-line parameter) raises :class:`UserInputError`, with a
message that names the file, row, key or parameter; a missing file or folder
raises :class:`MissingInputError`. A top level (``sb-sparse``, a recipe's
``train.py``) catches only these and prints them as one line, so anything else,
such as a ``ValueError`` raised inside PyTorch or Transformers by a bug, keeps
its traceback.

Both also derive from the built-in type their callers used to catch
(``ValueError``; ``FileNotFoundError``), so ``except ValueError`` still works.

Example
-------
>>> error = MissingInputError("masks/a.pt: mask file not found")
>>> isinstance(error, UserInputError), isinstance(error, FileNotFoundError)
(True, True)
>>> def main(argv):
...     raise UserInputError(f"{argv[0]}: no such dialect")
>>> exit_on_user_error(main, ["xx"], "train.py")
Traceback (most recent call last):
    ...
SystemExit: train.py: error: xx: no such dialect
"""

import sys


class UserInputError(ValueError):
    """Bad input the user can fix; the message names the file, row, key or parameter."""


class MissingInputError(UserInputError, FileNotFoundError):
    """A file or folder that the user named (or the input implies) does not exist."""


def exit_on_user_error(main, argv, prog):
    """Returns ``main(argv)``; a :class:`UserInputError` exits with one line.

    The line is ``<prog>: error: <message>`` on stderr, exit status 1. Every
    other exception propagates with its traceback.

    Arguments
    ---------
    main : callable
        The entry point, called with ``argv``.
    argv : list of str
        The command-line arguments.
    prog : str
        The program's name, at the start of the error line.

    Returns
    -------
    Whatever ``main`` returns.

    Example
    -------
    >>> exit_on_user_error(len, ["a", "b"], "count")
    2
    """
    try:
        return main(argv)
    except UserInputError as error:
        sys.exit(f"{prog}: error: {error}")
