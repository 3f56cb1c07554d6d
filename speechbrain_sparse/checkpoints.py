"""A SpeechBrain Checkpointer that never resumes from a half-written checkpoint.

SpeechBrain's :class:`~speechbrain.utils.checkpoints.Checkpointer` writes
``CKPT.yaml`` first and the recoverables' files after it, so a run killed while
saving leaves a folder that looks like the newest checkpoint and blocks every
later resume. :class:`ResumableCheckpointer` writes, after all files of a
checkpoint are on disk (``fsync``), a completion record ``CKPT.complete.json``
(atomically) listing each file and its size. A checkpoint counts only when its
record is there and every listed file has that size; others are left on disk,
never chosen, and named in a log line. A checkpoint written before this record
existed counts when every recoverable has a file and no ``torch.save`` archive
in it is truncated.

It also checkpoints the random-number states
(:class:`~speechbrain_sparse.rng_state.RNGState`, recoverable ``rng_state``)
and, next to every DataLoader SpeechBrain adds, the state of its samplers
(:class:`~speechbrain_sparse.rng_state.SamplerState`, ``<loader>-sampler``),
so that a resumed run, from an end-of-epoch or an intra-epoch checkpoint, sees
the batches and draws the numbers the uninterrupted run did.

Example
-------
>>> import tempfile, torch
>>> model = torch.nn.Linear(2, 2)
>>> checkpointer = ResumableCheckpointer(tempfile.mkdtemp(), {"model": model})
>>> first = checkpointer.save_checkpoint()
>>> second = checkpointer.save_checkpoint()
>>> _ = (second.path / "model.ckpt").write_bytes(b"PK\\x03\\x04")  # killed mid-save
>>> checkpointer.recover_if_possible().path == first.path
True
"""

import json
import logging
import os
import zipfile

import torch
import yaml
from speechbrain.dataio.dataloader import SaveableDataLoader
from speechbrain.utils.checkpoints import (
    METAFNAME,
    Checkpointer,
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)
from speechbrain.utils.distributed import if_main_process

from speechbrain_sparse.fileio import write_json_atomic
from speechbrain_sparse.rng_state import RNGState, SamplerState

logger = logging.getLogger(__name__)

COMPLETE_RECORD = "CKPT.complete.json"


@register_checkpoint_hooks
class StateDictRecoverable:
    """Checkpoint hooks for a plain object with ``state_dict`` / ``load_state_dict``.

    Subclasses (schedulers of masks, the Lagrangian controller, ...) become
    checkpoint recoverables: the checkpointer saves ``state_dict()`` with
    ``torch.save`` and gives it back to ``load_state_dict`` (CPU tensors).

    Example
    -------
    >>> class Counter(StateDictRecoverable):
    ...     count = 0
    ...     def state_dict(self):
    ...         return {"count": self.count}
    ...     def load_state_dict(self, state):
    ...         self.count = state["count"]
    >>> import tempfile
    >>> a, b = Counter(), Counter()
    >>> a.count = 3
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     a._save(folder + "/c.pt")
    ...     b._recover(folder + "/c.pt", end_of_epoch=False)
    >>> b.count
    3
    """

    @mark_as_saver
    def _save(self, path):
        torch.save(self.state_dict(), path)

    @mark_as_loader
    def _recover(self, path, end_of_epoch):
        del end_of_epoch
        self.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))


def _fsync(path):
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _truncated_archive(path):
    """Whether ``path`` is empty or a ``torch.save`` zip archive cut short."""
    with open(path, "rb") as handle:
        head = handle.read(4)
    return not head or (head == b"PK\x03\x04" and not zipfile.is_zipfile(path))


class ResumableCheckpointer(Checkpointer):
    """SpeechBrain's ``Checkpointer``; it ignores incomplete checkpoints and
    saves the random-number states (see the module docstring).

    Arguments are those of :class:`speechbrain.utils.checkpoints.Checkpointer`.
    The ``rng_state`` recoverable is added unless one is given; it is optional
    to load, so checkpoints written without it still resume.
    """

    def __init__(self, checkpoints_dir, recoverables=None, *args, **kwargs):
        super().__init__(checkpoints_dir, recoverables, *args, **kwargs)
        if "rng_state" not in self.recoverables:
            self.add_recoverable("rng_state", RNGState(), optional_load=True)
        self._reported = set()

    def add_recoverable(self, name, obj, *args, **kwargs):
        """SpeechBrain's ``add_recoverable``; a ``SaveableDataLoader`` brings
        the state of its samplers along (``<name>-sampler``, optional)."""
        super().add_recoverable(name, obj, *args, **kwargs)
        if isinstance(obj, SaveableDataLoader):
            super().add_recoverable(f"{name}-sampler", SamplerState(obj),
                                    optional_load=True)

    def save_checkpoint(self, meta=None, end_of_epoch=True, name=None,
                        verbosity=logging.INFO):
        """Saves a checkpoint as SpeechBrain does, then its completion record."""
        if name is not None and if_main_process():  # saved again under its name
            (self._custom_checkpoint_dirpath(name) / COMPLETE_RECORD).unlink(
                missing_ok=True)
        checkpoint = super().save_checkpoint(meta or {}, end_of_epoch, name,
                                             verbosity)
        if checkpoint is not None and if_main_process():
            sizes = {}
            for path in sorted(checkpoint.path.iterdir()):
                if path.is_file():
                    _fsync(path)
                    sizes[path.name] = path.stat().st_size
            write_json_atomic(checkpoint.path / COMPLETE_RECORD, sizes)
        return checkpoint

    def list_checkpoints(self):
        """The complete checkpoints; incomplete ones are named in a log line."""
        complete = []
        for folder in self._list_checkpoint_dirs():
            try:
                [checkpoint] = self._construct_checkpoint_objects([folder])
            except (OSError, yaml.YAMLError):
                checkpoint = None
            if checkpoint is None or not isinstance(checkpoint.meta, dict):
                problem = f"{METAFNAME} unreadable"
            else:
                problem = self.incomplete_because(checkpoint)
            if problem is None:
                complete.append(checkpoint)
            elif folder not in self._reported and if_main_process():
                self._reported.add(folder)
                logger.warning("Ignoring the incomplete checkpoint %s (%s); it was "
                               "probably interrupted while being saved",
                               folder, problem)
        return complete

    def incomplete_because(self, checkpoint):
        """Why ``checkpoint`` is incomplete, or None when it is complete.

        Arguments
        ---------
        checkpoint : speechbrain.utils.checkpoints.Checkpoint
            As listed by SpeechBrain.

        Returns
        -------
        str or None
        """
        record = checkpoint.path / COMPLETE_RECORD
        if record.exists():
            try:
                sizes = json.loads(record.read_text(encoding="utf-8"))
            except ValueError:
                return f"{COMPLETE_RECORD} unreadable"
            for name, size in sizes.items():
                path = checkpoint.path / name
                if not path.is_file() or path.stat().st_size != size:
                    return f"{name} missing or not {size} bytes"
            return None
        # Written before completion records: every recoverable has an intact file.
        for name in self.recoverables:
            path = checkpoint.paramfiles.get(name)
            if path is None:
                if self.optional_recoverables.get(name) or "dataloader" in name:
                    continue
                return f"no file for {name}, no {COMPLETE_RECORD}"
            if _truncated_archive(path):
                return f"{path.name} truncated, no {COMPLETE_RECORD}"
        return None

    def load_checkpoint(self, checkpoint):
        """Loads ``checkpoint``; after an intra-epoch one, the random-number
        states are restored again just before the next training batch."""
        super().load_checkpoint(checkpoint)
        rng = self.recoverables.get("rng_state")
        brain = self.recoverables.get("brain")
        if (not checkpoint.meta.get("end-of-epoch", True)
                and isinstance(rng, RNGState) and rng.loaded is not None
                and "rng_state" in checkpoint.paramfiles and brain is not None):
            rng.restore_before_next_batch(brain)

