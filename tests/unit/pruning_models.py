"""Tiny random models and calibration batches for the pruning tests.

Hugging Face models are saved with ``save_pretrained`` and loaded back, as the
pruning command loads them; the SpeechBrain Transformer ASR is built from the
synthetic recipe's architecture YAML with small sizes.
"""

import csv
import json
from pathlib import Path

import torch
from speechbrain.dataio.batch import PaddedBatch

REPO = Path(__file__).resolve().parents[2]
ARCH_YAML = REPO / "recipes/Synthetic/ASR/transformer/hparams/arch/transformer_asr.yaml"

HF_TINY = {
    "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
    "intermediate_size": 64, "conv_dim": (16, 16), "conv_stride": (5, 4),
    "conv_kernel": (10, 8), "num_conv_pos_embeddings": 8,
    "num_conv_pos_embedding_groups": 2, "vocab_size": 12,
}
ASR_TINY = {"d_model": 16, "nhead": 2, "num_encoder_layers": 2,
            "num_decoder_layers": 1, "d_ffn": 32, "vocab_size": 20, "n_mels": 20}


def hf_classes(kind):
    """Returns ``(config class, base model class, CTC model class)``."""
    import transformers

    prefix = {"wav2vec2": "Wav2Vec2", "hubert": "Hubert", "wavlm": "WavLM"}[kind]
    return tuple(getattr(transformers, prefix + suffix)
                 for suffix in ("Config", "Model", "ForCTC"))


def tiny_hf_model(kind, folder, ctc=True, seed=0, **overrides):
    """Builds, saves (``save_pretrained``) and reloads a 2-layer, 32-wide model."""
    config_class, base_class, ctc_class = hf_classes(kind)
    extra = {"num_buckets": 32, "max_bucket_distance": 64} if kind == "wavlm" else {}
    torch.manual_seed(seed)
    model_class = ctc_class if ctc else base_class
    model = model_class(config_class(**{**HF_TINY, **extra, **overrides}))
    folder = Path(folder) / f"{kind}_{'ctc' if ctc else 'base'}"
    model.save_pretrained(folder)
    return model_class.from_pretrained(folder).eval(), folder


def audio_batch(lengths, seed=0):
    """Returns a ``PaddedBatch`` of random waveforms of the given sample counts."""
    generator = torch.Generator().manual_seed(seed)
    return PaddedBatch([{"id": f"u{i}", "sig": torch.randn(n, generator=generator)}
                        for i, n in enumerate(lengths)])


def tiny_transformer_asr(seed=0):
    """Returns the recipe's architecture hparams with tiny sizes (random weights)."""
    from hyperpyyaml import load_hyperpyyaml

    torch.manual_seed(seed)
    with open(ARCH_YAML, encoding="utf-8") as handle:
        hparams = load_hyperpyyaml(handle, dict(ASR_TINY))
    features = hparams["compute_features"](torch.randn(2, 3200))
    hparams["normalize"](features, torch.ones(2))  # statistics, as after training
    hparams["model"].eval()
    hparams["normalize"].eval()
    return hparams


def asr_batch(lengths, token_lengths, vocab_size=20, seed=0):
    """Returns a ``PaddedBatch`` with ``sig``, ``tokens_bos`` and ``tokens_eos``."""
    generator = torch.Generator().manual_seed(seed)
    examples = []
    for i, (n, t) in enumerate(zip(lengths, token_lengths)):
        tokens = torch.randint(3, vocab_size, (t,), generator=generator).tolist()
        examples.append({
            "id": f"u{i}", "sig": torch.randn(n, generator=generator),
            "tokens_bos": torch.LongTensor([1] + tokens),
            "tokens_eos": torch.LongTensor(tokens + [2]),
        })
    return PaddedBatch(examples)


def asr_family(hparams):
    """The pruning family of a tiny Transformer ASR."""
    from speechbrain_sparse.pruning.model_families import TransformerASRFamily

    return TransformerASRFamily(
        hparams["Transformer"], hparams["CNN"], hparams["compute_features"],
        normalize=hparams["normalize"], seq_lin=hparams["seq_lin"],
        pad_index=hparams["pad_index"],
    )


SENTENCES = ["THE CAT SAT", "A DOG RAN FAR", "WE SAW HIM", "BIG RED BOX",
             "JUMP QUICKLY NOW", "LOVE TO EAT", "VIEW THE SKY", "ZEBRA WALKS"]


def calibration_manifest(folder):
    """Writes six short 16 kHz utterances with transcripts and their SpeechBrain CSV."""
    import numpy as np
    import soundfile

    generator = np.random.default_rng(0)
    rows = []
    for i, words in enumerate(SENTENCES[:6]):
        path = Path(folder) / "audio" / f"u{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        samples = 2400 + 400 * i
        soundfile.write(path, 0.1 * generator.standard_normal(samples), 16000)
        rows.append({"ID": f"u{i}", "duration": samples / 16000, "wav": str(path),
                     "spk_id": "s", "wrd": words})
    path = Path(folder) / "calibration.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def speechbrain_model_folder(root):
    """A model folder as the recipe exports it, with ``hyperparams.yaml`` beside.

    Random tiny weights (:func:`tiny_transformer_asr`), a character SentencePiece
    tokenizer; returns ``(folder, hparams)``.
    """
    import sentencepiece

    root = Path(root)
    hparams = tiny_transformer_asr()
    folder = root / "experiment" / "model"
    folder.mkdir(parents=True)
    torch.save(hparams["model"].state_dict(), folder / "model.ckpt")
    hparams["normalize"]._save(folder / "normalizer.ckpt")
    (root / "text.txt").write_text("\n".join(SENTENCES) + "\n")
    sentencepiece.SentencePieceTrainer.train(
        input=str(root / "text.txt"), model_prefix=str(root / "tok"), vocab_size=20,
        model_type="char", bos_id=1, eos_id=2, unk_id=0, character_coverage=1.0)
    (folder / "tokenizer.model").write_bytes((root / "tok.model").read_bytes())
    (folder / "model_info.json").write_text(json.dumps({"size": "tiny"}))
    (root / "experiment" / "hyperparams.yaml").write_text("seed: 1\nnhead: 2\n")
    return folder, hparams
