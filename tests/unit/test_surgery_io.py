"""Surgered models on disk: save -> load_structured -> the same outputs; bad folders."""

import json

import pytest
import torch

from speechbrain_sparse.pruning.unit_structure import model_structure
from speechbrain_sparse.surgery.io import (
    LOAD_NOTE,
    STRUCTURE_FILE,
    StructureFileError,
    load_structured,
    save_structured,
)
from speechbrain_sparse.surgery.remove import count_parameters, remove_units
from tests.unit.surgery_models import (
    LEVELS,
    asr_inputs,
    asr_model,
    asr_run,
    bit_identical,
    hf_inputs,
    hf_model,
    hf_run,
    random_mask,
)


@pytest.mark.parametrize("kind", ["wav2vec2", "wavlm"])
def test_hf_round_trip(kind, tmp_path):
    model = hf_model(kind)
    levels = LEVELS + ("conv_channel",)
    remove_units(model, random_mask(model_structure(model), levels, seed=5))
    folder = save_structured(model, tmp_path / "pruned")
    loaded = load_structured(folder)
    inputs = hf_inputs()
    assert bit_identical(hf_run(model, inputs), hf_run(loaded.model, inputs))
    assert count_parameters(loaded.model) == count_parameters(model)
    record = json.loads((folder / STRUCTURE_FILE).read_text())
    assert record["num_parameters"] == count_parameters(model)
    weights = (folder / record["weights"]["file"]).stat().st_size
    state = model.state_dict()
    stored = sum(t.numel() * t.element_size() for t in state.values())
    assert stored <= weights <= stored + 160 * len(state)  # + a header entry per tensor


def test_ctc_model_round_trip(tmp_path):
    from tests.unit.pruning_models import tiny_hf_model

    model, source = tiny_hf_model("hubert", tmp_path)
    remove_units(model, random_mask(model_structure(model), LEVELS, seed=2))
    folder = save_structured(model, tmp_path / "pruned", source=source)
    loaded = load_structured(folder)
    assert type(loaded.model).__name__ == "HubertForCTC"
    wavs = torch.randn(1, 4000)
    with torch.no_grad():
        assert torch.equal(model(wavs).logits, loaded.model(wavs).logits)


def test_plain_from_pretrained_fails_with_our_message(tmp_path):
    from transformers import AutoModel, AutoModelForCTC, Wav2Vec2Model

    model = hf_model("wav2vec2")
    remove_units(model, random_mask(model_structure(model), ("head",)))
    folder = save_structured(model, tmp_path / "pruned")
    for loader in (AutoModel, AutoModelForCTC):
        with pytest.raises(ValueError, match="load_structured"):
            loader.from_pretrained(folder)
    with pytest.raises(OSError):  # no weights file under a name transformers reads
        Wav2Vec2Model.from_pretrained(folder)
    assert "load_structured" in (folder / "README.md").read_text()
    assert "load_structured" in LOAD_NOTE


def test_transformer_asr_round_trip(tmp_path):
    hparams = asr_model()
    model = hparams["model"]
    remove_units(model, random_mask(model_structure(model), LEVELS, seed=4))
    folder = save_structured(model, tmp_path / "asr", arch=hparams,
                             normalizer=hparams["normalize"])
    loaded = load_structured(folder)
    inputs = asr_inputs()
    assert bit_identical(asr_run(model, inputs), asr_run(loaded.model, inputs))
    assert loaded.hparams["model"] is loaded.model
    stats = loaded.hparams["normalize"].glob_mean
    assert torch.equal(stats, hparams["normalize"].glob_mean)


def test_bad_folders_are_named(tmp_path):
    model = hf_model("wav2vec2")
    with pytest.raises(ValueError, match="not been surgered"):
        save_structured(model, tmp_path / "x")
    assert not (tmp_path / "x").exists()
    remove_units(model, random_mask(model_structure(model), ("ffn_unit",)))
    folder = save_structured(model, tmp_path / "pruned")
    path = folder / STRUCTURE_FILE
    text = path.read_text()
    path.write_text(text[: len(text) // 2])
    with pytest.raises(StructureFileError, match="truncated or not JSON"):
        load_structured(folder)
    record = json.loads(text)
    record["blocks"]["ffn"][0]["units"] += 1
    path.write_text(json.dumps(record))
    with pytest.raises(StructureFileError, match="checksum"):
        load_structured(folder)
    path.write_text(text)
    weights = folder / record["weights"]["file"]
    weights.write_bytes(weights.read_bytes()[:-10])
    with pytest.raises(StructureFileError, match="sha256"):
        load_structured(folder)
    with pytest.raises(FileNotFoundError, match="structure.json"):
        load_structured(tmp_path)


def test_cli_surgery(tmp_path, capsys):
    from speechbrain_sparse.cli import main
    from speechbrain_sparse.pruning.pretrained import load_pretrained
    from speechbrain_sparse.pruning.unit_masks import UnitMask
    from tests.unit.pruning_models import speechbrain_model_folder, tiny_hf_model

    _, hf_source = tiny_hf_model("wav2vec2", tmp_path)
    sb_source, _ = speechbrain_model_folder(tmp_path / "sb")
    for source in (hf_source, sb_source):
        original = load_pretrained(source, nhead=2)
        structure = model_structure(original.model)
        mask = UnitMask(random_mask(structure, LEVELS, seed=1), structure.fingerprint())
        mask.save(tmp_path / "mask.pt")
        out = tmp_path / f"out_{source.name}"
        assert main(["surgery", str(tmp_path / "mask.pt"), "--model", str(source),
                     "--out", str(out)]) == 0
        assert "load_structured" in capsys.readouterr().out
        loaded = load_structured(out)
        remove_units(original.model, mask)
        assert count_parameters(loaded.model) == count_parameters(original.model)
        assert all(torch.equal(a, b) for a, b in zip(
            original.model.state_dict().values(), loaded.model.state_dict().values()))
        if source == sb_source:
            assert (out / "tokenizer.model").is_file() and loaded.tokenizer is not None
    other = UnitMask({"encoder.layers.7.attention:head": torch.ones(2, dtype=bool)})
    other.save(tmp_path / "other.pt")
    assert main(["surgery", str(tmp_path / "other.pt"), "--model", str(hf_source),
                 "--out", str(tmp_path / "bad")]) == 2
    assert "encoder.layers.7.attention:head" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_load_pretrained_names_load_structured(tmp_path):
    from speechbrain_sparse.errors import UserInputError
    from speechbrain_sparse.pruning.pretrained import load_pretrained

    model = hf_model("wav2vec2")
    remove_units(model, random_mask(model_structure(model), ("ffn_unit",)))
    folder = save_structured(model, tmp_path / "pruned")
    with pytest.raises(UserInputError, match="load_structured"):
        load_pretrained(folder)
