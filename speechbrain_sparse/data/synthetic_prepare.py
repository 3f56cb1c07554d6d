"""Data preparation of the embedded synthetic corpus, as the recipes call it.

The corpus is synthesised with eSpeak NG on first use (``sb-sparse synth``);
a finished corpus with the same options is reused. Its manifests live in the
generic per-dialect layout, ``<data_folder>/<dialect>/<split>.csv``, which is
where a stage YAML's ``train_csv``, ``valid_csv`` and ``test_csvs`` point.
"""

from speechbrain_sparse.data.synth import build_corpus
from speechbrain_sparse.distributed import run_on_main_or_raise

#: The keys of a stage YAML that :func:`prepare_synthetic` reads.
CORPUS_KEYS = ("data_folder", "corpus_preset", "corpus_seed", "source_dialect",
               "target_dialects")


def prepare_synthetic(hparams):
    """Builds (or reuses) the corpus of a stage YAML, on the main process.

    Arguments
    ---------
    hparams : dict
        ``data_folder``, ``corpus_preset`` (``micro``, ``tiny``, ``small``),
        ``corpus_seed``, ``source_dialect`` and ``target_dialects`` (eSpeak NG
        voices).
    """
    run_on_main_or_raise(
        build_corpus,
        kwargs={
            "out_dir": hparams["data_folder"],
            "preset": hparams["corpus_preset"],
            "seed": hparams["corpus_seed"],
            "source": hparams["source_dialect"],
            "targets": tuple(hparams["target_dialects"]),
        },
    )
