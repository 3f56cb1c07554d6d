"""A wav2vec2-family CTC experiment from a loaded YAML: train or prune, test, save.

Two starts, chosen by the YAML:

* ``hf_config`` (no ``pretrained_dir``): a ``transformers`` config
  (``model_type``: ``wav2vec2``, ``hubert`` or ``wavlm``, plus its size keys)
  from which a ``*ForCTC`` model is built with random weights and trained
  from scratch; the character vocabulary comes from the training transcripts;
* ``pretrained_dir``: a local Hugging Face ``*ForCTC`` directory with its
  ``vocab.json`` (one this module wrote, or e.g. ``wav2vec2-base-100h``),
  loaded with :func:`~speechbrain_sparse.pruning.pretrained.load_huggingface`
  and fine-tuned.

With ``prune_sparsities`` the model is pruned (SparseWAV, one-pass or
progressive) and fine-tuned with the mask in ``prune`` mode by the same
:func:`~speechbrain_sparse.asr.pruning_stage.prune_and_finetune` as our
Transformer ASR. The best checkpoint (lowest validation WER) is tested on every
test set and saved, with :meth:`PretrainedModel.save`, as a Hugging Face
directory that ``from_pretrained`` loads (``config.json``, weights,
``vocab.json``, ``preprocessor_config.json``, ``model_info.json``; plus
``mask.pt`` and, with ``sparse_export: True``, ``sparse_model.pt`` when pruned).

Other keys: ``train_csv``, ``valid_csv``, ``test_csvs``, ``save_folder``,
``output_folder``, ``model_export_dir``, ``normalize_audio`` (scratch models;
default True), ``opt_class``, ``epoch_counter``, optional ``lr_annealing``,
``train_logger``, the three ``*_dataloader_opts``, ``max_duration``.
"""

import csv
import logging
import os

import speechbrain as sb

from speechbrain_sparse.asr.ctc_characters import CharacterCTCTokenizer
from speechbrain_sparse.asr.data import (
    build_datasets,
    check_manifests,
    train_loader_options,
)
from speechbrain_sparse.asr.hf_ctc_brain import (
    HuggingFaceCTCBrain,
    MaskedHuggingFaceCTCBrain,
)
from speechbrain_sparse.asr.options import checked_options
from speechbrain_sparse.asr.pruning_stage import prune_and_finetune, pruning_settings
from speechbrain_sparse.checkpoints import ResumableCheckpointer
from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.pruning.model_families import HuggingFaceSSLFamily
from speechbrain_sparse.pruning.pretrained import PretrainedModel, load_huggingface

logger = logging.getLogger(__name__)


def build_ctc_model(hf_config, tokenizer):
    """A randomly initialised ``*ForCTC`` model for ``tokenizer``'s characters.

    Arguments
    ---------
    hf_config : dict
        ``model_type`` and the ``transformers`` config keys to change.
    tokenizer : CharacterCTCTokenizer
        Sets ``vocab_size`` and the blank (``pad_token_id``).

    Returns
    -------
    transformers.PreTrainedModel

    Example
    -------
    >>> tokenizer = CharacterCTCTokenizer.from_transcripts(["AB"])
    >>> model = build_ctc_model({"model_type": "wav2vec2", "hidden_size": 16,
    ...     "num_hidden_layers": 1, "num_attention_heads": 2,
    ...     "intermediate_size": 32, "conv_dim": [8, 8], "conv_stride": [5, 4],
    ...     "conv_kernel": [10, 4], "num_conv_pos_embeddings": 4,
    ...     "num_conv_pos_embedding_groups": 2}, tokenizer)
    >>> type(model).__name__, model.config.vocab_size
    ('Wav2Vec2ForCTC', 5)
    """
    from transformers import AutoConfig, AutoModelForCTC

    settings = dict(hf_config)
    model_type = settings.pop("model_type", None)
    if model_type not in ("wav2vec2", "hubert", "wavlm"):
        raise UserInputError(
            f"hf_config: model_type must be wav2vec2, hubert or wavlm, "
            f"not {model_type!r}"
        )
    for key in ("conv_dim", "conv_stride", "conv_kernel"):
        if key in settings:
            settings[key] = list(settings[key])
    known = AutoConfig.for_model(model_type).to_dict()
    unknown = [key for key in settings if key not in known]
    if unknown:  # transformers would keep them as unused attributes
        raise UserInputError(f"hf_config: {model_type} configs have no key {unknown}")
    try:
        config = AutoConfig.for_model(
            model_type, vocab_size=len(tokenizer), pad_token_id=tokenizer.blank_index,
            ctc_loss_reduction="mean", **settings)
    except (TypeError, ValueError) as error:
        raise UserInputError(f"hf_config: {error}") from None
    return AutoModelForCTC.from_config(config)


def transcripts(csv_path):
    """The ``wrd`` column of a manifest."""
    with open(csv_path, newline="", encoding="utf-8") as handle:
        return [row["wrd"] for row in csv.DictReader(handle)]


def load_or_build(hparams):
    """Returns the :class:`PretrainedModel` (with its tokenizer) the run starts from."""
    directory = hparams["pretrained_dir"]
    if directory:
        pretrained = load_huggingface(directory)
        pretrained.tokenizer = CharacterCTCTokenizer.from_pretrained(directory)
        if len(pretrained.tokenizer) != pretrained.model.config.vocab_size:
            raise UserInputError(
                f"{directory}: vocab.json has {len(pretrained.tokenizer)} "
                f"tokens, the model {pretrained.model.config.vocab_size}"
            )
        return pretrained
    if hparams["hf_config"] is None:
        raise UserInputError("the YAML needs pretrained_dir (a Hugging Face CTC "
                             "folder) or hf_config (a model to train from scratch)")
    texts = transcripts(hparams["train_csv"])
    tokenizer = CharacterCTCTokenizer.from_transcripts(texts)
    model = build_ctc_model(hparams["hf_config"], tokenizer)
    family = HuggingFaceSSLFamily(normalize_audio=hparams["normalize_audio"],
                                  use_attention_mask=True)
    return PretrainedModel("huggingface", None, model, family, tokenizer=tokenizer)


def run_ctc_experiment(hparams, run_opts):
    """Trains (or prunes and fine-tunes), tests and saves a CTC model.

    Arguments
    ---------
    hparams : dict
        The loaded YAML (see the module docstring).
    run_opts : dict
        SpeechBrain run options (``--device``, DDP, ...).

    Returns
    -------
    dict
        Test-set name -> ``{"WER", "CER", "loss"}``; also in
        ``<output_folder>/results.json``.
    """
    hparams = checked_options(hparams)
    check_manifests(hparams)  # before the tokenizer reads the text
    pretrained = load_or_build(hparams)
    model, tokenizer = pretrained.model, pretrained.tokenizer
    hparams.update(model=model, tokenizer=tokenizer, family=pretrained.family)
    train_set, valid_set, test_sets = build_datasets(hparams, tokenizer)
    counter = hparams["epoch_counter"]
    recoverables = {"model": model, "counter": counter}
    if hparams["lr_annealing"] is not None:
        recoverables["lr_annealing"] = hparams["lr_annealing"]
    checkpointer = ResumableCheckpointer(hparams["save_folder"],
                                         recoverables=recoverables)
    pruning = hparams.get("prune_sparsities") is not None
    brain_class = MaskedHuggingFaceCTCBrain if pruning else HuggingFaceCTCBrain
    brain = brain_class(modules={"model": model}, opt_class=hparams["opt_class"],
                        hparams=hparams, run_opts=run_opts, checkpointer=checkpointer)
    brain.tokenizer = tokenizer
    mask = None
    if pruning:
        mask = prune_and_finetune(brain, hparams, train_set, valid_set,
                                  family=pretrained.family, **pruning_settings(hparams))
    else:
        brain.fit(counter, train_set, valid_set,
                  train_loader_kwargs=train_loader_options(hparams, train_set),
                  valid_loader_kwargs=hparams["valid_dataloader_opts"])
    results = brain.evaluate_sets(
        test_sets, hparams["test_dataloader_opts"],
        results_file=os.path.join(hparams["output_folder"], "results.json"))
    for name, stats in results.items():
        logger.info("%s: WER %.2f  CER %.2f", name, stats["WER"], stats["CER"])
    if sb.utils.distributed.if_main_process():
        info = {"stage": hparams["stage"], "dialect": hparams["dialect"],
                "epochs": brain.hparams.epoch_counter.current, "results": results,
                "source": str(pretrained.source) if pretrained.source else None}
        if mask is not None:
            info["achieved_sparsity"] = 1.0 - mask.density()
        pretrained.save(hparams["model_export_dir"], mask, info=info,
                        sparse_export=hparams["sparse_export"]
                        and mask is not None, info_file="model_info.json")
    return results
