"""Sparse fine-tuning for a low-resource dialect: Algorithm 1, top to bottom.

J. Yang, J. Wei, K. Khysru, J. Xu, W. Lu, W. Ke, X. Yang, "Effective
Fine-tuning Method for Tibetan Low-resource Dialect Speech Recognition".
A model trained on a source dialect is fine-tuned on a low-resource target
dialect, but only a language-specific subnetwork is updated: the entries a
binary mask ``M_t`` marks; all others keep their pretrained values.

Notation (the paper's):

* ``theta_s`` -- the pretrained weights (source dialect);
* ``theta_t`` -- the weights fully fine-tuned on the target dialect;
* ``L`` -- the learning objective (the recipe's loss), ``eta`` the learning rate;
* ``S`` -- the fraction of entries that are trained (the paper calls it the
  "sparsity" of the subnetwork; here ``density``), ``K = round(S * N)`` of the
  ``N`` covered entries;
* ``M_t`` -- the language-specific mask, ``TopK(scores, S)``.

Algorithm 1, step by step, and where each step lives:

1. **Pretrained model** ``theta_s`` -- the recipe's pretraining stage.
2. **Vanilla fine-tuning** to ``theta_t`` -- every parameter fine-tuned on the
   target dialect (the recipe's ``vanilla`` run; no mask).
3. **Importance scores**, one per entry (:mod:`speechbrain_sparse.scores`):

   * ``diff``: ``|theta_t - theta_s|`` (:func:`~speechbrain_sparse.scores.diff_scores`);
   * ``fisher``: the diagonal empirical Fisher on target data,
     ``H_i = sum_j (d log p(y_j | x_j; theta) / d theta_i)^2`` (eq. 5-6,
     :func:`~speechbrain_sparse.scores.fisher_scores`);
   * the baselines of Table III: ``topk`` ``|theta_s|``, and ``random``.

4. **Language-specific mask** ``M_t = TopK(scores, S)`` -- exactly ``K``
   entries, ties by parameter order (:func:`speechbrain_sparse.topk.select_topk`),
   computed once before fine-tuning ("if Calculate mask"):
   :func:`language_specific_mask`. The strategy of
   :mod:`speechbrain_sparse.selection` (``DiffSelection``, ``FisherSelection``,
   ``MagnitudeSelection``, ``RandomSelection``) does steps 3-4; Table IV's
   union and intersection of two masks, each at its own density, are
   ``UnionSelection`` (``M_a | M_b``) and ``IntersectionSelection``
   (``M_a & M_b``).
5. **Masked fine-tuning from** ``theta_s``:
   ``theta_{t+1} = theta_t - eta * dL/dtheta_t (.) M_t`` with an L1 pull toward
   ``theta_s``; entries outside ``M_t`` stay bit-identical to ``theta_s``
   (:func:`restrict_training_to_mask`, enforced by
   :class:`~speechbrain_sparse.training.MaskedTrainingMixin`).

In a recipe, steps 3-5 are the YAML keys ``mask_strategy`` (a ``!new:`` strategy
of :mod:`speechbrain_sparse.selection`), ``mask_mode`` and ``l1_weight``, and
:mod:`speechbrain_sparse.asr.sparse_finetuning` calls this module.

Example
-------
The whole algorithm on a toy model:

>>> import speechbrain as sb
>>> import torch
>>> from speechbrain_sparse.selection import DiffSelection
>>> from speechbrain_sparse.training import MaskedTrainingMixin
>>> class Toy(MaskedTrainingMixin, sb.Brain):
...     def compute_forward(self, batch, stage):
...         return self.modules.lin(batch[0])
...     def compute_objectives(self, predictions, batch, stage):
...         return torch.nn.functional.mse_loss(predictions, batch[1])
>>> def brain_for(model):
...     return Toy({"lin": model}, lambda p: torch.optim.SGD(p, 0.1),
...                run_opts={"device": "cpu"})
>>> _ = torch.manual_seed(0)
>>> model = torch.nn.Linear(4, 2)                     # 1. theta_s
>>> theta_s = {n: p.detach().clone() for n, p in model.named_parameters()}
>>> target = [(torch.rand(8, 4), torch.rand(8, 2))] * 3
>>> brain_for(model).fit(range(2), target, progressbar=False)  # 2. theta_t
>>> theta_t = {n: p.detach().clone() for n, p in model.named_parameters()}
>>> _ = model.load_state_dict(theta_s)                # start again from theta_s
>>> strategy = DiffSelection(0.3, finetuned_state=theta_t)
>>> mask = language_specific_mask(strategy, model)   # 3.-4. M_t, K = 3 of 10
>>> mask.num_selected()
3
>>> brain = brain_for(model)
>>> _ = restrict_training_to_mask(brain, mask, l1_weight=0.01, module=model)  # 5.
>>> brain.fit(range(2), target, progressbar=False)
>>> frozen = ~mask["weight"]
>>> torch.equal(model.weight[frozen], theta_s["weight"][frozen])
True
>>> torch.equal(model.weight[~frozen], theta_s["weight"][~frozen])
False
"""

import logging
from pathlib import Path

import speechbrain as sb

from speechbrain_sparse.masks import ParameterMask

logger = logging.getLogger(__name__)


def language_specific_mask(strategy, model, brain=None, data=None, mask_file=None):
    """Steps 3-4: ``M_t = TopK(scores, S)``, computed once per run.

    Arguments
    ---------
    strategy : speechbrain_sparse.selection.SelectionStrategy
        Scores and density (or a union / intersection of two strategies).
    model : torch.nn.Module
        The model at ``theta_s``; the mask's names refer to its parameters.
    brain : speechbrain.core.Brain, optional
        The recipe's Brain (needed by ``fisher``).
    data : DataLoader or callable, optional
        Target-dialect batches (needed by ``fisher``), or a function returning
        them, called only when the mask is computed (not when it is reused).
    mask_file : str or os.PathLike, optional
        If the file exists (a resumed run), the mask is read from it;
        otherwise the computed mask is saved there by the main process.

    Returns
    -------
    ParameterMask
        ``True`` for the entries that are fine-tuned.
    """
    if mask_file is not None and Path(mask_file).exists():
        mask = ParameterMask.load(mask_file, model=model)
        logger.info("reusing the mask of this run: %s", mask_file)
    else:
        if callable(data):
            data = data()
        mask = strategy.select(model=model, brain=brain, data=data)
        if mask_file is not None and sb.utils.distributed.if_main_process():
            mask.save(mask_file)
    logger.info(
        "mask %s: %d of %d parameters trainable (density %.4f)",
        mask.method,
        mask.num_selected(),
        mask.numel(),
        mask.density(),
    )
    return mask


def restrict_training_to_mask(brain, mask, mode="freeze", l1_weight=0.0, module=None):
    """Step 5: from now on ``brain.fit`` updates only the entries of ``mask``.

    ``theta_{t+1} = theta_t - eta * dL/dtheta_t (.) M_t``, starting from the
    weights the model holds now (``theta_s``); the other entries stay
    bit-identical to them (``mode="freeze"``).

    Arguments
    ---------
    brain : MaskedTrainingMixin
        The recipe's Brain, holding ``theta_s``.
    mask : ParameterMask
        ``M_t``, from :func:`language_specific_mask`.
    mode : str
        ``freeze`` (the paper) or ``prune`` (entries outside the mask zeroed).
    l1_weight : float
        Weight of the L1 pull toward ``theta_s`` (the paper's L1 term).
    module : torch.nn.Module, optional
        Module the mask's names refer to (default ``brain.modules``).

    Returns
    -------
    speechbrain_sparse.training.MaskEnforcer
    """
    return brain.attach_mask(mask, mode=mode, l1_weight=l1_weight, module=module)
