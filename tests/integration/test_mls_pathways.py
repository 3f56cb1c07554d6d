"""The MLS recipe's Dynamic ASR Pathways YAMLs on a fixture MLS tree.

One language (the fixture trees of every language share their utterance IDs,
which a merged multilingual manifest refuses), a width-32 model, one epoch of
``dense_multi_small.yaml`` and a few steps of ``lth_small.yaml``: the
manifests come from ``mls_prepare.py``, the stages from the pathways
pipeline, the results are per language with its per-utterance errors.
"""

import json

import torch

from speechbrain_sparse.masks import ParameterMask
from tests.conftest import load_recipe_module
from tests.mls_fixtures import MLS_RECIPE, write_mls
from tests.recipe_checks import TINY_MODEL


def test_dense_multi_then_lth_on_fixture_mls(tmp_path):
    write_mls(tmp_path / "mls", "french")
    train = load_recipe_module(MLS_RECIPE)
    common = [f"--data_folder={tmp_path / 'mls'}",
              f"--manifest_folder={tmp_path / 'manifests'}",
              "--corpus_languages=[french]", "--eval_splits=[test]",
              "--vocab_size=40", "--decoding=ctc_greedy", "--device=cpu",
              "--noprogressbar", *TINY_MODEL]
    dense = tmp_path / "dense_multi"
    results = train.main([str(MLS_RECIPE / "hparams" / "dense_multi_small.yaml"),
                          f"--output_folder={dense}", "--number_of_epochs=1",
                          "--batch_size=4", *common])
    assert set(results) == {"french_test"}
    assert (tmp_path / "manifests" / "french" / "train.csv").is_file()
    assert (dense / "utterances_french_test.csv").is_file()

    lth = tmp_path / "lth"
    results = train.main([str(MLS_RECIPE / "hparams" / "lth_small.yaml"),
                          f"--output_folder={lth}", f"--pretrained_dir={dense}/model",
                          "--dialect=french", "--prune_interval=1", *common])
    assert set(results) == {"french_test"}
    mask = ParameterMask.load(lth / "masks" / "s0.7.pt")
    assert mask.num_selected() == mask.numel() - round(0.7 * mask.numel())
    state = torch.load(lth / "model" / "model.ckpt")
    assert all(not state[name][~keep].any() for name, keep in mask.items())
    info = json.loads((lth / "pathways_info.json").read_text())
    assert info["method"] == "lth" and info["languages"] == ["french"]
