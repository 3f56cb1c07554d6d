"""SparseWAV inside the Transformer ASR recipes: prune, fine-tune, re-prune.

A stage YAML selects this with ``prune_sparsities`` (a list): the pretrained
model (loaded by the ``pretrainer``) is pruned one-shot to the first sparsity
on calibration batches drawn from the training manifest, fine-tuned for
``number_of_epochs`` epochs with the mask in ``prune`` mode (pruned entries
exactly zero after every optimizer step, see
:class:`~speechbrain_sparse.training.MaskedTrainingMixin`), re-pruned to the
next sparsity with the existing zeros kept (``must_prune``), and so on
(SparseWAV-progress; one sparsity = one-pass). ``number_of_epochs: 0`` gives
the one-shot pruned model, evaluated as is.

Top-level keys (all overridable on the command line):

* ``prune_sparsities``: e.g. ``[0.75]`` or ``[0.7, 0.8, 0.9]``;
* ``prune_method``: ``obs`` (layer-wise OBS, :class:`OneShotPruner`) or
  ``magnitude`` (per-matrix magnitude pruning, no weight update: the baseline);
* ``saliency`` (``obs`` | ``improved``), ``mixed_sparsity`` (bool),
  ``mixed_alpha``, ``mixed_num_probes``, ``mixed_num_batches``,
  ``block_size``, ``damp``;
* ``num_calibration``, ``calibration_batch_size``, ``calibration_seed``;
* ``finetune_max_utterances`` (optional): fine-tune on a random subset of the
  training manifest of this size.

Each round ``r`` has its own checkpoint folder ``<save_folder>/round<r>``
(the mask enforcer is a recoverable, so a round never recovers the mask of
another) and writes ``round<r>/mask.pt`` and ``round<r>/pruned_model.ckpt``
right after pruning, so a resumed run continues exactly where it stopped.
The last round's mask is also ``<output_folder>/mask.pt``; the per-round
reports are in ``<output_folder>/pruning_info.json``. Only the last round's
checkpoints are evaluated.

Example
-------
>>> cfg = PruningConfig.from_hparams({"prune_sparsities": [0.7, 0.8]})
>>> cfg.sparsities, cfg.method, cfg.saliency, cfg.mixed
([0.7, 0.8], 'obs', 'improved', False)
"""

import json
import logging
import random
import time
from pathlib import Path

import speechbrain as sb
import torch

from speechbrain_sparse.asr.data import train_loader_options
from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.masks import Coverage, ParameterMask
from speechbrain_sparse.pruning.calibration import load_calibration_batches
from speechbrain_sparse.pruning.model_families import TransformerASRFamily
from speechbrain_sparse.pruning.obs import magnitude_prune_matrix, pruned_count
from speechbrain_sparse.pruning.oneshot import MixedSparsity, OneShotPruner

logger = logging.getLogger(__name__)

PRUNE_METHODS = ("obs", "magnitude")


class PruningConfig:
    """The pruning keys of a stage YAML, checked.

    Arguments
    ---------
    sparsities : list of float
        One per round, non-decreasing.
    method : str
        ``"obs"`` or ``"magnitude"``.
    saliency : str
        ``"obs"`` or ``"improved"`` (OBS only).
    mixed : bool
        Mixed sparsity (OBS only).
    options : dict
        The other keys (see the module docstring), with defaults.
    """

    DEFAULTS = {"mixed_alpha": 0.1, "mixed_num_probes": 8, "mixed_num_batches": 2,
                "block_size": 128, "damp": 0.01, "num_calibration": 128,
                "calibration_batch_size": 8, "calibration_seed": 0,
                "finetune_max_utterances": None}

    def __init__(self, sparsities, method="obs", saliency="improved", mixed=False,
                 options=None):
        self.sparsities = [float(s) for s in sparsities]
        self.method = method
        self.saliency = saliency
        self.mixed = bool(mixed)
        self.options = {**self.DEFAULTS, **(options or {})}
        if not self.sparsities or any(not 0 <= s < 1 for s in self.sparsities):
            raise UserInputError(f"prune_sparsities must be a non-empty list of values "
                                 f"in [0, 1), got {sparsities!r}")
        if self.sparsities != sorted(self.sparsities):
            raise UserInputError(f"prune_sparsities must not decrease: {sparsities!r}")
        if method not in PRUNE_METHODS:
            raise UserInputError(f"prune_method must be one of {PRUNE_METHODS}, "
                                 f"got {method!r}")

    @classmethod
    def from_hparams(cls, hparams):
        """Reads the keys of the module docstring from a (flattened) hparams dict."""
        sparsities = hparams["prune_sparsities"]
        if isinstance(sparsities, (int, float)):
            sparsities = [sparsities]
        options = {key: hparams[key] for key in cls.DEFAULTS if key in hparams}
        return cls(sparsities, hparams.get("prune_method", "obs"),
                   hparams.get("saliency", "improved"),
                   hparams.get("mixed_sparsity", False), options)

    def pruner(self, sparsity):
        """The :class:`OneShotPruner` (or magnitude pruner) of one round."""
        if self.method == "magnitude":
            return MagnitudePruner(sparsity)
        mixed = None
        if self.mixed and sparsity > 0:
            mixed = MixedSparsity(alpha=self.options["mixed_alpha"],
                                  num_probes=self.options["mixed_num_probes"],
                                  num_batches=self.options["mixed_num_batches"])
        return OneShotPruner(sparsity, saliency=self.saliency,
                             block_size=self.options["block_size"],
                             damp=self.options["damp"], mixed_sparsity=mixed)


class MagnitudePruner:
    """Uniform per-matrix magnitude pruning of the same matrices OBS prunes.

    The surviving weights are not updated (no calibration data is used); it
    is the baseline OBS is compared with.

    Arguments
    ---------
    sparsity : float
        Fraction of each matrix pruned.

    Example
    -------
    >>> MagnitudePruner(0.5).sparsity
    0.5
    """

    def __init__(self, sparsity):
        self.sparsity = float(sparsity)

    @torch.no_grad()
    def prune(self, model, family, calibration_batches=None, progress=False,
              must_prune=None):
        """Prunes ``model`` in place; returns the mask (True = kept)."""
        tensors = {}
        for stage in family.stages(model):
            for block in stage.blocks:
                for matrix in block.matrices:
                    name = matrix.parameter_name
                    weight = matrix.read()
                    forced = None
                    if must_prune is not None and name in must_prune:
                        forced = ~torch.as_tensor(must_prune[name])[matrix.rows]
                    count = pruned_count(weight.numel(), self.sparsity)
                    if forced is not None:
                        count = max(count, int(forced.sum()))
                    result = magnitude_prune_matrix(weight, num_pruned=count,
                                                    must_prune=forced)
                    matrix.write(weight * result.mask)
                    if name not in tensors:
                        shape = matrix.parameter.shape
                        tensors[name] = torch.ones(shape, dtype=torch.bool)
                    tensors[name][matrix.rows] = result.mask.cpu()
        return ParameterMask(tensors, coverage=Coverage(include=sorted(tensors)),
                             method="magnitude", options={"sparsity": self.sparsity},
                             target_density=1.0 - self.sparsity)


def transformer_family(hparams):
    """The :class:`TransformerASRFamily` of the recipe's modules."""
    return TransformerASRFamily(
        hparams["Transformer"], hparams["CNN"], hparams["compute_features"],
        normalize=hparams["normalize"], seq_lin=hparams["seq_lin"],
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


def prune_and_finetune(brain, hparams, train_set, valid_set, family=None):
    """Runs every pruning round and its fine-tuning; returns the final mask.

    Arguments
    ---------
    brain : MaskedTransformerASRBrain or MaskedHuggingFaceCTCBrain
        Built, holding the pretrained weights (its ``checkpoints_dir`` is
        moved to ``<save_folder>/round<r>`` for each round).
    hparams : dict
        The flattened stage hparams (see the module docstring).
    train_set, valid_set : Dataset
        Fine-tuning and validation data.
    family : ModelFamily, optional
        How ``hparams["model"]`` is pruned (default: the Transformer ASR's,
        built from the hparams; a CTC model passes its
        :class:`~speechbrain_sparse.pruning.model_families.HuggingFaceSSLFamily`).

    Returns
    -------
    ParameterMask
        The mask of the last round (True = kept).
    """
    config = PruningConfig.from_hparams(hparams)
    model = hparams["model"]
    family = family if family is not None else transformer_family(hparams)
    output = Path(hparams["output_folder"])
    epochs = int(hparams["number_of_epochs"])
    counter = hparams["epoch_counter"]
    train_subset = training_subset(train_set, config.options["finetune_max_utterances"],
                                   config.options["calibration_seed"])
    calibration = None
    mask, reports = None, []
    for index, sparsity in enumerate(config.sparsities):
        folder = Path(hparams["save_folder"]) / f"round{index}"
        folder.mkdir(parents=True, exist_ok=True)
        brain.checkpointer.checkpoints_dir = folder
        if (folder / "mask.pt").exists():
            mask = ParameterMask.load(folder / "mask.pt", model=model)
            model.load_state_dict(torch.load(folder / "pruned_model.ckpt",
                                             map_location=brain.device))
            logger.info("round %d: reusing the pruned model of this run", index)
        else:
            if calibration is None:
                calibration = _calibration_batches(hparams, config)
            mask = _prune_round(model, family, config, sparsity, calibration,
                                previous=mask)
            if sb.utils.distributed.if_main_process():
                torch.save(model.state_dict(), folder / "pruned_model.ckpt")
                mask.save(folder / "mask.pt")
        reports.append(_round_report(index, sparsity, mask))
        logger.info("round %d: sparsity %.4f of the pruned matrices (target %.2f)",
                    index, 1 - mask.density(), sparsity)
        brain.attach_mask(mask, mode="prune", module=model)
        counter.limit = epochs * (index + 1)
        brain.fit(counter, train_subset, valid_set,
                  train_loader_kwargs=train_loader_options(hparams, train_subset),
                  valid_loader_kwargs=hparams["valid_dataloader_opts"])
    if sb.utils.distributed.if_main_process():
        mask.save(output / "mask.pt")
        info = {"method": config.method, "saliency": config.saliency,
                "mixed_sparsity": config.mixed, "epochs_per_round": epochs,
                "rounds": reports}
        (output / "pruning_info.json").write_text(json.dumps(info, indent=2))
    return mask


def _calibration_batches(hparams, config):
    """Batches of the training manifest; with decoder tokens for an
    attention decoder (``bos_index`` set), audio only for a CTC model."""
    decoder = hparams.get("bos_index") is not None
    return load_calibration_batches(
        hparams["train_csv"], config.options["num_calibration"],
        config.options["calibration_batch_size"], config.options["calibration_seed"],
        tokenizer=hparams["tokenizer"] if decoder else None,
        bos_index=hparams.get("bos_index"), eos_index=hparams.get("eos_index"),
        max_duration=hparams.get("max_duration"),
    )


def _prune_round(model, family, config, sparsity, calibration, previous):
    """Prunes ``model`` in memory (on its device) to ``sparsity``."""
    start = time.perf_counter()
    mask = config.pruner(sparsity).prune(model, family, calibration, progress=False,
                                         must_prune=previous)
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
