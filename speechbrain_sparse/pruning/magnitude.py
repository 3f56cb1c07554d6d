"""Uniform per-matrix magnitude pruning: the baseline SparseWAV is compared with.

:class:`MagnitudePruner` prunes the same matrices as
:class:`~speechbrain_sparse.pruning.oneshot.OneShotPruner` (those a
:class:`~speechbrain_sparse.pruning.prunable.ModelFamily` lists), each to the
round's sparsity by the magnitude of its entries
(:func:`~speechbrain_sparse.pruning.obs.magnitude_prune_matrix`). The
surviving weights are not updated and no calibration data is used. It has the
same :meth:`~MagnitudePruner.prune` as the OBS pruner (the zeros of an
earlier round stay pruned), and its mask is assembled by the same
:func:`~speechbrain_sparse.pruning.oneshot.assemble_mask`.

Example
-------
>>> from speechbrain_sparse.pruning.prunable import (
...     Block, InputStream, ModelFamily, PrunableMatrix, Stage)
>>> class OneLinear(ModelFamily):  # prunes the weight of a Linear
...     def stages(self, model):
...         matrix = PrunableMatrix("weight", "weight", model.weight, "input")
...         block = Block("layer", model, [matrix], {"input": InputStream(model)})
...         return [Stage("encoder", [block])]
>>> layer = torch.nn.Linear(4, 2)
>>> mask = MagnitudePruner().prune(layer, OneLinear(), None, 0.5)
>>> mask.density(), int((layer.weight == 0).sum())
(0.5, 4)
"""

import torch

from speechbrain_sparse.pruning.obs import magnitude_prune_matrix, pruned_count
from speechbrain_sparse.pruning.oneshot import (
    assemble_mask,
    check_sparsity,
    forced_entries,
)


class MagnitudePruner:
    """Per-matrix magnitude pruning, no weight update (the baseline).

    It has no settings; the sparsity is that of each :meth:`prune` call.

    Example
    -------
    >>> MagnitudePruner().describe()
    {'method': 'magnitude', 'saliency': None, 'mixed_sparsity': False}
    """

    method = "magnitude"

    def describe(self):
        """The settings a run report names: method, saliency, mixed sparsity."""
        return {"method": self.method, "saliency": None, "mixed_sparsity": False}

    @torch.no_grad()
    def prune(self, model, family, calibration_batches, sparsity, must_prune=None,
              progress=False):
        """Prunes ``model`` in place; returns the mask (True = kept).

        Arguments
        ---------
        model : torch.nn.Module
            The model (its pruned entries are set to zero).
        family : ModelFamily
            Which matrices are pruned.
        calibration_batches : iterable, optional
            Not used (the signature is the OBS pruner's).
        sparsity : float
            Fraction of each matrix pruned, in [0, 1).
        must_prune : Mapping[str, torch.BoolTensor], optional
            A mask of an earlier round (True = kept): its zeros stay pruned
            and count toward each matrix's total.
        progress : bool
            Not used (pruning by magnitude takes no time).

        Returns
        -------
        ParameterMask
        """
        check_sparsity(sparsity)
        matrices = [m for stage in family.stages(model) for block in stage.blocks
                    for m in block.matrices]
        counts = {m.name: pruned_count(m.numel(), sparsity) for m in matrices}
        forced = forced_entries(matrices, must_prune, counts)
        keep = {}
        for matrix in matrices:
            result = magnitude_prune_matrix(
                matrix.read(), num_pruned=counts[matrix.name],
                must_prune=forced.get(matrix.name))
            matrix.write(result.weight)
            keep[matrix.name] = result.mask.cpu()
        return assemble_mask(matrices, keep, self.method, {"sparsity": float(sparsity)},
                             1.0 - float(sparsity))
