"""The vocabulary of layer-wise pruning: matrices, input streams, blocks, families.

A :class:`PrunableMatrix` is one weight matrix to prune (a parameter or a row
slice of a packed one); an :class:`InputStream` says how to capture the input
that feeds it during a forward pass; a :class:`Block` (one Transformer layer)
groups the matrices calibrated together; a :class:`Stage` is a run of blocks
fed by one captured entry. A :class:`ModelFamily` produces them for a model;
the concrete families live in :mod:`speechbrain_sparse.pruning.model_families`.

Example
-------
>>> layer = torch.nn.Linear(3, 2)
>>> matrix = PrunableMatrix("weight", "weight", layer.weight, "input")
>>> block = Block("layer", layer, [matrix], {"input": InputStream(layer)})
>>> block.matrices[0].shape, block.streams["input"].kind
((2, 3), 'linear')
"""

import contextlib

import torch

from speechbrain_sparse.masks import canonical_parameter_name


class PrunableMatrix:
    """One weight matrix to prune: a parameter, or a block of its rows.

    Arguments
    ---------
    name : str
        Unique display name: the canonical parameter name, plus ``[q]`` /
        ``[k]`` / ``[v]`` for a slice of a packed projection.
    parameter_name : str
        Canonical name of the parameter in the model given to the family.
    parameter : torch.nn.Parameter
        The parameter holding the matrix (``[out, in]``).
    stream : str
        Name of the :class:`InputStream` of the block that feeds this matrix.
    rows : slice, optional
        The rows of ``parameter`` that form the matrix (default: all).

    Example
    -------
    >>> packed = torch.nn.Parameter(torch.arange(12.0).view(6, 2))
    >>> key = PrunableMatrix("w[k]", "w", packed, "input", rows=slice(2, 4))
    >>> key.read()
    tensor([[4., 5.],
            [6., 7.]])
    >>> key.write(torch.zeros(2, 2)); packed[:, 0].tolist()
    [0.0, 2.0, 0.0, 0.0, 8.0, 10.0]
    """

    def __init__(self, name, parameter_name, parameter, stream, rows=None):
        self.name = name
        self.parameter_name = parameter_name
        self.parameter = parameter
        self.stream = stream
        self.rows = rows if rows is not None else slice(0, parameter.shape[0])

    @property
    def shape(self):
        """``(rows, columns)`` of the matrix."""
        return (self.rows.stop - self.rows.start, self.parameter.shape[1])

    def numel(self):
        """Returns the number of entries of the matrix."""
        return self.shape[0] * self.shape[1]

    def read(self):
        """Returns a detached copy of the matrix."""
        return self.parameter.detach()[self.rows].clone()

    @torch.no_grad()
    def write(self, weight):
        """Copies ``weight`` (same shape) into the parameter's rows."""
        self.parameter[self.rows].copy_(weight.to(self.parameter.dtype))

    def __repr__(self):
        return f"PrunableMatrix({self.name!r}, shape={self.shape}, {self.stream!r})"


class InputStream:
    """How to capture one input of a block's matrices during its forward pass.

    Arguments
    ---------
    module : torch.nn.Module
        The module whose call carries the input.
    kind : str
        ``"linear"``: the first argument of ``module`` (an ``nn.Linear``);
        ``"argument"``: the argument ``argument`` of ``module.forward``;
        ``"context"``: the input of ``out_proj``, an attention's context,
        captured through an identity ``out_proj`` (see the module docstring).
    argument : str, optional
        The argument's name for ``kind="argument"``.
    out_proj : torch.nn.Linear, optional
        The output projection for ``kind="context"``.
    time_first : bool
        Whether the tensor is ``[time, batch, features]`` (else batch first).
    padding : str
        Which padding mask of the block call applies (e.g. ``"frames"``).
    """

    def __init__(self, module, kind="linear", argument=None, out_proj=None,
                 time_first=False, padding="frames"):
        if kind not in ("linear", "argument", "context"):
            raise ValueError(f"unknown input stream kind {kind!r}")
        if kind == "context" and out_proj is None:
            raise ValueError("a 'context' stream needs out_proj")
        self.module = module
        self.kind = kind
        self.argument = argument
        self.out_proj = out_proj
        self.time_first = time_first
        self.padding = padding


class Block:
    """A unit of block-by-block calibration (one Transformer layer).

    Arguments
    ---------
    name : str
        Canonical name of the block module.
    module : torch.nn.Module
        The layer; called with the arguments captured for it.
    matrices : list of PrunableMatrix
        The matrices pruned in this block, in forward order.
    streams : dict
        Stream name -> :class:`InputStream`.
    """

    def __init__(self, name, module, matrices, streams):
        self.name = name
        self.module = module
        self.matrices = list(matrices)
        self.streams = dict(streams)


class Stage:
    """Consecutive blocks fed by one captured entry (an encoder or a decoder).

    Arguments
    ---------
    name : str
        ``"encoder"`` or ``"decoder"``.
    blocks : list of Block
        In forward order; the stage's input is captured at ``blocks[0]``.
    """

    def __init__(self, name, blocks):
        self.name = name
        self.blocks = list(blocks)


class ModelFamily:
    """What the pruner needs to know about a kind of model (the interface).

    A calibration batch is a SpeechBrain ``PaddedBatch`` with ``sig``
    (waveforms and relative lengths) and, for attention decoders,
    ``tokens_bos`` / ``tokens_eos``.
    """

    def stages(self, model):
        """Returns the :class:`Stage` list of ``model``, in forward order."""
        raise NotImplementedError

    def forward(self, model, batch):
        """Runs the whole model on one calibration batch; returns its outputs."""
        raise NotImplementedError

    def padding_masks(self, model, stage, batch, args, kwargs):
        """Returns ``{padding name: bool [batch, time]}`` (True = real frame).

        ``args`` / ``kwargs`` are those of the stage's first block for ``batch``;
        a value of ``None`` means no padding.
        """
        raise NotImplementedError

    def next_call(self, stage, index, args, kwargs, output):
        """Returns ``(args, kwargs)`` of block ``index`` given the previous output."""
        raise NotImplementedError

    def modules(self, model):
        """Returns every module :meth:`forward` runs (set to eval while pruning)."""
        return [model]

    def twice_differentiable(self, model):
        """Returns a context in which the model supports double backward."""
        return contextlib.nullcontext()

    def sensitivity_reference(self, model, batch):
        """Returns what :meth:`sensitivity_loss` compares with (dense model)."""
        return None

    def sensitivity_loss(self, model, batch, reference):
        """Returns a twice-differentiable scalar loss for the Hessian trace."""
        raise NotImplementedError



def lengths_to_mask(lengths, max_length):
    """Returns ``bool [batch, max_length]``, True below each (rounded) length."""
    lengths = torch.round(torch.as_tensor(lengths)).long()
    steps = torch.arange(max_length, device=lengths.device)
    return steps.unsqueeze(0) < lengths.unsqueeze(1)


def names_by_id(model):
    """Returns ``{id(parameter or module): canonical name}`` within ``model``."""
    named = list(model.named_modules()) + list(model.named_parameters())
    return {id(item): canonical_parameter_name(name) for name, item in named}


def matrix_of(names, module, attribute, stream, rows=None, label=None):
    """Returns the :class:`PrunableMatrix` of ``module.<attribute>`` (named)."""
    parameter = getattr(module, attribute)
    name = names[id(parameter)]
    return PrunableMatrix(name if label is None else f"{name}[{label}]", name,
                          parameter, stream, rows)
