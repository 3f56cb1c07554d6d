"""Sparse fine-tuning and adapters inside the Transformer ASR recipes.

The recipes' side of :mod:`speechbrain_sparse.dialect_sparse_finetuning`, where
the paper's method reads step by step. A fine-tuning YAML chooses its method
with one of two keys:

* ``mask_strategy`` (a ``!new:`` strategy of :mod:`speechbrain_sparse.selection`):
  the mask is selected once, before fine-tuning, over ``model`` (the ModuleList
  of CNN, Transformer and heads) from the pretrained weights it holds, the
  fully fine-tuned checkpoint (``diff``) or target batches through the recipe's
  own Brain (``fisher``). It is saved to ``<output_folder>/mask.pt`` and reused
  from there when the run is resumed, then enforced by
  :class:`~speechbrain_sparse.training.MaskedTrainingMixin` (``mask_mode``
  ``freeze``: the rest stays bit-identical to the pretrained weights;
  optional ``l1_weight``);
* ``adapter_projection_size``: Houlsby adapters are inserted into the pretrained
  Transformer and only they are trained.

Neither key: every parameter is fine-tuned (``vanilla``).
"""

import logging
from pathlib import Path

import speechbrain as sb

from speechbrain_sparse.adapters import add_adapters
from speechbrain_sparse.asr.brain import TransformerASRBrain
from speechbrain_sparse.asr.data import train_loader_options
from speechbrain_sparse.dialect_sparse_finetuning import (
    language_specific_mask,
    restrict_training_to_mask,
)
from speechbrain_sparse.training import MaskedTrainingMixin

logger = logging.getLogger(__name__)


class MaskedTransformerASRBrain(MaskedTrainingMixin, TransformerASRBrain):
    """The Transformer ASR Brain with a parameter mask enforced while training."""


def insert_adapters(hparams):
    """Adds adapters to the (already pretrained) Transformer; freezes the rest.

    The adapters are inserted in place, so the modules, searchers and the
    checkpointer that refer to ``Transformer`` all see them. Must run after the
    pretrained weights are loaded (the parameter names change) and before the
    Brain is built (so the adapters move to the device with the rest).

    Arguments
    ---------
    hparams : dict
        Needs ``modules`` (with ``Transformer``), ``model`` and
        ``adapter_projection_size``.
    """
    for parameter in hparams["model"].parameters():
        parameter.requires_grad_(False)
    add_adapters(
        hparams["modules"]["Transformer"],
        projection_size=hparams["adapter_projection_size"],
    )
    trainable = sum(p.numel() for p in hparams["model"].parameters() if p.requires_grad)
    total = sum(p.numel() for p in hparams["model"].parameters())
    logger.info(
        "adapters: %d trainable of %d parameters (%.2f%%)",
        trainable,
        total,
        100.0 * trainable / total,
    )


def select_and_attach_mask(brain, hparams, train_set):
    """Selects the mask (or reloads it on resume) and attaches it to ``brain``.

    Steps 3-5 of :mod:`speechbrain_sparse.dialect_sparse_finetuning` with the
    recipe's hparams; the target batches are built only if the mask is computed.

    Arguments
    ---------
    brain : MaskedTransformerASRBrain
        The recipe's Brain, built and holding the pretrained weights.
    hparams : dict
        ``mask_strategy``, ``model``, ``output_folder``, ``train_dataloader_opts``;
        ``mask_mode`` and ``l1_weight`` (see :mod:`speechbrain_sparse.asr.options`).
    train_set : Dataset
        Target-dialect training data (used by ``fisher``).

    Returns
    -------
    ParameterMask
        The attached mask.
    """
    model = hparams["model"]

    def target_batches():
        options = train_loader_options(hparams, train_set)
        return brain.make_dataloader(train_set, sb.Stage.TRAIN, **options)

    mask = language_specific_mask(
        hparams["mask_strategy"],
        model,
        brain=brain,
        data=target_batches,
        mask_file=Path(hparams["output_folder"]) / "mask.pt",
    )
    restrict_training_to_mask(
        brain,
        mask,
        mode=hparams["mask_mode"],
        l1_weight=hparams["l1_weight"],
        module=model,
    )
    return mask
