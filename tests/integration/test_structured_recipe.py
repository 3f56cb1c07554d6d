"""The structured recipe on the micro corpus: probe, trim, SSF and scratch.

A random tiny group-norm wav2vec2 stands in for the CTC-trained upstream; each
stage runs one epoch of ``recipes/Synthetic/ASR/structured/train.py`` in
process.
"""

import json

import pytest
import torch

from speechbrain_sparse.errors import MissingInputError
from speechbrain_sparse.surgery import count_parameters, load_structured
from tests.conftest import REPO, load_recipe_module
from tests.unit.pruning_models import tiny_hf_model

RECIPE = REPO / "recipes" / "Synthetic" / "ASR" / "structured"
SMALL = {"corpus_preset": "micro", "num_workers": 0, "number_of_epochs": 1,
         "lstm_units": 8, "mlp_units": 16, "batch_size": 16, "max_duration": 2.0}


def run_stage(yaml_name, corpus, upstream, output, **keys):
    train = load_recipe_module(RECIPE)
    small = {key: value for key, value in SMALL.items()
             if not yaml_name.startswith("l0") or "units" not in key}
    keys = {**small, "data_folder": corpus, "upstream_dir": upstream,
            "output_folder": output, **keys}
    return train.main([str(RECIPE / "hparams" / yaml_name),
                       *(f"--{key}={value}" for key, value in keys.items())])


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    _, folder = tiny_hf_model("wav2vec2", tmp_path_factory.mktemp("up"), ctc=False,
                              feat_extract_norm="group")
    return folder


def test_trim_removes_what_its_mask_says_and_scratch_reuses_it(
        micro_corpus, upstream, tmp_path):
    trimmed = run_stage("trim_tiny.yaml", micro_corpus, upstream, tmp_path / "trim",
                        task="dialect_id", threshold=0.3, mask_lr=0.3,
                        mask_init=0.2)
    assert 0 < trimmed["trimmed_params"] == trimmed["mask_trimmed_params"]
    assert trimmed["trimmed_fraction"] == pytest.approx(
        trimmed["trimmed_params"] / trimmed["encoder_params"])
    # the trimmed model classifies as the gated one did
    before, after = trimmed["before_removal"], trimmed["results"]
    assert after["dialect_id_test"]["ACC"] == before["dialect_id_test"]["ACC"]
    assert after["dialect_id_test"]["loss"] == pytest.approx(
        before["dialect_id_test"]["loss"], abs=1e-4)
    saved = json.loads((tmp_path / "trim" / "trimming.json").read_text())
    assert saved["trimmed_params"] == trimmed["trimmed_params"]
    assert (tmp_path / "trim" / "utterances_dialect_id_test.csv").is_file()
    loaded = load_structured(tmp_path / "trim" / "trimmed_upstream").model
    assert count_parameters(loaded) == (trimmed["encoder_params"]
                                        - trimmed["trimmed_params"])
    scratch = run_stage("scratch_tiny.yaml", micro_corpus, upstream,
                        tmp_path / "scratch", task="dialect_id",
                        trimmed_run=tmp_path / "trim")
    assert scratch["encoder_params"] == (trimmed["encoder_params"]
                                         - trimmed["trimmed_params"])


@pytest.mark.slow  # ~35 s on 2 shared cores
def test_asr_probe_keeps_the_upstream_and_reports_wer(micro_corpus, upstream,
                                                      tmp_path):
    from transformers import AutoModel

    report = run_stage("probe_tiny.yaml", micro_corpus, upstream, tmp_path / "probe",
                       task="asr", layers="weighted")
    assert {"WER", "CER"} <= set(report["results"]["asr_test"])
    assert report["trimmed_params"] == 0
    reloaded = AutoModel.from_pretrained(upstream)
    state = torch.load(next((tmp_path / "probe" / "save").glob("CKPT*"))
                       / "probe.ckpt")
    for name, tensor in reloaded.state_dict().items():
        assert torch.equal(state[f"upstream.model.{name}"], tensor), name


def test_a_missing_upstream_stops_before_the_corpus(tmp_path):
    with pytest.raises(MissingInputError, match="upstream_dir: .*no config.json"):
        run_stage("ssf_tiny.yaml", tmp_path / "corpus", tmp_path / "none",
                  tmp_path / "out")
    assert not (tmp_path / "corpus").exists()


@pytest.mark.slow  # ~15-60 s on 2 shared cores
def test_l0_distillation_prunes_an_upstream_that_probing_reads(
        micro_corpus, upstream, tmp_path):
    report = run_stage("l0_distill_tiny.yaml", micro_corpus, upstream, tmp_path / "l0",
                       target_warmup_steps=2, reg_lr=0.5, distill_layers="[0, 1, 2]")
    assert 0 <= report["achieved_sparsity"] < 1
    pruned = tmp_path / "l0" / "pruned_upstream"
    assert count_parameters(load_structured(pruned).model) == (
        report["encoder_params"] - report["pruned_params"])
    probed = run_stage("probe_tiny.yaml", micro_corpus, pruned, tmp_path / "probe",
                       task="speaker_id")
    assert probed["encoder_params"] == (report["encoder_params"]
                                        - report["pruned_params"])
