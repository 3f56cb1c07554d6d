"""Running a step on the main process only, with its failure raised on every rank.

SpeechBrain's ``run_on_main`` runs a function (data preparation, say) on the
main process while the other DDP ranks wait for its result. If the function
raises, the main process leaves and the others wait for ever.
:func:`run_on_main_or_raise` hands the exception to the other ranks instead, so
every rank raises the same error (the main process with its traceback).

Example
-------
>>> run_on_main_or_raise(sorted, args=[[3, 1, 2]])
[1, 2, 3]
>>> run_on_main_or_raise(int, args=["x"])
Traceback (most recent call last):
    ...
ValueError: invalid literal for int() with base 10: 'x'
"""

import pickle

from speechbrain.utils.distributed import run_on_main


def _portable(error):
    """``error`` if it survives pickling (as broadcasting needs), else a stand-in."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:  # any pickling failure gets the stand-in
        return RuntimeError(f"the main process failed: {type(error).__name__}: {error}")
    return error


def run_on_main_or_raise(func, args=None, kwargs=None):
    """Runs ``func`` on the main process; returns its result on every rank.

    Unlike ``speechbrain.utils.distributed.run_on_main``, an exception raised
    by ``func`` reaches every rank: the main process re-raises it with its
    traceback, the others raise a copy of it (or a ``RuntimeError`` naming it
    when it cannot be pickled). Without DDP this is a plain call.

    Arguments
    ---------
    func : callable
        The function to run on the main process.
    args : list, optional
        Its positional arguments.
    kwargs : dict, optional
        Its keyword arguments.

    Returns
    -------
    What ``func`` returned on the main process.

    Example
    -------
    >>> run_on_main_or_raise(dict, kwargs={"a": 1})
    {'a': 1}
    """
    raised = []

    def guarded(*args, **kwargs):
        try:
            return func(*args, **kwargs), None
        except Exception as error:  # handed to every rank below
            raised.append(error)
            return None, _portable(error)

    result, error = run_on_main(guarded, args=args, kwargs=kwargs)
    if raised:  # the main process: the original, with its traceback
        raise raised[0]
    if error is not None:
        raise error
    return result
