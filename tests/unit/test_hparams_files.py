"""The recipes' stage YAMLs: written by one tool, every key used and overridable.

Most checks read the YAMLs as text (nothing is built); the ones that load a
YAML build the tiny model only.
"""

import re
import subprocess
import sys

import pytest
from ruamel.yaml import YAML

from speechbrain_sparse.asr.options import ConfigError, load_stage_hparams, unused_keys
from speechbrain_sparse.data.synthetic_prepare import CORPUS_KEYS
from tests.conftest import REPO, SYNTHETIC_RECIPE, load_recipe_module
from tests.mls_fixtures import MLS_RECIPE
from tests.tibetan_fixtures import TIBETAN_RECIPE

WAV2VEC2_RECIPE = REPO / "recipes" / "Synthetic" / "ASR" / "wav2vec2"
LIBRISPEECH_RECIPE = REPO / "recipes" / "LibriSpeech" / "ASR" / "sparsewav"
LIBRISPEECH_TRANSFORMER = REPO / "recipes" / "LibriSpeech" / "ASR" / "transformer"
MULTILINGUAL_RECIPE = REPO / "recipes" / "SyntheticMultilingual" / "ASR" / "transformer"
RECIPES = {
    SYNTHETIC_RECIPE: CORPUS_KEYS,
    MULTILINGUAL_RECIPE: CORPUS_KEYS,
    WAV2VEC2_RECIPE: CORPUS_KEYS,
    TIBETAN_RECIPE: load_recipe_module(TIBETAN_RECIPE).RECIPE_KEYS,
    MLS_RECIPE: load_recipe_module(MLS_RECIPE).RECIPE_KEYS,
    LIBRISPEECH_RECIPE: load_recipe_module(LIBRISPEECH_RECIPE, "finetune").RECIPE_KEYS,
    LIBRISPEECH_TRANSFORMER: load_recipe_module(LIBRISPEECH_TRANSFORMER).RECIPE_KEYS,
}
# the stage YAMLs of the ASR pipelines (LibriSpeech's one-shot prune.py YAMLs
# configure a pruning tool, not a training stage)
STAGE_YAMLS = [(folder, path.name) for folder in RECIPES
               for path in sorted((folder / "hparams").glob("*.yaml"))
               if folder != LIBRISPEECH_RECIPE or path.name == "prune_finetune.yaml"]


def test_files_are_what_the_tool_writes():
    done = subprocess.run([sys.executable, str(REPO / "tools" / "write_hparams.py"),
                           "--check"], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


IDS = [f"{folder.parent.parent.name}/{folder.name}/{name}"
       for folder, name in STAGE_YAMLS]


@pytest.mark.parametrize("folder,name", STAGE_YAMLS, ids=IDS)
def test_every_key_is_used_and_includes_stay_in_the_recipe(folder, name):
    path = folder / "hparams" / name
    text = path.read_text(encoding="utf-8")
    tree = YAML(typ="rt").load(text)
    assert unused_keys(text, tree, RECIPES[folder]) == []
    for key in ("train_csv", "valid_csv", "test_csvs"):
        assert key in tree, f"{name} does not declare {key}"
    for node in tree.values():
        tag = getattr(getattr(node, "tag", None), "value", None) or ""
        if tag.startswith("!include:"):
            included = (path.parent / tag[len("!include:"):]).resolve()
            assert included.is_relative_to(folder), f"{name} includes {included}"


def test_a_plain_key_overrides_what_the_file_passes_on(tmp_path):
    path = SYNTHETIC_RECIPE / "hparams" / "diff_tiny.yaml"
    hparams = load_stage_hparams(path, {"weight_decay": 0.0, "d_model": 48,
                                        "pretrained_dir": str(tmp_path)}, CORPUS_KEYS)
    assert hparams["opt_class"].keywords["weight_decay"] == 0.0
    assert hparams["modules"]["seq_lin"].w.in_features == 48
    assert hparams["pretrainer"].paths["model"] == f"{tmp_path}/model.ckpt"
    assert str(hparams["test_csvs"]["en-gb-scotland_test"]).endswith(
        "synthetic_tiny_0/en-gb-scotland/test.csv")


def test_a_misspelled_key_is_an_error_naming_it(tmp_path):
    text = (SYNTHETIC_RECIPE / "hparams" / "vanilla_tiny.yaml").read_text()
    path = tmp_path / "arch"
    path.mkdir()
    (path / "transformer_asr.yaml").write_text(
        (SYNTHETIC_RECIPE / "hparams" / "arch" / "transformer_asr.yaml").read_text())
    stage = tmp_path / "vanilla_tiny.yaml"
    stage.write_text(text.replace("valid_search_every:", "valid_serach_every:"))
    with pytest.raises(ConfigError, match="'valid_serach_every'"):
        load_stage_hparams(stage, None, CORPUS_KEYS)
    stage.write_text(text.replace("decoding: beam", "decoding: greedy"))
    with pytest.raises(ConfigError, match="decoding: must be one of"):
        load_stage_hparams(stage, None, CORPUS_KEYS)


def test_a_missing_model_folder_stops_the_stage_before_the_corpus(tmp_path):
    from speechbrain_sparse.errors import MissingInputError

    train = load_recipe_module(SYNTHETIC_RECIPE)
    corpus = tmp_path / "corpus"
    with pytest.raises(MissingInputError, match="pretrained_dir: model folder"):
        train.main([str(SYNTHETIC_RECIPE / "hparams" / "diff_tiny.yaml"),
                    "--pretrained_dir", str(tmp_path / "missing"),
                    "--data_folder", str(corpus),
                    "--output_folder", str(tmp_path / "out")])
    assert not corpus.exists()  # nothing synthesised


TRANSFORMER_FOLDERS = sorted(REPO.glob("recipes/*/ASR/transformer/hparams"))


def _outside_the_data_block(path):
    """A stage YAML less what may differ between datasets: the header's dataset
    lines, the data block, the results folder's name (MLS: one per fine-tuning
    subset, ``results/mls/<finetune_subset>/``) and the vocabulary size."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("seed:"))
    data = next(i for i, line in enumerate(lines) if line.startswith("# ---- data"))
    output = next(i for i, line in enumerate(lines)
                  if line.startswith("output_folder:"))
    rest = [re.sub(r"results/[a-z_]+/(<[a-z_]+>/)?", "results/<dataset>/", line)
            for line in lines[output:] if not line.startswith("vocab_size:")]
    return lines[start:data] + rest


@pytest.mark.parametrize("name", sorted(
    {path.name for folder in TRANSFORMER_FOLDERS for path in folder.glob("*.yaml")}))
def test_a_stage_yaml_differs_from_its_twins_only_in_data(name):
    """The same stage of every dataset: one model, optimiser, training and method."""
    twins = {folder.parent.parent.parent.name: _outside_the_data_block(folder / name)
             for folder in TRANSFORMER_FOLDERS if (folder / name).is_file()}
    first, *others = twins
    for other in others:
        assert twins[other] == twins[first], f"{other}/{name} drifts from {first}'s"
