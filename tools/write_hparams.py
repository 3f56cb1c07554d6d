#!/usr/bin/env python3
# ruff: noqa: E501
# (the templates below are YAML lines, kept as they will read)
"""Writes the Transformer recipes' hparams YAMLs from one template per stage.

Every ``recipes/<dataset>/ASR/transformer/hparams/<method>_<size>.yaml`` is
complete: a user opens one file and sees every key, and overrides any of them
by its plain name (``python train.py hparams/diff_small.yaml --weight_decay
0.0``). The only file a YAML includes is its own folder's
``arch/transformer_asr.yaml`` (the modules), with every architecture key
passed in. The files differ only in the size table, the dataset's data block
and the method block below, so they are written here, from one place, and
``tests/unit/test_hparams_files.py`` fails when a file is not what this tool
writes. After changing a template or a table::

    python tools/write_hparams.py          # rewrites the files
    python tools/write_hparams.py --check  # exit 1 if any file differs
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARCH_SOURCE = ROOT / "speechbrain_sparse" / "hparams" / "transformer_asr.yaml"

# ---- sizes: the paper's Transformer-small / -large, and a CPU demo size ----
SIZES = {
    "tiny": {
        "describe": "tiny (CPU demo)",
        "corpus_preset": "tiny",
        "d_model": 144, "nhead": 4, "num_encoder_layers": 4, "num_decoder_layers": 2,
        "d_ffn": 576, "dropout": "0.0", "test_beam_size": 8,
        "pretrain": {"number_of_epochs": "10", "batch_size": 16, "lr_initial": 0.002,
                     "n_warmup_steps": 500},
        "finetune": {"number_of_epochs": "6                      # dev accuracy peaks "
                                         "at epoch 5-6 (calibration run)",
                     "lr": 0.0005, "batch_size": 16},
        "prune_epochs": "4                      # per pruning round; 0: one-shot only",
        "max_batch_duration": 48.0, "adapter_projection_size": 32,
    },
    "small": {
        "describe": "small (the paper's Transformer-small: 12 enc / 6 dec, width 256)",
        "corpus_preset": "small",
        "d_model": 256, "nhead": 4, "num_encoder_layers": 12, "num_decoder_layers": 6,
        "d_ffn": 2048, "dropout": "0.1", "test_beam_size": 10,
        "pretrain": {"number_of_epochs": "60", "batch_size": 32, "lr_initial": 0.001,
                     "n_warmup_steps": 10000},
        "finetune": {"number_of_epochs": "30", "lr": 0.0002, "batch_size": 32},
        "prune_epochs": "10                     # per pruning round; 0: one-shot only",
        "max_batch_duration": 96.0, "adapter_projection_size": 64,
    },
    "large": {
        "describe": "large (the paper's Transformer-large: 16 enc / 8 dec, width 512)",
        "corpus_preset": "small",
        "d_model": 512, "nhead": 4, "num_encoder_layers": 16, "num_decoder_layers": 8,
        "d_ffn": 2048, "dropout": "0.1", "test_beam_size": 10,
        "pretrain": {"number_of_epochs": "60", "batch_size": 32, "lr_initial": 0.0008,
                     "n_warmup_steps": 15000},
        "finetune": {"number_of_epochs": "30", "lr": 0.0001, "batch_size": 32},
        "prune_epochs": "10                     # per pruning round; 0: one-shot only",
        "max_batch_duration": 96.0, "adapter_projection_size": 128,
    },
}

# ---- datasets: where the data come from, and how manifests are laid out ----
SYNTHETIC_DATA = """\
# ---- data: the synthetic corpus is built on first use (sb-sparse synth) ----
corpus_preset: {corpus_preset}
corpus_seed: 0
source_dialect: en-us
target_dialects: [en-gb-scotland, en-029]
data_folder: !ref corpora/synthetic_<corpus_preset>_<corpus_seed>
dialect: {dialect}
eval_dialects: {eval_dialects}
eval_splits: {eval_splits}
max_duration: 20.0

# ---- manifests (written by the corpus build: <data_folder>/<dialect>/<split>.csv) ----
train_csv: !ref <data_folder>/<dialect>/train.csv
valid_csv: !ref <data_folder>/<dialect>/dev.csv
test_csvs: !apply:speechbrain_sparse.data.manifests.split_manifests
    folders: !ref <data_folder>
    dialects: !ref <eval_dialects>
    splits: !ref <eval_splits>
    pattern: "{{dialect}}/{{split}}.csv"
feature_cache_folder: !ref <data_folder>/features  # Fbank once per manifest; null: per batch
"""

TIBETAN_DATA = """\
# ---- data (README.md): Amdo from XBMU-AMDO31 (or the generic layout), ----
# ---- U-Tsang and Khampa from the generic per-dialect layout            ----
source_dialect: amdo
target_dialects: [utsang, khampa]
source_format: xbmu_amdo31               # xbmu_amdo31 | generic (in dialects_folder)
xbmu_folder: corpora/xbmu_amdo31         # holds data/wav/ and data/transcript/
dialects_folder: corpora/tibetan_dialects  # <dialect>/<split>/<spk>/<utt>.wav + text
manifest_folder: results/tibetan/manifests
dialect: {dialect}
eval_dialects: {eval_dialects}
eval_splits: {eval_splits}
max_duration: 20.0
syllable_error_rate: True                # SER next to WER and CER
# references and hypotheses alike, before WER / CER (NFKC folds, NFC, spaces)
normalize_text: !name:speechbrain_sparse.metrics.normalize_tibetan

# ---- manifests (written by train.py: the source's and the targets' apart) ----
source_manifests: !ref <manifest_folder>/source_<source_format>
target_manifests: !ref <manifest_folder>/targets
manifest_folders:                        # dialect -> the folder of its manifests
    amdo: !ref <source_manifests>
    utsang: !ref <target_manifests>
    khampa: !ref <target_manifests>
train_csv: !ref <{role}_manifests>/<dialect>_train.csv
valid_csv: !ref <{role}_manifests>/<dialect>_dev.csv
test_csvs: !apply:speechbrain_sparse.data.manifests.split_manifests
    folders: !ref <manifest_folders>
    dialects: !ref <eval_dialects>
    splits: !ref <eval_splits>
feature_cache_folder: !ref <manifest_folder>/features  # Fbank once per manifest; null: per batch
"""

# LibriSpeech (README.md of its recipe): "clean" -> "other" as source -> target
LIBRISPEECH_DATA = """\
# ---- data (README.md): LibriSpeech (OpenSLR 12); the source domain is its ----
# ---- "clean" speakers, the target a few hours of its "other" speakers    ----
data_folder: corpora/LibriSpeech         # holds train-clean-100/, dev-clean/, ...
manifest_folder: results/librispeech/manifests
source_dialect: clean                    # pretrained on pretrain_splits
target_dialects: [other]                 # fine-tuned on a subset of finetune_split
dialect: {dialect}
pretrain_splits: [train-clean-100]       # [train-clean-100, train-clean-360]: 460 h
finetune_split: train-other-500
finetune_hours: 10.0                     # at most this much of finetune_split
subset_seed: 0                           # which utterances make up those hours
valid_split: !ref dev-<dialect>          # dev-clean (pretraining), dev-other (fine-tuning)
max_duration: null                       # none left out: the dev and test sets whole

# ---- manifests (written by train.py with librispeech_prepare.py) ----
source_manifests: !ref <manifest_folder>/source  # pretrain_splits, merged into train.csv
target_manifests: !ref <manifest_folder>/<finetune_split>_<finetune_hours>h_seed<subset_seed>
eval_manifests: !ref <manifest_folder>/eval  # the dev and test sets
train_csv: !ref <{role}_manifests>/train.csv
valid_csv: !ref <eval_manifests>/<valid_split>.csv
test_csvs:                               # every stage is tested on the four sets
    dev-clean: !ref <eval_manifests>/dev-clean.csv
    test-clean: !ref <eval_manifests>/test-clean.csv
    dev-other: !ref <eval_manifests>/dev-other.csv
    test-other: !ref <eval_manifests>/test-other.csv
feature_cache_folder: !ref <manifest_folder>/features  # Fbank once per manifest; null: per batch
"""

LIBRISPEECH = {
    "folder": ROOT / "recipes" / "LibriSpeech" / "ASR" / "transformer" / "hparams",
    "sizes": ("small", "large"),
    "data": LIBRISPEECH_DATA,
    "results": "results/librispeech",
    "source": "clean",
    "pretrain_eval": "",  # the data block names its test sets
    "target": "other                           # the target domain fine-tuned on",
    "example_target": "other",
    "finetune_example": " --data_folder /data/LibriSpeech",
    # SpeechBrain's LibriSpeech Transformer recipes use 5000 unigram units
    "vocab_size": {size: "5000                         # as SpeechBrain's LibriSpeech "
                         "Transformer (README.md)" for size in ("small", "large")},
    "about": "# LibriSpeech: pretrained on train-clean-100 (clean), fine-tuned on a\n"
             "# 10 h subset of train-other-500 (other); tested on dev/test-clean/other.\n",
    "prune_obs": False,
}

# MLS: a "dialect" of the pipeline is a language; one tokenizer for all of
# them, trained with the source (see recipes/MLS/ASR/transformer/README.md)
MLS_DATA = """\
# ---- data (README.md): Multilingual LibriSpeech (OpenSLR 94), one folder ----
# ---- mls_<language>[_opus]/ per language; each "dialect" is a language  ----
source_dialect: french                   # high-resource: 1077 h of train
target_dialects: [polish, portuguese]    # the two smallest MLS languages (104 h, 161 h)
data_folder: corpora/mls                 # holds mls_<language>[_opus]/
audio_format: null                       # flac | opus: needed only when both are there
manifest_folder: results/mls/manifests
dialect: {dialect}
eval_dialects: {eval_dialects}
eval_splits: {eval_splits}
max_duration: 25.0                       # MLS segments are 10-20 s

# ---- manifests (written by train.py: <manifest_folder>/<language>/<name>.csv) ----
{mls_train}valid_csv: !ref <manifest_folder>/<dialect>/dev.csv
test_csvs: !apply:speechbrain_sparse.data.manifests.split_manifests
    folders: !ref <manifest_folder>
    dialects: !ref <eval_dialects>
    splits: !ref <eval_splits>
    pattern: "{{dialect}}/{{split}}.csv"
feature_cache_folder: !ref <manifest_folder>/features  # Fbank once per manifest; null: per batch
"""

MLS_ROLE_FIELDS = {
    "source": {"mls_train": """\
train_csv: !ref <manifest_folder>/<dialect>/train.csv
# The tokenizer also learns the targets' training text (text only, no audio),
# so that every method fine-tunes the same output layer (README.md).
tokenizer_subset: 10hr                   # of each target: 9hr and 1hr, what any fine-tuning sees
tokenizer_extra_csvs: !apply:speechbrain_sparse.data.manifests.split_manifests
    folders: !ref <manifest_folder>
    dialects: !ref <target_dialects>
    splits: [!ref <tokenizer_subset>]
    pattern: "{dialect}/{split}.csv"
"""},
    "target": {"mls_train": """\
finetune_subset: 9hr                     # of the target's train: 9hr | 1hr | 10hr | 10min | train
train_csv: !ref <manifest_folder>/<dialect>/<finetune_subset>.csv
"""},
}

MLS = {
    "folder": ROOT / "recipes" / "MLS" / "ASR" / "transformer" / "hparams",
    "sizes": ("small", "large"),
    "data": MLS_DATA,
    "role_fields": MLS_ROLE_FIELDS,
    "results": "results/mls",
    # a 1hr run must neither resume nor diff against a 9hr one
    "finetune_results": "results/mls/<finetune_subset>",
    "source": "french",
    "pretrain_eval": "[!ref <source_dialect>, polish, portuguese]",
    "target": "polish                          # the language fine-tuned on",
    "example_target": "portuguese",
    "vocab_size": {size: "5000                         # French and the targets' "
                         "10hr text (README.md)" for size in ("small", "large")},
    "about": "# MLS: trained on French, fine-tuned on Polish or Portuguese (9hr).\n",
    "prune_obs": False,
}

# The multilingual synthetic corpus: a "dialect" of the pipeline is a language
# (sb-sparse synth --preset ml_tiny); one tokenizer for all of them, trained
# with the source, as MLS's (recipes/SyntheticMultilingual/ASR/transformer/README.md)
MULTILINGUAL_DATA = """\
# ---- data: the multilingual synthetic corpus is built on first use  ----
# ---- (sb-sparse synth --preset ml_tiny); each "dialect" is a language ----
corpus_preset: ml_tiny                   # ml_micro (CI: French and Dutch only) | ml_tiny
corpus_seed: 0
source_dialect: en                       # the corpus holds the source and the targets
target_dialects: [fr, nl]
data_folder: !ref corpora/synthetic_<corpus_preset>_<corpus_seed>
dialect: {dialect}
eval_dialects: {eval_dialects}
eval_splits: {eval_splits}
max_duration: 20.0

# ---- manifests (written by the corpus build: <data_folder>/<language>/<split>.csv) ----
train_csv: !ref <data_folder>/<dialect>/train.csv
{tokenizer}valid_csv: !ref <data_folder>/<dialect>/dev.csv
test_csvs: !apply:speechbrain_sparse.data.manifests.split_manifests
    folders: !ref <data_folder>
    dialects: !ref <eval_dialects>
    splits: !ref <eval_splits>
    pattern: "{{dialect}}/{{split}}.csv"
feature_cache_folder: !ref <data_folder>/features  # Fbank once per manifest; null: per batch
"""

MULTILINGUAL = {
    "folder": ROOT / "recipes" / "SyntheticMultilingual" / "ASR" / "transformer"
    / "hparams",
    "sizes": ("tiny",),
    "data": MULTILINGUAL_DATA,
    "role_fields": {
        "source": {"tokenizer": """\
# The tokenizer also learns the targets' training text (text only, no audio),
# so that it has their letters and every method fine-tunes the same output layer.
tokenizer_extra_csvs: !apply:speechbrain_sparse.data.manifests.split_manifests
    folders: !ref <data_folder>
    dialects: !ref <target_dialects>
    splits: [train]
    pattern: "{dialect}/{split}.csv"
"""},
        "target": {"tokenizer": ""},
    },
    "results": "results/synthetic_multilingual",
    "source": "en",
    "pretrain_eval": "[!ref <source_dialect>, fr, nl]",
    "target": "fr                              # the target language fine-tuned on",
    "example_target": "nl",
    "vocab_size": {"tiny": "100"},
    "about": "# Multilingual synthetic corpus: trained on English, fine-tuned on French\n"
             "# or Dutch.\n",
    "prune_obs": False,
}

DATASETS = {
    "Synthetic": {
        "folder": ROOT / "recipes" / "Synthetic" / "ASR" / "transformer" / "hparams",
        "sizes": ("tiny", "small", "large"),
        "data": SYNTHETIC_DATA,
        "results": "results/synthetic",
        "source": "en-us",
        "pretrain_eval": "[!ref <source_dialect>, en-gb-scotland, en-029]",
        "target": "en-gb-scotland                  # the target dialect fine-tuned on",
        "example_target": "en-029",
        "vocab_size": {"tiny": "100", "small": "500", "large": "500"},
        "about": "",
        "prune_obs": True,
    },
    "Tibetan": {
        "folder": ROOT / "recipes" / "Tibetan" / "ASR" / "transformer" / "hparams",
        "sizes": ("small", "large"),
        "data": TIBETAN_DATA,
        "results": "results/tibetan",
        "source": "amdo",
        "pretrain_eval": "[!ref <source_dialect>, utsang, khampa]",
        "target": "utsang                          # the target dialect fine-tuned on",
        "example_target": "khampa",
        "vocab_size": {size: "2000                         # see README.md (the "
                             "paper's parameter counts)" for size in ("small", "large")},
        "about": "# Tibetan: trained on Amdo, fine-tuned on U-Tsang or Khampa.\n",
        "prune_obs": False,
    },
    "LibriSpeech": LIBRISPEECH,
    "MLS": MLS,
    "SyntheticMultilingual": MULTILINGUAL,
}

MODEL = """\
# ---- model (a fine-tuning stage must match the pretrained model) ----
vocab_size: {vocab_size}
token_type: unigram
n_mels: 80
d_model: {d_model}
nhead: {nhead}
num_encoder_layers: {num_encoder_layers}
num_decoder_layers: {num_decoder_layers}
d_ffn: {d_ffn}
transformer_dropout: {dropout}{dropout_note}
cnn_dropout: {dropout}{cnn_dropout_note}
causal: False                            # full-context encoder: offline ASR
normalize_update_until_epoch: {normalize_until}{normalize_note}
label_smoothing: 0.1
ctc_decode_weight: 0.4
max_decode_ratio: 0.5                    # decoder steps per encoder frame (25 frames/s)
valid_beam_size: 4
test_beam_size: {test_beam_size}
decoding: beam                           # or ctc_greedy: CTC best path, much faster
blank_index: 0
pad_index: 0
bos_index: 1
eos_index: 2

arch: !include:arch/transformer_asr.yaml
    vocab_size: !ref <vocab_size>
    n_mels: !ref <n_mels>
    d_model: !ref <d_model>
    nhead: !ref <nhead>
    num_encoder_layers: !ref <num_encoder_layers>
    num_decoder_layers: !ref <num_decoder_layers>
    d_ffn: !ref <d_ffn>
    transformer_dropout: !ref <transformer_dropout>
    cnn_dropout: !ref <cnn_dropout>
    causal: !ref <causal>
    normalize_update_until_epoch: !ref <normalize_update_until_epoch>
    label_smoothing: !ref <label_smoothing>
    ctc_decode_weight: !ref <ctc_decode_weight>
    max_decode_ratio: !ref <max_decode_ratio>
    valid_beam_size: !ref <valid_beam_size>
    test_beam_size: !ref <test_beam_size>
    blank_index: !ref <blank_index>
    pad_index: !ref <pad_index>
    bos_index: !ref <bos_index>
    eos_index: !ref <eos_index>

# the architecture's objects the Brain uses
compute_features: !ref <arch[compute_features]>
normalize: !ref <arch[normalize]>
modules: !ref <arch[modules]>
model: !ref <arch[model]>
log_softmax: !ref <arch[log_softmax]>
ctc_cost: !ref <arch[ctc_cost]>
seq_cost: !ref <arch[seq_cost]>
valid_search: !ref <arch[valid_search]>
test_search: !ref <arch[test_search]>
"""

OUTPUT = """\
output_folder: !ref {results}/<{name_key}>_<size>_<dialect>/<seed>
{pretrained_line}save_folder: !ref <output_folder>/save
train_log: !ref <output_folder>/train_log.txt
model_export_dir: !ref <output_folder>/model
ckpt_interval_minutes: 5
keep_checkpoints: 2                      # the best and the last
"""

LOADERS = """\
sorting: bucketed                        # ascending | descending | random | bucketed
max_batch_duration: {max_batch_duration}                 # bucketed: seconds of audio per batch
num_buckets: 10                          # bucketed: duration buckets
num_workers: 0                           # features are cached: no loader processes
valid_search_every: 1000                 # beam search on valid in the last epoch only
eval_batch_size: 16
train_dataloader_opts:
    batch_size: !ref <batch_size>
    num_workers: !ref <num_workers>
valid_dataloader_opts:
    batch_size: !ref <eval_batch_size>
    num_workers: !ref <num_workers>
test_dataloader_opts:
    batch_size: !ref <eval_batch_size>
    num_workers: !ref <num_workers>
"""

PRETRAIN_TRAINING = """\
# ---- training ----
number_of_epochs: {number_of_epochs}
batch_size: {batch_size}
grad_accumulation_factor: 1
max_grad_norm: 5.0
ctc_weight: 0.3
lr_initial: {lr_initial}                        # peak learning rate, after warm-up
n_warmup_steps: {n_warmup_steps}
weight_decay: 0.01
{loaders}
opt_class: !name:torch.optim.AdamW
    lr: !ref <lr_initial>
    betas: (0.9, 0.98)
    eps: 0.000000001
    weight_decay: !ref <weight_decay>

lr_annealing: !new:speechbrain.nnet.schedulers.NoamScheduler
    lr_initial: !ref <lr_initial>
    n_warmup_steps: !ref <n_warmup_steps>

epoch_counter: !new:speechbrain.utils.epoch_loop.EpochCounter
    limit: !ref <number_of_epochs>

checkpointer: !new:speechbrain_sparse.checkpoints.ResumableCheckpointer
    checkpoints_dir: !ref <save_folder>
    recoverables:
        model: !ref <model>
        normalizer: !ref <normalize>
        lr_annealing: !ref <lr_annealing>
        counter: !ref <epoch_counter>

train_logger: !new:speechbrain.utils.train_logger.FileTrainLogger
    save_file: !ref <train_log>
"""

FINETUNE_TRAINING = """\
# ---- fine-tuning ----
number_of_epochs: {number_of_epochs}
lr: {lr}
weight_decay: 0.01
batch_size: {batch_size}
max_grad_norm: 5.0
ctc_weight: 0.3
{loaders}
# ---- the method ----
{method_block}
# ---- the pretrained model folder (model, normaliser, tokenizer) ----
tokenizer: !new:sentencepiece.SentencePieceProcessor

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    collect_in: !ref <save_folder>/pretrained
    loadables:
        model: !ref <model>
        normalizer: !ref <normalize>
        tokenizer: !ref <tokenizer>
    paths:
        model: !ref <pretrained_dir>/model.ckpt
        normalizer: !ref <pretrained_dir>/normalizer.ckpt
        tokenizer: !ref <pretrained_dir>/tokenizer.model

# One optimiser for every method, so they differ only in what they train:
# MaskedAdamW is AdamW (same update) that keeps its moments only for the
# trainable entries of masked tensors.
opt_class: !name:speechbrain_sparse.masked_adamw.MaskedAdamW
    lr: !ref <lr>
    betas: (0.9, 0.98)
    eps: 0.000000001
    weight_decay: !ref <weight_decay>

epoch_counter: !new:speechbrain.utils.epoch_loop.EpochCounter
    limit: !ref <number_of_epochs>

checkpointer: !new:speechbrain_sparse.checkpoints.ResumableCheckpointer
    checkpoints_dir: !ref <save_folder>
    recoverables:
        model: !ref <model>
        normalizer: !ref <normalize>
        counter: !ref <epoch_counter>

train_logger: !new:speechbrain.utils.train_logger.FileTrainLogger
    save_file: !ref <train_log>
"""

FINETUNED_DIR = ("finetuned_dir: !ref {results}/vanilla_<size>_<dialect>/<seed>/model"
                 "  # the vanilla run's model\n")
SECOND_STRATEGY = """\
diff_density: 0.3
second_method: topk                      # topk | fisher | random | diff
second_density: 0.1
fisher_batches: 30                       # used when second_method is fisher
l1_weight: 0.0
{finetuned_dir}mask_strategy: !new:speechbrain_sparse.selection.{combination}Selection
    first: !new:speechbrain_sparse.selection.DiffSelection
        density: !ref <diff_density>
        finetuned_checkpoint: !ref <finetuned_dir>/model.ckpt
    second: !apply:speechbrain_sparse.selection.strategy_by_name
        method: !ref <second_method>
        density: !ref <second_density>
        finetuned_checkpoint: !ref <finetuned_dir>/model.ckpt
        num_batches: !ref <fisher_batches>
"""

# method -> (header lines, method block, needs the vanilla run)
METHODS = {
    "vanilla": (
        "Fine-tuning baseline \"vanilla\": update ALL parameters on one low-resource\n"
        "target dialect, starting from the pretrained model; test on its dev and test.",
        "# none: every parameter is trained\n", False),
    "diff": (
        "Sparse fine-tuning \"diff\" (the paper's best): train only the entries that\n"
        "moved most in full fine-tuning, |theta_vanilla - theta_pretrained|; the rest stay\n"
        "bit-identical to the pretrained weights.",
        "density: 0.2                             # trainable fraction (the paper's "
        "\"sparsity\")\n"
        "l1_weight: 0.0                           # L1 pull toward the pretrained weights\n"
        "{finetuned_dir}"
        "mask_strategy: !new:speechbrain_sparse.selection.DiffSelection\n"
        "    density: !ref <density>\n"
        "    finetuned_checkpoint: !ref <finetuned_dir>/model.ckpt\n", True),
    "fisher": (
        "Sparse fine-tuning \"fisher\": train only the entries with the largest\n"
        "diagonal empirical Fisher information on target batches; the rest stay\n"
        "bit-identical to the pretrained weights.",
        "density: 0.2                             # trainable fraction\n"
        "l1_weight: 0.0\n"
        "fisher_batches: 30                       # target batches the Fisher is summed "
        "over\n"
        "mask_strategy: !new:speechbrain_sparse.selection.FisherSelection\n"
        "    density: !ref <density>\n"
        "    num_batches: !ref <fisher_batches>\n", False),
    "topk": (
        "Sparse fine-tuning baseline \"topk\": train only the pretrained weights of\n"
        "largest magnitude; the rest stay bit-identical to the pretrained weights.",
        "density: 0.2                             # trainable fraction\n"
        "l1_weight: 0.0\n"
        "mask_strategy: !new:speechbrain_sparse.selection.MagnitudeSelection\n"
        "    density: !ref <density>\n", False),
    "random": (
        "Sparse fine-tuning baseline \"random\": train a random subset of entries\n"
        "(seeded, identical on every rank); the rest stay bit-identical.",
        "density: 0.2                             # trainable fraction\n"
        "l1_weight: 0.0\n"
        "mask_seed: 0\n"
        "mask_strategy: !new:speechbrain_sparse.selection.RandomSelection\n"
        "    density: !ref <density>\n"
        "    seed: !ref <mask_seed>\n", False),
    "adapter": (
        "Fine-tuning baseline \"adapter\": Houlsby bottleneck adapters after every\n"
        "attention and feed-forward block; the whole pretrained model stays frozen.",
        "adapter_projection_size: {adapter_projection_size}            # bottleneck width\n",
        False),
    "union": (
        "Combined masks (the paper's Table IV): diff 30% UNION topk 10%.\n"
        "diff + fisher: --second_method fisher --diff_density 0.2 --second_density 0.2",
        SECOND_STRATEGY.replace("{combination}", "Union"), True),
    "intersection": (
        "Combined masks (the paper's Table IV): diff 30% INTERSECTION topk 10%.\n"
        "diff + fisher: --second_method fisher --diff_density 0.2 --second_density 0.2",
        SECOND_STRATEGY.replace("{combination}", "Intersection"), True),
}

# SparseWAV on the Transformer: the pretrained model pruned, then fine-tuned
PRUNE_OBS = (
    "SparseWAV on our Transformer ASR: prune the pretrained model one-shot with\n"
    "layer-wise OBS (calibration batches from the training manifest), then\n"
    "fine-tune it with the mask in prune mode (pruned entries stay exactly zero);\n"
    "evaluate on dev and test. number_of_epochs: 0 = one-shot only.\n"
    "  python train.py hparams/prune_obs_{size}.yaml --prune_sparsities=[0.7,0.8,0.9]\n"
    "  python train.py hparams/prune_obs_{size}.yaml --mixed_sparsity=True \\\n"
    "      --saliency=obs --number_of_epochs=0\n"
    "The stage: speechbrain_sparse/asr/pruning_stage.py.",
    """\
# pruning (SparseWAV): one sparsity = one-pass, several = progressive
sparsity: 0.75
prune_sparsities: [!ref <sparsity>]      # e.g. [0.7, 0.8, 0.9]: re-prune, zeros kept
prune_method: obs                        # or magnitude (baseline, no weight update)
saliency: improved                       # or obs (eq. 1 without the first-order term)
mixed_sparsity: False                    # Hutchinson sensitivities (decoder NLL)
mixed_alpha: 0.1
mixed_num_probes: 8
mixed_num_batches: 2
block_size: 128
damp: 0.01
num_calibration: 128                     # utterances of the training manifest
calibration_batch_size: 8
calibration_seed: 0
finetune_max_utterances: null            # fine-tune on a random subset (null: all)

# The objects the stage uses; they read the keys above, so every setting
# stays a plain command-line override.
mixed_allocator: !new:speechbrain_sparse.pruning.mixed_sparsity.MixedSparsity
    alpha: !ref <mixed_alpha>
    num_probes: !ref <mixed_num_probes>
    num_batches: !ref <mixed_num_batches>
pruner: !apply:speechbrain_sparse.pruning.choice.choose
    key: prune_method
    value: !ref <prune_method>
    choices:
        obs: !new:speechbrain_sparse.pruning.oneshot.OneShotPruner
            saliency: !ref <saliency>
            block_size: !ref <block_size>
            damp: !ref <damp>
            mixed_sparsity: !apply:speechbrain_sparse.pruning.choice.choose
                key: mixed_sparsity
                value: !ref <mixed_sparsity>
                choices: {{True: !ref <mixed_allocator>, False: null}}
        magnitude: !new:speechbrain_sparse.pruning.magnitude.MagnitudePruner
calibration: !new:speechbrain_sparse.asr.pruning_stage.CalibrationData
    num_utterances: !ref <num_calibration>
    batch_size: !ref <calibration_batch_size>
    seed: !ref <calibration_seed>
""", False)

RULE = "# " + "#" * 76 + "\n"


def _header(lines):
    return RULE + "".join(f"# {line}".rstrip() + "\n" for line in lines) + RULE + "\n"


def _model(dataset, size, pretrain):
    spec = SIZES[size]
    tiny = size == "tiny"
    return MODEL.format(
        vocab_size=dataset["vocab_size"][size],
        dropout_note="                 # tiny: dropout is a third of a CPU step," if tiny
        else "",
        cnn_dropout_note="                         # and the tiny model underfits (README)"
        if tiny else "",
        normalize_until=3 if pretrain else -1,
        normalize_note="           # then frozen" if pretrain
        else "          # never: keep the pretrained statistics (0 would mean always)",
        **{key: spec[key] for key in ("d_model", "nhead", "num_encoder_layers",
                                      "num_decoder_layers", "d_ffn", "dropout",
                                      "test_beam_size")},
    )


def pretrain_yaml(dataset, size):
    """The text of ``pretrain_<size>.yaml``."""
    spec = SIZES[size]
    header = _header([
        "Stage 1: pretrain the Transformer ASR on the high-resource source dialect,",
        "then test on it and zero-shot on every target dialect.",
        f"  python train.py hparams/pretrain_{size}.yaml [--device cuda:0]",
        "The best checkpoint is exported to <output_folder>/model for fine-tuning.",
        f"Size: {spec['describe']}.",
        *dataset["about"].replace("# ", "").splitlines(),
        "Written by tools/write_hparams.py: change the template there.",
    ])
    data = dataset["data"].format(
        corpus_preset=spec["corpus_preset"],
        dialect="!ref <source_dialect>           # the dialect trained on",
        eval_dialects=dataset["pretrain_eval"], eval_splits="[test]", role="source",
        **dataset.get("role_fields", {}).get("source", {}))
    return (header
            + "seed: 1234\n__set_seed: !apply:torch.manual_seed [!ref <seed>]\n"
            + f"stage: pretrain\nsize: {size}\n\n" + data + "\n"
            + OUTPUT.format(results=dataset["results"], name_key="stage",
                            pretrained_line="")
            + "\n" + _model(dataset, size, pretrain=True) + "\n"
            + PRETRAIN_TRAINING.format(
                loaders=LOADERS.format(max_batch_duration=spec["max_batch_duration"]),
                **spec["pretrain"]))


def finetune_yaml(dataset, size, method):
    """The text of ``<method>_<size>.yaml``."""
    spec = SIZES[size]
    pruning = method == "prune_obs"
    about, block, needs_vanilla = PRUNE_OBS if pruning else METHODS[method]
    about = about.replace("{size}", size)
    needs = (f"pretrain_{size}.yaml, then vanilla_{size}.yaml on the same dialect"
             if needs_vanilla else f"pretrain_{size}.yaml")
    if pruning:
        needs += " (the model pruned)"
    finetune = dict(spec["finetune"])
    if pruning:
        finetune["number_of_epochs"] = spec["prune_epochs"]
    header = _header([
        *about.splitlines(),
        f"  python train.py hparams/{method}_{size}.yaml"
        + ("" if pruning else dataset.get(
            "finetune_example", f" --dialect {dataset['example_target']}")),
        f"Size: {spec['describe']}. Needs: {needs}.",
        *dataset["about"].replace("# ", "").splitlines(),
        "Written by tools/write_hparams.py: change the template there.",
    ])
    dialect = ("!ref <source_dialect>           # pruned and fine-tuned on its "
               "training set" if pruning else dataset["target"])
    role = "source" if pruning else "target"
    data = dataset["data"].format(
        corpus_preset=spec["corpus_preset"], dialect=dialect,
        eval_dialects="[!ref <dialect>]", eval_splits="[dev, test]", role=role,
        **dataset.get("role_fields", {}).get(role, {}))
    # where the fine-tuning runs go (MLS: apart per training subset)
    finetune_results = dataset.get("finetune_results", dataset["results"])
    pretrained = (f"pretrained_dir: !ref {dataset['results']}/pretrain_<size>_"
                  "<source_dialect>/<seed>/model\n")
    method_block = block.format(
        finetuned_dir=FINETUNED_DIR.format(results=finetune_results),
        adapter_projection_size=spec["adapter_projection_size"])
    return (header
            + "seed: 1234\n__set_seed: !apply:torch.manual_seed [!ref <seed>]\n"
            + f"method: {method}\nsize: {size}\n\n" + data + "\n"
            + OUTPUT.format(results=finetune_results, name_key="method",
                            pretrained_line=pretrained)
            + "\n" + _model(dataset, size, pretrain=False) + "\n"
            + FINETUNE_TRAINING.format(
                loaders=LOADERS.format(max_batch_duration=spec["max_batch_duration"]),
                method_block=method_block, **finetune))


def expected_files():
    """Path -> text of every file this tool writes."""
    files = {}
    arch = ARCH_SOURCE.read_text(encoding="utf-8")
    for dataset in DATASETS.values():
        folder = dataset["folder"]
        files[folder / "arch" / "transformer_asr.yaml"] = arch
        for size in dataset["sizes"]:
            files[folder / f"pretrain_{size}.yaml"] = pretrain_yaml(dataset, size)
            methods = [*METHODS, "prune_obs"] if dataset["prune_obs"] else METHODS
            for method in methods:
                files[folder / f"{method}_{size}.yaml"] = finetune_yaml(
                    dataset, size, method)
    from pathways_hparams import expected_files as pathways_files  # its templates

    files.update(pathways_files())
    return files


def main(argv=None):
    """Writes the files, or with ``--check`` lists those that differ."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a file is not up to date")
    args = parser.parse_args(argv)
    stale = []
    for path, text in expected_files().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"{'stale' if args.check else 'wrote'}: {path.relative_to(ROOT)}")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
