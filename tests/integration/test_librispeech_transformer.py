"""The LibriSpeech Transformer recipe end to end on fixture audio.

A LibriSpeech tree in the real layout (``.flac`` and ``.trans.txt``, written by
``write_corpus`` of the preparation's tests) with every split the recipe reads,
a few utterances each; a width-32 Transformer trained for one epoch per stage:
pretrain on train-clean-100 -> vanilla on an hours-limited subset of
train-other-500 -> diff. What is checked is the plumbing (manifests, the subset,
the four test sets, frozen entries bit-identical), not accuracy.
"""

import csv
import math

import pytest

from tests.conftest import REPO, load_recipe_module
from tests.recipe_checks import TINY_MODEL as RECIPE_TINY_MODEL
from tests.recipe_checks import assert_only_the_mask_trained
from tests.unit.test_librispeech_prepare import write_corpus

RECIPE = REPO / "recipes" / "LibriSpeech" / "ASR" / "transformer"
TEST_SETS = {"dev-clean", "test-clean", "dev-other", "test-other"}

TINY_MODEL = [*RECIPE_TINY_MODEL, "--valid_beam_size=2", "--vocab_size=40"]

SENTENCES = (
    "THE BOY WALKED HOME", "SHE READ A LONG LETTER", "WE SAW THE RIVER RISE",
    "A COLD WIND BLEW ALL NIGHT", "HE OPENED THE OLD DOOR", "THEY SANG BY THE FIRE",
    "MY FATHER KEPT THE BOOK", "THE SHIP SAILED AT DAWN", "HER VOICE WAS QUIET",
    "IT RAINED IN THE TOWN", "YOU MUST COME BACK SOON", "THE DOG SLEPT IN THE SUN",
)


def split(first_speaker, count, seconds=(1.0, 0.5)):
    """Two chapters of ``count`` utterances each, alternating durations."""
    return {
        str(first_speaker + s): {
            str(100 + s): [(f"{u:04d}", int(16000 * seconds[u % len(seconds)]),
                            SENTENCES[(2 * s + u) % len(SENTENCES)])
                           for u in range(count)]}
        for s in range(2)
    }


CORPUS = {
    "train-clean-100": split(10, 6),
    "train-other-500": split(20, 5),
    "dev-clean": split(30, 2),
    "dev-other": split(40, 2),
    "test-clean": split(50, 2),
    "test-other": split(60, 2),
}
FINETUNE_HOURS = 4.0 / 3600  # four of the 7.5 seconds of train-other-500


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus") / "LibriSpeech", CORPUS)


@pytest.fixture(scope="module")
def manifests(tmp_path_factory):
    return tmp_path_factory.mktemp("manifests")


def stage_arguments(name, corpus, manifests, output_folder, *overrides):
    return [str(RECIPE / "hparams" / name), f"--data_folder={corpus}",
            f"--manifest_folder={manifests}", f"--output_folder={output_folder}",
            f"--finetune_hours={FINETUNE_HOURS}", *TINY_MODEL,
            "--number_of_epochs=1", "--batch_size=4", "--device=cpu", *overrides]


def run_stage(name, corpus, manifests, output_folder, *overrides):
    train = load_recipe_module(RECIPE)
    return train.main(stage_arguments(name, corpus, manifests, output_folder,
                                      *overrides))


def read_ids(path):
    with open(path, newline="") as handle:
        return [row["ID"] for row in csv.DictReader(handle)]


@pytest.fixture(scope="module")
def pretrained(corpus, manifests, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pretrain")
    return folder, run_stage("pretrain_small.yaml", corpus, manifests, folder)


@pytest.fixture(scope="module")
def vanilla(pretrained, corpus, manifests, tmp_path_factory):
    folder = tmp_path_factory.mktemp("vanilla")
    results = run_stage("vanilla_small.yaml", corpus, manifests, folder,
                        f"--pretrained_dir={pretrained[0] / 'model'}")
    return folder, results


def test_pretraining_on_the_clean_speakers_tests_the_four_sets(pretrained, manifests):
    folder, results = pretrained
    assert set(results) == TEST_SETS
    assert all(math.isfinite(stats["WER"]) for stats in results.values())
    assert len(read_ids(manifests / "source" / "train.csv")) == 12
    assert sorted(p.name for p in (manifests / "eval").glob("*.csv")) == sorted(
        f"{name}.csv" for name in TEST_SETS)
    for name in ("model.ckpt", "normalizer.ckpt", "tokenizer.model"):
        assert (folder / "model" / name).is_file()


def test_fine_tuning_trains_on_the_hours_subset(vanilla, manifests, corpus):
    folder, results = vanilla
    assert set(results) == TEST_SETS
    subset = manifests / f"train-other-500_{FINETUNE_HOURS}h_seed0"
    every = load_recipe_module(RECIPE, "librispeech_prepare").split_rows(
        corpus / "train-other-500")
    kept = read_ids(subset / "train.csv")
    assert 0 < len(kept) < len(every)
    seconds = sum(row["duration"] for row in every if row["ID"] in kept)
    assert 3.0 < seconds <= 4.0
    assert "valid loss" in (folder / "train_log.txt").read_text()


def test_diff_keeps_the_frozen_entries_and_the_normaliser(pretrained, vanilla, corpus,
                                                          manifests, tmp_path):
    from speechbrain_sparse.masks import ParameterMask

    pretrain_model = pretrained[0] / "model"
    results = run_stage("diff_small.yaml", corpus, manifests, tmp_path,
                        f"--pretrained_dir={pretrain_model}",
                        f"--finetuned_dir={vanilla[0] / 'model'}", "--density=0.2")
    assert set(results) == TEST_SETS
    mask = ParameterMask.load(tmp_path / "mask.pt")
    assert abs(mask.density() - 0.2) < 1e-4 and mask.method == "diff"
    assert_only_the_mask_trained(pretrain_model, tmp_path / "model", mask)


def run_cli_expecting_error(corpus, manifests, tmp_path, *overrides):
    train = load_recipe_module(RECIPE)
    with pytest.raises(SystemExit) as stop:
        train.cli(stage_arguments("pretrain_small.yaml", corpus, manifests, tmp_path,
                                  *overrides))
    return str(stop.value.code)


def test_bad_input_is_a_one_line_error(corpus, tmp_path):
    manifests = tmp_path / "manifests"
    message = run_cli_expecting_error(corpus, manifests, tmp_path / "a",
                                      "--dialect=noisy")
    assert message == ("train.py: error: dialect 'noisy' is neither the source "
                       "domain (clean) nor a target (other)")
    message = run_cli_expecting_error(corpus, manifests, tmp_path / "b",
                                      f"--train_csv={tmp_path / 'elsewhere.csv'}")
    assert message.startswith("train.py: error: train_csv is ")
    assert str(manifests / "source" / "train.csv") in message
    message = run_cli_expecting_error(corpus, manifests, tmp_path / "c",
                                      "--pretrain_splits=[train-clean-360]")
    assert "missing split folder" in message and "train-clean-360" in message
