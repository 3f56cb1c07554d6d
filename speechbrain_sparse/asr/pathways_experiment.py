"""One stage of the Dynamic ASR Pathways experiments, from a loaded stage YAML.

The paper prunes a dense multilingual ASR model into language subnetworks
(``shared/papers/dynamic-asr-pathways-adaptive-masking.md``). Its stages, each
a YAML ``<stage>_<size>.yaml`` of ``recipes/SyntheticMultilingual/ASR/pathways``
or ``recipes/MLS/ASR/transformer`` (``stage`` names it):

* ``dense_multi``: the dense model trained on every language at once, one
  tokenizer over all their text; ``dense_mono``: a smaller dense model on one
  language (the reference row). Both are
  :func:`~speechbrain_sparse.asr.experiment.run_asr_experiment` on the
  languages' manifests merged into one;
* ``lap`` (all languages), ``imp``, ``lth`` and ``adaptive`` (one language):
  the dense multilingual model pruned while it trains
  (:mod:`speechbrain_sparse.asr.pathways_stages`);
* ``pathways`` and ``dynamic_pathways``: one mask per language, trained
  together with monolingual batches.

Every stage reads the languages' manifests (``train_csvs``, ``valid_csvs``:
name -> manifest, each with a ``language`` column) and writes them merged to
``train_csv`` and ``valid_csv``; it is tested on every language of
``test_csvs`` with the oracle language ID, writing ``results.json`` and the
per-utterance errors the bootstrap reads (``utterances_<set>.csv``).

Example
-------
>>> files = init_mask_files("lth", ["fr", "nl"], 0.5, "results/pathways", "tiny", 1)
>>> str(files["nl"])
'results/pathways/lth_tiny_nl/1/masks/s0.5.pt'
>>> str(init_mask_files("lap", ["fr"], 0.7, "r", "tiny", 1)["fr"])
'r/lap_tiny/1/masks/s0.7.pt'
>>> str(init_mask_files("imp", ["it"], 0.7, "r", "tiny", 1, "out/imp_{language}")["it"])
'out/imp_it/masks/s0.7.pt'
"""

import logging
from pathlib import Path

import speechbrain as sb

from speechbrain_sparse.asr.experiment import run_asr_experiment
from speechbrain_sparse.asr.options import ConfigError, checked_options
from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.fileio import read_manifest, write_csv_atomic
from speechbrain_sparse.pruning.schedules import (
    ConstantSchedule,
    CubicSchedule,
    check_level,
)

logger = logging.getLogger(__name__)

DENSE_STAGES = ("dense_multi", "dense_mono")
PRUNING_STAGES = ("lap", "imp", "lth", "adaptive")
PATHWAY_STAGES = ("pathways", "dynamic_pathways")
STAGES = DENSE_STAGES + PRUNING_STAGES + PATHWAY_STAGES
INIT_METHODS = ("imp", "lth", "lap")

#: The top-level keys the pathways stages read themselves (besides those of
#: :mod:`speechbrain_sparse.asr.options`); a recipe passes them to
#: :func:`~speechbrain_sparse.asr.experiment.start_stage`.
PATHWAYS_KEYS = ("languages", "train_csvs", "valid_csvs", "train_steps", "pruner",
                 "schedule", "rerank_every", "init_masks", "language_sampling",
                 "corpus_languages")


def init_mask_files(method, languages, level, results, size, seed, folder=None):
    """Language -> the mask file that initialises its pathway.

    The mask of ``level`` of the init run, ``<run folder>/masks/s<level>.pt``.
    The run folder is ``folder`` with ``{language}`` replaced by each language
    when given (the reproduction tool's layout), else the recipe's:
    ``<results>/<method>_<size>_<language>/<seed>`` for ``imp`` and ``lth``
    (each language's own run), ``<results>/lap_<size>/<seed>`` for ``lap`` (the
    one language-agnostic mask).
    """
    if method not in INIT_METHODS:
        raise ConfigError(f"pathway_init must be one of {', '.join(INIT_METHODS)}, "
                          f"not {method!r}")
    name = f"s{check_level(level, 'init_level'):g}.pt"
    if folder is None:
        folder = (f"{results}/lap_{size}/{seed}" if method == "lap" else
                  f"{results}/{method}_{size}_{{language}}/{seed}")
    return {lang: Path(str(folder).replace("{language}", lang)) / "masks" / name
            for lang in languages}


def progressive_schedule(initial, final, interval, num_intervals):
    """The cubic schedule from ``initial`` to ``final``; constant when they are equal.

    Example
    -------
    >>> type(progressive_schedule(0.5, 0.7, 100, 4)).__name__
    'CubicSchedule'
    >>> progressive_schedule(0.7, 0.7, 100, 4).describe()["schedule"]
    'held'
    """
    if check_level(initial, "init_level") == check_level(final, "target_sparsity"):
        return ConstantSchedule(final, interval, num_intervals)
    return CubicSchedule(initial, final, interval, num_intervals)


def merge_manifests(manifests, destination):
    """Writes the rows of several manifests, in order, as one CSV (atomically).

    The columns are the first manifest's; every other must have the same.

    Example
    -------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for lang in ("fr", "nl"):
    ...     _ = (folder / f"{lang}.csv").write_text(
    ...         f"ID,duration,wav,language\\n{lang}1,1.0,{lang}.wav,{lang}\\n")
    >>> merge_manifests([folder / "fr.csv", folder / "nl.csv"], folder / "all.csv")
    2
    >>> (folder / "all.csv").read_text().splitlines()[2]
    'nl1,1.0,nl.wav,nl'
    """
    rows, columns = [], None
    for path in manifests:
        with open(path, encoding="utf-8") as handle:
            header = handle.readline().strip().split(",")
        if columns is None:
            columns = header
        elif header != columns:
            raise UserInputError(f"{path}: columns {header} differ from {columns} of "
                                 "the first manifest of this stage")
        rows.extend(read_manifest(path, required=("ID", "language")))
    write_csv_atomic(destination, rows, columns)
    return len(rows)


def manifest_language(path):
    """The one language of a manifest's ``language`` column.

    Raises UserInputError naming the file when it holds none or several.
    """
    languages = {row["language"] for row in read_manifest(path, ("ID", "language"))}
    if len(languages) != 1:
        raise UserInputError(f"{path}: a per-language manifest must hold one "
                             f"language, found {sorted(languages) or 'none'}")
    return languages.pop()


def check_stage(hparams):
    """The stage's name and languages, checked; UserInputError naming the key."""
    stage = hparams["stage"]
    if stage not in STAGES:
        raise ConfigError(f"stage must be one of {', '.join(STAGES)}, not {stage!r}")
    languages = list(hparams["languages"])
    if not languages or len(set(languages)) != len(languages):
        raise ConfigError(f"languages must name distinct languages, not {languages}")
    corpus = hparams.get("corpus_languages")
    unknown = sorted(set(languages) - set(corpus)) if corpus else []
    if unknown:
        raise ConfigError(f"languages: {unknown[0]!r} is not a language of the "
                          f"corpus (corpus_languages: {', '.join(corpus)})")
    if stage in ("dense_mono", "imp", "lth", "adaptive") and len(languages) != 1:
        raise ConfigError(f"stage {stage} trains on one language; languages is "
                          f"{languages}")
    return stage, languages


def write_stage_manifests(hparams):
    """Merges the languages' train and dev manifests into ``train_csv`` / ``valid_csv``.

    Only the main process writes; the others wait for it.
    """
    def write():
        for key, merged in (("train_csvs", "train_csv"), ("valid_csvs", "valid_csv")):
            count = merge_manifests(list(hparams[key].values()), hparams[merged])
            logger.info("%s: %d utterances of %s", hparams[merged], count,
                        ", ".join(hparams[key]))

    sb.utils.distributed.run_on_main(write)


def run_pathways_experiment(hparams, run_opts):
    """Runs the stage ``hparams["stage"]``; returns the test results.

    Arguments
    ---------
    hparams : dict
        The loaded stage YAML (see the module docstring).
    run_opts : dict
        SpeechBrain run options.

    Returns
    -------
    dict
        Test-set name (``<language>_<split>``) -> ``{"WER", "CER", ...}``; also
        ``<output_folder>/results.json``.
    """
    hparams = checked_options(hparams)
    stage, languages = check_stage(hparams)
    missing = sorted(set(languages) - {manifest_language(path)
                                       for path in hparams["train_csvs"].values()})
    if missing:
        raise UserInputError(f"languages: no training manifest holds {missing[0]!r}")
    write_stage_manifests(hparams)
    if stage in DENSE_STAGES:
        return run_asr_experiment(hparams, run_opts)
    from speechbrain_sparse.asr.pathways_stages import run_masked_stage

    return run_masked_stage(hparams, run_opts, stage, languages)
