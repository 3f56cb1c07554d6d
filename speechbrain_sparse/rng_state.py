"""The random-number state as a checkpoint recoverable, so a resume is exact.

:class:`RNGState` saves the states of torch (CPU, and CUDA once it is in use),
numpy's global generator and Python's ``random`` in a checkpoint and restores
them on recovery; under DDP every rank's state is kept (gathered to the main
process) and each rank gets its own back. SpeechBrain's samplers
(``ReproducibleRandomSampler``, ``DynamicBatchSampler``) draw from their own
generators seeded with ``seed + epoch``, and ``SaveableDataLoader`` checkpoints
its position in the epoch; but without DDP nothing calls ``set_epoch`` on a
sampler the recipe passes in, and ``DynamicBatchSampler`` reshuffles its batches
at the end of each pass, so the order of an epoch depends on how many passes
the sampler object made. :class:`SamplerState` checkpoints that (the epoch and
the batch list of the loader's samplers). With both restored a resumed run sees
the same batches and draws the same dropout masks as an uninterrupted one.

An intra-epoch checkpoint needs one more step: when training resumes in the
middle of an epoch, creating the DataLoader iterator draws its base seed from
the torch generator, which the uninterrupted run did at the start of the epoch.
:meth:`RNGState.restore_before_next_batch` therefore restores the states again
just before the next training batch
(:class:`~speechbrain_sparse.checkpoints.ResumableCheckpointer` does this).

Example
-------
>>> import random, tempfile, os
>>> state = RNGState()
>>> path = os.path.join(tempfile.mkdtemp(), "rng_state.ckpt")
>>> state.save(path)
>>> expected = (torch.rand(2), np.random.rand(), random.random())
>>> state.load(path, end_of_epoch=True)
>>> again = (torch.rand(2), np.random.rand(), random.random())
>>> torch.equal(expected[0], again[0]), expected[1:] == again[1:]
(True, True)
"""

import random

import numpy as np
import torch
import torch.distributed
from speechbrain.utils.checkpoints import (
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)


def current_rng_states():
    """The states of torch (CPU, CUDA when initialised), numpy and ``random``.

    Returns
    -------
    dict
        Tensors, ints and tuples only (loads with ``weights_only=True``).
    """
    numpy_state = np.random.get_state(legacy=False)
    states = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "bit_generator": numpy_state["bit_generator"],
            "key": torch.from_numpy(numpy_state["state"]["key"].astype(np.int64)),
            "pos": int(numpy_state["state"]["pos"]),
            "has_gauss": int(numpy_state["has_gauss"]),
            "gauss": float(numpy_state["gauss"]),
        },
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states):
    """Restores what :func:`current_rng_states` returned.

    Arguments
    ---------
    states : dict
        From :func:`current_rng_states`; CUDA states are restored only where
        CUDA is available, for the devices there are.

    Example
    -------
    >>> states = current_rng_states()
    >>> first = torch.rand(3)
    >>> set_rng_states(states)
    >>> torch.equal(first, torch.rand(3))
    True
    """
    torch.set_rng_state(states["torch"])
    numpy_state = states["numpy"]
    np.random.set_state({
        "bit_generator": numpy_state["bit_generator"],
        "state": {"key": numpy_state["key"].numpy().astype(np.uint32),
                  "pos": numpy_state["pos"]},
        "has_gauss": numpy_state["has_gauss"],
        "gauss": numpy_state["gauss"],
    })
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in states and torch.cuda.is_available():
        for index, state in enumerate(states["cuda"][:torch.cuda.device_count()]):
            torch.cuda.set_rng_state(state, index)


def _distributed():
    return torch.distributed.is_available() and torch.distributed.is_initialized()


class RNGState:
    """A checkpoint recoverable holding the random-number states (see module doc).

    Under DDP its saver runs on every rank (it gathers the states to the main
    process, which writes them); the loader gives each rank its own state, or
    the main process's when the checkpoint comes from fewer ranks.
    """

    def __init__(self):
        self.loaded = None

    @mark_as_saver
    def save(self, path):
        """Writes every rank's states to ``path`` (the main process writes)."""
        states = [current_rng_states()]
        if _distributed():
            gathered = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(gathered, states[0])
            states = gathered
        if not _distributed() or torch.distributed.get_rank() == 0:
            torch.save({"ranks": states}, path)

    @mark_as_loader
    def load(self, path, end_of_epoch):
        """Restores this rank's states from ``path`` now (and keeps them)."""
        del end_of_epoch  # both kinds of checkpoint restore the same way
        ranks = torch.load(path, map_location="cpu", weights_only=True)["ranks"]
        rank = torch.distributed.get_rank() if _distributed() else 0
        self.loaded = ranks[rank] if rank < len(ranks) else ranks[0]
        set_rng_states(self.loaded)

    def restore_before_next_batch(self, brain):
        """Restores the loaded states again right before ``brain``'s next batch.

        For an intra-epoch checkpoint: what runs between recovery and the first
        batch of the resumed epoch (the DataLoader iterator drawing its seed)
        must not shift the states the uninterrupted run had at this point.

        Arguments
        ---------
        brain : speechbrain.Brain
            Its next ``fit_batch`` call restores the states first (once).

        Example
        -------
        >>> class Brain:
        ...     def fit_batch(self, batch):
        ...         return torch.rand(1)
        >>> brain, rng = Brain(), RNGState()
        >>> rng.loaded = current_rng_states()
        >>> rng.restore_before_next_batch(brain)
        >>> _ = torch.rand(5)  # e.g. a DataLoader iterator's seed
        >>> first = brain.fit_batch(None)
        >>> set_rng_states(rng.loaded)
        >>> torch.equal(first, torch.rand(1)), "fit_batch" in vars(brain)
        (True, False)
        """
        states = self.loaded
        fit_batch = brain.fit_batch

        def restore_then_fit(batch):
            del brain.fit_batch  # back to the class's method
            set_rng_states(states)
            return fit_batch(batch)

        brain.fit_batch = restore_then_fit


# Every rank runs the saver: it gathers the states of all ranks.
register_checkpoint_hooks(RNGState, save_on_main_only=False)


SAMPLER_FIELDS = ("epoch", "_epoch", "_batches")


def loader_samplers(loader):
    """The samplers of ``loader``: its batch sampler and sampler, and what they wrap."""
    found = []
    for sampler in (loader.batch_sampler, loader.sampler):
        while sampler is not None and all(sampler is not seen for seen in found):
            found.append(sampler)
            sampler = getattr(sampler, "sampler", None)
    return found


@register_checkpoint_hooks
class SamplerState:
    """A checkpoint recoverable for the state of a DataLoader's samplers.

    Saves ``epoch`` / ``_epoch`` and ``_batches`` (``DynamicBatchSampler``'s
    batches of the current pass) of every sampler of the loader, and sets them
    back on recovery, before the loader makes its next iterator.

    Arguments
    ---------
    loader : torch.utils.data.DataLoader
        The training loader (SpeechBrain's ``SaveableDataLoader``).

    Example
    -------
    >>> import tempfile, os
    >>> from speechbrain.dataio.sampler import ReproducibleRandomSampler
    >>> data = list(range(6))
    >>> sampler = ReproducibleRandomSampler(data, seed=1)
    >>> loader = torch.utils.data.DataLoader(data, sampler=sampler)
    >>> sampler.set_epoch(3)
    >>> path = os.path.join(tempfile.mkdtemp(), "sampler.ckpt")
    >>> SamplerState(loader).save(path)
    >>> sampler.set_epoch(0)
    >>> SamplerState(loader).load(path, end_of_epoch=False)
    >>> sampler.epoch
    3
    """

    def __init__(self, loader):
        self.loader = loader

    @mark_as_saver
    def save(self, path):
        """Writes the samplers' classes and fields to ``path``."""
        torch.save([
            {"class": type(sampler).__name__,
             **{name: getattr(sampler, name) for name in SAMPLER_FIELDS
                if hasattr(sampler, name)}}
            for sampler in loader_samplers(self.loader)
        ], path)

    @mark_as_loader
    def load(self, path, end_of_epoch):
        """Sets the saved fields back (samplers matched by position and class)."""
        del end_of_epoch  # the state is that of the next batch either way
        saved = torch.load(path, weights_only=True)
        samplers = loader_samplers(self.loader)
        if [type(s).__name__ for s in samplers] != [s["class"] for s in saved]:
            return  # another data setup: nothing to restore
        for sampler, fields in zip(samplers, saved):
            for name in SAMPLER_FIELDS:
                if name in fields:
                    setattr(sampler, name, fields[name])
