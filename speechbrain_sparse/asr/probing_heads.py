"""Downstream heads of a probe: BiLSTM-CTC, linear CTC, mean-pool MLP classifier.

The trimming paper's heads (Genova et al. 2024): for ASR, 2 bidirectional
LSTM layers of 256 units, then a linear layer to the characters (CTC); for
classification, the mean over the real frames, then Linear(1024), ReLU,
Linear. Every head is called as ``head(features, frame_lens)`` with
``frame_lens`` the relative number of real frames of each utterance (what
:class:`~speechbrain_sparse.asr.probing.FrozenUpstream` returns): padded
frames are packed away from the LSTM and left out of the mean.

Example
-------
>>> head = BiLSTMCTCHead(input_size=16, vocab_size=5)
>>> head.lstm.num_layers, head.lstm.hidden_size, head.lstm.bidirectional
(2, 256, True)
>>> head(torch.randn(2, 7, 16), torch.tensor([1.0, 0.5])).shape
torch.Size([2, 7, 5])

Authors
 * speechbrain_sparse contributors 2026
"""

import torch


def frame_counts(frame_lens, num_frames):
    """Relative lengths -> frame counts (at least 1), as ``ctc_loss`` rounds them."""
    return torch.round(frame_lens * num_frames).long().clamp(1, num_frames)


def real_frames(frame_lens, num_frames):
    """Bool ``[batch, num_frames]``, True on the real frames."""
    counts = frame_counts(frame_lens, num_frames).to(frame_lens.device)
    return torch.arange(num_frames, device=frame_lens.device) < counts.unsqueeze(1)


class BiLSTMCTCHead(torch.nn.Module):
    """Bidirectional LSTM layers, then a linear layer to CTC log-probabilities.

    Padded frames are packed away, so the backward direction starts at each
    utterance's last real frame.

    Arguments
    ---------
    input_size : int
        Width of the upstream features.
    vocab_size : int
        Output tokens, blank included.
    hidden_size : int
        LSTM units per direction (the trimming paper: 256).
    num_layers : int
        LSTM layers (the paper: 2).
    dropout : float
        Between LSTM layers.
    """

    def __init__(self, input_size, vocab_size, hidden_size=256, num_layers=2,
                 dropout=0.0):
        super().__init__()
        self.lstm = torch.nn.LSTM(input_size, hidden_size, num_layers=num_layers,
                                  batch_first=True, bidirectional=True,
                                  dropout=dropout if num_layers > 1 else 0.0)
        self.output = torch.nn.Linear(2 * hidden_size, vocab_size)

    def forward(self, feats, frame_lens):
        """``[batch, frames, dim]`` -> log-probabilities ``[batch, frames, vocab]``."""
        num_frames = feats.shape[1]
        counts = frame_counts(frame_lens, num_frames).cpu()
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            feats, counts, batch_first=True, enforce_sorted=False)
        hidden, _ = self.lstm(packed)
        hidden, _ = torch.nn.utils.rnn.pad_packed_sequence(
            hidden, batch_first=True, total_length=num_frames)
        return torch.log_softmax(self.output(hidden), dim=-1)


class LinearCTCHead(torch.nn.Module):
    """A linear probe: one linear layer to CTC log-probabilities.

    Arguments
    ---------
    input_size : int
        Width of the upstream features.
    vocab_size : int
        Output tokens, blank included.
    """

    def __init__(self, input_size, vocab_size):
        super().__init__()
        self.output = torch.nn.Linear(input_size, vocab_size)

    def forward(self, feats, frame_lens):
        """``[batch, frames, dim]`` -> log-probabilities ``[batch, frames, vocab]``."""
        return torch.log_softmax(self.output(feats), dim=-1)


class MLPClassifierHead(torch.nn.Module):
    """Mean over the real frames, then Linear -> ReLU -> Linear to class logits.

    Arguments
    ---------
    input_size : int
        Width of the upstream features.
    num_classes : int
        Output classes.
    hidden_size : int
        Width of the hidden layer (the trimming paper: 1024).

    Example
    -------
    >>> head = MLPClassifierHead(4, 3)
    >>> feats = torch.randn(2, 5, 4)
    >>> short = head(feats, torch.tensor([0.4, 1.0]))
    >>> torch.allclose(short[0], head(feats[:1, :2], torch.tensor([1.0]))[0])
    True
    """

    def __init__(self, input_size, num_classes, hidden_size=1024):
        super().__init__()
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(input_size, hidden_size), torch.nn.ReLU(),
            torch.nn.Linear(hidden_size, num_classes))

    def forward(self, feats, frame_lens):
        """``[batch, frames, dim]`` -> logits ``[batch, classes]``."""
        real = real_frames(frame_lens, feats.shape[1]).unsqueeze(-1).to(feats.dtype)
        pooled = (feats * real).sum(1) / real.sum(1)
        return self.mlp(pooled)
