"""The layer-wise Hessian ``H = 2 X Xᵀ / n`` of a linear layer's reconstruction loss.

For a linear layer ``y = W x`` and calibration inputs ``X`` (one column per frame),
the loss ``(1/n) ||W X - Ŵ X||²`` of eq. 2 of the SparseWAV paper has, for every
row of ``Ŵ``, the same Hessian ``H = 2 X Xᵀ / n`` (the SparseGPT convention: the
paper's ``2 X Xᵀ`` divided by the number ``n`` of frames, so that ``H`` does not
grow with the amount of calibration data). :class:`HessianAccumulator` builds it
from batches of inputs as they stream through the model, skipping padded frames.

The running sum is kept already normalised: after each batch of ``m`` frames,
``H <- H * n / (n + m) + (2 / (n + m)) * Σ x xᵀ`` (one ``addmm`` per column block
with ``beta`` and ``alpha`` doing the scaling). Entries therefore stay of the
order of the input's second moment however many frames are added, which keeps
fp32 accumulation accurate.

``H`` is symmetric, so only its lower triangle is accumulated, a block of
columns at a time (``column_blocks``, 4 by default: 5/8 of the full product's
multiply-adds, like BLAS ``syrk``); :meth:`HessianAccumulator.hessian` mirrors
it. ``column_blocks=1`` computes the full product (what the benchmark compares
with).

Example
-------
>>> acc = HessianAccumulator(3)
>>> acc.add(torch.ones(2, 5, 3))
>>> acc.num_frames, [round(v, 5) for v in acc.hessian()[0].tolist()]
(10, [2.0, 2.0, 2.0])

Authors
 * speechbrain_sparse contributors 2026
"""

import torch


class HessianAccumulator:
    """Running ``H = (2/n) Σ x xᵀ`` over the ``n`` real frames seen so far.

    Arguments
    ---------
    in_features : int
        Size of the last dimension of the inputs (the layer's ``in_features``).
    dtype : torch.dtype
        Precision of the accumulation and of :meth:`hessian` (``torch.float32``
        by default; ``torch.float64`` for very long or badly scaled inputs).
    device : torch.device or str, optional
        Where ``H`` lives; default: the device of the first batch added.
    column_blocks : int, optional
        Column blocks of the lower-triangular update (1: the full product);
        default :attr:`DEFAULT_COLUMN_BLOCKS`.

    Example
    -------
    >>> acc = HessianAccumulator(2, dtype=torch.float64)
    >>> frames = torch.tensor([[[1.0, 0.0], [9.0, 9.0]], [[0.0, 1.0], [0.0, 1.0]]])
    >>> real = torch.tensor([[True, False], [True, True]])  # [batch, time]
    >>> acc.add(frames, frame_mask=real)
    >>> acc.num_frames
    3
    >>> acc.hessian() * 3 / 2  # = X Xᵀ over the three real frames
    tensor([[1., 0.],
            [0., 2.]], dtype=torch.float64)
    """

    DEFAULT_COLUMN_BLOCKS = 4

    def __init__(self, in_features, dtype=torch.float32, device=None,
                 column_blocks=None):
        if int(in_features) <= 0:
            raise ValueError(f"in_features must be positive, got {in_features}")
        blocks = self.DEFAULT_COLUMN_BLOCKS if column_blocks is None else column_blocks
        if int(blocks) < 1:
            raise ValueError(f"column_blocks must be >= 1, got {column_blocks}")
        width = -(-int(in_features) // int(blocks))
        self.column_bounds = [(start, min(start + width, int(in_features)))
                              for start in range(0, int(in_features), width)]
        if not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating point type, got {dtype}")
        self.in_features = int(in_features)
        self.dtype = dtype
        self.device = None if device is None else torch.device(device)
        self.num_frames = 0
        self._hessian = None

    @torch.no_grad()
    def add(self, inputs, frame_mask=None):
        """Adds the frames of ``inputs`` (all of them, or those ``frame_mask`` keeps).

        Arguments
        ---------
        inputs : torch.Tensor
            ``[..., in_features]``: any leading shape (``[batch, time]``, ...).
        frame_mask : torch.Tensor, optional
            Bool tensor of shape ``inputs.shape[:-1]``; True marks a real frame,
            False a padded one, which does not enter ``H`` nor the frame count.
        """
        if inputs.shape[-1] != self.in_features:
            raise ValueError(
                f"inputs have {inputs.shape[-1]} features, expected {self.in_features}"
            )
        if self.device is None:
            self.device = inputs.device
        frames = inputs.detach().reshape(-1, self.in_features)
        if frame_mask is not None:
            if tuple(frame_mask.shape) != tuple(inputs.shape[:-1]):
                raise ValueError(
                    f"frame_mask has shape {tuple(frame_mask.shape)}, expected the "
                    f"leading shape of the inputs {tuple(inputs.shape[:-1])}"
                )
            keep = frame_mask.detach().reshape(-1).to(frames.device, torch.bool)
            frames = frames[keep]
        count = frames.shape[0]
        if count == 0:
            return
        frames = frames.to(self.device, self.dtype)
        if self._hessian is None:
            self._hessian = torch.zeros(
                self.in_features, self.in_features, dtype=self.dtype, device=self.device
            )
        total = self.num_frames + count
        beta, alpha = self.num_frames / total, 2.0 / total
        # H <- H * n / (n + m) + (2 / (n + m)) Xᵀ X: lower triangle, by column block
        for start, stop in self.column_bounds:
            self._hessian[start:, start:stop].addmm_(
                frames[:, start:].T, frames[:, start:stop], beta=beta, alpha=alpha)
        self.num_frames = total

    def hessian(self):
        """Returns a copy of ``H = (2/n) Σ x xᵀ`` (zeros if no frame was added).

        Returns
        -------
        torch.Tensor
            ``[in_features, in_features]``, symmetric, in ``dtype``.
        """
        if self._hessian is None:
            return torch.zeros(
                self.in_features, self.in_features, dtype=self.dtype,
                device=self.device,
            )
        # Only the lower triangle is accumulated (or, with one column block, the
        # full X^T X, which a BLAS need not return exactly symmetric): mirror it.
        lower = torch.tril(self._hessian)
        return lower + torch.tril(lower, diagonal=-1).T

    def __repr__(self):
        return (f"HessianAccumulator(in_features={self.in_features}, "
                f"num_frames={self.num_frames}, dtype={self.dtype})")
