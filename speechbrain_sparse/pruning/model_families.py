"""Which Linear is which: the prunable matrices of each supported model family.

Layer-wise pruning needs, for every weight matrix ``W`` to prune, the inputs
``X`` that reach it, block by block. This module is the one place that knows,
per model family, the blocks (in the order the data flows through them), the
matrices of each block, the *input stream* feeding each matrix (how to capture
it and which padding mask applies to it), how one block's output becomes the
next block's input, and how to run the whole model on a calibration batch.

Families:

* :class:`TransformerASRFamily`: SpeechBrain's ``TransformerASR`` (our recipes).
  Attention is torch ``nn.MultiheadAttention``: q/k/v live in one packed
  ``in_proj_weight`` and are pruned as three row slices, each with the Hessian
  of its own input (query, key or value; in the decoder's cross-attention the
  keys and values come from the encoder output, with the encoder's padding).
* :class:`HuggingFaceSSLFamily`: ``transformers`` Wav2Vec2, HuBERT and WavLM,
  ``*ForCTC`` or base models. Wav2Vec2/HuBERT call ``q_proj`` ... ``out_proj``
  as modules, so forward pre-hooks see their inputs.

Attention that uses raw weights. WavLM's attention (transformers 5.x,
``WavLMAttention.torch_multi_head_self_attention``) and torch's
``nn.MultiheadAttention`` both call ``F.multi_head_attention_forward`` with
``q_proj.weight`` / ``in_proj_weight`` and ``out_proj.weight`` as tensors, so
hooks on the projection modules never fire. Their inputs are captured at the
attention module instead: the q/k/v input is an argument of the attention's
``forward`` (``hidden_states`` for WavLM, self-attention, so q = k = v input;
``query`` / ``key`` / ``value`` for torch); the out_proj input (the attention
context, heads concatenated) is read by temporarily setting ``out_proj`` to the
identity, taking the attention's output (which then *is* the context) in a
forward hook and returning ``out_proj(context)`` computed with the real weights
in its place (:class:`InputStream` kind ``"context"``). Multiplying by an
identity matrix is exact in floating point, so the block computes bit for bit
what it computes without the hooks; WavLM's gated relative position bias, the
padding mask and everything else inside the attention stay untouched.

Example
-------
>>> from transformers import Wav2Vec2Config, Wav2Vec2Model
>>> config = Wav2Vec2Config(hidden_size=16, num_hidden_layers=2,
...     num_attention_heads=2, intermediate_size=32, conv_dim=(8, 8),
...     conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=8,
...     num_conv_pos_embedding_groups=2)
>>> stages = HuggingFaceSSLFamily().stages(Wav2Vec2Model(config))
>>> [matrix.name for matrix in stages[0].blocks[0].matrices][:2]
['encoder.layers.0.attention.q_proj.weight', 'encoder.layers.0.attention.k_proj.weight']
"""

import contextlib

import torch

from speechbrain_sparse.data.features import batch_features
from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.pruning.prunable import (
    Block,
    InputStream,
    ModelFamily,
    Stage,
    lengths_to_mask,
    matrix_of,
    names_by_id,
)

QKV_SLICES = ("q", "k", "v")
HF_SSL_MODEL_TYPES = ("wav2vec2", "hubert", "wavlm")


def torch_attention_matrices(names, attention, streams):
    """Returns the q, k, v and out matrices of a torch ``nn.MultiheadAttention``.

    Arguments
    ---------
    names : dict
        ``id(parameter) -> canonical name`` of the model.
    attention : torch.nn.MultiheadAttention
        The attention module.
    streams : sequence of str
        Stream names of the query, key, value and context inputs.

    Returns
    -------
    list of PrunableMatrix
        q, k, v (row slices of ``in_proj_weight`` when packed) and out.
    """
    query, key, value, context = streams
    if attention.in_proj_weight is not None:
        size = attention.embed_dim
        matrices = [
            matrix_of(names, attention, "in_proj_weight", stream,
                      slice(i * size, (i + 1) * size), label)
            for i, (label, stream) in enumerate(zip(QKV_SLICES, (query, key, value)))
        ]
    else:
        matrices = [
            matrix_of(names, attention, f"{label}_proj_weight", stream)
            for label, stream in zip(QKV_SLICES, (query, key, value))
        ]
    return matrices + [matrix_of(names, attention.out_proj, "weight", context)]


def torch_attention_streams(attention, prefix, query_padding, memory_padding):
    """Returns the query/memory/context :class:`InputStream` of torch attention.

    In a self-attention (``memory_padding=None``) key and value are the query,
    so q, k and v share one stream (one Hessian). In SpeechBrain's decoder
    cross-attention, key and value are both the encoder output (the memory),
    so k and v share the ``key`` argument's stream, padded as the memory.

    Returns
    -------
    streams : dict
        Stream name -> :class:`InputStream`.
    names : tuple
        The stream names of q, k, v and out, for :func:`torch_attention_matrices`.
    """
    time_first = not attention.batch_first
    query = InputStream(attention, "argument", "query", time_first=time_first,
                        padding=query_padding)
    context = InputStream(attention, "context", out_proj=attention.out_proj,
                          time_first=time_first, padding=query_padding)
    streams = {f"{prefix}_query": query, f"{prefix}_context": context}
    memory = f"{prefix}_query"
    if memory_padding is not None:
        memory = f"{prefix}_memory"
        streams[memory] = InputStream(attention, "argument", "key",
                                      time_first=time_first, padding=memory_padding)
    return streams, (f"{prefix}_query", memory, memory, f"{prefix}_context")


class TransformerASRFamily(ModelFamily):
    """SpeechBrain ``TransformerASR`` with the recipe's features and CNN front-end.

    Blocks: every encoder layer (stage ``encoder``, padding ``frames``), then
    every decoder layer (stage ``decoder``: the decoder's own inputs are padded
    as ``tokens``, the encoder output it attends to as ``memory``). Matrices per
    layer: the attention q, k, v (slices of the packed ``in_proj_weight``) and
    out projections, cross-attention ones in decoder layers, and the two FFN
    linears. The front-end, embeddings and output heads stay dense.

    The sensitivity loss for mixed sparsity is the attention decoder's token
    NLL (CTC has no double backward in PyTorch).

    Arguments
    ---------
    transformer : speechbrain.lobes.models.transformer.TransformerASR.TransformerASR
        The model's Transformer.
    frontend : torch.nn.Module
        Features -> Transformer input (the recipe's ``CNN``).
    compute_features : callable
        Waveforms -> features (``Fbank``).
    normalize : torch.nn.Module, optional
        ``InputNormalization`` applied to the features (eval mode: no update).
    seq_lin : torch.nn.Module, optional
        Decoder output -> token logits; needed for mixed sparsity.
    pad_index : int
        Padding token of ``tokens_bos``.
    """

    def __init__(self, transformer, frontend, compute_features, normalize=None,
                 seq_lin=None, pad_index=0):
        self.transformer = transformer
        self.frontend = frontend
        self.compute_features = compute_features
        self.normalize = normalize
        self.seq_lin = seq_lin
        self.pad_index = pad_index

    def stages(self, model):
        names = names_by_id(model)
        encoder = [self._layer_block(names, layer, decoder=False)
                   for layer in self.transformer.encoder.layers]
        stages = [Stage("encoder", encoder)]
        decoder = getattr(self.transformer, "decoder", None)
        if decoder is not None and len(decoder.layers):
            stages.append(Stage("decoder", [
                self._layer_block(names, layer, decoder=True)
                for layer in decoder.layers
            ]))
        return stages

    @staticmethod
    def _layer_block(names, layer, decoder):
        padding = "tokens" if decoder else "frames"
        self_attention = (layer.self_attn if decoder else layer.self_att).att
        streams, inputs = torch_attention_streams(self_attention, "self_attention",
                                                  padding, None)
        matrices = torch_attention_matrices(names, self_attention, inputs)
        if decoder:
            cross = layer.multihead_attn.att
            cross_streams, inputs = torch_attention_streams(
                cross, "cross_attention", "tokens", "memory"
            )
            streams.update(cross_streams)
            matrices += torch_attention_matrices(names, cross, inputs)
        ffn = layer.pos_ffn.ffn  # Linear, activation, Dropout, Linear; time first
        streams["ffn_input"] = InputStream(ffn[0], time_first=True, padding=padding)
        streams["ffn_hidden"] = InputStream(ffn[3], time_first=True, padding=padding)
        matrices += [matrix_of(names, ffn[0], "weight", "ffn_input"),
                     matrix_of(names, ffn[3], "weight", "ffn_hidden")]
        return Block(names[id(layer)], layer, matrices, streams)

    def modules(self, model):
        extra = [self.transformer, self.frontend, self.normalize, self.seq_lin]
        return [model] + [m for m in extra if isinstance(m, torch.nn.Module)]

    def forward(self, model, batch):
        feats, wav_lens = batch_features(batch, self.compute_features)
        if self.normalize is not None:
            feats = self.normalize(feats, wav_lens)
        tokens = batch.tokens_bos.data if hasattr(batch, "tokens_bos") else None
        return self.transformer(self.frontend(feats), tokens, wav_lens,
                                pad_idx=self.pad_index)

    def padding_masks(self, model, stage, batch, args, kwargs):
        def real(name):
            padded = kwargs.get(name)
            return None if padded is None else ~padded.bool()

        if stage.name == "encoder":
            return {"frames": real("src_key_padding_mask")}
        if not hasattr(batch, "tokens_bos"):
            raise ValueError("calibration batches need 'tokens_bos' to prune the "
                             "decoder (prepare them with a tokenizer)")
        return {"tokens": real("tgt_key_padding_mask"),
                "memory": real("memory_key_padding_mask")}

    def next_call(self, stage, index, args, kwargs, output):
        return (output[0],) + tuple(args[1:]), kwargs

    def sensitivity_loss(self, model, batch, reference):
        if self.seq_lin is None or not hasattr(batch, "tokens_eos"):
            raise ValueError("mixed sparsity on TransformerASR needs seq_lin and "
                             "calibration batches with 'tokens_eos'")
        _, decoder_out = self.forward(model, batch)
        log_probs = torch.log_softmax(self.seq_lin(decoder_out), dim=-1)
        targets, lengths = batch.tokens_eos
        real = lengths_to_mask(lengths * targets.shape[1], targets.shape[1])
        nll = -log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        return (nll * real).sum() / real.sum().clamp(min=1)


class HuggingFaceSSLFamily(ModelFamily):
    """``transformers`` Wav2Vec2, HuBERT and WavLM (``*ForCTC`` or base model).

    Blocks: the Transformer encoder layers. Matrices per layer: attention
    ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj`` and the feed-forward
    ``intermediate_dense`` / ``output_dense``. The convolutional feature
    encoder, the positional convolution, WavLM's relative-position gate and the
    CTC head stay dense. WavLM's raw-weight attention is captured at the
    attention module (see the module docstring); its relative position bias,
    computed by the first layer, is carried to the next layers as in the model.

    The sensitivity loss for mixed sparsity is a distillation loss to the dense
    model, which is twice differentiable where CTC is not: the KL divergence
    from the dense model's CTC posteriors (``*ForCTC``) or the mean squared
    error to its last hidden state (base models), over real frames. Eager
    attention is used while it is differentiated twice (SDPA has no double
    backward on CPU).

    Arguments
    ---------
    normalize_audio : bool
        Zero-mean, unit-variance per utterance (over its real samples), as the
        model's ``Wav2Vec2FeatureExtractor(do_normalize=True)`` does.
    use_attention_mask : bool, optional
        Pass the padding mask to the model; default: when
        ``config.feat_extract_norm == "layer"`` (models trained with it).
        Padded frames are excluded from the Hessians either way.
    """

    def __init__(self, normalize_audio=True, use_attention_mask=None):
        self.normalize_audio = normalize_audio
        self.use_attention_mask = use_attention_mask

    @staticmethod
    def check_model(model):
        """Returns the ``model_type``; raises ValueError for another family."""
        model_type = getattr(getattr(model, "config", None), "model_type", None)
        if model_type not in HF_SSL_MODEL_TYPES:
            raise UserInputError(f"HuggingFaceSSLFamily supports {HF_SSL_MODEL_TYPES}, "
                                 f"not model_type {model_type!r}")
        return model_type

    def stages(self, model):
        raw_attention = self.check_model(model) == "wavlm"
        names = names_by_id(model)
        blocks = []
        for layer in model.base_model.encoder.layers:
            attention, ffn = layer.attention, layer.feed_forward
            if raw_attention:
                streams = {
                    "attention_input": InputStream(attention, "argument",
                                                   "hidden_states"),
                    "attention_context": InputStream(attention, "context",
                                                     out_proj=attention.out_proj),
                }
            else:
                streams = {"attention_input": InputStream(attention.q_proj),
                           "attention_context": InputStream(attention.out_proj)}
            streams["ffn_input"] = InputStream(ffn.intermediate_dense)
            streams["ffn_hidden"] = InputStream(ffn.output_dense)
            matrices = [matrix_of(names, getattr(attention, f"{p}_proj"), "weight",
                                  "attention_input") for p in QKV_SLICES]
            matrices += [
                matrix_of(names, attention.out_proj, "weight", "attention_context"),
                matrix_of(names, ffn.intermediate_dense, "weight", "ffn_input"),
                matrix_of(names, ffn.output_dense, "weight", "ffn_hidden"),
            ]
            blocks.append(Block(names[id(layer)], layer, matrices, streams))
        return [Stage("encoder", blocks)]

    def _samples(self, batch):
        wavs, relative = batch.sig
        lengths = torch.round(relative * wavs.shape[1]).long()
        real = lengths_to_mask(lengths, wavs.shape[1])
        if self.normalize_audio:
            count = lengths.clamp(min=1).unsqueeze(1)
            mean = (wavs * real).sum(1, keepdim=True) / count
            var = (((wavs - mean) * real) ** 2).sum(1, keepdim=True) / count
            wavs = (wavs - mean) / torch.sqrt(var + 1e-7) * real
        return wavs, lengths, real

    def forward(self, model, batch):
        wavs, _, real = self._samples(batch)
        use_mask = self.use_attention_mask
        if use_mask is None:
            use_mask = getattr(model.config, "feat_extract_norm", "") == "layer"
        return model(wavs, attention_mask=real.long() if use_mask else None)

    def frame_mask(self, model, batch, num_frames):
        """Bool ``[batch, num_frames]``: True where a frame comes from real samples."""
        _, lengths, _ = self._samples(batch)
        frames = model._get_feat_extract_output_lengths(lengths)
        return lengths_to_mask(frames, num_frames)

    def padding_masks(self, model, stage, batch, args, kwargs):
        return {"frames": self.frame_mask(model, batch, args[0].shape[1])}

    def next_call(self, stage, index, args, kwargs, output):
        hidden = output[0] if isinstance(output, tuple) else output
        kwargs = dict(kwargs)
        if "position_bias" in kwargs:  # WavLM: made by the first layer, reused
            kwargs["position_bias"] = output[1]
        if "index" in kwargs:
            kwargs["index"] = index
        return (hidden,) + tuple(args[1:]), kwargs

    @contextlib.contextmanager
    def twice_differentiable(self, model):
        """Eager attention while the Hessian trace is estimated (SDPA on CPU
        has no double backward); the previous implementation is restored."""
        previous = model.config._attn_implementation
        model.set_attn_implementation("eager")
        try:
            yield
        finally:
            model.set_attn_implementation(previous)

    def sensitivity_reference(self, model, batch):
        with torch.no_grad():
            return _main_output(self.forward(model, batch)).detach()

    def sensitivity_loss(self, model, batch, reference):
        output = self.forward(model, batch)
        current = _main_output(output)
        real = self.frame_mask(model, batch, current.shape[1]).unsqueeze(-1)
        if hasattr(output, "logits"):
            target = torch.log_softmax(reference, dim=-1)
            log_probs = torch.log_softmax(current, dim=-1)
            per_frame = (target.exp() * (target - log_probs)).sum(-1, keepdim=True)
        else:
            per_frame = ((current - reference) ** 2).mean(-1, keepdim=True)
        return (per_frame * real).sum() / real.sum().clamp(min=1)


def _main_output(output):
    return output.logits if hasattr(output, "logits") else output.last_hidden_state


def family_for(model):
    """Returns a default family for a Hugging Face model; SpeechBrain needs modules.

    Arguments
    ---------
    model : torch.nn.Module
        A ``transformers`` Wav2Vec2 / HuBERT / WavLM model.

    Returns
    -------
    HuggingFaceSSLFamily
    """
    HuggingFaceSSLFamily.check_model(model)
    return HuggingFaceSSLFamily()
