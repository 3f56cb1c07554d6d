"""Calibration for layer-wise pruning: block inputs, Hessians, propagation, data.

Block by block, as in SparseGPT: the inputs of a stage's first block are
captured once per calibration batch by running the model until that block is
called (:func:`capture_stage_entry`, a forward pre-hook that stops the
forward); each block is then run on those inputs with hooks on its input
streams, which feed one :class:`~speechbrain_sparse.pruning.hessian.HessianAccumulator`
per stream with padded frames left out (:func:`accumulate_hessians`); after its
matrices are pruned, the block is run again and its outputs, from the pruned
weights, become the inputs of the next block (:func:`propagate`). A stage
after the first (the decoder) is entered by running the model again, so it
sees the already-pruned earlier stages.

:func:`load_calibration_batches` reads calibration utterances from a
SpeechBrain manifest CSV.

Example
-------
>>> from speechbrain.dataio.batch import PaddedBatch
>>> from speechbrain_sparse.pruning.prunable import Block, InputStream, Stage
>>> layer = torch.nn.Linear(3, 3)
>>> class Family:
...     def forward(self, model, batch): return model(batch.sig.data)
...     def padding_masks(self, model, stage, batch, args, kwargs):
...         return {"frames": None}
>>> stage = Stage("encoder", [Block("0", layer, [], {"x": InputStream(layer)})])
>>> batch = PaddedBatch([{"sig": torch.ones(4, 3)}])
>>> call = capture_stage_entry(layer, Family(), stage, batch)
>>> hessians = accumulate_hessians(stage.blocks[0], [call])
>>> hessians["x"].num_frames
4
"""

import contextlib
import inspect
import logging
import random
import time

import torch
import torch.nn.functional as F
from speechbrain.dataio.batch import PaddedBatch

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.fileio import (
    check_audio_file,
    read_audio_checked,
    read_manifest,
)
from speechbrain_sparse.pruning.hessian import HessianAccumulator

logger = logging.getLogger(__name__)


class _StopForward(Exception):
    """Raised by the entry hook: the rest of the model need not run."""


class BlockCall:
    """The arguments one block is called with for one batch, and its padding.

    Arguments
    ---------
    args : tuple
        Positional arguments of the block's ``forward``.
    kwargs : dict
        Keyword arguments of the block's ``forward``.
    padding : dict
        Padding name -> bool ``[batch, time]`` (True = real frame) or None.
    """

    def __init__(self, args, kwargs, padding):
        self.args = tuple(args)
        self.kwargs = dict(kwargs)
        self.padding = dict(padding)

    def run(self, module):
        """Returns ``module(*args, **kwargs)``."""
        return module(*self.args, **self.kwargs)


def capture_stage_entry(model, family, stage, batch):
    """Runs ``model`` on ``batch`` until the stage's first block; returns its call.

    Arguments
    ---------
    model : torch.nn.Module
        The model being pruned (earlier stages already pruned).
    family : ModelFamily
        Knows how to run the model and its padding.
    stage : Stage
        The stage to enter.
    batch : speechbrain.dataio.batch.PaddedBatch
        One calibration batch.

    Returns
    -------
    BlockCall
    """
    captured = []

    def hook(module, args, kwargs):
        captured.append((args, kwargs))
        raise _StopForward

    first = stage.blocks[0]
    handle = first.module.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        family.forward(model, batch)
    except _StopForward:
        pass
    finally:
        handle.remove()
    if not captured:
        raise RuntimeError(f"the model's forward never called {first.name}, the "
                           f"first block of stage {stage.name!r}")
    args, kwargs = captured[0]
    return BlockCall(args, kwargs,
                     family.padding_masks(model, stage, batch, args, kwargs))


@contextlib.contextmanager
def capturing_inputs(block, receive):
    """Within the context, every input stream of ``block`` calls ``receive``.

    ``receive(stream_name, tensor)`` gets the stream's tensor as the module
    sees it. ``"context"`` streams set ``out_proj`` to the identity and put
    ``out_proj(context)``, with the real weights, back into the attention's
    output (exact, see :mod:`~speechbrain_sparse.pruning.model_families`);
    the weights are restored on exit, also after an error.

    Arguments
    ---------
    block : Block
        The block whose streams to capture.
    receive : callable
        Called with ``(stream_name, tensor)``.
    """
    handles, restore = [], []
    try:
        for name, stream in block.streams.items():
            if stream.kind == "linear":
                handles.append(stream.module.register_forward_pre_hook(
                    _first_argument_hook(name, receive)))
            elif stream.kind == "argument":
                handles.append(stream.module.register_forward_pre_hook(
                    _named_argument_hook(name, stream, receive), with_kwargs=True))
            else:
                restore.append(_identity_out_proj(stream.out_proj))
                handles.append(stream.module.register_forward_hook(
                    _context_hook(name, receive, *restore[-1][1:])))
        yield
    finally:
        for handle in handles:
            handle.remove()
        for parameters, weight, bias in restore:
            parameters[0].data = weight
            if bias is not None:
                parameters[1].data = bias


def _first_argument_hook(name, receive):
    def hook(module, args):
        receive(name, args[0])

    return hook


def _named_argument_hook(name, stream, receive):
    signature = inspect.signature(stream.module.forward)

    def hook(module, args, kwargs):
        receive(name, signature.bind(*args, **kwargs).arguments[stream.argument])

    return hook


def _identity_out_proj(out_proj):
    """Sets ``out_proj`` to the identity; returns what restores it."""
    weight, bias = out_proj.weight, out_proj.bias
    if weight.shape[0] != weight.shape[1]:
        raise ValueError(f"context capture needs a square out_proj, got "
                         f"{tuple(weight.shape)}")
    saved = (weight.data, None if bias is None else bias.data)
    weight.data = torch.eye(weight.shape[0], dtype=weight.dtype, device=weight.device)
    if bias is not None:
        bias.data = torch.zeros_like(bias.data)
    return (weight, bias), saved[0], saved[1]


def _context_hook(name, receive, weight, bias):
    def hook(module, args, output):
        context = output[0]
        receive(name, context)
        return (F.linear(context, weight, bias),) + tuple(output[1:])

    return hook


@torch.no_grad()
def accumulate_hessians(block, calls, dtype=torch.float32, device=None,
                        timings=None):
    """Runs ``block`` on ``calls``; returns one Hessian accumulator per stream.

    Arguments
    ---------
    block : Block
        The block (its matrices not pruned yet).
    calls : list of BlockCall
        One per calibration batch.
    dtype : torch.dtype
        Precision of the Hessians.
    device : torch.device, optional
        Where the Hessians live (default: where the inputs are).
    timings : dict, optional
        ``timings["hessian"]`` is increased by the seconds spent adding inputs.

    Returns
    -------
    dict
        Stream name -> ``HessianAccumulator`` (padded frames excluded).
    """
    accumulators, padding = {}, {}

    def receive(name, tensor):
        stream = block.streams[name]
        inputs = tensor.detach()
        if stream.time_first:
            inputs = inputs.transpose(0, 1)
        mask = padding.get(stream.padding)
        if name not in accumulators:
            accumulators[name] = HessianAccumulator(
                inputs.shape[-1], dtype=dtype, device=device or inputs.device
            )
        start = time.perf_counter()
        accumulators[name].add(inputs, frame_mask=mask)
        if timings is not None:
            timings["hessian"] = timings.get("hessian", 0.0) + (
                time.perf_counter() - start)

    with capturing_inputs(block, receive):
        for call in calls:
            padding.clear()
            padding.update(call.padding)
            call.run(block.module)
    missing = sorted({m.stream for m in block.matrices} - set(accumulators))
    if missing:
        raise RuntimeError(f"{block.name}: input stream(s) {missing} never reached "
                           "during the block's forward")
    return accumulators


@torch.no_grad()
def propagate(family, stage, index, calls):
    """Returns the calls of block ``index + 1`` from the outputs of block ``index``.

    Arguments
    ---------
    family : ModelFamily
        Maps a block's output to the next block's arguments.
    stage : Stage
        The stage the blocks belong to.
    index : int
        The block just pruned.
    calls : list of BlockCall
        Its calls, one per batch.

    Returns
    -------
    list of BlockCall
    """
    block = stage.blocks[index]
    following = []
    for call in calls:
        args, kwargs = family.next_call(stage, index + 1, call.args, call.kwargs,
                                        call.run(block.module))
        following.append(BlockCall(args, kwargs, call.padding))
    return following


def load_calibration_batches(csv_path, num_utterances=None, batch_size=8, seed=0,
                             tokenizer=None, bos_index=1, eos_index=2,
                             max_duration=None, sample_rate=16000):
    """Reads calibration batches from a manifest CSV (``ID,duration,wav,...``).

    Utterances are drawn at random (``seed``), then sorted by duration so that
    batches carry little padding.

    Arguments
    ---------
    csv_path : str or Path
        Manifest with at least ``ID``, ``duration``, ``wav`` (and ``wrd`` when
        a tokenizer is given).
    num_utterances : int, optional
        How many utterances to use (default: all).
    batch_size : int
        Utterances per batch.
    seed : int
        Seed of the random draw.
    tokenizer : sentencepiece.SentencePieceProcessor, optional
        Adds ``tokens_bos`` / ``tokens_eos`` (for attention decoders).
    bos_index, eos_index : int
        Tokens around the transcript.
    max_duration : float, optional
        Leave out longer utterances (seconds).
    sample_rate : int
        Every file must have this rate (the models are trained at 16 kHz).

    Returns
    -------
    list of speechbrain.dataio.batch.PaddedBatch
        With ``id``, ``sig`` and, with a tokenizer, ``tokens_bos``,
        ``tokens_eos``.

    Raises
    ------
    ValueError
        Naming the file (and the row) when the manifest cannot be used.
    """
    required = ("ID", "duration", "wav") + (("wrd",) if tokenizer is not None else ())
    rows = read_manifest(csv_path, required)
    if max_duration is not None:
        rows = [row for row in rows if row["duration"] <= max_duration]
    if num_utterances is not None and num_utterances < len(rows):
        rows = random.Random(seed).sample(rows, int(num_utterances))
    if not rows:
        raise UserInputError(f"{csv_path}: no calibration utterance left")
    rows.sort(key=lambda row: row["duration"])
    for row in rows:  # every header first: a bad file stops before any decoding
        check_audio_file(row["wav"], f"{csv_path} (ID {row['ID']!r})", sample_rate,
                         row["duration"])
    examples = []
    for row in rows:
        example = {"id": row["ID"], "sig": read_audio_checked(row["wav"])}
        if tokenizer is not None:
            tokens = tokenizer.encode_as_ids(row["wrd"])
            example["tokens_bos"] = torch.LongTensor([bos_index] + tokens)
            example["tokens_eos"] = torch.LongTensor(tokens + [eos_index])
        examples.append(example)
    return [PaddedBatch(examples[i:i + batch_size])
            for i in range(0, len(examples), batch_size)]

