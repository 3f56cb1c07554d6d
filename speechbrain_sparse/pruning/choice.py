"""One of several YAML-built objects, chosen by a plain key.

A YAML builds every variant of a method and a top-level key names the one to
use, so the variant stays a plain command-line override (``--prune_method
magnitude``) while each object keeps its own settings::

    prune_method: obs
    pruner: !apply:speechbrain_sparse.pruning.choice.choose
        key: prune_method
        value: !ref <prune_method>
        choices:
            obs: !new:speechbrain_sparse.pruning.oneshot.OneShotPruner
            magnitude: !new:speechbrain_sparse.pruning.magnitude.MagnitudePruner

Example
-------
>>> choose("prune_method", "obs", {"obs": 1, "magnitude": 2})
1
>>> choose("mixed_sparsity", False, {True: "mixed", False: None}) is None
True
>>> choose("prune_method", "l1", {"obs": 1, "magnitude": 2})  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
speechbrain_sparse.errors.UserInputError: prune_method must be one of [...], got 'l1'
"""

from speechbrain_sparse.errors import UserInputError


def choose(key, value, choices):
    """Returns ``choices[value]``; a UserInputError naming ``key`` if none.

    Arguments
    ---------
    key : str
        The name of the setting (for the error message).
    value : hashable
        The chosen name (a bool chooses between ``True`` and ``False``).
    choices : dict
        Name -> object.

    Returns
    -------
    object
    """
    try:
        return choices[value]
    except (KeyError, TypeError):
        names = sorted(str(name) for name in choices)
        raise UserInputError(f"{key} must be one of {names}, got {value!r}") from None
