"""The Tibetan recipe's wiring on fixture corpora: preparation, one tiny epoch, errors.

XBMU-AMDO31 in its real layout for Amdo and the generic layout for U-Tsang and
Khampa, a few seconds of audio each; a width-32 Transformer trained for one
epoch. What is checked is the plumbing (manifests, SER in every report, error
messages), not accuracy.
"""

import json
import math
from pathlib import Path

import pytest

from speechbrain_sparse.errors import UserInputError
from tests.conftest import load_recipe_module
from tests.recipe_checks import TINY_MODEL as RECIPE_TINY_MODEL
from tests.tibetan_fixtures import TIBETAN_RECIPE, build_generic_tree, build_xbmu_tree

TINY_MODEL = [*RECIPE_TINY_MODEL, "--vocab_size=40"]


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    """An XBMU-AMDO31 tree (dev as a tarball) and U-Tsang / Khampa, generic."""
    root = tmp_path_factory.mktemp("tibetan")
    build_xbmu_tree(root / "xbmu_amdo31", tarball_splits=("dev",))
    build_generic_tree(root / "dialects")
    return root


def stage_arguments(hparams_name, corpora, output_folder, *overrides):
    """The command line of one stage on the fixture corpora; overrides win."""
    options = {
        "output_folder": output_folder,
        "xbmu_folder": corpora / "xbmu_amdo31",
        "dialects_folder": corpora / "dialects",
        "manifest_folder": output_folder / "manifests",
    }
    options.update(override[2:].split("=", 1) for override in overrides)
    return [str(TIBETAN_RECIPE / "hparams" / hparams_name)] + [
        f"--{key}={value}" for key, value in options.items()
    ]


def test_pretraining_reports_syllable_error_rates(corpora, tmp_path):
    train = load_recipe_module(TIBETAN_RECIPE)
    arguments = stage_arguments(
        "pretrain_small.yaml",
        corpora,
        tmp_path,
        *TINY_MODEL,
        "--number_of_epochs=1",
        "--batch_size=4",
        "--num_workers=0",
        "--device=cpu",
    )
    results = train.main(arguments)
    assert set(results) == {"amdo_test", "utsang_test", "khampa_test"}
    for stats in results.values():
        assert {"WER", "CER", "SER", "ACC", "loss"} <= set(stats)
        assert all(math.isfinite(stats[key]) for key in ("WER", "CER", "SER"))
    assert json.loads((tmp_path / "results.json").read_text()) == results
    for name in results:
        assert (tmp_path / f"ser_{name}.txt").is_file()
        assert (tmp_path / f"wer_{name}.txt").is_file()
    log = (tmp_path / "train_log.txt").read_text(encoding="utf-8")
    assert "valid loss" in log and "SER" in log
    assert "SER" in (tmp_path / "log.txt").read_text(encoding="utf-8")
    manifests = tmp_path / "manifests"
    assert (manifests / "source_xbmu_amdo31" / "amdo_dev.csv").is_file()
    assert (manifests / "targets" / "khampa_test.csv").is_file()
    assert (tmp_path / "model" / "tokenizer.model").is_file()


def load_stage(train, name, **overrides):
    """A stage YAML as ``train.py`` loads it (nothing trained)."""
    from speechbrain_sparse.asr.options import load_stage_hparams

    return load_stage_hparams(TIBETAN_RECIPE / "hparams" / name,
                              {key: str(value) for key, value in overrides.items()},
                              recipe_keys=train.RECIPE_KEYS)


def test_generic_source_and_fine_tuning_stage_manifests(corpora, tmp_path):
    train = load_recipe_module(TIBETAN_RECIPE)
    build_generic_tree(tmp_path / "dialects", dialects=("amdo", "utsang", "khampa"))
    hparams = load_stage(
        train, "pretrain_small.yaml", source_format="generic",
        xbmu_folder=tmp_path / "nowhere", dialects_folder=tmp_path / "dialects",
        manifest_folder=tmp_path / "manifests", output_folder=tmp_path / "run")
    train.prepare_manifests(hparams)
    # the manifests the YAML declares are those the preparation wrote
    train_csv, valid_csv = Path(hparams["train_csv"]), Path(hparams["valid_csv"])
    assert train_csv == tmp_path / "manifests/source_generic/amdo_train.csv"
    assert train_csv.is_file() and valid_csv.is_file()
    assert sorted(hparams["test_csvs"]) == ["amdo_test", "khampa_test", "utsang_test"]
    assert all(path.is_file() for path in hparams["test_csvs"].values())

    # A fine-tuning stage needs neither the source corpus nor its manifests.
    hparams = load_stage(
        train, "vanilla_small.yaml", dialect="khampa",
        xbmu_folder=tmp_path / "nowhere", dialects_folder=tmp_path / "dialects",
        manifest_folder=tmp_path / "other", output_folder=tmp_path / "run2")
    train.prepare_manifests(hparams)
    assert not (tmp_path / "other" / "source_xbmu_amdo31").exists()
    train_csv = Path(hparams["train_csv"])
    assert train_csv == tmp_path / "other" / "targets" / "khampa_train.csv"
    assert train_csv.is_file()
    assert sorted(hparams["test_csvs"]) == ["khampa_dev", "khampa_test"]


def run_cli_expecting_error(corpora, tmp_path, *overrides):
    train = load_recipe_module(TIBETAN_RECIPE)
    with pytest.raises(SystemExit) as stop:
        train.cli(
            stage_arguments(
                "pretrain_small.yaml", corpora, tmp_path, *TINY_MODEL, *overrides
            )
        )
    return str(stop.value.code)


def test_bad_corpus_is_one_line_error(tmp_path):
    corpus = tmp_path / "corpus"
    build_xbmu_tree(corpus / "xbmu_amdo31")
    build_generic_tree(corpus / "dialects")
    transcript = corpus / "xbmu_amdo31" / "data" / "transcript" / "transcript_clean.txt"
    with open(transcript, "a", encoding="utf-8") as handle:
        handle.write("བཀྲ་ཤིས་ བདེ་ལེགས།\n")
    message = run_cli_expecting_error(corpus, tmp_path / "run")
    assert message.startswith("train.py: error: ")
    assert f"{transcript}:13: no utterance id" in message


def test_unknown_dialect_and_format_are_one_line_errors(corpora, tmp_path):
    message = run_cli_expecting_error(corpora, tmp_path / "a", "--dialect=kham")
    assert message == (
        "train.py: error: dialect 'kham' is neither the source (amdo) nor a "
        "target (utsang, khampa)"
    )
    message = run_cli_expecting_error(corpora, tmp_path / "b", "--source_format=kaldi")
    assert "source_format must be one of xbmu_amdo31, generic, not 'kaldi'" in message
    message = run_cli_expecting_error(
        corpora, tmp_path / "c", f"--dialects_folder={tmp_path / 'missing'}"
    )
    assert message.startswith("train.py: error: data folder") and "missing" in message


def test_a_library_bug_in_preparation_keeps_its_traceback(corpora, tmp_path,
                                                          monkeypatch):
    """Only the project's user errors become one line: a ``ValueError`` raised
    inside a library call (a stand-in here) propagates with its traceback."""
    train = load_recipe_module(TIBETAN_RECIPE)

    def broken_library_call(*args, **kwargs):
        raise ValueError("raised inside a library")

    monkeypatch.setattr(train, "prepare_generic_corpus", broken_library_call)
    with pytest.raises(ValueError, match="raised inside a library") as error:
        train.cli(stage_arguments("pretrain_small.yaml", corpora, tmp_path,
                                  *TINY_MODEL))
    assert not isinstance(error.value, UserInputError)
    assert error.traceback[-1].name == "broken_library_call"
