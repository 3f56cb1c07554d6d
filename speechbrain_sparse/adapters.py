"""The adapter baseline: Houlsby bottleneck adapters, backbone frozen.

The sparse fine-tuning paper compares against adapters: small bottleneck
modules ``x + up(act(down(x)))`` inserted in every Transformer layer, trained
while every pretrained weight stays frozen. ``add_adapters`` builds them on a
SpeechBrain ``TransformerASR`` with ``speechbrain.nnet.adapters.AdaptedModel``
and places them where Houlsby et al. (2019) do, on the output of each
sub-layer before the residual sum:

* after the feed-forward block: SpeechBrain's own ``HoulsbyAdapterLinear``
  wraps ``pos_ffn.ffn.3`` (the FFN output ``nn.Linear``);
* after each attention block (``self_att`` in encoder layers, ``self_attn``
  and ``multihead_attn`` in decoder layers): ``HoulsbyAttentionAdapter``
  wraps SpeechBrain's ``MultiheadAttention`` *wrapper* module.

What ``AdaptedModel`` alone does not reach: it swaps ``nn.Linear`` children,
but the projections of torch's ``nn.MultiheadAttention`` are used by the
fused kernel directly. ``in_proj_weight``/``in_proj_bias`` (the packed q/k/v
projection) are raw parameters, not modules, so no pattern can match them;
``out_proj`` is an ``nn.Linear`` subclass but ``AdaptedModel`` skips every
child of a torch MHA (with a warning), because the kernel reads
``out_proj.weight`` instead of calling the module. So with ``all_linear`` or
``*.att.out_proj`` patterns, attention gets *no* adapter; wrapping the
SpeechBrain wrapper (one level up) adapts the attention output without
touching the kernel.

``identity_init=True`` (default) zeroes the up-projection, so the adapted
model computes exactly what the backbone does at initialisation (the
Houlsby near-identity init). SpeechBrain's ``HoulsbyAdapterLinear`` leaves
the up-projection weights at PyTorch's random init (only biases are zero),
so with ``identity_init=False`` the output changes at initialisation.

Authors
 * speechbrain_sparse contributors 2026
"""

import torch
from speechbrain.nnet.activations import Swish
from speechbrain.nnet.adapters import AdaptedModel, HoulsbyAdapterLinear
from speechbrain.nnet.attention import MultiheadAttention

HOULSBY_TARGET_LAYERS = (
    "*layers.*.pos_ffn.ffn.3",
    "*layers.*.self_att",
    "*layers.*.self_attn",
    "*layers.*.multihead_attn",
)


class HoulsbyAttentionAdapter(torch.nn.Module):
    """Houlsby bottleneck on the output of a SpeechBrain attention module.

    Arguments
    ---------
    target_attention : torch.nn.Module
        A ``speechbrain.nnet.attention.MultiheadAttention`` (or any module
        returning a ``[B, T, D]`` tensor, or a tuple starting with one).
    projection_size : int
        Bottleneck width.
    activation : type
        Activation class. Default is Swish, as in ``HoulsbyAdapterLinear``.
    bias : bool
        Whether the projections have biases (initialised to zero).

    Example
    -------
    >>> attention = MultiheadAttention(nhead=2, d_model=8)
    >>> adapter = HoulsbyAttentionAdapter(attention, projection_size=4)
    >>> x = torch.rand(3, 5, 8)
    >>> output, weights = adapter(x, x, x)
    >>> output.shape
    torch.Size([3, 5, 8])
    """

    def __init__(self, target_attention, projection_size, activation=Swish, bias=True):
        super().__init__()
        embed_dim = getattr(target_attention, "embed_dim", None)
        if embed_dim is None:
            embed_dim = target_attention.att.embed_dim
        device = next(target_attention.parameters()).device
        self.pretrained_attention = target_attention
        self.adapter_down_proj = torch.nn.Linear(
            embed_dim, projection_size, bias=bias, device=device
        )
        self.adapter_up_proj = torch.nn.Linear(
            projection_size, embed_dim, bias=bias, device=device
        )
        self.activation = activation()
        if bias:
            self.adapter_down_proj.bias.data.fill_(0.0)
            self.adapter_up_proj.bias.data.fill_(0.0)

    def forward(self, *args, **kwargs):
        """Runs the attention and adds the bottleneck to its output.

        Arguments
        ---------
        *args : tuple
            Passed to the wrapped attention.
        **kwargs : dict
            Passed to the wrapped attention.

        Returns
        -------
        The attention's return value with its output tensor adapted.
        """
        result = self.pretrained_attention(*args, **kwargs)
        output = result[0] if isinstance(result, tuple) else result
        adapted = output + self.adapter_up_proj(
            self.activation(self.adapter_down_proj(output))
        )
        return (adapted, *result[1:]) if isinstance(result, tuple) else adapted


def houlsby_adapter(target, projection_size=64, identity_init=True):
    """Returns a Houlsby adapter around ``target`` (a Linear or an attention).

    This is the ``adapter_class`` given to ``AdaptedModel``.

    Arguments
    ---------
    target : torch.nn.Module
        An ``nn.Linear`` or a SpeechBrain ``MultiheadAttention``.
    projection_size : int
        Bottleneck width.
    identity_init : bool
        Zero the up-projection so the adapter starts as the identity.

    Returns
    -------
    torch.nn.Module
        The adapter, holding ``target`` inside.

    Example
    -------
    >>> linear = torch.nn.Linear(8, 8)
    >>> adapter = houlsby_adapter(linear, projection_size=2)
    >>> x = torch.rand(4, 8)
    >>> torch.equal(adapter(x), linear(x))
    True
    """
    if isinstance(target, torch.nn.Linear):
        adapter = HoulsbyAdapterLinear(target, projection_size)
    elif isinstance(target, MultiheadAttention):
        adapter = HoulsbyAttentionAdapter(target, projection_size)
    else:
        raise TypeError(f"No Houlsby adapter for {type(target).__name__}")
    if identity_init:
        adapter.adapter_up_proj.weight.data.fill_(0.0)
    return adapter


def add_adapters(
    model,
    projection_size=64,
    target_layers=HOULSBY_TARGET_LAYERS,
    identity_init=True,
    unfrozen_layers=(),
    manual_adapter_insertion=False,
):
    """Adds Houlsby adapters to ``model``; only the adapters stay trainable.

    Buildable from hyperpyyaml::

        Transformer: !apply:speechbrain_sparse.adapters.add_adapters
            model: !ref <Transformer_backbone>
            projection_size: 64

    Arguments
    ---------
    model : torch.nn.Module
        The backbone, e.g. a ``TransformerASR``; all its parameters are frozen.
    projection_size : int
        Bottleneck width of every adapter.
    target_layers : sequence of str
        ``fnmatch`` patterns of the modules to wrap (Linear or SpeechBrain
        attention modules); default: FFN output and every attention block.
    identity_init : bool
        Start every adapter as the identity (zero up-projection).
    unfrozen_layers : sequence of str
        Patterns of backbone modules to leave trainable (e.g. output heads).
    manual_adapter_insertion : bool
        Insert later with ``insert_adapters()`` (after a ``Pretrainer`` load).

    Returns
    -------
    speechbrain.nnet.adapters.AdaptedModel
        Forwards to the backbone; only adapter parameters require grad.

    Example
    -------
    >>> from speechbrain.lobes.models.transformer.TransformerASR import (
    ...     TransformerASR)
    >>> backbone = TransformerASR(20, 40, 32, 4, 1, 1, 64, causal=False)
    >>> adapted = add_adapters(backbone, projection_size=8)
    >>> trainable = [n for n, p in adapted.named_parameters() if p.requires_grad]
    >>> all("adapter_" in n for n in trainable), len(trainable)
    (True, 20)
    """
    return AdaptedModel(
        model_to_adapt=model,
        adapter_class=houlsby_adapter,
        target_layers=list(target_layers),
        unfrozen_layers=list(unfrozen_layers),
        adapter_kwargs={
            "projection_size": projection_size,
            "identity_init": identity_init,
        },
        manual_adapter_insertion=manual_adapter_insertion,
    )
