"""The MLS recipe end to end on fixture MLS trees: pretrain -> vanilla -> diff.

French (the source) and Polish (the target) in the real MLS layout, a few
tenths of a second of audio each; a width-32 Transformer trained for one
epoch per stage. What is checked is the plumbing: the tokenizer trained at
pretraining covers the target's characters, fine-tuning starts from the same
output layer, diff leaves the frozen entries and the feature normaliser
bit-identical to the pretrained ones.
"""

import csv
import math
from pathlib import Path

import pytest
import sentencepiece
import torch

from speechbrain_sparse.errors import UserInputError
from tests.conftest import load_recipe_module
from tests.mls_fixtures import MLS_RECIPE, write_mls
from tests.recipe_checks import TINY_MODEL as RECIPE_TINY_MODEL
from tests.recipe_checks import assert_only_the_mask_trained

FRENCH = ("le café de noël", "à la fenêtre du château", "ça va très bien",
          "l'élève où est la forêt", "une île près de la mer")
POLISH = ("zażółć gęślą jaźń", "łódź płynie po rzece", "ćma śpi w źródle",
          "żółty koń je owies", "pięć dni w tygodniu")

TINY_MODEL = [*RECIPE_TINY_MODEL, "--vocab_size=60", "--number_of_epochs=1",
              "--batch_size=4", "--num_workers=0", "--device=cpu",
              "--target_dialects=[polish]"]


def _text(sentences):
    return lambda utt_id, index: f"{sentences[index % len(sentences)]} {index}"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """``mls_french/`` and ``mls_polish/`` (flac) under one data folder."""
    root = tmp_path_factory.mktemp("mls")
    write_mls(root, "french", text=_text(FRENCH))
    write_mls(root, "polish", text=_text(POLISH))
    return root


def run_stage(name, corpus, output_folder, *overrides):
    """Runs one stage of the recipe in-process on the fixture corpus."""
    train = load_recipe_module(MLS_RECIPE)
    return train.main([str(MLS_RECIPE / "hparams" / name),
                       f"--data_folder={corpus}",
                       f"--manifest_folder={corpus.parent / 'manifests'}",
                       f"--output_folder={output_folder}",
                       *TINY_MODEL, *overrides])


def texts(path):
    with open(path, newline="", encoding="utf-8") as handle:
        return [row["wrd"] for row in csv.DictReader(handle)]


def test_pretrain_vanilla_diff_across_languages(corpus, tmp_path):
    from speechbrain_sparse.masks import ParameterMask

    pretrain = tmp_path / "pretrain"
    results = run_stage("pretrain_small.yaml", corpus, pretrain,
                        "--eval_dialects=[french, polish]")
    assert set(results) == {"french_test", "polish_test"}
    assert all(math.isfinite(stats["WER"]) for stats in results.values())
    manifests = corpus.parent / "manifests"
    target_text = texts(manifests / "polish" / "10hr.csv")
    new_characters = set("".join(target_text)) - set("".join(
        texts(manifests / "french" / "train.csv")))
    assert {"ł", "ż", "ą", "ę"} <= new_characters  # the target's own letters
    # The tokenizer learnt the target's training text (no target audio used):
    # the target's sentences encode without <unk> and decode to themselves.
    tokenizer = sentencepiece.SentencePieceProcessor(
        model_file=str(pretrain / "model" / "tokenizer.model"))
    for sentence in target_text + texts(manifests / "polish" / "test.csv"):
        ids = tokenizer.encode(sentence)
        assert tokenizer.unk_id() not in ids, sentence
        assert tokenizer.decode(ids) == sentence and "⁇" not in tokenizer.decode(ids)
    assert texts(pretrain / "save" / "tokenizer_text.csv")[-len(target_text):] == \
        target_text

    common = [f"--pretrained_dir={pretrain / 'model'}", "--eval_splits=[test]"]
    vanilla = tmp_path / "vanilla"
    results = run_stage("vanilla_small.yaml", corpus, vanilla, *common)
    assert set(results) == {"polish_test"}
    assert texts(manifests / "polish" / "9hr.csv") == target_text[:3]
    before = torch.load(pretrain / "model" / "model.ckpt")
    after = torch.load(vanilla / "model" / "model.ckpt")
    assert before.keys() == after.keys()  # the same output layer, nothing added
    assert any(not torch.equal(before[key], after[key]) for key in before)

    diff = tmp_path / "diff"
    results = run_stage("diff_small.yaml", corpus, diff, *common,
                        f"--finetuned_dir={vanilla / 'model'}", "--density=0.2")
    assert math.isfinite(results["polish_test"]["WER"])
    mask = ParameterMask.load(diff / "mask.pt")
    assert abs(mask.density() - 0.2) < 1e-4 and mask.method == "diff"
    assert_only_the_mask_trained(pretrain / "model", diff / "model", mask)


def test_unknown_language_and_subset_are_one_line_errors(corpus, tmp_path):
    train = load_recipe_module(MLS_RECIPE)
    arguments = [str(MLS_RECIPE / "hparams" / "vanilla_small.yaml"),
                 f"--data_folder={corpus}", f"--output_folder={tmp_path}",
                 f"--manifest_folder={tmp_path / 'manifests'}",
                 f"--pretrained_dir={tmp_path}"]
    plan = {"source_dialect": "french", "target_dialects": ["polish"],
            "dialect": "german", "eval_dialects": ["german"], "eval_splits": ["test"],
            "finetune_subset": "9hr"}
    with pytest.raises(UserInputError, match="'german' is neither the source "
                       r"language \(french\) nor a target \(polish\)"):
        train.manifest_plan(plan)
    with pytest.raises(UserInputError, match="finetune_subset must be one of "
                       "train, 9hr, 1hr, 10hr, 10min, not '5hr'"):
        train.manifest_plan({**plan, "dialect": "polish", "eval_dialects": ["polish"],
                             "finetune_subset": "5hr"})
    with pytest.raises(SystemExit) as stop:  # no model folder: named, nothing prepared
        train.cli(arguments)
    assert str(stop.value.code).startswith("train.py: error: pretrained_dir")
    assert not (tmp_path / "manifests").exists()


def test_stage_yamls_point_at_what_the_preparation_writes(corpus, tmp_path):
    """The declared manifests are those prepared; a 1hr run is kept apart from 9hr."""
    from speechbrain_sparse.asr.options import load_stage_hparams

    train = load_recipe_module(MLS_RECIPE)
    manifests = tmp_path / "manifests"

    def stage(name, **overrides):
        overrides = {"data_folder": corpus, "manifest_folder": manifests,
                     "target_dialects": "[polish]", **overrides}
        text = "".join(f"{key}: {value}\n" for key, value in overrides.items())
        return load_stage_hparams(MLS_RECIPE / "hparams" / name, text,
                                  recipe_keys=train.RECIPE_KEYS)

    hparams = stage("pretrain_small.yaml", eval_dialects="[french, polish]")
    train.prepare_manifests(hparams)
    declared = [hparams["train_csv"], hparams["valid_csv"],
                *hparams["test_csvs"].values(),
                *hparams["tokenizer_extra_csvs"].values()]
    assert [str(path.relative_to(manifests)) for path in map(Path, declared)] == [
        "french/train.csv", "french/dev.csv", "french/test.csv", "polish/test.csv",
        "polish/10hr.csv"]
    assert all(Path(path).is_file() for path in declared)

    nine, one = (stage("diff_small.yaml", finetune_subset=subset)
                 for subset in ("9hr", "1hr"))
    assert Path(one["train_csv"]) == manifests / "polish" / "1hr.csv"
    assert nine["output_folder"] != one["output_folder"]
    assert "/1hr/vanilla_small_polish/" in one["finetuned_dir"]
    assert nine["pretrained_dir"] == one["pretrained_dir"]  # one pretrained model
    train.prepare_manifests(one)
    assert len(texts(one["train_csv"])) == 6 and Path(one["valid_csv"]).is_file()
