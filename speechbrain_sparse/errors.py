"""The project's error types: bad input that the user can fix.

Code that finds a mistake in what the user gave (a file, a manifest row, a
YAML key, a command-line parameter) raises :class:`UserInputError`, with a
message that names the file, row, key or parameter; a missing file or folder
raises :class:`MissingInputError`. A top level (``sb-sparse``, a recipe's
``train.py``) catches only these, and an ``OSError`` of a permission or a full
disk (:data:`ENVIRONMENT_ERRNOS`), and prints them as one line
(:func:`user_error_message`), so anything else, such as a ``ValueError`` raised
inside PyTorch or Transformers by a bug, keeps its traceback.

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

import errno
import sys

#: ``OSError`` numbers that the place the user chose causes, not a bug: no
#: permission, a read-only or full file system, a file where a folder should be.
ENVIRONMENT_ERRNOS = frozenset({
    errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT,
    errno.ENOTDIR, errno.EISDIR,
})


class UserInputError(ValueError):
    """Bad input the user can fix; the message names the file, row, key or parameter."""


class MissingInputError(UserInputError, FileNotFoundError):
    """A file or folder that the user named (or the input implies) does not exist."""


def user_error_message(error):
    """The one line that reports ``error`` to the user, or None for a bug.

    A :class:`UserInputError` is its message; an ``OSError`` of
    :data:`ENVIRONMENT_ERRNOS` (permissions, a full disk, ...) is
    ``<file>: <reason>``; anything else is a bug and gets None.

    Example
    -------
    >>> user_error_message(PermissionError(13, "Permission denied", "/out/m.pt"))
    '/out/m.pt: Permission denied'
    >>> user_error_message(OSError(28, "No space left on device"))
    'cannot write: No space left on device'
    >>> user_error_message(KeyError("optimizer")) is None
    True
    """
    if isinstance(error, UserInputError):
        return str(error)
    if isinstance(error, OSError) and error.errno in ENVIRONMENT_ERRNOS:
        files = [name for name in (error.filename, error.filename2) if name]
        where = " -> ".join(map(str, files)) if files else "cannot write"
        return f"{where}: {error.strerror or error}"
    return None


def exit_on_user_error(main, argv, prog):
    """Returns ``main(argv)``; a :class:`UserInputError` exits with one line.

    The line is ``<prog>: error: <message>`` on stderr, exit status 1; an
    ``OSError`` of a permission or a full disk is reported the same way
    (:func:`user_error_message`). Every other exception propagates with its
    traceback.

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
    except OSError as error:  # UserInputError too (MissingInputError is an OSError)
        message = user_error_message(error)
        if message is None:
            raise
        sys.exit(f"{prog}: error: {message}")
    except UserInputError as error:
        sys.exit(f"{prog}: error: {error}")
