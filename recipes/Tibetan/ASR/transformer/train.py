#!/usr/bin/env python3
"""Transformer ASR for Tibetan dialects: pretrain on Amdo, fine-tune on U-Tsang, Khampa.

The same pipeline, architecture and fine-tuning base as the synthetic recipe
(:func:`speechbrain_sparse.asr.experiment.run_asr_experiment`); only the data
differ. Amdo (the high-resource source) comes from XBMU-AMDO31
(``source_format: xbmu_amdo31``, see ``xbmu_amdo31_prepare.py``) or from the
generic per-dialect layout (``source_format: generic``); U-Tsang and Khampa (the
low-resource targets) from the generic layout (see README.md). Every stage
reports WER, CER and the Tibetan syllable error rate (SER).

Usage::

    python train.py hparams/pretrain_small.yaml --xbmu_folder /data/xbmu_amdo31 \\
        --dialects_folder /data/tibetan_dialects
    python train.py hparams/vanilla_small.yaml --dialect khampa
    python train.py hparams/diff_small.yaml --dialect khampa --density 0.1
    python train.py hparams/diff_large.yaml --dialect utsang --device cuda:0

A corpus that cannot be used stops the run with ``train.py: error: <file>:<line>:
<what>`` and exit status 1.
"""

import sys
from pathlib import Path

import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from xbmu_amdo31_prepare import prepare_xbmu_amdo31  # noqa: E402

from speechbrain_sparse.asr.experiment import run_asr_experiment  # noqa: E402
from speechbrain_sparse.data.generic_layout import prepare_generic_corpus  # noqa: E402
from speechbrain_sparse.distributed import run_on_main_or_raise  # noqa: E402
from speechbrain_sparse.errors import UserInputError, exit_on_user_error  # noqa: E402
from speechbrain_sparse.metrics import normalize_tibetan  # noqa: E402

SOURCE_FORMATS = ("xbmu_amdo31", "generic")


class CorpusError(UserInputError):
    """A corpus that cannot be prepared; the message names the file (and line)."""


def evaluation_dialects(hparams):
    """``eval_dialects``, or the source and every target when it is null."""
    return hparams["eval_dialects"] or [
        hparams["source_dialect"],
        *hparams["target_dialects"],
    ]


def manifest_path(hparams, dialect, split):
    """The manifest of one dialect and split.

    The source's manifests live in ``<manifest_folder>/source_<source_format>``
    and the targets' in ``<manifest_folder>/targets``, so that each preparation
    keeps its own record of options and a fine-tuning stage never needs the
    source corpus.
    """
    folder = Path(hparams["manifest_folder"])
    if dialect == hparams["source_dialect"]:
        folder = folder / f"source_{hparams['source_format']}"
    elif dialect in hparams["target_dialects"]:
        folder = folder / "targets"
    else:
        raise CorpusError(
            f"dialect {dialect!r} is neither the source ({hparams['source_dialect']}) "
            f"nor a target ({', '.join(hparams['target_dialects'])})"
        )
    return folder / f"{dialect}_{split}.csv"


def prepare_manifests(hparams):
    """Writes (or reuses) the manifests of the dialects this stage uses."""
    source, targets = hparams["source_dialect"], list(hparams["target_dialects"])
    source_format = hparams["source_format"]
    if source_format not in SOURCE_FORMATS:
        raise CorpusError(
            f"source_format must be one of {', '.join(SOURCE_FORMATS)}, "
            f"not {source_format!r}"
        )
    used = {hparams["dialect"], *evaluation_dialects(hparams)}
    for dialect in used:
        manifest_path(hparams, dialect, "train")  # names an unknown dialect
    source_folder = manifest_path(hparams, source, "train").parent
    if source in used and source_format == "xbmu_amdo31":
        prepare_xbmu_amdo31(hparams["xbmu_folder"], source_folder, dialect=source)
    elif source in used:
        prepare_generic_corpus(
            hparams["dialects_folder"],
            source_folder,
            dialects=[source],
            normalize=normalize_tibetan,
        )
    if used & set(targets):
        prepare_generic_corpus(
            hparams["dialects_folder"],
            Path(hparams["manifest_folder"]) / "targets",
            dialects=targets,
            normalize=normalize_tibetan,
        )


def add_manifests(hparams):
    """Sets ``train_csv``, ``valid_csv`` and ``test_csvs`` from the dialect keys."""
    dialect = hparams["dialect"]
    hparams["train_csv"] = manifest_path(hparams, dialect, "train")
    hparams["valid_csv"] = manifest_path(hparams, dialect, "dev")
    hparams["test_csvs"] = {
        f"{name}_{split}": manifest_path(hparams, name, split)
        for name in evaluation_dialects(hparams)
        for split in hparams["eval_splits"]
    }


def main(argv):
    """Runs one stage of the recipe; returns the test results."""
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    with open(hparams_file, encoding="utf-8") as handle:
        hparams = load_hyperpyyaml(handle, overrides)
    sb.utils.distributed.ddp_init_group(run_opts)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    # a bad corpus stops every rank, with a message that says where
    run_on_main_or_raise(prepare_manifests, kwargs={"hparams": hparams})
    add_manifests(hparams)
    return run_asr_experiment(hparams, run_opts)


def cli(argv):
    """``main``, with a bad corpus or manifest reported in one line, exit status 1."""
    return exit_on_user_error(main, argv, "train.py")


if __name__ == "__main__":
    cli(sys.argv[1:])
