"""The character vocabulary of Hugging Face CTC models and the scratch model builder."""

import json

import pytest

from speechbrain_sparse.asr.ctc_characters import CharacterCTCTokenizer
from speechbrain_sparse.asr.ctc_experiment import build_ctc_model

TINY = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
        "intermediate_size": 32, "conv_dim": [8, 8], "conv_stride": [5, 4],
        "conv_kernel": [10, 4], "num_conv_pos_embeddings": 4,
        "num_conv_pos_embedding_groups": 2}


def test_vocabulary_from_transcripts_round_trips_and_saves(tmp_path):
    tokenizer = CharacterCTCTokenizer.from_transcripts(["IT'S A TEST", "ZOO"])
    ids = tokenizer.encode_as_ids("A ZOO'S TEST")
    assert tokenizer.decode_ids(ids) == "A ZOO'S TEST"
    assert tokenizer.blank_index == 0 and 0 not in ids
    assert ids[1] == 2  # the space is the word delimiter "|"
    tokenizer.save(tmp_path)
    loaded = CharacterCTCTokenizer.from_pretrained(tmp_path)
    assert loaded.encode_as_ids("A ZOO'S TEST") == ids
    vocabulary = json.loads((tmp_path / "vocab.json").read_text())
    assert vocabulary["<pad>"] == 0 and vocabulary["|"] == 2


def test_unknown_characters_map_to_unk():
    tokenizer = CharacterCTCTokenizer.from_transcripts(["AB"])
    unk = tokenizer.tokenizer.unk_token_id
    assert tokenizer.encode_as_ids("AQ") == [tokenizer.encode_as_ids("A")[0], unk]


def test_bad_vocabulary_files_are_named(tmp_path):
    with pytest.raises(ValueError, match="no vocab.json"):
        CharacterCTCTokenizer.from_pretrained(tmp_path)
    (tmp_path / "vocab.json").write_text(json.dumps({"A": 0}))
    with pytest.raises(ValueError, match=r"vocab.json: the CTC vocabulary lacks"):
        CharacterCTCTokenizer.from_pretrained(tmp_path)
    (tmp_path / "vocab.json").write_text("{not json")
    with pytest.raises(ValueError, match="not a readable vocab.json"):
        CharacterCTCTokenizer.from_pretrained(tmp_path)


@pytest.mark.parametrize("model_type", ["wav2vec2", "hubert", "wavlm"])
def test_scratch_model_fits_the_vocabulary(model_type):
    tokenizer = CharacterCTCTokenizer.from_transcripts(["HELLO"])
    model = build_ctc_model({"model_type": model_type, **TINY}, tokenizer)
    assert model.config.model_type == model_type
    assert model.config.vocab_size == len(tokenizer) == 7
    assert model.config.pad_token_id == tokenizer.blank_index
    assert model.lm_head.out_features == len(tokenizer)


def test_scratch_model_config_errors_name_the_key():
    tokenizer = CharacterCTCTokenizer.from_transcripts(["HELLO"])
    with pytest.raises(ValueError, match="model_type must be"):
        build_ctc_model({"model_type": "bert", **TINY}, tokenizer)
    with pytest.raises(ValueError, match="no key .*hiden_size"):
        build_ctc_model({"model_type": "wav2vec2", "hiden_size": 8}, tokenizer)
