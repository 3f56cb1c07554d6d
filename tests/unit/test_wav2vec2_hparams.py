"""The synthetic wav2vec2-family YAMLs: WavLM twins do not drift from Wav2Vec2's."""

import re

import pytest

from tests.conftest import REPO

HPARAMS = REPO / "recipes" / "Synthetic" / "ASR" / "wav2vec2" / "hparams"


def body(name):
    """The YAML without its comment header and with the model_type line blanked."""
    text = (HPARAMS / name).read_text()
    text = text[text.index("seed: "):]
    return re.sub(r"^model_type: \w+.*$", "model_type: -", text, flags=re.MULTILINE)


@pytest.mark.parametrize("wav2vec2, wavlm", [
    ("wav2vec2_tiny.yaml", "wavlm_tiny.yaml"),
    ("prune_obs_wav2vec2_tiny.yaml", "prune_obs_wavlm_tiny.yaml"),
])
def test_wavlm_yaml_differs_only_in_model_type(wav2vec2, wavlm):
    assert body(wav2vec2) == body(wavlm)
    assert "model_type: wavlm" in (HPARAMS / wavlm).read_text()


def test_pruning_yaml_prunes_what_the_training_yaml_writes():
    from hyperpyyaml import load_hyperpyyaml

    with open(HPARAMS / "wav2vec2_tiny.yaml") as handle:
        trained = load_hyperpyyaml(handle)
    with open(HPARAMS / "prune_obs_wav2vec2_tiny.yaml") as handle:
        pruning = load_hyperpyyaml(handle)
    assert pruning["pretrained_dir"] == trained["model_export_dir"]
