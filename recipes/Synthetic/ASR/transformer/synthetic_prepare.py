"""Data preparation for the embedded synthetic multi-dialect corpus.

The corpus is synthesised with eSpeak NG on first use (``sb-sparse synth``);
a finished corpus with the same options is reused. Its manifests live in the
generic per-dialect layout: ``<data_folder>/<dialect>/<split>.csv``.
"""

from pathlib import Path

from speechbrain_sparse.data.synth import build_corpus


def prepare_synthetic(data_folder, preset, seed, source, targets):
    """Builds (or reuses) the corpus in ``data_folder``.

    Arguments
    ---------
    data_folder : str
        Where the corpus lives.
    preset : str
        ``micro``, ``tiny`` or ``small``.
    seed : int
        Corpus seed.
    source : str
        The source dialect (an eSpeak NG voice).
    targets : list of str
        The target dialects.
    """
    build_corpus(
        data_folder, preset=preset, seed=seed, source=source, targets=tuple(targets)
    )


def manifest_path(data_folder, dialect, split):
    """The manifest of one dialect and split."""
    return Path(data_folder) / dialect / f"{split}.csv"
