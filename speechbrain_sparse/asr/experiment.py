"""One ASR experiment from a loaded YAML: tokenizer, data, fit, evaluate, export.

Every recipe folder (synthetic corpus, Tibetan dialects, ...) prepares its
manifests its own way and then hands over to :func:`run_asr_experiment`, so the
training pipeline exists once and the recipes cannot drift apart.

Hyperparameters read here, beyond those of :class:`TransformerASRBrain`:
``train_csv``, ``valid_csv``, ``test_csvs`` (name -> manifest), ``save_folder``,
``output_folder``, ``vocab_size``, ``token_type``, ``bos_index``,
``eos_index``, ``model_export_dir``, the three ``*_dataloader_opts``, and either
``pretrainer`` + ``tokenizer`` (start from a model folder written by a previous
stage, see :mod:`speechbrain_sparse.asr.model_folder`) or neither (train the
tokenizer on ``train_csv``, and on the text of ``tokenizer_extra_csvs`` when set,
and the model from scratch). The optional keys
and their defaults are those of :mod:`speechbrain_sparse.asr.options`.
``mask_strategy`` or ``adapter_projection_size``
choose a sparse fine-tuning method (:mod:`speechbrain_sparse.asr.sparse_finetuning`);
``prune_sparsities`` prunes the pretrained model (SparseWAV) and fine-tunes it
with the mask in prune mode (:mod:`speechbrain_sparse.asr.pruning_stage`).
``brain_class`` (``!name:``) replaces :class:`TransformerASRBrain`.
"""

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import sentencepiece
import speechbrain as sb
from speechbrain.tokenizers.SentencePiece import SentencePiece
from speechbrain.utils.distributed import run_on_main

from speechbrain_sparse.allocator import keep_freed_memory
from speechbrain_sparse.asr.brain import TransformerASRBrain
from speechbrain_sparse.asr.data import (
    build_datasets,
    check_manifests,
    train_loader_options,
)
from speechbrain_sparse.asr.model_folder import check_model_folder, export_model_folder
from speechbrain_sparse.asr.options import checked_options, load_stage_hparams
from speechbrain_sparse.asr.pruning_stage import prune_and_finetune, pruning_settings
from speechbrain_sparse.asr.sparse_finetuning import (
    MaskedTransformerASRBrain,
    insert_adapters,
    select_and_attach_mask,
)
from speechbrain_sparse.errors import MissingInputError
from speechbrain_sparse.fileio import check_writable, read_manifest, write_csv_atomic

logger = logging.getLogger(__name__)


def tokenizer_text(hparams):
    """The CSV whose ``wrd`` column SentencePiece learns from.

    ``train_csv``, or, with ``tokenizer_extra_csvs`` (a list of manifests or a
    name -> manifest mapping), ``<save_folder>/tokenizer_text.csv``: the
    ``wrd`` column of ``train_csv`` and of each extra manifest, in that order.
    A multilingual recipe uses it to give the tokenizer the characters of the
    languages fine-tuned on later (their training text only).

    Example
    -------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "fr.csv").write_text("ID,wrd\\nu1,café\\n")
    >>> _ = (folder / "pl.csv").write_text("ID,wrd\\nu1,łąka\\n")
    >>> hparams = {"train_csv": folder / "fr.csv", "save_folder": folder / "save",
    ...            "tokenizer_extra_csvs": None}
    >>> tokenizer_text(hparams).name
    'fr.csv'
    >>> hparams["tokenizer_extra_csvs"] = {"polish_10hr": folder / "pl.csv"}
    >>> path = tokenizer_text(hparams)
    >>> path.name, path.read_text(encoding="utf-8").split()
    ('tokenizer_text.csv', ['wrd', 'café', 'łąka'])
    """
    extra = hparams["tokenizer_extra_csvs"]
    if not extra:
        return Path(hparams["train_csv"])
    if isinstance(extra, Mapping):
        extra = list(extra.values())
    rows = [{"wrd": row["wrd"]} for path in [hparams["train_csv"], *extra]
            for row in read_manifest(path, required=("wrd",))]
    text_csv = Path(hparams["save_folder"]) / "tokenizer_text.csv"
    write_csv_atomic(text_csv, rows, ["wrd"])
    text_csv.with_suffix(".txt").unlink(missing_ok=True)  # SentencePiece's stale copy
    return text_csv


def _train_tokenizer(hparams):
    """Trains SentencePiece on the training text (main process), unless it exists."""
    model_dir = Path(hparams["save_folder"])
    if (model_dir / f"{hparams['vocab_size']}_{hparams['token_type']}.model").is_file():
        return  # trained by an earlier run of this stage
    SentencePiece(
        model_dir=str(model_dir),
        vocab_size=hparams["vocab_size"],
        annotation_train=str(tokenizer_text(hparams)),
        annotation_read="wrd",
        model_type=hparams["token_type"],
        character_coverage=1.0,
        bos_id=hparams["bos_index"],
        eos_id=hparams["eos_index"],
    )


def prepare_tokenizer(hparams):
    """Returns the tokenizer and the path of its model file.

    With a ``pretrainer`` in the hparams, the model folder of an earlier stage is
    collected and loaded (model, normaliser, tokenizer); otherwise SentencePiece
    is trained on the training text (:func:`tokenizer_text`).
    """
    if "pretrainer" in hparams:
        check_model_folder(hparams["pretrained_dir"])
        pretrainer = hparams["pretrainer"]
        run_on_main(pretrainer.collect_files)
        pretrainer.load_collected()
        tokenizer_file = Path(hparams["pretrained_dir"]) / "tokenizer.model"
        return hparams["tokenizer"], tokenizer_file
    run_on_main(_train_tokenizer, kwargs={"hparams": hparams})
    name = f"{hparams['vocab_size']}_{hparams['token_type']}.model"
    tokenizer_file = Path(hparams["save_folder"]) / name
    return sentencepiece.SentencePieceProcessor(
        model_file=str(tokenizer_file)
    ), tokenizer_file


def check_prerequisites(hparams):
    """Stops before any work when a stage's inputs are missing or its output unwritable.

    Checks ``pretrained_dir`` (a model folder for stages with a ``pretrainer``,
    a Hugging Face directory otherwise) and ``finetuned_dir`` (the vanilla run
    that ``diff`` masks compare with), and that ``output_folder`` and
    ``model_export_dir`` can be written, so that a stage fails in its first
    second, not after the corpus is built or the model trained.

    Raises
    ------
    MissingInputError
        Naming the key, the folder and what it lacks.
    UserInputError
        Naming the key of an output that cannot be written.
    """
    if "pretrainer" in hparams:
        check_model_folder(hparams["pretrained_dir"])
    elif hparams.get("pretrained_dir") and not Path(hparams["pretrained_dir"]).is_dir():
        raise MissingInputError(f"pretrained_dir: {hparams['pretrained_dir']} is not "
                                "a folder (a Hugging Face model directory)")
    if hparams.get("finetuned_dir") is not None:
        check_model_folder(hparams["finetuned_dir"], "finetuned_dir", "vanilla")
    for key in ("output_folder", "model_export_dir"):  # written after training
        if hparams.get(key):
            check_writable(hparams[key], key)


def start_stage(argv, recipe_keys=()):
    """What every recipe's ``train.py`` does before its data preparation.

    SpeechBrain's steps, in order: parse the command line
    (``sb.parse_arguments``), load and check the stage YAML with its
    overrides (:func:`~speechbrain_sparse.asr.options.load_stage_hparams`),
    check the input model folders and that the output can be written
    (:func:`check_prerequisites`, before any expensive work), join the DDP
    group, and create the experiment folder (log, saved YAML and overrides).

    Arguments
    ---------
    argv : list of str
        ``hparams_file`` and the overrides / run options.
    recipe_keys : iterable of str
        The YAML keys the recipe's own code reads.

    Returns
    -------
    tuple
        ``(hparams, run_opts)``.
    """
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    hparams = load_stage_hparams(hparams_file, overrides, recipe_keys=recipe_keys)
    check_prerequisites(hparams)
    sb.utils.distributed.ddp_init_group(run_opts)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    return hparams, run_opts


def run_asr_experiment(hparams, run_opts):
    """Fits the ASR model, evaluates it on every test set and exports it.

    Arguments
    ---------
    hparams : dict
        The loaded YAML (see the module docstring for the keys it needs).
    run_opts : dict
        SpeechBrain run options (``--device``, DDP, ...).

    Returns
    -------
    dict
        Test-set name -> ``{"WER", "CER", "ACC", "loss"}``; also written to
        ``<output_folder>/results.json``.
    """
    hparams = checked_options(hparams)
    check_manifests(hparams)  # before the tokenizer reads the text
    keep_freed_memory()
    tokenizer, tokenizer_file = prepare_tokenizer(hparams)
    train_set, valid_set, test_sets = build_datasets(
        hparams, tokenizer, hparams["compute_features"]
    )

    if hparams["adapter_projection_size"]:
        insert_adapters(hparams)
    pruning = hparams["prune_sparsities"] is not None
    masked = pruning or hparams["mask_strategy"] is not None
    default_class = MaskedTransformerASRBrain if masked else TransformerASRBrain
    brain_class = hparams["brain_class"] or default_class
    brain = brain_class(
        modules=hparams["modules"],
        opt_class=hparams["opt_class"],
        hparams=hparams,
        run_opts=run_opts,
        checkpointer=hparams["checkpointer"],
    )
    brain.tokenizer = tokenizer
    if pruning:
        prune_and_finetune(brain, hparams, train_set, valid_set,
                           **pruning_settings(hparams))
    else:
        if masked:
            select_and_attach_mask(brain, hparams, train_set)
        brain.fit(
            brain.hparams.epoch_counter,
            train_set,
            valid_set,
            train_loader_kwargs=train_loader_options(hparams, train_set),
            valid_loader_kwargs=hparams["valid_dataloader_opts"],
        )
    results = brain.evaluate_sets(
        test_sets,
        hparams["test_dataloader_opts"],
        results_file=os.path.join(hparams["output_folder"], "results.json"),
    )
    for name, stats in results.items():
        rates = "  ".join(
            f"{key} {stats[key]:.2f}" for key in ("WER", "CER", "SER") if key in stats
        )
        logger.info("%s: %s", name, rates)

    if sb.utils.distributed.if_main_process():
        best = brain.checkpointer.find_checkpoint(max_key="ACC")
        if best is not None:
            export_model_folder(
                best,
                tokenizer_file,
                hparams["model_export_dir"],
                info={
                    "stage": hparams["stage"],
                    "size": hparams["size"],
                    "dialect": hparams["dialect"],
                    "epochs": brain.hparams.epoch_counter.current,
                    "results": results,
                },
                hparams=hparams,
            )
    return results
