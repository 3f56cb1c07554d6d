"""Filterbank features computed once per manifest and read from a memory-mapped file.

Training a small ASR model on CPU spends a large share of every epoch recomputing
the same Fbank features and allocating variable-size buffers for them. A
:class:`FeatureCache` computes the features of every utterance of a manifest once,
one utterance at a time (so an utterance's features never depend on the batch it
lands in), stores them in one file, and serves them as views into a
memory-mapped tensor: no worker processes, no per-step allocation, and the pages
are shared by every run that reads the same manifest.

The file is named after what determines its content: the manifest's bytes and the
features the extractor computes for a fixed probe signal (so any change of
``n_mels``, ``n_fft``, hop, ... gives another file). It is written atomically
under a lock, so concurrent runs build it once.

Example
-------
>>> import tempfile, pathlib, numpy, soundfile
>>> from speechbrain.lobes.features import Fbank
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> soundfile.write(folder / "a.wav", numpy.zeros(1600), 16000)
>>> _ = (folder / "m.csv").write_text(f"ID,duration,wav\\nu1,0.1,{folder}/a.wav\\n")
>>> cache = FeatureCache(folder / "m.csv", Fbank(n_mels=40), folder / "cache")
>>> cache["u1"].shape
torch.Size([11, 40])
"""

import contextlib
import fcntl
import hashlib
import logging
from pathlib import Path

import torch
from tqdm import tqdm

from speechbrain_sparse.fileio import (
    read_audio_checked,
    read_manifest,
    torch_save_atomic,
)

logger = logging.getLogger(__name__)

CACHE_VERSION = 1
PROBE_SECONDS = 0.5


def extractor_fingerprint(compute_features, sample_rate=16000):
    """A short hash of what ``compute_features`` returns for a fixed probe signal.

    Arguments
    ---------
    compute_features : callable
        Waveforms ``[batch, samples]`` -> features ``[batch, frames, dims]``.
    sample_rate : int
        Sample rate of the probe.

    Returns
    -------
    str
        16 hex digits; equal for extractors that compute the same features.

    Example
    -------
    >>> from speechbrain.lobes.features import Fbank
    >>> forty = extractor_fingerprint(Fbank(n_mels=40))
    >>> forty == extractor_fingerprint(Fbank(n_mels=40))
    True
    >>> forty == extractor_fingerprint(Fbank(n_mels=80))
    False
    """
    generator = torch.Generator().manual_seed(0)
    probe = torch.randn(1, int(PROBE_SECONDS * sample_rate), generator=generator)
    with torch.no_grad():
        features = compute_features(probe)
    digest = hashlib.sha256(str(tuple(features.shape)).encode())
    digest.update(features.to(torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]




def batch_features(batch, compute_features):
    """The features of a batch and their relative lengths.

    Batches of a dataset with a :class:`FeatureCache` carry ``feats``; others
    carry ``sig``, whose features are computed here. Every model that reads
    a batch (training, calibration, scoring) goes through this, so it sees the
    same features either way.

    Arguments
    ---------
    batch : speechbrain.dataio.batch.PaddedBatch
        With ``feats`` (``[batch, frames, dims]``) or ``sig`` (``[batch, samples]``).
    compute_features : callable
        Waveforms -> features, used when the batch has no ``feats``.

    Returns
    -------
    tuple
        ``(features, relative_lengths)``.
    """
    if hasattr(batch, "feats"):
        return batch.feats
    wavs, wav_lens = batch.sig
    return compute_features(wavs), wav_lens


@contextlib.contextmanager
def _locked(lock_path):
    """Holds an exclusive ``flock`` on ``lock_path`` (created when missing)."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class FeatureCache:
    """The features of every utterance of one manifest, computed once.

    Arguments
    ---------
    csv_path : str or Path
        A manifest with ``ID`` and ``wav`` columns.
    compute_features : torch.nn.Module or callable
        Waveforms ``[batch, samples]`` -> ``[batch, frames, dims]`` (the recipe's
        ``compute_features``, e.g. SpeechBrain's ``Fbank``).
    cache_folder : str or Path
        Where the feature files live (shared by all runs on the same corpus).
    progress : bool
        Show a progress bar while computing.
    """

    def __init__(self, csv_path, compute_features, cache_folder, progress=True):
        self.csv_path = Path(csv_path)
        manifest_hash = hashlib.sha256(self.csv_path.read_bytes()).hexdigest()[:16]
        fingerprint = extractor_fingerprint(compute_features)
        stem = f"{self.csv_path.parent.name}_{self.csv_path.stem}"
        name = f"{stem}.v{CACHE_VERSION}.{manifest_hash}.{fingerprint}.pt"
        self.path = Path(cache_folder) / name
        if not self.path.is_file():
            with _locked(self.path.with_suffix(".lock")):
                if not self.path.is_file():  # another process may have built it
                    self._build(compute_features, progress)
        stored = torch.load(self.path, mmap=True, weights_only=True)
        self.features = stored["features"]
        self.index = {
            utt_id: (int(start), int(length))
            for utt_id, start, length in zip(
                stored["ids"], stored["starts"].tolist(), stored["lengths"].tolist()
            )
        }

    def _build(self, compute_features, progress):
        """Computes every utterance's features and writes the file atomically."""
        rows = [(row["ID"], row["wav"])
                for row in read_manifest(self.csv_path, ("ID", "wav"))]
        logger.info("Computing features of %d utterances of %s into %s",
                    len(rows), self.csv_path, self.path)
        # one utterance at a time: tiny ops that extra threads only slow down
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            chunks = self._compute(rows, compute_features, progress)
        finally:
            torch.set_num_threads(threads)
        lengths = torch.tensor([chunk.shape[0] for chunk in chunks], dtype=torch.long)
        starts = torch.cumsum(lengths, 0) - lengths
        payload = {
            "ids": [utt_id for utt_id, _ in rows],
            "starts": starts,
            "lengths": lengths,
            "features": torch.cat(chunks) if chunks else torch.zeros(0, 0),
        }
        torch_save_atomic(payload, self.path)

    def _compute(self, rows, compute_features, progress):
        """Each utterance's features ``[frames, dims]``, in manifest order."""
        with torch.no_grad():
            return [
                compute_features(
                    read_audio_checked(wav).to(torch.float32).unsqueeze(0)
                )[0].contiguous()
                for _, wav in tqdm(rows, desc=f"features {self.csv_path.stem}",
                                   unit="utt", disable=not progress or None)
            ]

    def __contains__(self, utt_id):
        return utt_id in self.index

    def __len__(self):
        return len(self.index)

    def __getitem__(self, utt_id):
        """The features of one utterance, ``[frames, dims]`` (a view, not a copy)."""
        start, length = self.index[utt_id]
        return self.features[start : start + length]
