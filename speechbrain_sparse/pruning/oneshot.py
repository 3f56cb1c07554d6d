"""SparseWAV one-shot pruning of a whole model, block by block.

:class:`OneShotPruner` holds the method's settings (saliency, OBS block size,
dampening, a mixed-sparsity allocator or uniform sparsity, Hessian precision), so a
YAML builds it with ``!new:``; its :meth:`~OneShotPruner.prune` takes the
target of one pruning round. :func:`prune_model` is the same in one call.
Pruning walks the blocks a :class:`ModelFamily` lists (see
:mod:`~speechbrain_sparse.pruning.model_families`) and, for each block:
captures the inputs of its matrices on the outputs of the already-pruned
previous blocks and accumulates one Hessian per input stream with padded
frames left out (:mod:`~speechbrain_sparse.pruning.calibration`); prunes every
matrix with :func:`~speechbrain_sparse.pruning.obs.prune_matrix` to exactly
its number of zeros and writes the compensated weights back; then runs the
block again to propagate. It returns a :class:`~speechbrain_sparse.masks.ParameterMask`
(True = kept) over the pruned parameters, ready for
``MaskedTrainingMixin.attach_mask(mask, mode="prune")``; the rows of a packed
``in_proj_weight`` hold the masks of its q, k and v slices.

Mixed sparsity (:class:`~speechbrain_sparse.pruning.mixed_sparsity.MixedSparsity`,
SparseWAV section 2.3) gives each
matrix its own sparsity from the Hutchinson estimate of its mean Hessian
diagonal for the family's twice-differentiable loss, computed on the dense
model before any pruning; slices of a packed projection get their own
estimate (they are made separate leaves with ``torch.func.functional_call``).

The report (per-matrix sparsity, relative reconstruction error on the
calibration data, fallbacks; wall time of the calibration forwards, of the
Hessian accumulation inside them, of the solves and of the error computation
inside them) is kept in ``mask.options["report"]`` and so saved with the mask.

Example
-------
>>> from speechbrain.dataio.batch import PaddedBatch
>>> from transformers import Wav2Vec2Config, Wav2Vec2Model
>>> from speechbrain_sparse.pruning.model_families import HuggingFaceSSLFamily
>>> torch.manual_seed(0) and None
>>> config = Wav2Vec2Config(hidden_size=16, num_hidden_layers=2,
...     num_attention_heads=2, intermediate_size=32, conv_dim=(8, 8),
...     conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=8,
...     num_conv_pos_embedding_groups=2)
>>> model = Wav2Vec2Model(config)
>>> batches = [PaddedBatch([{"sig": torch.randn(4000)} for _ in range(2)])]
>>> pruner = OneShotPruner(saliency="improved", block_size=128, damp=0.01)
>>> mask = pruner.prune(model, HuggingFaceSSLFamily(), batches, 0.5, progress=False)
>>> len(mask), mask.density()
(12, 0.5)
"""

import logging
import time

import torch
from tqdm import tqdm

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.masks import Coverage, ParameterMask
from speechbrain_sparse.pruning.calibration import (
    accumulate_hessians,
    capture_stage_entry,
    propagate,
)
from speechbrain_sparse.pruning.obs import SALIENCIES, prune_matrix, pruned_count
from speechbrain_sparse.pruning.reconstruction import relative_reconstruction_error

logger = logging.getLogger(__name__)

HESSIAN_DTYPES = {"float32": torch.float32, "float64": torch.float64}


class OneShotPruner:
    """SparseWAV one-shot layer-wise OBS pruning: the algorithm and its settings.

    Built once (``!new:`` in a YAML, or in Python) with the settings of the
    method; each call of :meth:`prune` gets the target of that call (one
    pruning round), so one pruner serves every round of a progressive run.

    Arguments
    ---------
    saliency : str
        ``"improved"`` (eq. 3) or ``"obs"`` (eq. 1).
    block_size : int
        Columns per lazily updated block of the OBS solve.
    damp : float
        Dampening, a fraction of the mean diagonal of each Hessian.
    mixed_sparsity : MixedSparsity, optional
        Allocates per-matrix sparsities around the target (anything with the
        ``allocate`` method of
        :class:`~speechbrain_sparse.pruning.mixed_sparsity.MixedSparsity`);
        uniform when None.
    hessian_dtype : str or torch.dtype
        ``"float32"`` or ``"float64"``: precision of the Hessians.
    report_errors : bool
        Compute each matrix's relative reconstruction error on the calibration
        Hessian (fp32 products, fp64 sums; one product the size of a solve's
        update per matrix) for the report; False leaves it None.

    Example
    -------
    >>> from speechbrain_sparse.pruning.mixed_sparsity import MixedSparsity
    >>> pruner = OneShotPruner(saliency="obs", mixed_sparsity=MixedSparsity(alpha=0.05))
    >>> pruner.describe()
    {'method': 'obs', 'saliency': 'obs', 'mixed_sparsity': True}
    >>> OneShotPruner(saliency="best")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    speechbrain_sparse.errors.UserInputError: saliency must be one of ... got 'best'
    """

    method = "obs"

    def __init__(self, saliency="improved", block_size=128, damp=0.01,
                 mixed_sparsity=None, hessian_dtype="float32", report_errors=True):
        if saliency not in SALIENCIES:
            raise UserInputError(f"saliency must be one of {SALIENCIES}, "
                                 f"got {saliency!r}")
        if int(block_size) < 1:
            raise UserInputError(f"block_size must be >= 1, got {block_size!r}")
        if float(damp) < 0:
            raise UserInputError(f"damp must be >= 0, got {damp!r}")
        if hessian_dtype in HESSIAN_DTYPES:
            hessian_dtype = HESSIAN_DTYPES[hessian_dtype]
        if hessian_dtype not in HESSIAN_DTYPES.values():
            raise UserInputError(f"hessian_dtype must be one of "
                                 f"{tuple(HESSIAN_DTYPES)}, got {hessian_dtype!r}")
        if mixed_sparsity is not None and not callable(
                getattr(mixed_sparsity, "allocate", None)):
            raise UserInputError(f"mixed_sparsity must be an allocator such as "
                                 f"MixedSparsity, or None; got {mixed_sparsity!r}")
        self.saliency = saliency
        self.block_size = int(block_size)
        self.damp = float(damp)
        self.mixed_sparsity = mixed_sparsity
        self.hessian_dtype = hessian_dtype
        self.report_errors = bool(report_errors)

    def describe(self):
        """The settings a run report names: method, saliency, mixed sparsity."""
        return {"method": self.method, "saliency": self.saliency,
                "mixed_sparsity": self.mixed_sparsity is not None}

    def prune(self, model, family, calibration_batches, sparsity=None,
              sparsities=None, must_prune=None, progress=True):
        """Prunes every matrix ``family`` lists, block by block, in place.

        Arguments
        ---------
        model : torch.nn.Module
            The model (weights are overwritten with the pruned, compensated ones).
        family : ModelFamily
            Which matrices, blocks and inputs (``model_families``).
        calibration_batches : iterable of PaddedBatch
            Calibration data (moved to the model's device).
        sparsity : float, optional
            Uniform sparsity, or the target mean with ``mixed_sparsity`` (a
            target of 0 prunes nothing, so it allocates nothing either).
        sparsities : dict, optional
            Matrix name -> sparsity, instead of ``sparsity``.
        must_prune : Mapping[str, torch.BoolTensor], optional
            A mask of an earlier round (True = kept, e.g. the ParameterMask
            this method returned): its zeros stay pruned and count toward
            each matrix's total, which is raised to their number where it is
            lower (progressive pruning; with mixed sparsity the overall
            sparsity may then exceed the target slightly).
        progress : bool
            Show a progress bar over the blocks.

        Returns
        -------
        ParameterMask
            Canonical parameter name -> bool (True = kept), with the report in
            ``options["report"]``.
        """
        check_sparsity(sparsity)
        mixed = None if sparsity == 0 else self.mixed_sparsity
        stages = family.stages(model)
        matrices = [m for stage in stages for block in stage.blocks
                    for m in block.matrices]
        device = next(model.parameters()).device
        batches = [batch.to(device) for batch in calibration_batches]
        if not batches:
            raise ValueError("pruning needs at least one calibration batch")
        modes = [(module, module.training) for module in family.modules(model)]
        for module, _ in modes:
            module.eval()
        try:
            targets, counts, sensitivity = _targets(model, family, matrices, batches,
                                                    sparsity, sparsities, mixed)
            forced = forced_entries(matrices, must_prune, counts)
            report = {"matrices": {}, "timings": dict.fromkeys(
                ("forward", "hessian", "solve", "error", "sensitivity"), 0.0)}
            report["timings"]["sensitivity"] = sensitivity.pop("_seconds", 0.0)
            keep = self._prune_stages(model, family, stages, batches, targets, counts,
                                      report, progress, forced)
        finally:
            for module, training in modes:
                module.train(training)
        for name, value in sensitivity.items():
            report["matrices"][name]["sensitivity"] = value
        options = {
            "saliency": self.saliency,
            "sparsity": sparsity,
            "per_matrix": sparsities is not None,
            "mixed_sparsity": None if mixed is None else vars(mixed),
            "report": report,
        }
        target = None if sparsity is None else 1.0 - float(sparsity)
        return assemble_mask(matrices, keep, self.method, options, target)

    @torch.no_grad()
    def _prune_stages(self, model, family, stages, batches, targets, counts, report,
                      progress, forced):
        timings, keep = report["timings"], {}
        total = sum(len(stage.blocks) for stage in stages)
        with tqdm(total=total, desc="OBS pruning", unit="block",
                  disable=not progress) as bar:
            for stage in stages:
                start = time.perf_counter()
                calls = [capture_stage_entry(model, family, stage, b) for b in batches]
                timings["forward"] += time.perf_counter() - start
                for index, block in enumerate(stage.blocks):
                    start = time.perf_counter()
                    hessians = accumulate_hessians(block, calls, self.hessian_dtype,
                                                   timings=timings)
                    timings["forward"] += time.perf_counter() - start
                    start = time.perf_counter()
                    for matrix in block.matrices:
                        keep[matrix.name] = self._prune_one(
                            matrix, hessians[matrix.stream], targets[matrix.name],
                            counts[matrix.name], report, forced.get(matrix.name))
                    timings["solve"] += time.perf_counter() - start
                    del hessians
                    if index + 1 < len(stage.blocks):
                        start = time.perf_counter()
                        calls = propagate(family, stage, index, calls)
                        timings["forward"] += time.perf_counter() - start
                    bar.update(1)
        return keep

    def _prune_one(self, matrix, accumulator, target, count, report, must_prune):
        weight, hessian = matrix.read(), accumulator.hessian()
        result = prune_matrix(weight, hessian, target, saliency=self.saliency,
                              block_size=self.block_size, damp=self.damp,
                              num_pruned=count, must_prune=must_prune)
        matrix.write(result.weight)
        error = None
        if self.report_errors:
            start = time.perf_counter()
            error = relative_reconstruction_error(weight, result.weight, hessian,
                                                  kind="hessian", dtype=torch.float32)
            report["timings"]["error"] += time.perf_counter() - start
        report["matrices"][matrix.name] = {
            "target": float(target), "sparsity": float(result.sparsity),
            "pruned": int((~result.mask).sum()), "numel": result.mask.numel(),
            "relative_error": error, "frames": int(accumulator.num_frames),
            "fallback": result.fallback,
        }
        logger.info("%s: sparsity %.4f (target %.4f), relative error %s%s",
                    matrix.name, result.sparsity, target,
                    "-" if error is None else f"{error:.4g}",
                    f" [{result.fallback}]" if result.fallback else "")
        return result.mask.cpu()


def prune_model(model, family, calibration_batches, sparsity=None, sparsities=None,
                saliency="improved", block_size=128, damp=0.01, mixed_sparsity=None,
                hessian_dtype=torch.float32, progress=True, must_prune=None,
                report_errors=True):
    """Builds a :class:`OneShotPruner` from the settings and prunes ``model`` with it.

    The arguments are those of :class:`OneShotPruner` (its settings) and of
    :meth:`OneShotPruner.prune` (the target and the calibration data).

    Returns
    -------
    ParameterMask
        Canonical parameter name -> bool (True = kept), with the report in
        ``options["report"]``.
    """
    pruner = OneShotPruner(saliency=saliency, block_size=block_size, damp=damp,
                           mixed_sparsity=mixed_sparsity, hessian_dtype=hessian_dtype,
                           report_errors=report_errors)
    return pruner.prune(model, family, calibration_batches, sparsity=sparsity,
                        sparsities=sparsities, must_prune=must_prune,
                        progress=progress)


def check_sparsity(sparsity, name="sparsity"):
    """Raises a ValueError naming ``name`` unless ``sparsity`` is None or in [0, 1).

    Example
    -------
    >>> check_sparsity(1.0)
    Traceback (most recent call last):
    ...
    speechbrain_sparse.errors.UserInputError: sparsity must be in [0, 1), got 1.0
    """
    if sparsity is not None and not 0.0 <= float(sparsity) < 1.0:
        raise UserInputError(f"{name} must be in [0, 1), got {sparsity!r}")


def forced_entries(matrices, must_prune, counts):
    """Matrix name -> entries to keep pruned; raises ``counts`` to their number.

    Arguments
    ---------
    matrices : list of PrunableMatrix
        The matrices pruned.
    must_prune : Mapping[str, torch.BoolTensor], optional
        Canonical parameter name -> bool (True = kept) of an earlier round.
    counts : dict
        Matrix name -> number of entries to prune; updated in place.

    Returns
    -------
    dict
        Matrix name -> bool tensor (True = stays pruned).
    """
    if must_prune is None:
        return {}
    forced = {}
    for matrix in matrices:
        if matrix.parameter_name not in must_prune:
            continue
        pruned = ~torch.as_tensor(must_prune[matrix.parameter_name])[matrix.rows]
        forced[matrix.name] = pruned
        counts[matrix.name] = max(counts[matrix.name], int(pruned.sum()))
    return forced


def assemble_mask(matrices, keep, method, options, target_density):
    """The :class:`ParameterMask` of whole parameters from per-matrix masks.

    The rows of a packed parameter hold the masks of its slices; rows no
    matrix covers stay kept.

    Arguments
    ---------
    matrices : list of PrunableMatrix
        The matrices pruned.
    keep : dict
        Matrix name -> bool tensor (True = kept) of its shape.
    method, options, target_density
        Recorded in the mask (see :class:`ParameterMask`).

    Returns
    -------
    ParameterMask
    """
    tensors = {}
    for matrix in matrices:
        name = matrix.parameter_name
        if name not in tensors:
            tensors[name] = torch.ones(matrix.parameter.shape, dtype=torch.bool)
        tensors[name][matrix.rows] = keep[matrix.name]
    return ParameterMask(tensors, coverage=Coverage(include=sorted(tensors)),
                         method=method, options=options, target_density=target_density)


def _targets(model, family, matrices, batches, sparsity, sparsities, mixed):
    names = [m.name for m in matrices]
    if sparsities is not None:
        missing = [n for n in names if n not in sparsities]
        if missing or sparsity is not None:
            raise ValueError("give either sparsity (with optional mixed_sparsity) "
                             f"or sparsities for every matrix; missing: {missing[:3]}")
        targets = {n: float(sparsities[n]) for n in names}
    elif sparsity is None:
        raise ValueError("pruning needs sparsity or sparsities")
    elif mixed is not None:
        start = time.perf_counter()
        targets, counts, sensitivity = mixed.allocate(model, family, matrices,
                                                      batches, float(sparsity))
        sensitivity["_seconds"] = time.perf_counter() - start
        return targets, counts, sensitivity
    else:
        targets = dict.fromkeys(names, float(sparsity))
    counts = {m.name: pruned_count(m.numel(), targets[m.name]) for m in matrices}
    return targets, counts, {}
