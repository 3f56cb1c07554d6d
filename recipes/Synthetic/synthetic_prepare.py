"""Data preparation for the embedded synthetic multi-dialect corpus.

The corpus is synthesised with eSpeak NG on first use (``sb-sparse synth``);
a finished corpus with the same options is reused. Its manifests live in the
generic per-dialect layout: ``<data_folder>/<dialect>/<split>.csv``.
"""

from pathlib import Path

from speechbrain_sparse.data.synth import build_corpus
from speechbrain_sparse.distributed import run_on_main_or_raise


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


def add_manifests(hparams):
    """Sets ``train_csv``, ``valid_csv`` and ``test_csvs`` from the dialect keys."""
    folder, dialect = hparams["data_folder"], hparams["dialect"]
    hparams["train_csv"] = manifest_path(folder, dialect, "train")
    hparams["valid_csv"] = manifest_path(folder, dialect, "dev")
    hparams["test_csvs"] = {
        f"{name}_{split}": manifest_path(folder, name, split)
        for name in hparams["eval_dialects"]
        for split in hparams["eval_splits"]
    }


def prepare_data(hparams):
    """Builds the corpus (main process) and adds the manifest keys to ``hparams``.

    Reads ``data_folder``, ``corpus_preset``, ``corpus_seed``,
    ``source_dialect``, ``target_dialects``, ``dialect``, ``eval_dialects``
    and ``eval_splits``; sets ``train_csv``, ``valid_csv`` and ``test_csvs``.
    """
    run_on_main_or_raise(
        prepare_synthetic,
        kwargs={
            "data_folder": hparams["data_folder"],
            "preset": hparams["corpus_preset"],
            "seed": hparams["corpus_seed"],
            "source": hparams["source_dialect"],
            "targets": hparams["target_dialects"],
        },
    )
    add_manifests(hparams)
