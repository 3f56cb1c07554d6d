"""A probing run from a loaded YAML: frozen upstream, head, optional trimming.

One task of the small speech benchmark (:mod:`speechbrain_sparse.data.mini_superb`):
``asr`` (characters, CTC: WER and CER) or a classification task
(``dialect_id``, ``speaker_id``: accuracy, from ``label`` and the task's
``classes.txt``). The upstream is a local Hugging Face folder
(``upstream_dir``) loaded as a
:class:`~speechbrain_sparse.asr.probing.HuggingFaceUpstream`.

``strategy`` (built by the YAML with ``!new:``; None for plain probing) is one
of :mod:`speechbrain_sparse.pruning.trimming`'s :class:`Trimming`,
:class:`SSF` or :class:`Scratch`: it prepares the upstream (gates, modulations,
or a re-initialised trimmed copy), adds its term to the training loss, and,
after the best checkpoint has been tested, ``finish`` removes what it pruned;
the trimmed model is then tested again (without reloading a checkpoint) and
those are the results. ``<output_folder>/trimming.json`` holds the report (the
parameters removed, measured and predicted from the mask), the test results
before and after removal, ``unit_mask.pt`` the mask (what ``Scratch``
reads) and ``trimmed_upstream/`` the trimmed encoder
(:func:`~speechbrain_sparse.surgery.load_structured` reads it).

Per-utterance errors are written for the paired bootstrap
(``utterances_<set>.csv``: ``wer``/``cer`` for ASR, ``err`` (0 or 1 per
utterance) for classification).
"""

import json
import logging
import os
from pathlib import Path

import speechbrain as sb
import torch

from speechbrain_sparse.asr.brain import ASRBrain
from speechbrain_sparse.asr.ctc_characters import CharacterCTCTokenizer
from speechbrain_sparse.asr.ctc_experiment import transcripts
from speechbrain_sparse.asr.data import build_datasets, check_manifests
from speechbrain_sparse.asr.hf_ctc_brain import HuggingFaceCTCBrain
from speechbrain_sparse.asr.options import checked_options
from speechbrain_sparse.asr.probing import (
    HuggingFaceUpstream,
    ProbingModel,
    trainable_parameters,
)
from speechbrain_sparse.checkpoints import ResumableCheckpointer
from speechbrain_sparse.data.mini_superb import TASKS, read_classes
from speechbrain_sparse.errors import MissingInputError, UserInputError
from speechbrain_sparse.fileio import read_audio_checked, write_csv_atomic
from speechbrain_sparse.fileio.writing import write_text_atomic
from speechbrain_sparse.pruning.trimming import TrimmingMixin
from speechbrain_sparse.surgery import save_structured

logger = logging.getLogger(__name__)

#: The keys of a probing YAML this module reads (besides the library's).
PROBING_KEYS = ("task", "upstream_dir", "strategy", "layers", "ctc_head",
                "classifier_head")


class ProbeMixin:
    """Forward through ``modules.probe``; only trainable parameters are optimised."""

    def compute_forward(self, batch, stage):
        """Raw audio -> the head's output and the relative real frame lengths."""
        batch = batch.to(self.device)
        wavs, wav_lens = batch.sig
        return self.modules.probe(wavs, wav_lens)

    def init_optimizers(self):
        """One optimizer over what requires a gradient (the frozen upstream is
        not in it, so weight decay cannot move it); the strategy's own
        parameters get their own group when it has an ``lr``."""
        params = trainable_parameters(self.modules)
        strategy = getattr(self.hparams, "strategy", None)
        own_lr = getattr(strategy, "lr", None)
        if own_lr is not None:
            own = {id(p) for p in strategy.parameters()}
            params = [{"params": [p for p in params if id(p) not in own]},
                      {"params": [p for p in params if id(p) in own], "lr": own_lr}]
        self.optimizer = self.opt_class(params)
        self.optimizers_dict = {"opt_class": self.optimizer}
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable("optimizer", self.optimizer)


class CTCProbeBrain(TrimmingMixin, ProbeMixin, HuggingFaceCTCBrain):
    """ASR probing: CTC on characters, WER and CER (lowest validation WER kept)."""


class ClassificationBrain(ASRBrain):
    """Utterance classification: cross-entropy, accuracy (highest kept)."""

    checkpoint_key = {"max_key": "ACC"}

    def compute_objectives(self, predictions, batch, stage):
        logits, _ = predictions
        labels = batch.label_id.data[:, 0]
        loss = torch.nn.functional.cross_entropy(logits, labels)
        if stage != sb.Stage.TRAIN:
            wrong = (logits.argmax(-1) != labels).tolist()
            self.errors.extend(zip(batch.id, wrong))
        return loss

    def on_stage_start(self, stage, epoch=None):
        self.errors = []

    def on_stage_end(self, stage, stage_loss, epoch=None):
        stats = {"loss": stage_loss}
        if stage == sb.Stage.TRAIN:
            self.train_stats = stats
            return
        stats["ACC"] = 1.0 - sum(w for _, w in self.errors) / max(1, len(self.errors))
        if stage == sb.Stage.VALID:
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch": epoch, "lr": self.optimizer.param_groups[0]["lr"]},
                train_stats=self.train_stats, valid_stats=stats)
            self.checkpointer.save_and_keep_only(
                meta={"ACC": stats["ACC"], "epoch": epoch}, max_keys=["ACC"],
                num_to_keep=self.hparams.keep_checkpoints)
        elif stage == sb.Stage.TEST:
            self.hparams.train_logger.log_stats(
                stats_meta={"test set": self.test_name}, test_stats=stats)
            self.test_results[self.test_name] = stats
            if sb.utils.distributed.if_main_process():
                write_csv_atomic(
                    os.path.join(self.hparams.output_folder,
                                 f"utterances_{self.test_name}.csv"),
                    [{"ID": i, "err_errors": int(w), "err_tokens": 1}
                     for i, w in self.errors], ["ID", "err_errors", "err_tokens"])


class ClassificationProbeBrain(TrimmingMixin, ProbeMixin, ClassificationBrain):
    """Classification probing (the strategy's objective added in training)."""


def classification_dataset(csv_path, classes, hparams, sort=None):
    """A dataset of ``sig`` and ``label_id`` (index in ``classes``)."""
    dataset = sb.dataio.dataset.DynamicItemDataset.from_csv(csv_path=str(csv_path))
    if sort or hparams["max_duration"]:
        dataset = dataset.filtered_sorted(
            sort_key="duration" if sort else None, reverse=sort == "descending",
            key_max_value={"duration": hparams["max_duration"] or float("inf")})
    index = {label: i for i, label in enumerate(classes)}

    @sb.utils.data_pipeline.takes("wav", "label")
    @sb.utils.data_pipeline.provides("sig", "label_id")
    def pipeline(wav, label):
        if label not in index:
            raise UserInputError(f"{csv_path}: label {label!r} is not a class of "
                                 f"the training set ({len(classes)} classes)")
        yield read_audio_checked(wav)
        yield torch.LongTensor([index[label]])

    dataset.add_dynamic_item(pipeline)
    dataset.set_output_keys(["id", "sig", "label_id"])
    return dataset


def _task_data(hparams, upstream):
    """(brain class, head, train, valid, tests, tokenizer or None)."""
    task = hparams["task"]
    if task not in TASKS:
        raise UserInputError(f"task: must be one of {', '.join(TASKS)}, not {task!r}")
    if task == "asr":
        check_manifests(hparams)
        tokenizer = CharacterCTCTokenizer.from_transcripts(
            transcripts(hparams["train_csv"]))
        head = hparams["ctc_head"](input_size=upstream.hidden_size,
                                   vocab_size=len(tokenizer))
        train, valid, tests = build_datasets(hparams, tokenizer)
        return CTCProbeBrain, head, train, valid, tests, tokenizer
    classes = read_classes(hparams["train_csv"])
    head = hparams["classifier_head"](input_size=upstream.hidden_size,
                                      num_classes=len(classes))
    sort = hparams["sorting"] if hparams["sorting"] in ("ascending",
                                                        "descending") else None
    train = classification_dataset(hparams["train_csv"], classes, hparams, sort)
    valid = classification_dataset(hparams["valid_csv"], classes, hparams,
                                   "descending")
    tests = {name: classification_dataset(path, classes, hparams, "descending")
             for name, path in hparams["test_csvs"].items()}
    return ClassificationProbeBrain, head, train, valid, tests, None


def check_upstream(hparams):
    """MissingInputError naming ``upstream_dir`` unless it holds a ``config.json``
    (call it before building the corpus)."""
    folder = Path(hparams["upstream_dir"])
    if not (folder / "config.json").is_file():
        raise MissingInputError(
            f"upstream_dir: {folder} is not a Hugging Face model folder (no "
            "config.json): train one first (recipes/Synthetic/ASR/wav2vec2/train.py "
            "hparams/wav2vec2_group_tiny.yaml) or set --upstream_dir")


def run_probing_experiment(hparams, run_opts):
    """Trains the probe (and strategy), tests it, trims, tests again.

    Returns
    -------
    dict
        Test-set name -> metrics of the final (trimmed, if trimming) model.
    """
    from speechbrain_sparse.asr.data import train_loader_options

    hparams = checked_options(hparams)
    check_upstream(hparams)
    upstream = HuggingFaceUpstream.from_pretrained(hparams["upstream_dir"])
    strategy = hparams["strategy"]
    if strategy is not None:
        upstream = strategy.prepare(upstream)
    brain_class, head, train, valid, tests, tokenizer = _task_data(hparams, upstream)
    probe = ProbingModel(upstream, head, layers=hparams["layers"])
    hparams.update(strategy=PlainProbe() if strategy is None else strategy)
    counter = hparams["epoch_counter"]
    recoverables = {"probe": probe, "counter": counter}
    if hparams["lr_annealing"] is not None:
        recoverables["lr_annealing"] = hparams["lr_annealing"]
    checkpointer = ResumableCheckpointer(hparams["save_folder"],
                                         recoverables=recoverables)
    brain = brain_class(modules={"probe": probe}, opt_class=hparams["opt_class"],
                        hparams=hparams, run_opts=run_opts, checkpointer=checkpointer)
    brain.tokenizer = tokenizer
    brain.fit(counter, train, valid,
              train_loader_kwargs=train_loader_options(hparams, train),
              valid_loader_kwargs=hparams["valid_dataloader_opts"])
    results = brain.evaluate_sets(tests, hparams["test_dataloader_opts"])
    report = {"task": hparams["task"], "before_removal": results,
              "strategy": type(hparams["strategy"]).__name__,
              "trainable_params": sum(p.numel() for p in trainable_parameters(probe))}
    report.update(hparams["strategy"].finish(probe.upstream))
    mask = getattr(hparams["strategy"], "trimmed_mask", None)
    if mask is not None:
        if sb.utils.distributed.if_main_process():
            mask.save(os.path.join(hparams["output_folder"], "unit_mask.pt"))
            save_structured(probe.upstream.model,
                            os.path.join(hparams["output_folder"], "trimmed_upstream"),
                            source=hparams["upstream_dir"],
                            info={"trimmed_fraction": report["trimmed_fraction"]})
        brain.checkpointer = None  # the checkpoints hold the untrimmed model
        results = brain.evaluate_sets(tests, hparams["test_dataloader_opts"])
    report["results"] = results
    if sb.utils.distributed.if_main_process():
        write_text_atomic(os.path.join(hparams["output_folder"], "results.json"),
                          json.dumps(results, indent=2))
        write_text_atomic(os.path.join(hparams["output_folder"], "trimming.json"),
                          json.dumps(report, indent=2))
    for name, stats in results.items():
        logger.info("%s: %s", name, stats)
    return report


class PlainProbe:
    """Plain probing: the task loss alone, nothing removed."""

    def objective(self, task_loss):
        return task_loss

    def finish(self, upstream):
        return {"encoder_params": upstream.num_parameters(), "trimmed_params": 0,
                "trimmed_fraction": 0.0}
