"""Modules that take the place of pruned attention and feed-forward blocks.

After surgery (:mod:`speechbrain_sparse.surgery.remove`) a block is one of:

* :class:`ConstantOutput`: every unit of the block is gone, so it returns its
  constant output (the out bias, or zero when the block's own gate was closed)
  broadcast to the input's shape, in the form its caller expects (a tensor, or
  a tuple ``(output, None)`` as attention modules return);
* :class:`PrunedSelfAttention`: an attention block that kept some heads, each
  with its own number of query/key dims and value/output dims. The per-head
  projections are padded with zero rows to the largest kept size, so one
  batched attention call serves all heads; the scores are scaled by
  ``1/sqrt(original head_dim)`` (SDPA's default would use the padded size,
  which is wrong). It is called like the module it replaces: torch's
  ``nn.MultiheadAttention`` (time first, inside SpeechBrain's wrapper), a
  ``transformers`` Wav2Vec2/HuBERT attention, or WavLM's attention with its
  gated relative position bias (the gate is computed on the *original* head
  split of the input and the bias indexed to the kept heads).

Authors
 * speechbrain_sparse contributors 2026

Example
-------
>>> block = ConstantOutput(torch.tensor([1.0, 2.0]), returns="pair")
>>> output, weights = block(torch.zeros(3, 5, 2))
>>> output.shape, output[0, 0].tolist(), weights
(torch.Size([3, 5, 2]), [1.0, 2.0], None)
"""

import torch
import torch.nn.functional as F

CALL_STYLES = ("torch", "hf", "wavlm")
RETURN_STYLES = ("tensor", "pair")


class ConstantOutput(torch.nn.Module):
    """A block with no units left: returns a constant vector for every frame.

    Arguments
    ---------
    value : torch.Tensor, optional
        The constant ``[d]`` (kept as a trainable parameter, e.g. the out bias
        of an attention block whose heads are all gone). None: zeros (the
        block's gate was closed), with ``size`` giving ``d``.
    size : int, optional
        The output width when ``value`` is None.
    returns : str
        ``"tensor"`` (feed-forward blocks) or ``"pair"`` (``(output, None)``,
        attention blocks).

    Example
    -------
    >>> ConstantOutput(size=3)(torch.ones(2, 4, 5)).shape
    torch.Size([2, 4, 3])
    """

    def __init__(self, value=None, size=None, returns="tensor"):
        super().__init__()
        if returns not in RETURN_STYLES:
            raise ValueError(f"returns must be one of {RETURN_STYLES}, got {returns!r}")
        if value is None and size is None:
            raise ValueError("ConstantOutput needs a value or a size")
        self.value = None if value is None else torch.nn.Parameter(
            value.detach().clone())
        self.size = int(value.numel() if value is not None else size)
        self.returns = returns

    def forward(self, x, *args, **kwargs):
        """Returns the constant broadcast to ``x.shape[:-1] + (d,)``."""
        shape = x.shape[:-1] + (self.size,)
        if self.value is None:
            output = x.new_zeros(shape)
        else:
            output = self.value.expand(shape)
        return output if self.returns == "tensor" else (output, None)

    def extra_repr(self):
        return f"size={self.size}, zero={self.value is None}, returns={self.returns}"


class PrunedSelfAttention(torch.nn.Module):
    """Multi-head attention whose heads kept different numbers of dims.

    Kept head ``i`` uses the first ``qk_dims[i]`` of its ``max(qk_dims)``
    query/key rows and the first ``vo_dims[i]`` of its ``max(vo_dims)``
    value rows (the padded rows are zero and stay zero under training: their
    gradients vanish). With no kept head the block returns its out bias
    (``out_bias``) or zero, and a WavLM block still builds and passes on the
    relative position bias.

    Arguments
    ---------
    embed_dim : int
        Model width ``d`` (input and output).
    qk_dims, vo_dims : sequence of int
        Per kept head, its query/key and value/output dims.
    head_dim : int
        The original head dim (the scale is ``head_dim ** -0.5``).
    call : str
        ``"torch"`` (``nn.MultiheadAttention``'s call, time first),
        ``"hf"`` (``Wav2Vec2Attention``) or ``"wavlm"`` (``WavLMAttention``).
    bias : bool
        q/k/v projections have biases.
    out_bias : bool
        The output projection has a bias.
    kept_heads : sequence of int, optional
        The original indices of the kept heads (WavLM: to index the position
        bias and the gate constants).
    num_heads : int, optional
        The original number of heads (WavLM).
    dtype, device : optional
        Of the parameters (default: torch's defaults).
    dropout : float
        Dropout on the attention weights in training mode (as the replaced
        module's).

    Example
    -------
    >>> att = PrunedSelfAttention(8, [2, 1], [3, 4], head_dim=4, call="hf")
    >>> output, _ = att(torch.randn(2, 5, 8))
    >>> output.shape, att.q_proj.weight.shape, att.v_proj.weight.shape
    (torch.Size([2, 5, 8]), torch.Size([4, 8]), torch.Size([8, 8]))
    """

    def __init__(self, embed_dim, qk_dims, vo_dims, head_dim, call="hf", bias=True,
                 out_bias=True, kept_heads=None, num_heads=None, dtype=None,
                 device=None, dropout=0.0):
        super().__init__()
        if call not in CALL_STYLES:
            raise ValueError(f"call must be one of {CALL_STYLES}, got {call!r}")
        if len(qk_dims) != len(vo_dims):
            raise ValueError("qk_dims and vo_dims need one entry per kept head")
        self.embed_dim = embed_dim
        self.call = call
        self.head_dim = head_dim
        self.scaling = head_dim ** -0.5
        self.qk_dims = [int(n) for n in qk_dims]
        self.vo_dims = [int(n) for n in vo_dims]
        self.num_kept = len(self.qk_dims)
        self.num_heads = num_heads if num_heads is not None else self.num_kept
        self.max_qk = max(self.qk_dims + [1])  # a head with no qk dim: zero scores
        self.max_vo = max(self.vo_dims + [1])
        self.dropout = float(dropout)
        self.eager = False  # True: explicit matmuls (FLOP counting), else SDPA
        if self.num_kept:
            width_qk = self.num_kept * self.max_qk
            width_vo = self.num_kept * self.max_vo
            factory = {"device": device or "cpu", "dtype": dtype}
            linear = torch.nn.utils.skip_init  # no random init: zeros below
            self.q_proj = linear(torch.nn.Linear, embed_dim, width_qk, bias, **factory)
            self.k_proj = linear(torch.nn.Linear, embed_dim, width_qk, bias, **factory)
            self.v_proj = linear(torch.nn.Linear, embed_dim, width_vo, bias, **factory)
            self.out_proj = linear(torch.nn.Linear, width_vo, embed_dim, out_bias,
                                   **factory)
            with torch.no_grad():
                for parameter in self.parameters():
                    parameter.zero_()
        else:
            self.out_bias = torch.nn.Parameter(torch.zeros(
                embed_dim, dtype=dtype, device=device)) if out_bias else None
        kept = list(range(self.num_kept)) if kept_heads is None else list(kept_heads)
        self.register_buffer("kept_heads", torch.tensor(kept, dtype=torch.long))

    def load_head_weights(self, weights, qk_rows, vo_rows):
        """Fills the projections from the original weights.

        Arguments
        ---------
        weights : tuple
            ``(Wq, bq, Wk, bk, Wv, bv, Wo, bo)`` of the original block.
        qk_rows, vo_rows : list of LongTensor
            Per kept head, the original rows (of W_Q/W_K and of W_V / columns
            of W_O) to keep, in order.
        """
        wq, bq, wk, bk, wv, bv, wo, bo = weights
        with torch.no_grad():
            if not self.num_kept:
                if self.out_bias is not None:
                    self.out_bias.copy_(bo)
                return
            # one gather / scatter per tensor: original rows -> padded slots
            source_qk, target_qk = _slots(qk_rows, self.max_qk)
            source_vo, target_vo = _slots(vo_rows, self.max_vo)
            parts = ((self.q_proj, wq, bq, source_qk, target_qk),
                     (self.k_proj, wk, bk, source_qk, target_qk),
                     (self.v_proj, wv, bv, source_vo, target_vo))
            for proj, w, b, source, target in parts:
                proj.weight.index_copy_(0, target, w.index_select(0, source))
                if b is not None:
                    proj.bias.index_copy_(0, target, b.index_select(0, source))
            out = self.out_proj.weight
            out.index_copy_(1, target_vo, wo.index_select(1, source_vo))
            if bo is not None:
                self.out_proj.bias.copy_(bo)

    def num_padding_params(self):
        """Returns the parameters that only pad heads to the largest kept head.

        Example
        -------
        >>> PrunedSelfAttention(8, [2, 1], [3, 4], head_dim=4).num_padding_params()
        35
        """
        if not self.num_kept:
            return 0
        bias = int(self.q_proj.bias is not None)
        pad_qk = self.num_kept * self.max_qk - sum(self.qk_dims)
        pad_vo = self.num_kept * self.max_vo - sum(self.vo_dims)
        d = self.embed_dim
        return 2 * pad_qk * (d + bias) + pad_vo * (2 * d + bias)

    def keep_relative_position(self, original):
        """Takes WavLM's gate and (layer 0) relative position embedding.

        The gate parameters belong to no unit: they are kept whole and
        indexed with :attr:`kept_heads` at run time.
        """
        self.gru_rel_pos_linear = original.gru_rel_pos_linear
        self.gru_rel_pos_const = original.gru_rel_pos_const
        self.rel_attn_embed = getattr(original, "rel_attn_embed", None)
        self.num_buckets = original.num_buckets
        self.max_distance = original.max_distance

    # -- the three call styles ---------------------------------------------
    def forward(self, *args, **kwargs):
        """Called as the replaced module is (see the class docstring)."""
        if self.call == "torch":
            return self._torch_call(*args, **kwargs)
        if self.call == "wavlm":
            return self._wavlm_call(*args, **kwargs)
        return self._hf_call(*args, **kwargs)

    def _torch_call(self, query, key, value, key_padding_mask=None, need_weights=True,
                    attn_mask=None, average_attn_weights=True, is_causal=False):
        batch = query.shape[1]
        mask = _additive(attn_mask, query.dtype)
        if mask is not None and mask.dim() == 3:  # [batch * heads, T, S]
            mask = mask.view(batch, -1, *mask.shape[1:])
            if mask.shape[1] == self.num_heads and self.num_heads != self.num_kept:
                mask = mask[:, self.kept_heads]
        elif mask is not None:
            mask = mask.view(1, 1, *mask.shape)
        if key_padding_mask is not None:
            padding = _additive(key_padding_mask, query.dtype)[:, None, None, :]
            mask = padding if mask is None else mask + padding
        output, weights = self._attend(query.transpose(0, 1), key.transpose(0, 1),
                                       value.transpose(0, 1), mask, need_weights)
        output = output.transpose(0, 1)
        if weights is not None and average_attn_weights:
            weights = weights.mean(1)
        return output, weights if need_weights else None

    def _hf_call(self, hidden_states, key_value_states=None, attention_mask=None,
                 **kwargs):
        memory = hidden_states if key_value_states is None else key_value_states
        output, _ = self._attend(hidden_states, memory, memory, attention_mask, False)
        return output, None

    def _wavlm_call(self, hidden_states, attention_mask=None, position_bias=None,
                    index=0, **kwargs):
        batch, length, _ = hidden_states.shape
        if position_bias is None:
            if self.rel_attn_embed is None:
                raise RuntimeError("WavLM layer without rel_attn_embed got no "
                                   "position_bias")
            position_bias = self._compute_bias(batch, length)
        if not self.num_kept:
            output, _ = self._attend(hidden_states, None, None, None, False)
            return output, None, position_bias
        gate_input = hidden_states.view(batch, length, self.num_heads, -1)
        gate_input = gate_input.permute(0, 2, 1, 3)[:, self.kept_heads]
        projected = self.gru_rel_pos_linear(gate_input)
        projected = projected.view(projected.shape[:-1] + (2, 4)).sum(-1)
        gate_a, gate_b = torch.sigmoid(projected).chunk(2, dim=-1)
        const = self.gru_rel_pos_const[:, self.kept_heads]
        gate = gate_a * (gate_b * const - 1.0) + 2.0  # [B, kept, T, 1]
        bias = position_bias.view(batch, self.num_heads, length, -1)[:, self.kept_heads]
        mask = gate * bias
        if attention_mask is not None:
            mask = mask + _additive(attention_mask.ne(1), mask.dtype)[:, None, None, :]
        output, _ = self._attend(hidden_states, hidden_states, hidden_states, mask,
                                 False)
        return output, None, position_bias

    # -- shared math ---------------------------------------------------------
    def _attend(self, query, key, value, mask, need_weights):
        """Batch-first attention over the kept heads; returns (output, weights)."""
        if not self.num_kept:
            shape = query.shape[:-1] + (self.embed_dim,)
            if self.out_bias is None:
                return query.new_zeros(shape), None
            return self.out_bias.expand(shape), None
        batch, length = query.shape[:2]
        heads = self.num_kept
        q = self.q_proj(query).view(batch, length, heads, -1).transpose(1, 2)
        k = self.k_proj(key).view(batch, key.shape[1], heads, -1).transpose(1, 2)
        v = self.v_proj(value).view(batch, value.shape[1], heads, -1).transpose(1, 2)
        weights = None
        dropout = self.dropout if self.training else 0.0
        if self.eager or need_weights:
            scores = torch.matmul(q, k.transpose(-1, -2)) * self.scaling
            if mask is not None:
                scores = scores + mask if mask.dtype != torch.bool else \
                    scores.masked_fill(~mask, float("-inf"))
            weights = torch.softmax(scores, dim=-1)
            context = torch.matmul(F.dropout(weights, dropout, self.training), v)
        else:
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                                     dropout_p=dropout,
                                                     scale=self.scaling)
        context = context.transpose(1, 2).reshape(batch, length, -1)
        return self.out_proj(context), weights

    def _compute_bias(self, batch, length):
        from transformers.models.wavlm.modeling_wavlm import WavLMAttention

        values = WavLMAttention.compute_bias(self, length, length)
        return values.unsqueeze(0).repeat(batch, 1, 1, 1).view(
            batch * self.num_heads, length, length)

    def _relative_positions_bucket(self, relative_positions):
        from transformers.models.wavlm.modeling_wavlm import WavLMAttention

        return WavLMAttention._relative_positions_bucket(self, relative_positions)

    def extra_repr(self):
        return (f"embed_dim={self.embed_dim}, call={self.call}, "
                f"qk_dims={self.qk_dims}, vo_dims={self.vo_dims}, "
                f"head_dim={self.head_dim}")


def _slots(rows, width):
    """(original rows, padded positions) of all heads, each padded to ``width``."""
    source = torch.cat([torch.as_tensor(r, dtype=torch.long) for r in rows])
    target = torch.cat([torch.arange(len(r)) + i * width for i, r in enumerate(rows)])
    return source, target


def _additive(mask, dtype):
    """A mask as additive floats: bool True (masked) -> -inf; floats as given."""
    if mask is None:
        return None
    if mask.dtype == torch.bool:
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(
            mask, float("-inf"))
    return mask.to(dtype)


def count_flops(model, run):
    """FLOPs of ``run(model)`` counted with eager attention, then SDPA again.

    ``torch.utils.flop_counter.FlopCounterMode`` misses SDPA on CPU, so HF
    attention and :class:`PrunedSelfAttention` are switched to explicit
    matmuls while counting.

    Example
    -------
    >>> count_flops(torch.nn.Linear(4, 3), lambda m: m(torch.ones(2, 4)))
    48
    """
    from torch.utils.flop_counter import FlopCounterMode

    _set_eager(model, True)
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            run(model)
    finally:
        _set_eager(model, False)
    return counter.get_total_flops()


def _set_eager(model, eager):
    if hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager" if eager else "sdpa")
    for module in model.modules():
        if isinstance(module, PrunedSelfAttention):
            module.eager = eager
