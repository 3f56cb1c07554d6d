"""Probing a frozen speech upstream: a learned mix of its layers and a small head.

SUPERB-style probing (and the trimming paper, Genova et al. 2024) trains a
small downstream model on the hidden layers of a pretrained encoder whose own
weights do not change. Three pieces, composed by :class:`ProbingModel`:

* the **upstream**, frozen: every parameter has ``requires_grad=False`` (so
  :func:`trainable_parameters` leaves it out of the optimizer; weight decay
  cannot touch it) and it always runs in eval mode (no dropout, no
  SpecAugment, no LayerDrop, no running statistics updated), so it stays
  bit-identical through training. :class:`HuggingFaceUpstream` wraps a
  wav2vec2 / HuBERT / WavLM model (from a local folder: no download);
  :class:`TransformerASRUpstream` wraps the encoder of our SpeechBrain
  Transformer ASR. Both return every layer's output (hooks on the encoder
  layers, so a gated or surgered encoder is read the same way) and the
  relative number of real frames of each utterance;
* a **layer mix**: :class:`WeightedLayerSum` (softmax-weighted sum of the
  hidden states, SUPERB) or the last layer only;
* a **head** (:mod:`speechbrain_sparse.asr.probing_heads`): BiLSTM-CTC (the
  trimming paper's ASR head), a linear CTC probe, or a mean-pool MLP
  classifier.

CTC lengths: the head gets the relative number of *real* frames of each
utterance, computed from its number of real samples with the upstream's own
frame arithmetic (HF: ``_get_feat_extract_output_lengths``; SpeechBrain: the
relative wav lengths carry over), and SpeechBrain's ``ctc_loss`` turns them
into frame counts; target lengths come from the padded token batch. (The
trimming authors' code compares logits to the pad index for input lengths and
uses the frame count as target length; not done here.)

Example
-------
>>> from speechbrain_sparse.asr.probing_heads import MLPClassifierHead
>>> model = ProbingModel(_ToyUpstream(), MLPClassifierHead(4, 3, hidden_size=8))
>>> logits, frame_lens = model(torch.randn(2, 100), torch.tensor([1.0, 0.5]))
>>> logits.shape, trainable_parameters(model.upstream)
(torch.Size([2, 3]), [])

Authors
 * speechbrain_sparse contributors 2026
"""

import copy
import re
from types import SimpleNamespace

import torch

from speechbrain_sparse.errors import UserInputError

LAYER_CHOICES = ("weighted", "last")
# a parameter of a parametrization module (a gate), not a parametrized original
GATE_PARAMETER = re.compile(r"\.parametrizations\.\w+\.\d+\.")


def freeze(module):
    """Sets ``requires_grad=False`` on every parameter of ``module``; returns it."""
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


def trainable_parameters(module):
    """The parameters of ``module`` that require a gradient (what to optimise).

    Example
    -------
    >>> frozen = freeze(torch.nn.Linear(2, 2))
    >>> model = torch.nn.Sequential(frozen, torch.nn.Linear(2, 1))
    >>> [tuple(p.shape) for p in trainable_parameters(model)]
    [(1, 2), (1,)]
    """
    return [parameter for parameter in module.parameters() if parameter.requires_grad]


class FrozenUpstream(torch.nn.Module):
    """A frozen encoder whose layers' outputs are collected on every forward.

    Subclasses set ``self.model`` (the module the structure tools see),
    ``self.layers`` (its encoder layers, in order) and implement
    :meth:`encode`. Modules registered with :meth:`add_trainable` (gates,
    modulations) are the only trainable parts and follow ``train()`` /
    ``eval()``; everything else stays in eval mode.

    Arguments
    ---------
    model : torch.nn.Module
        The encoder (frozen here).
    layers : sequence of torch.nn.Module
        Its layers; input of the first and output of each are the hidden states.
    """

    def __init__(self, model, layers):
        super().__init__()
        self.frozen = True
        self.model = freeze(model).eval()
        self.layers = list(layers)  # plain list: already registered in model
        self.trainable = torch.nn.ModuleList()
        self._states = None
        self.layers[0].register_forward_pre_hook(self._keep_input, with_kwargs=True)
        for layer in self.layers:
            layer.register_forward_hook(self._keep_output)

    @property
    def num_hidden_states(self):
        """Input of the first layer plus the output of every layer."""
        return len(self.layers) + 1

    def add_trainable(self, module):
        """Registers a trainable module living inside the upstream (gates, SSF)."""
        self.trainable.append(module)
        module.train(self.training)
        return module

    def train(self, mode=True):
        """The encoder stays in eval mode; only the trainable modules switch."""
        super().train(mode)
        if self.frozen:
            self.model.eval()
            for module in self.trainable:
                module.train(mode)
        return self

    def unfreeze(self):
        """Makes the whole encoder trainable (the scratch baseline); returns self."""
        self.frozen = False
        for parameter in self.parameters():
            parameter.requires_grad_(True)
        return self.train(self.training)

    def with_model(self, model):
        """The same kind of upstream around another encoder (frozen)."""
        raise NotImplementedError

    def _keep_input(self, module, args, kwargs):
        if self._states is not None:
            hidden = args[0] if args else next(iter(kwargs.values()))
            self._states.append(hidden)

    def _keep_output(self, module, args, output):
        if self._states is not None:
            self._states.append(output[0] if isinstance(output, tuple) else output)

    def forward(self, wavs, wav_lens):
        """Returns ``(hidden states [layers+1 x (batch, frames, dim)], frame_lens)``.

        ``frame_lens`` are relative: real frames / frames of the batch.
        """
        self._states = []
        try:
            frame_lens = self.encode(wavs, wav_lens)
            states = self._states
        finally:
            self._states = None
        if len(states) != self.num_hidden_states:
            raise RuntimeError(f"collected {len(states)} hidden states, expected "
                               f"{self.num_hidden_states}")
        return states, frame_lens

    def encode(self, wavs, wav_lens):
        """Runs the encoder on raw audio; returns the relative real frame lengths."""
        raise NotImplementedError

    def counted_modules(self):
        """The modules whose parameters are "the encoder" (trimmed % denominator)."""
        return [self.model]

    def num_parameters(self):
        """Parameters of the encoder (:meth:`counted_modules`); a gated weight
        counts as its original, the gates' own parameters do not count."""
        seen, total = set(), 0
        for module in self.counted_modules():
            for name, parameter in module.named_parameters():
                if id(parameter) in seen or GATE_PARAMETER.search(name):
                    continue
                seen.add(id(parameter))
                total += parameter.numel()
        return total


class HuggingFaceUpstream(FrozenUpstream):
    """A ``transformers`` Wav2Vec2 / HuBERT / WavLM encoder, frozen.

    Audio goes in as the pruning code and the CTC recipe feed it
    (:class:`~speechbrain_sparse.pruning.model_families.HuggingFaceSSLFamily`):
    per-utterance normalisation and the padding mask as configured. A
    ``*ForCTC`` model is reduced to its base model (the CTC layer is dropped).
    LayerDrop is switched off (``config.layerdrop = 0``), so a trained
    (unfrozen) encoder also gives every hidden state.

    Arguments
    ---------
    model : transformers.PreTrainedModel
        A Wav2Vec2 / HuBERT / WavLM model (base or ``*ForCTC``).
    family : HuggingFaceSSLFamily, optional
        How audio goes in; default: normalised, padding mask passed.
    """

    def __init__(self, model, family=None):
        from speechbrain_sparse.pruning.model_families import HuggingFaceSSLFamily

        HuggingFaceSSLFamily.check_model(model)
        base = model.base_model
        base.config.layerdrop = 0.0  # every layer runs: every hidden state is there
        self.family = family or HuggingFaceSSLFamily(normalize_audio=True,
                                                      use_attention_mask=True)
        super().__init__(base, base.encoder.layers)

    @classmethod
    def from_pretrained(cls, directory):
        """Loads a local Hugging Face folder (no download), or a surgered one
        (``structure.json``: :func:`~speechbrain_sparse.surgery.load_structured`),
        as a frozen upstream."""
        from pathlib import Path

        from speechbrain_sparse.pruning.pretrained import load_huggingface

        if (Path(directory) / "structure.json").is_file():
            from speechbrain_sparse.surgery import load_structured

            pretrained = load_structured(directory)
        else:
            pretrained = load_huggingface(directory)
        return cls(pretrained.model, pretrained.family)

    @property
    def hidden_size(self):
        """Width of the hidden states."""
        return self.model.config.hidden_size

    def with_model(self, model):
        return HuggingFaceUpstream(model, self.family)

    def encode(self, wavs, wav_lens):
        batch = SimpleNamespace(sig=(wavs, wav_lens))
        frames = self.family.forward(self.model, batch).last_hidden_state.shape[1]
        real = self.family.frame_mask(self.model, batch, frames)
        return real.sum(1).float() / frames


class TransformerASRUpstream(FrozenUpstream):
    """The encoder of our SpeechBrain ``TransformerASR``, frozen.

    Fbank features -> input normalisation (eval: statistics fixed) -> CNN
    front-end -> Transformer encoder. The decoder is not run. The structure
    tools see the ``TransformerASR`` (``self.model``).

    Arguments
    ---------
    transformer : speechbrain.lobes.models.transformer.TransformerASR.TransformerASR
        The model; its ``encode`` is run.
    frontend : torch.nn.Module
        Features -> Transformer input (the recipe's ``CNN``).
    compute_features : callable
        Waveforms -> features (``Fbank``).
    normalize : torch.nn.Module, optional
        ``InputNormalization`` of the features.
    """

    def __init__(self, transformer, frontend, compute_features, normalize=None):
        super().__init__(transformer, transformer.encoder.layers)
        self.frontend = freeze(frontend).eval()
        self.normalize = None if normalize is None else freeze(normalize).eval()
        self.compute_features = compute_features

    def train(self, mode=True):
        super().train(mode)
        if self.normalize is not None:
            self.normalize.eval()  # statistics fixed
        if self.frozen:
            self.frontend.eval()
        return self

    @property
    def hidden_size(self):
        """Width of the hidden states."""
        return self.model.encoder.layers[0].pos_ffn.ffn[3].out_features

    def with_model(self, model):
        """Around ``model``, with a re-initialised copy of the CNN front-end."""
        frontend = copy.deepcopy(self.frontend)
        for module in frontend.modules():
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        return TransformerASRUpstream(model, frontend, self.compute_features,
                                      self.normalize)

    def counted_modules(self):
        modules = [self.frontend, self.model.encoder]
        return modules + [m for m in (self.model.custom_src_module,)
                          if isinstance(m, torch.nn.Module)]

    def encode(self, wavs, wav_lens):
        feats = self.compute_features(wavs)
        if self.normalize is not None:
            feats = self.normalize(feats, wav_lens)
        self.model.encode(self.frontend(feats), wav_lens)
        return wav_lens


class WeightedLayerSum(torch.nn.Module):
    """Softmax-weighted sum of hidden states (SUPERB's layer mix).

    Arguments
    ---------
    num_states : int
        How many hidden states are mixed; the weights start equal.

    Example
    -------
    >>> mix = WeightedLayerSum(2)
    >>> mix([torch.zeros(1, 3, 4), torch.ones(1, 3, 4)]).mean().item()
    0.5
    """

    def __init__(self, num_states):
        super().__init__()
        self.weights = torch.nn.Parameter(torch.zeros(num_states))

    def forward(self, states):
        if len(states) != len(self.weights):
            raise RuntimeError(f"{len(states)} hidden states for "
                               f"{len(self.weights)} weights")
        weights = torch.softmax(self.weights, dim=0)
        return sum(weight * state for weight, state in zip(weights, states))


class ProbingModel(torch.nn.Module):
    """Frozen upstream -> layer mix -> head.

    Arguments
    ---------
    upstream : FrozenUpstream
        The frozen encoder.
    head : torch.nn.Module
        Called as ``head(features, frame_lens)``.
    layers : str
        ``"weighted"`` (:class:`WeightedLayerSum` of all hidden states) or
        ``"last"`` (the last layer's output).
    """

    def __init__(self, upstream, head, layers="weighted"):
        super().__init__()
        if layers not in LAYER_CHOICES:
            raise UserInputError(f"layers: must be one of {', '.join(LAYER_CHOICES)}, "
                                 f"not {layers!r}")
        self.upstream = upstream
        self.head = head
        self.mix = WeightedLayerSum(upstream.num_hidden_states) \
            if layers == "weighted" else None

    def forward(self, wavs, wav_lens):
        """Returns ``(head output, relative real frame lengths)``."""
        states, frame_lens = self.upstream(wavs, wav_lens)
        feats = self.mix(states) if self.mix is not None else states[-1]
        return self.head(feats, frame_lens), frame_lens


class _ToyUpstream(FrozenUpstream):
    """A two-layer frozen "encoder" of 4-wide frames of 25 samples (doctests)."""

    def __init__(self):
        layers = torch.nn.ModuleList([torch.nn.Linear(4, 4), torch.nn.Linear(4, 4)])
        super().__init__(layers, layers)

    def encode(self, wavs, wav_lens):
        hidden = wavs.view(wavs.shape[0], -1, 25)[..., :4]
        for layer in self.layers:
            hidden = layer(hidden)
        return wav_lens
