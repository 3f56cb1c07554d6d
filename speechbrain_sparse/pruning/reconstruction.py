"""How well a pruned linear layer reproduces the dense one on calibration inputs.

The relative reconstruction error ``||W X - Ŵ X||² / ||W X||²`` (the loss of eq. 2
of the SparseWAV paper, normalised) is computed either from the inputs ``X`` or,
without them, from the Hessian ``H = 2 X Xᵀ / n`` of
:class:`~speechbrain_sparse.pruning.hessian.HessianAccumulator`, as
``tr(ΔW H ΔWᵀ) / tr(W H Wᵀ)`` with ``ΔW = W - Ŵ`` (the factor ``2/n`` cancels).

Example
-------
>>> weight = torch.tensor([[1.0, 2.0]])
>>> inputs = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
>>> relative_reconstruction_error(weight, torch.tensor([[1.0, 0.0]]), inputs)
0.8
>>> hessian = 2 * inputs.T @ inputs / 2
>>> relative_reconstruction_error(weight, torch.tensor([[1.0, 0.0]]), hessian,
...                               kind="hessian")
0.8

Authors
 * speechbrain_sparse contributors 2026
"""

import torch

from speechbrain_sparse.pruning.hessian import HessianAccumulator

KINDS = ("auto", "inputs", "hessian")


def relative_reconstruction_error(weight, pruned_weight, inputs_or_hessian,
                                  kind="auto", dtype=torch.float64):
    """Returns ``||W X - Ŵ X||² / ||W X||²`` (computed in fp64 by default).

    Arguments
    ---------
    weight : torch.Tensor
        The dense ``[out, in]`` weight ``W``.
    pruned_weight : torch.Tensor
        The pruned ``[out, in]`` weight ``Ŵ``.
    inputs_or_hessian : torch.Tensor or HessianAccumulator
        Inputs ``[..., in]`` (one frame per row), or the ``[in, in]`` Hessian
        ``2 X Xᵀ / n`` (or any positive multiple of ``X Xᵀ``), or an accumulator.
    kind : str
        ``"inputs"``, ``"hessian"``, or ``"auto"``: an accumulator, or a square
        ``[in, in]`` tensor symmetric up to rounding, is a Hessian; anything else
        is inputs. Pass the kind when inputs could be square and symmetric.
    dtype : torch.dtype
        Precision of the products (``torch.float32``: about twice as fast on
        CPU; ``ΔW`` is formed directly, so nothing cancels).

    Returns
    -------
    float
        The relative error; 0.0 if both norms are zero, inf if only ``||WX||`` is.

    Example
    -------
    >>> acc = HessianAccumulator(2)
    >>> acc.add(torch.tensor([[1.0, 1.0]]))
    >>> relative_reconstruction_error(torch.ones(1, 2), torch.zeros(1, 2), acc)
    1.0
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    weight = weight.detach().to(dtype)
    delta = weight - pruned_weight.detach().to(weight.device, dtype)
    if isinstance(inputs_or_hessian, HessianAccumulator):
        kind, inputs_or_hessian = "hessian", inputs_or_hessian.hessian()
    data = inputs_or_hessian.detach().to(weight.device, dtype)
    if kind == "auto":
        square = data.dim() == 2 and data.shape[0] == data.shape[1] == weight.shape[1]
        symmetric = square and torch.allclose(data, data.T, rtol=1e-5, atol=1e-12)
        kind = "hessian" if symmetric else "inputs"
    if kind == "hessian":
        error = ((delta @ data) * delta).sum(dtype=torch.float64)
        reference = ((weight @ data) * weight).sum(dtype=torch.float64)
    else:
        frames = data.reshape(-1, weight.shape[1])
        error = (frames @ delta.T).square().sum(dtype=torch.float64)
        reference = (frames @ weight.T).square().sum(dtype=torch.float64)
    error, reference = float(error), float(reference)
    if reference == 0.0:
        return 0.0 if error == 0.0 else float("inf")
    return error / reference
