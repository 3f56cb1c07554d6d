# ruff: noqa: E501
# (the templates below are YAML lines, kept as they will read)
"""The stage YAMLs of the Dynamic ASR Pathways recipes, for ``write_hparams.py``.

One template per stage (``dense_multi``, ``dense_mono``, ``lap``, ``imp``,
``lth``, ``adaptive``, ``pathways``, ``dynamic_pathways``) and one data block
per dataset: the multilingual synthetic corpus
(``recipes/SyntheticMultilingual/ASR/pathways/hparams/<stage>_tiny.yaml``) and
MLS (``recipes/MLS/ASR/transformer/hparams/<stage>_{small,large}.yaml``). The
model block is the Transformer recipes' own (``write_hparams.MODEL``), so a
pathways stage loads the model folder of any of them. The stages run in
:mod:`speechbrain_sparse.asr.pathways_experiment`.
"""

from pathlib import Path

import write_hparams as base

ROOT = base.ROOT
STAGES = ("dense_multi", "dense_mono", "lap", "imp", "lth", "adaptive", "pathways",
          "dynamic_pathways")
MONOLINGUAL = ("dense_mono", "imp", "lth", "adaptive")

# ---- sizes: the multilingual model (the paper's 187M) and the monolingual ----
# ---- references at ~0.3 of its parameters (the paper's 56M)              ----
SIZES = {
    "tiny": {**base.SIZES["tiny"], "mono_d_model": 76, "mono_d_ffn": 304,
             "dense_epochs": "8", "n_warmup_steps": 300, "interval": 200,
             "rerank": 50, "lr": 0.0005},
    "small": {**base.SIZES["small"], "mono_d_model": 136, "mono_d_ffn": 1088,
              "dense_epochs": "60", "n_warmup_steps": 10000, "interval": 2000,
              "rerank": 500, "lr": 0.0002},
    "large": {**base.SIZES["large"], "mono_d_model": 272, "mono_d_ffn": 1088,
              "dense_epochs": "60", "n_warmup_steps": 15000, "interval": 2000,
              "rerank": 500, "lr": 0.0001},
}

SYNTHETIC_DATA = """\
# ---- data: the multilingual synthetic corpus, built on first use    ----
# ---- (sb-sparse synth --preset ml_tiny); one folder per language     ----
corpus_preset: ml_tiny                   # ml_tiny (en, fr, it, nl) | ml_micro (CI: fr, nl)
corpus_seed: 0
corpus_languages: [en, fr, it, nl]       # what the corpus holds (ml_micro: [fr, nl])
data_folder: !ref corpora/pathways_<corpus_preset>_<corpus_seed>
{languages}eval_splits: [dev, test]
max_duration: 20.0

# ---- manifests: each language's, from the corpus build (<data_folder>/<language>/) ----
train_csvs: !apply:speechbrain_sparse.data.manifests.split_manifests
    folders: !ref <data_folder>
    dialects: !ref <languages>
    splits: [train]
    pattern: "{{dialect}}/{{split}}.csv"
valid_csvs: !apply:speechbrain_sparse.data.manifests.split_manifests
    folders: !ref <data_folder>
    dialects: !ref <languages>
    splits: [dev]
    pattern: "{{dialect}}/{{split}}.csv"
test_csvs: !apply:speechbrain_sparse.data.manifests.split_manifests
    folders: !ref <data_folder>
    dialects: !ref <languages>
    splits: !ref <eval_splits>
    pattern: "{{dialect}}/{{split}}.csv"
feature_cache_folder: !ref <data_folder>/features  # Fbank once per manifest; null: per batch
"""

MLS_DATA = """\
# ---- data (README.md): Multilingual LibriSpeech (OpenSLR 94), one folder ----
# ---- mls_<language>[_opus]/ per language                                 ----
data_folder: corpora/mls                 # holds mls_<language>[_opus]/
audio_format: null                       # flac | opus: needed only when both are there
manifest_folder: results/mls/manifests
corpus_languages: [english, french, italian, dutch]  # the paper's four
{languages}train_subset: train                      # of each language: train | 9hr | 1hr | 10hr | 10min
eval_splits: [dev, test]
max_duration: 25.0                       # MLS segments are 10-20 s

# ---- manifests (written by train.py: <manifest_folder>/<language>/<name>.csv) ----
train_csvs: !apply:speechbrain_sparse.data.manifests.split_manifests
    folders: !ref <manifest_folder>
    dialects: !ref <languages>
    splits: [!ref <train_subset>]
    pattern: "{{dialect}}/{{split}}.csv"
valid_csvs: !apply:speechbrain_sparse.data.manifests.split_manifests
    folders: !ref <manifest_folder>
    dialects: !ref <languages>
    splits: [dev]
    pattern: "{{dialect}}/{{split}}.csv"
test_csvs: !apply:speechbrain_sparse.data.manifests.split_manifests
    folders: !ref <manifest_folder>
    dialects: !ref <languages>
    splits: !ref <eval_splits>
    pattern: "{{dialect}}/{{split}}.csv"
feature_cache_folder: !ref <manifest_folder>/features  # Fbank once per manifest; null: per batch
"""

DATASETS = {
    "SyntheticMultilingual": {
        "folder": ROOT / "recipes" / "SyntheticMultilingual" / "ASR" / "pathways"
        / "hparams",
        "sizes": ("tiny",),
        "data": SYNTHETIC_DATA,
        "results": "results/pathways",
        "mono": "fr",
        "vocab_size": {"tiny": "100"},
        "about": "Multilingual synthetic corpus (ml_tiny: en, fr, it, nl).",
    },
    "MLS": {
        "folder": ROOT / "recipes" / "MLS" / "ASR" / "transformer" / "hparams",
        "sizes": ("small", "large"),
        "data": MLS_DATA,
        "results": "results/mls/pathways",
        "mono": "french",
        "vocab_size": {size: "5000                         # the four languages' "
                             "text" for size in ("small", "large")},
        "about": "MLS: English, French, Italian, Dutch (the paper's four).",
    },
}

ABOUT = {
    "dense_multi": (
        "Stage (1): the dense multilingual model, trained on every language at once",
        "(batches mix languages), with one tokenizer learnt from all their text;",
        "tested on each language (oracle language ID). Every other stage starts",
        "from its model folder (<output_folder>/model)."),
    "dense_mono": (
        "Reference: a dense monolingual model of ~0.3 of the multilingual model's",
        "parameters (smaller d_model and d_ffn), trained on one language with its",
        "own tokenizer."),
    "lap": (
        "LAP: language-agnostic pruning. IMP of the dense multilingual model on",
        "multilingual data; its masks (one for all languages) at every level are",
        "<output_folder>/masks/s<level>.pt, the LAP-x inits of the pathways stages."),
    "imp": (
        "IMP: iterative magnitude pruning of the dense multilingual model on one",
        "language's data (prune_levels, one every prune_interval steps), the mask",
        "fixed within an interval; masks at <output_folder>/masks/s<level>.pt."),
    "lth": (
        "LTH: IMP whose survivors are rewound to the dense multilingual weights",
        "(theta0) after every round; masks at <output_folder>/masks/s<level>.pt,",
        "the LTH-x inits of the pathways stages."),
    "adaptive": (
        "Adaptive masking (the paper's proposal, monolingual): pruned weights are",
        "zeroed but kept trainable, the mask is re-ranked by magnitude every",
        "rerank_every steps and the sparsity steps up every prune_interval steps",
        "(cubic); the final mask is enforced (pruned = 0). rewind: LTH variant."),
    "pathways": (
        "ASR Pathways: one fixed mask per language (pathway_init at init_level,",
        "from the imp / lth runs of each language or the lap run), fine-tuned",
        "together with monolingual batches; language z trains only its pathway."),
    "dynamic_pathways": (
        "Dynamic ASR Pathways: per-language masks from LTH-x or LAP-x, adapted",
        "while training (re-ranked every rerank_every steps within the pathway and",
        "the language's free zone) and stepped up to target_sparsity."),
}

OUTPUT = """\
output_folder: !ref {results}/<stage>_<size>{suffix}/<seed>
{pretrained}save_folder: !ref <output_folder>/save
train_log: !ref <output_folder>/train_log.txt
model_export_dir: !ref <output_folder>/model
# the languages' manifests in one (written by the stage; batches mix languages
# only in the dense_multi and lap stages)
train_csv: !ref <output_folder>/manifests/train.csv
valid_csv: !ref <output_folder>/manifests/dev.csv
ckpt_interval_minutes: 5
keep_checkpoints: 2                      # the best and the last
"""

MASKED_TRAINING = """\
# ---- training: from the dense multilingual model, for train_steps steps ----
lr: {lr}                              # constant
weight_decay: 0.01
batch_size: {batch_size}
max_grad_norm: 5.0
ctc_weight: 0.3
max_epochs: 1000                         # a bound: training ends after train_steps optimizer steps
{loaders}
# ---- the stage ----
{stage_block}
# ---- the dense multilingual model folder (model, normaliser, tokenizer) ----
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

{optimizer}
    lr: !ref <lr>
    betas: (0.9, 0.98)
    eps: 0.000000001
    weight_decay: !ref <weight_decay>

epoch_counter: !new:speechbrain.utils.epoch_loop.EpochCounter
    limit: !ref <max_epochs>

checkpointer: !new:speechbrain_sparse.checkpoints.ResumableCheckpointer
    checkpoints_dir: !ref <save_folder>
    recoverables:
        model: !ref <model>
        normalizer: !ref <normalize>
        counter: !ref <epoch_counter>

train_logger: !new:speechbrain.utils.train_logger.FileTrainLogger
    save_file: !ref <train_log>
"""

# pruned entries are zeroed after every step (prune mode) or at every re-rank
# (adaptive, soft): dense AdamW, whose moments survive the masks' changes
PRUNING_OPTIMIZER = """\
# dense AdamW: pruned entries are set back to zero after every step (prune
# mode) or at every re-rank (adaptive); the moments survive mask changes
opt_class: !name:torch.optim.AdamW"""
# a language's step must leave the other languages' entries bit-identical
PATHWAY_OPTIMIZER = """\
# AdamW that updates, at each step, only the entries of that step's language
# (MaskedAdamW.set_step_mask): the others' weights and moments stay untouched
opt_class: !name:speechbrain_sparse.masked_adamw.MaskedAdamW"""

SCHEDULE = """\
prune_interval: {interval}                      # T: optimizer steps at each sparsity level
"""

IMP_BLOCK = """\
prune_levels: [0.2, 0.5, 0.7]            # one round each, every prune_interval steps; the last is the target
{schedule}train_steps: !ref <prune_interval> * 3   # one interval at each level (the last at the target)
{rewind_key}pruner: !new:speechbrain_sparse.pruning.iterative.IterativeMagnitudePruning
    schedule: !new:speechbrain_sparse.pruning.schedules.LinearStepsSchedule
        levels: !ref <prune_levels>
        interval: !ref <prune_interval>
{rewind_arg}"""

LTH_REWIND_KEY = """\
# LTH: after each round the survivors go back to theta0, the dense model's weights
theta0: !new:speechbrain_sparse.pruning.iterative.LotteryTicketRewind
    reference_state: !ref <pretrained_dir>/model.ckpt
"""

ADAPTIVE_BLOCK = """\
initial_sparsity: 0.2                    # s_i of the cubic schedule (Zhu & Gupta)
target_sparsity: 0.7                     # s_f
num_intervals: 4                         # R: s_i -> s_f in R steps up
{schedule}rerank_every: {rerank}                        # n < T: re-rank the mask by magnitude every n steps
train_steps: !ref <prune_interval> * (<num_intervals> + 1)  # the last interval: mask fixed, pruned = 0
rewind: False                            # True: adaptive LTH (survivors back to theta0 at each step up)
theta0: !new:speechbrain_sparse.pruning.iterative.LotteryTicketRewind
    reference_state: !ref <pretrained_dir>/model.ckpt
schedule: !new:speechbrain_sparse.pruning.schedules.CubicSchedule
    initial: !ref <initial_sparsity>
    final: !ref <target_sparsity>
    interval: !ref <prune_interval>
    num_intervals: !ref <num_intervals>
pruner: !new:speechbrain_sparse.pruning.adaptive.AdaptiveMasker
    schedule: !ref <schedule>
    rerank_every: !ref <rerank_every>
    rewind: !apply:speechbrain_sparse.pruning.choice.choose
        key: rewind
        value: !ref <rewind>
        choices: {{True: !ref <theta0>, False: null}}
"""

PATHWAY_INIT = """\
pathway_init: lth                        # lth | imp: each language's run; lap: the one LAP run
init_level: {init_level}                          # the sparsity of the init masks (a level of that run)
# the init runs' output folders, "{{language}}" standing for each language;
# null: {results}/<pathway_init>_<size>_<language>/<seed> (lap: lap_<size>/<seed>)
init_folder: null
init_masks: !apply:speechbrain_sparse.asr.pathways_experiment.init_mask_files
    method: !ref <pathway_init>
    languages: !ref <languages>
    level: !ref <init_level>
    results: {results}
    size: !ref <size>
    seed: !ref <seed>
    folder: !ref <init_folder>
"""

PATHWAYS_BLOCK = """\
{init}train_steps: {steps}                       # fine-tuning steps (monolingual batches, languages in turn)
language_sampling: round_robin           # round_robin | proportional (hours^0.5)
"""

DYNAMIC_BLOCK = """\
{init}target_sparsity: 0.7                     # each pathway's sparsity at the end
num_intervals: 4                         # R: init_level -> target_sparsity in R steps up (cubic)
{schedule}rerank_every: {rerank}                        # n < T: re-rank every n steps within pathway + free zone
train_steps: !ref <prune_interval> * (<num_intervals> + 1)  # the last interval: masks fixed
language_sampling: round_robin           # round_robin | proportional (hours^0.5)
# init_level == target_sparsity: a constant level, re-ranked only
schedule: !apply:speechbrain_sparse.asr.pathways_experiment.progressive_schedule
    initial: !ref <init_level>
    final: !ref <target_sparsity>
    interval: !ref <prune_interval>
    num_intervals: !ref <num_intervals>
"""



def _header(dataset, size, stage):
    lines = [*ABOUT[stage],
             f"  python train.py hparams/{stage}_{size}.yaml"
             + (f" --dialect {dataset['mono']}" if stage in MONOLINGUAL else ""),
             f"Size: {SIZES[size]['describe']}. {dataset['about']}",
             "Written by tools/write_hparams.py (tools/pathways_hparams.py): change "
             "the template there."]
    return base._header(lines)


def _languages(dataset, stage):
    if stage in MONOLINGUAL:
        return (f"dialect: {dataset['mono']:<32}# the language of this stage\n"
                "languages: [!ref <dialect>]\n")
    return ("languages: !ref <corpus_languages>       # the stage's languages "
            "(Table 2: [fr, nl])\n")


def _model(dataset, size, stage):
    spec = SIZES[size]
    text = base._model({"vocab_size": dataset["vocab_size"]}, size,
                       pretrain=stage.startswith("dense"))
    if stage == "dense_mono":  # ~0.3 of the multilingual model's parameters
        text = text.replace(f"d_model: {spec['d_model']}\n",
                            f"d_model: {spec['mono_d_model']}"
                            "                            # ~0.3 of dense_multi's "
                            "parameters\n")
        text = text.replace(f"d_ffn: {spec['d_ffn']}\n",
                            f"d_ffn: {spec['mono_d_ffn']}\n")
    return text


def _stage_block(dataset, size, stage):
    spec = SIZES[size]
    schedule = SCHEDULE.format(interval=spec["interval"])
    if stage in ("lap", "imp"):
        return IMP_BLOCK.format(schedule=schedule, rewind_key="", rewind_arg="")
    if stage == "lth":
        return IMP_BLOCK.format(schedule=schedule, rewind_key=LTH_REWIND_KEY,
                                rewind_arg="    rewind: !ref <theta0>\n")
    if stage == "adaptive":
        return ADAPTIVE_BLOCK.format(schedule=schedule, rerank=spec["rerank"])
    init = PATHWAY_INIT.format(results=dataset["results"],
                               init_level="0.7" if stage == "pathways" else "0.5")
    if stage == "pathways":
        return PATHWAYS_BLOCK.format(init=init, steps=spec["interval"] * 3)
    return DYNAMIC_BLOCK.format(init=init, schedule=schedule, rerank=spec["rerank"])


def stage_yaml(dataset, size, stage):
    """The text of ``<stage>_<size>.yaml`` for ``dataset``."""
    spec = SIZES[size]
    dense = stage.startswith("dense")
    suffix = "_<dialect>" if stage in MONOLINGUAL else ""
    pretrained = ("" if dense else
                  f"pretrained_dir: !ref {dataset['results']}/dense_multi_<size>/"
                  "<seed>/model\n")
    loaders = base.LOADERS.format(max_batch_duration=spec["max_batch_duration"])
    if dense:
        training = base.PRETRAIN_TRAINING.format(
            loaders=loaders, number_of_epochs=spec["dense_epochs"],
            batch_size=spec["pretrain"]["batch_size"],
            lr_initial=spec["pretrain"]["lr_initial"],
            n_warmup_steps=spec["n_warmup_steps"])
    else:
        training = MASKED_TRAINING.format(
            loaders=loaders, lr=spec["lr"], batch_size=spec["finetune"]["batch_size"],
            optimizer=PATHWAY_OPTIMIZER if stage in ("pathways", "dynamic_pathways")
            else PRUNING_OPTIMIZER,
            stage_block=_stage_block(dataset, size, stage))
    return (_header(dataset, size, stage)
            + "seed: 1234\n__set_seed: !apply:torch.manual_seed [!ref <seed>]\n"
            + f"stage: {stage}\nsize: {size}\n\n"
            + dataset["data"].format(languages=_languages(dataset, stage)) + "\n"
            + OUTPUT.format(results=dataset["results"], suffix=suffix,
                            pretrained=pretrained)
            + "\n" + _model(dataset, size, stage) + "\n" + training)


def expected_files():
    """Path -> text of every pathways YAML (and the synthetic recipe's arch file)."""
    files = {}
    arch = base.ARCH_SOURCE.read_text(encoding="utf-8")
    for dataset in DATASETS.values():
        folder = Path(dataset["folder"])
        files[folder / "arch" / "transformer_asr.yaml"] = arch
        for size in dataset["sizes"]:
            for stage in STAGES:
                files[folder / f"{stage}_{size}.yaml"] = stage_yaml(dataset, size,
                                                                    stage)
    return files
