"""Data preparation of the embedded synthetic corpus, as the recipes call it.

The corpus is synthesised with eSpeak NG on first use (``sb-sparse synth``);
a finished corpus with the same options is reused. Its manifests live in the
generic per-dialect layout, ``<data_folder>/<dialect>/<split>.csv``, which is
where a stage YAML's ``train_csv``, ``valid_csv`` and ``test_csvs`` point.

A multilingual preset (``ml_micro``, ``ml_tiny``) builds the multilingual
corpus instead: the source and target "dialects" are then languages (``en``,
``fr``, ``nl``, ...), each in its own ``<data_folder>/<language>/`` folder.

Example
-------
>>> corpus_builder({"corpus_preset": "ml_micro", "data_folder": "c",
...                 "corpus_seed": 0, "source_dialect": "fr",
...                 "target_dialects": ["nl"]})[1]["languages"]
('fr', 'nl')
>>> corpus_builder({"corpus_preset": "micro", "data_folder": "c",
...                 "corpus_seed": 0, "source_dialect": "en-us",
...                 "target_dialects": ["en-029"]})[1]["targets"]
('en-029',)
"""

from speechbrain_sparse.data.synth import (
    ML_PRESETS,
    build_corpus,
    build_multilingual_corpus,
)
from speechbrain_sparse.distributed import run_on_main_or_raise

#: The keys of a stage YAML that :func:`prepare_synthetic` reads.
CORPUS_KEYS = ("data_folder", "corpus_preset", "corpus_seed", "source_dialect",
               "target_dialects")


def corpus_builder(hparams):
    """The function that builds the corpus of a stage YAML, and its arguments.

    Arguments
    ---------
    hparams : dict
        The keys of :data:`CORPUS_KEYS`.

    Returns
    -------
    tuple
        ``(build_corpus, kwargs)``, or ``(build_multilingual_corpus, kwargs)``
        whose languages are the source and the targets, for an ``ml_*`` preset.
    """
    common = {"out_dir": hparams["data_folder"], "preset": hparams["corpus_preset"],
              "seed": hparams["corpus_seed"]}
    source, targets = hparams["source_dialect"], tuple(hparams["target_dialects"])
    if hparams["corpus_preset"] in ML_PRESETS:
        return build_multilingual_corpus, {**common, "languages": (source, *targets)}
    return build_corpus, {**common, "source": source, "targets": targets}


def prepare_synthetic(hparams):
    """Builds (or reuses) the corpus of a stage YAML, on the main process.

    Arguments
    ---------
    hparams : dict
        ``data_folder``, ``corpus_preset`` (``micro``, ``tiny``, ``small``, or
        the multilingual ``ml_micro``, ``ml_tiny``), ``corpus_seed``,
        ``source_dialect`` and ``target_dialects`` (eSpeak NG voices, or
        language codes for a multilingual preset).
    """
    build, kwargs = corpus_builder(hparams)
    run_on_main_or_raise(build, kwargs=kwargs)
