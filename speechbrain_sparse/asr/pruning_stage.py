"""SparseWAV inside the ASR recipes: prune, fine-tune, re-prune.

A stage YAML builds the pruning objects and names the rounds (see
``recipes/Synthetic/ASR/transformer/hparams/prune_obs_tiny.yaml``):

* ``prune_sparsities``: the schedule, one target sparsity per round, e.g.
  ``[0.75]`` (SparseWAV one-pass) or ``[0.7, 0.8, 0.9]`` (progressive);
* ``pruner``: prunes one round, ``pruner.prune(model, family, calibration
  batches, sparsity, must_prune=<the mask of the round before>)``:
  :class:`~speechbrain_sparse.pruning.oneshot.OneShotPruner` (layer-wise OBS,
  holding its saliency, block size, dampening and optional
  :class:`~speechbrain_sparse.pruning.mixed_sparsity.MixedSparsity`) or
  :class:`~speechbrain_sparse.pruning.magnitude.MagnitudePruner` (the
  baseline), chosen by the plain key ``prune_method`` through
  :func:`~speechbrain_sparse.pruning.choice.choose`;
* ``calibration``: a :class:`CalibrationData` (how many utterances of the
  training manifest, in batches of which size, drawn with which seed);
* ``finetune_max_utterances`` (optional): fine-tune on a random subset of the
  training manifest of this size.

The pretrained model (loaded by the ``pretrainer``) is pruned to the first
sparsity, fine-tuned for ``number_of_epochs`` epochs with the mask in
``prune`` mode (pruned entries exactly zero after every optimizer step, see
:class:`~speechbrain_sparse.training.MaskedTrainingMixin`), re-pruned to the
next sparsity with the existing zeros kept (``must_prune``), and so on.
``number_of_epochs: 0`` gives the one-shot pruned model, evaluated as is.

Each round ``r`` has its own
:class:`~speechbrain_sparse.checkpoints.ResumableCheckpointer` on
``<save_folder>/round<r>`` (the YAML checkpointer's recoverables, the mask
enforcer added by the round, so a round never recovers the mask of another)
and its own :class:`~speechbrain.utils.epoch_loop.EpochCounter`, which counts
on from the epochs of the earlier rounds and stops at the end of the round;
the brain's ``checkpointer`` and ``hparams.epoch_counter`` are the round's
while it runs. A round writes ``round<r>/mask.pt`` and
``round<r>/pruned_model.ckpt`` right after pruning, so a resumed run continues
exactly where it stopped. The last round's mask is also
``<output_folder>/mask.pt``; the per-round reports are in
``<output_folder>/pruning_info.json``. Only the last round's checkpoints are
evaluated.

Example
-------
>>> from hyperpyyaml import load_hyperpyyaml
>>> settings = pruning_settings(load_hyperpyyaml('''
... prune_sparsities: [0.7, 0.8]
... pruner: !new:speechbrain_sparse.pruning.magnitude.MagnitudePruner
... calibration: !new:speechbrain_sparse.asr.pruning_stage.CalibrationData
...     num_utterances: 16
... '''))
>>> settings["sparsities"], settings["pruner"].describe()["method"]
([0.7, 0.8], 'magnitude')
>>> settings["calibration"].num_utterances, settings["calibration"].batch_size
(16, 8)
"""

import json
import logging
import random
import time
from pathlib import Path

import speechbrain as sb
import torch
from speechbrain.utils.epoch_loop import EpochCounter

from speechbrain_sparse.asr.data import train_loader_options
from speechbrain_sparse.asr.options import checked_options
from speechbrain_sparse.checkpoints import ResumableCheckpointer
from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.masks import ParameterMask
from speechbrain_sparse.pruning.calibration import load_calibration_batches
from speechbrain_sparse.pruning.model_families import TransformerASRFamily
from speechbrain_sparse.pruning.oneshot import check_sparsity

logger = logging.getLogger(__name__)


class CalibrationData:
    """Which utterances of the training manifest calibrate the pruner.

    Arguments
    ---------
    num_utterances : int
        Utterances drawn at random from the manifest.
    batch_size : int
        Utterances per calibration batch.
    seed : int
        Seed of the draw (also of the ``finetune_max_utterances`` subset).

    Example
    -------
    >>> CalibrationData(num_utterances=0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    speechbrain_sparse.errors.UserInputError: num_utterances ... must be >= 1, got 0
    """

    def __init__(self, num_utterances=128, batch_size=8, seed=0):
        for name, value in (("num_utterances (num_calibration)", num_utterances),
                            ("batch_size (calibration_batch_size)", batch_size)):
            if int(value) < 1:
                raise UserInputError(f"{name} must be >= 1, got {value!r}")
        self.num_utterances = int(num_utterances)
        self.batch_size = int(batch_size)
        self.seed = int(seed)

    def load(self, manifest, tokenizer=None, bos_index=None, eos_index=None,
             max_duration=None):
        """The calibration batches of ``manifest`` (see ``load_calibration_batches``).

        With a ``tokenizer`` (an attention decoder) the batches carry the
        decoder's tokens too; without, audio only (a CTC model).
        """
        return load_calibration_batches(
            manifest, self.num_utterances, self.batch_size, self.seed,
            tokenizer=tokenizer, bos_index=bos_index, eos_index=eos_index,
            max_duration=max_duration)


def check_schedule(sparsities):
    """The rounds' sparsities as floats; a ValueError naming ``prune_sparsities``.

    Example
    -------
    >>> check_schedule(0.5), check_schedule([0.5, 0.7])
    ([0.5], [0.5, 0.7])
    >>> check_schedule([0.7, 0.5])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    speechbrain_sparse.errors.UserInputError: prune_sparsities must not ... [0.7, 0.5]
    """
    if isinstance(sparsities, (int, float)):
        sparsities = [sparsities]
    if not sparsities:
        raise UserInputError(f"prune_sparsities must be a non-empty list of values "
                             f"in [0, 1), got {sparsities!r}")
    for value in sparsities:
        check_sparsity(value, "each of prune_sparsities")
    values = [float(s) for s in sparsities]
    if values != sorted(values):
        raise UserInputError(f"prune_sparsities must not decrease: {sparsities!r}")
    return values


def pruning_settings(hparams):
    """The stage's objects from a stage YAML, checked: keyword arguments of
    :func:`prune_and_finetune` (see the module docstring for the keys)."""
    hparams = checked_options(hparams)
    missing = [key for key in ("prune_sparsities", "pruner", "calibration")
               if hparams[key] is None]
    if missing:
        raise UserInputError(f"a pruning stage needs {missing} in its YAML (see "
                             f"speechbrain_sparse/asr/pruning_stage.py)")
    pruner, calibration = hparams["pruner"], hparams["calibration"]
    if not callable(getattr(pruner, "prune", None)):
        raise UserInputError(f"pruner must be a pruner object (OneShotPruner or "
                             f"MagnitudePruner), got {pruner!r}")
    if not isinstance(calibration, CalibrationData):
        raise UserInputError(f"calibration must be a CalibrationData, "
                             f"got {calibration!r}")
    return {"pruner": pruner, "sparsities": check_schedule(hparams["prune_sparsities"]),
            "calibration": calibration,
            "finetune_max_utterances": hparams["finetune_max_utterances"]}


def transformer_family(hparams):
    """The :class:`TransformerASRFamily` of the recipe's modules."""
    modules = hparams["modules"]
    return TransformerASRFamily(
        modules["Transformer"], modules["CNN"], hparams["compute_features"],
        normalize=hparams["normalize"], seq_lin=modules["seq_lin"],
        pad_index=hparams["pad_index"],
    )


def training_subset(train_set, size, seed=0):
    """A random subset of ``size`` utterances, still sorted by duration.

    Arguments
    ---------
    train_set : speechbrain.dataio.dataset.DynamicItemDataset
        The training set.
    size : int, optional
        Number of utterances kept; None or at least the set's size: all.
    seed : int
        Seed of the draw.

    Returns
    -------
    DynamicItemDataset
    """
    if size is None or int(size) >= len(train_set.data_ids):
        return train_set
    chosen = set(random.Random(seed).sample(list(train_set.data_ids), int(size)))
    return train_set.filtered_sorted(key_test={"id": lambda uid: uid in chosen},
                                     sort_key="duration")


def prune_and_finetune(brain, hparams, train_set, valid_set, pruner, sparsities,
                       calibration, family=None, finetune_max_utterances=None):
    """Runs every pruning round and its fine-tuning; returns the final mask.

    Arguments
    ---------
    brain : MaskedTransformerASRBrain or MaskedHuggingFaceCTCBrain
        Built, holding the pretrained weights; its ``checkpointer`` (whose
        recoverables every round's checkpointer gets) and
        ``hparams.epoch_counter`` are replaced by those of each round.
    hparams : dict
        The flattened stage hparams: ``model``, ``output_folder``,
        ``save_folder``, ``number_of_epochs``, ``epoch_counter``,
        ``train_csv``, ``valid_dataloader_opts`` and the training loader keys;
        ``tokenizer``, ``bos_index``, ``eos_index`` for an attention decoder;
        optional ``max_duration``.
    train_set, valid_set : Dataset
        Fine-tuning and validation data.
    pruner : OneShotPruner or MagnitudePruner
        Prunes one round (see the module docstring).
    sparsities : list of float
        One target per round (:func:`check_schedule`).
    calibration : CalibrationData
        The calibration utterances.
    family : ModelFamily, optional
        How ``hparams["model"]`` is pruned (default: the Transformer ASR's,
        built from the hparams; a CTC model passes its
        :class:`~speechbrain_sparse.pruning.model_families.HuggingFaceSSLFamily`).
    finetune_max_utterances : int, optional
        Fine-tune on a random subset of this size (seed: the calibration's).

    Returns
    -------
    ParameterMask
        The mask of the last round (True = kept).
    """
    sparsities = check_schedule(sparsities)
    model = hparams["model"]
    family = family if family is not None else transformer_family(hparams)
    output = Path(hparams["output_folder"])
    epochs = int(hparams["number_of_epochs"])
    checkpointer, counter = brain.checkpointer, hparams["epoch_counter"]
    train_subset = training_subset(train_set, finetune_max_utterances, calibration.seed)
    batches = None
    mask, reports = None, []
    for index, sparsity in enumerate(sparsities):
        folder = Path(hparams["save_folder"]) / f"round{index}"
        round_counter = EpochCounter(limit=epochs * (index + 1))
        round_counter.current = epochs * index  # the earlier rounds' epochs
        brain.checkpointer = round_checkpointer(checkpointer, folder, counter,
                                                round_counter)
        brain.hparams.epoch_counter = round_counter
        if (folder / "mask.pt").exists():
            mask = ParameterMask.load(folder / "mask.pt", model=model)
            model.load_state_dict(torch.load(folder / "pruned_model.ckpt",
                                             map_location=brain.device))
            logger.info("round %d: reusing the pruned model of this run", index)
        else:
            if batches is None:
                batches = _calibration_batches(hparams, calibration)
            mask = _prune_round(model, family, pruner, sparsity, batches,
                                previous=mask)
            if sb.utils.distributed.if_main_process():
                torch.save(model.state_dict(), folder / "pruned_model.ckpt")
                mask.save(folder / "mask.pt")
        reports.append(_round_report(index, sparsity, mask))
        logger.info("round %d: sparsity %.4f of the pruned matrices (target %.2f)",
                    index, 1 - mask.density(), sparsity)
        brain.attach_mask(mask, mode="prune", module=model)
        brain.fit(round_counter, train_subset, valid_set,
                  train_loader_kwargs=train_loader_options(hparams, train_subset),
                  valid_loader_kwargs=hparams["valid_dataloader_opts"])
    if sb.utils.distributed.if_main_process():
        mask.save(output / "mask.pt")
        info = {**pruner.describe(), "epochs_per_round": epochs, "rounds": reports}
        (output / "pruning_info.json").write_text(json.dumps(info, indent=2))
    return mask


def round_checkpointer(checkpointer, folder, counter, round_counter):
    """A new :class:`ResumableCheckpointer` on ``folder`` with ``checkpointer``'s
    recoverables.

    Each recoverable keeps its name, hooks and optional flag; ``counter`` (the
    YAML's epoch counter) is replaced by ``round_counter``, or added as
    ``counter`` if the checkpointer does not hold it.

    Example
    -------
    >>> import tempfile
    >>> model, counter, rounds = torch.nn.Linear(2, 2), EpochCounter(2), EpochCounter(4)
    >>> base = ResumableCheckpointer(tempfile.mkdtemp(),
    ...                              {"model": model, "counter": counter})
    >>> new = round_checkpointer(base, tempfile.mkdtemp(), counter, rounds)
    >>> new.recoverables["model"] is model, new.recoverables["counter"] is rounds
    (True, True)
    """
    recoverables = {name: (round_counter if obj is counter else obj)
                    for name, obj in checkpointer.recoverables.items()}
    if round_counter not in recoverables.values():
        recoverables["counter"] = round_counter
    result = ResumableCheckpointer(folder,
                                   allow_partial_load=checkpointer.allow_partial_load)
    for name, obj in recoverables.items():
        result.add_recoverable(
            name, obj, custom_load_hook=checkpointer.custom_load_hooks.get(name),
            custom_save_hook=checkpointer.custom_save_hooks.get(name),
            optional_load=checkpointer.optional_recoverables.get(name, False))
    return result


def _calibration_batches(hparams, calibration):
    """Batches of the training manifest; with decoder tokens for an
    attention decoder (``bos_index`` set), audio only for a CTC model."""
    decoder = hparams.get("bos_index") is not None
    return calibration.load(
        hparams["train_csv"], tokenizer=hparams["tokenizer"] if decoder else None,
        bos_index=hparams.get("bos_index"), eos_index=hparams.get("eos_index"),
        max_duration=hparams.get("max_duration"))


def _prune_round(model, family, pruner, sparsity, batches, previous):
    """Prunes ``model`` in memory (on its device) to ``sparsity``."""
    start = time.perf_counter()
    mask = pruner.prune(model, family, batches, sparsity, must_prune=previous,
                        progress=False)
    mask.options["seconds"] = time.perf_counter() - start
    if previous is not None:
        revived = [name for name, kept in previous.items()
                   if (mask[name].to(kept.device) & ~kept).any()]
        if revived:
            raise RuntimeError(f"re-pruning revived pruned entries of {revived}")
    return mask


def _round_report(index, target, mask):
    report = mask.options.get("report", {})
    errors = [m["relative_error"] for m in report.get("matrices", {}).values()
              if m.get("relative_error") is not None]
    return {"round": index, "target_sparsity": target,
            "achieved_sparsity": 1.0 - mask.density(),
            "mean_relative_error": sum(errors) / len(errors) if errors else None,
            "seconds": mask.options.get("seconds")}
