"""Joint CTC/attention Transformer ASR as a SpeechBrain ``Brain``.

The recipe's YAML declares the modules (``CNN``, ``Transformer``, ``ctc_lin``,
``seq_lin``, ``normalize``), the feature extractor, the losses and the searchers;
this class wires them together the way SpeechBrain's LibriSpeech Transformer
recipe does. Mask-aware training mixes into it (``class MaskedASR(Mixin,
TransformerASRBrain)``), so everything here is plain SpeechBrain.

Hyperparameters it reads: ``compute_features``, ``log_softmax``, ``ctc_cost``,
``seq_cost``, ``ctc_weight``, ``pad_index``, ``valid_search``, ``test_search``,
``valid_search_every``, ``epoch_counter``, ``train_logger``,
``checkpointer``; optional ``lr_annealing`` (called with the optimizer after each
optimizer step), ``keep_checkpoints``, ``decoding`` (``beam``, the default: the
joint CTC/attention beam searchers; ``ctc_greedy``: best path of the CTC head,
~20x cheaper on CPU, for sweeps with many evaluations; needs ``blank_index``).
"""

import json
import logging
import os

import speechbrain as sb
import torch

from speechbrain_sparse.data.features import batch_features
from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.fileio import write_csv_atomic, write_text_atomic
from speechbrain_sparse.metrics import tibetan_syllables

logger = logging.getLogger(__name__)


def utterance_errors(metrics):
    """Per-utterance edit counts of several ``ErrorRateStats``, one row per ID.

    Arguments
    ---------
    metrics : dict
        Metric name (``wer``, ``cer``, ``ser``) -> ``ErrorRateStats`` that saw
        the same utterances.

    Returns
    -------
    list of dict
        ``{"ID", "<name>_errors", "<name>_tokens", ...}`` in the order seen:
        what a paired bootstrap over test utterances resamples.

    Example
    -------
    >>> from speechbrain.utils.metric_stats import ErrorRateStats
    >>> wer = ErrorRateStats()
    >>> wer.append(["u1", "u2"], [["A", "B"], ["C"]], [["A", "X"], ["C", "D"]])
    >>> utterance_errors({"wer": wer})[1]
    {'ID': 'u2', 'wer_errors': 1, 'wer_tokens': 2}
    """
    rows = {}
    for name, metric in metrics.items():
        for score in metric.scores:
            row = rows.setdefault(score["key"], {"ID": score["key"]})
            row[f"{name}_errors"] = int(score["num_edits"])
            row[f"{name}_tokens"] = int(score["num_ref_tokens"])
    return list(rows.values())


def write_utterance_errors(path, metrics):
    """Writes :func:`utterance_errors` as a CSV (atomically; main process only)."""
    rows = utterance_errors(metrics)
    if not rows or not sb.utils.distributed.if_main_process():
        return
    fields = ["ID"] + [f"{name}_{kind}" for name in metrics
                       for kind in ("errors", "tokens")]
    write_csv_atomic(path, rows, fields)


class NonFiniteLossError(UserInputError):
    """The training loss of a batch is NaN or inf; the message names its utterances.

    A user error (one line, no traceback): what to fix is the data of those
    utterances or a setting such as the learning rate.
    """


class ASRBrain(sb.Brain):
    """What every ASR Brain of the recipes shares: schedule, loss check, test loop.

    Subclasses fill ``self.test_results[self.test_name]`` in ``on_stage_end``
    of the test stage and say which checkpoint is best in ``checkpoint_key``
    (the keyword of ``Brain.evaluate``).

    A non-finite training loss **stops the run** at that batch, before its
    backward pass, with :class:`NonFiniteLossError` naming the batch's
    utterance IDs, so NaN never reaches the weights or a checkpoint.
    SpeechBrain's own check (``check_loss_isfinite``, ``--nonfinite_patience``,
    default 3) only counts such batches while their NaN gradients are applied
    (unless ``--skip_nonfinite_grads``), so its patience is kept only under
    fp16 mixed precision, where the GradScaler skips those steps by design.

    Example
    -------
    >>> import torch
    >>> class Toy(ASRBrain):
    ...     def compute_forward(self, batch, stage):
    ...         return self.modules.lin(batch.x.data)
    ...     def compute_objectives(self, predictions, batch, stage):
    ...         return predictions.sum() / 0.0 * 0.0   # NaN
    >>> from speechbrain.dataio.batch import PaddedBatch
    >>> batch = PaddedBatch([{"id": "u1", "x": torch.ones(2)},
    ...                      {"id": "u2", "x": torch.ones(2)}])
    >>> brain = Toy({"lin": torch.nn.Linear(2, 1)}, lambda p: torch.optim.SGD(p, 0.1))
    >>> brain.init_optimizers()
    >>> try:
    ...     brain.fit_batch(batch)
    ... except NonFiniteLossError as error:
    ...     print(error)
    training loss is nan at step 0, in the batch of utterances u1, u2 (check ...
    """

    checkpoint_key = {"max_key": "ACC"}

    def make_dataloader(self, dataset, stage, ckpt_prefix="dataloader-",
                        **loader_kwargs):
        """SpeechBrain's, and a training sampler passed in gets ``set_epoch``.

        ``Brain.fit`` calls ``set_epoch`` on ``self.train_sampler`` before each
        epoch, but sets that attribute only for samplers it builds itself or
        wraps for DDP. The recipes pass their own (``sorting: random`` or
        ``bucketed``, :func:`speechbrain_sparse.asr.data.train_loader_options`),
        so without this every epoch of a single-process run would see the same
        order.
        """
        loader = super().make_dataloader(dataset, stage, ckpt_prefix, **loader_kwargs)
        if stage == sb.Stage.TRAIN and self.train_sampler is None:
            for key in ("batch_sampler", "sampler"):
                sampler = loader_kwargs.get(key)
                if hasattr(sampler, "set_epoch"):
                    self.train_sampler = sampler
                    break
        return loader

    def on_fit_batch_start(self, batch, should_step):
        """Remembers the batch's utterance IDs for :meth:`check_loss_isfinite`."""
        self.batch_ids = list(getattr(batch, "id", []))
        super().on_fit_batch_start(batch, should_step)

    def check_loss_isfinite(self, loss):
        """Raises NonFiniteLossError naming the batch (see the class docstring)."""
        if torch.isfinite(loss):
            return
        ids = ", ".join(map(str, getattr(self, "batch_ids", [])))
        if self.scaler.is_enabled():  # fp16: the GradScaler skips this step
            self.nonfinite_count += 1
            if self.nonfinite_count <= self.nonfinite_patience:
                logger.warning("non-finite loss (%d of --nonfinite_patience %d), "
                               "step skipped; utterances: %s", self.nonfinite_count,
                               self.nonfinite_patience, ids)
                return
        counter = getattr(getattr(self, "hparams", None), "epoch_counter", None)
        epoch = f"epoch {counter.current}, " if counter is not None else ""
        raise NonFiniteLossError(
            f"training loss is {float(loss.detach())} at {epoch}step {self.step}, in "
            f"the batch of utterances {ids} (check their audio and transcripts, or "
            "lower the learning rate); run stopped")

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        """Steps the learning-rate schedule once per optimizer step."""
        annealing = self.hparams.lr_annealing
        if should_step and annealing is not None:
            annealing(self.optimizer)

    def evaluate_sets(self, test_sets, loader_kwargs, results_file=None):
        """Evaluates the best checkpoint (``checkpoint_key``) on each named test set.

        Arguments
        ---------
        test_sets : dict
            Name -> dataset.
        loader_kwargs : dict
            DataLoader options for evaluation.
        results_file : str, optional
            Where to write ``{name: {metric: value}}`` as JSON (atomically).

        Returns
        -------
        dict
            The same mapping as written to ``results_file``.
        """
        self.test_results = {}
        for name, dataset in test_sets.items():
            self.test_name = name
            self.evaluate(dataset, test_loader_kwargs=loader_kwargs,
                          **self.checkpoint_key)
        results = {
            name: {key: float(value) for key, value in stats.items()}
            for name, stats in self.test_results.items()
        }
        if results_file and sb.utils.distributed.if_main_process():
            write_text_atomic(results_file, json.dumps(results, indent=2))
        return results


class TransformerASRBrain(ASRBrain):
    """Trains and evaluates the Transformer ASR; set ``self.tokenizer`` first.

    With ``syllable_error_rate: True`` in the hparams it also reports the
    Tibetan syllable error rate (:func:`speechbrain_sparse.metrics.tibetan_syllables`)
    as ``SER`` next to ``WER`` and ``CER`` and writes ``ser_<test set>.txt``; this
    ``SER`` is not the *sentence* error rate of ``ErrorRateStats.summarize``.
    """

    def compute_forward(self, batch, stage):
        """Features -> CNN -> Transformer -> CTC and decoder log-probabilities."""
        batch = batch.to(self.device)
        tokens_bos, _ = batch.tokens_bos
        feats, wav_lens = batch_features(batch, self.hparams.compute_features)
        feats = self.modules.normalize(
            feats, wav_lens, epoch=self.hparams.epoch_counter.current
        )

        src = self.modules.CNN(feats)
        enc_out, dec_out = self.modules.Transformer(
            src, tokens_bos, wav_lens, pad_idx=self.hparams.pad_index
        )
        p_ctc = self.hparams.log_softmax(self.modules.ctc_lin(enc_out))
        p_seq = self.hparams.log_softmax(self.modules.seq_lin(dec_out))

        hyps = None
        if stage == sb.Stage.TEST:
            hyps = self._decode(self.hparams.test_search, enc_out, p_ctc, wav_lens)
        elif stage == sb.Stage.VALID and self._search_this_epoch():
            hyps = self._decode(self.hparams.valid_search, enc_out, p_ctc, wav_lens)
        return p_ctc, p_seq, wav_lens, hyps

    def _decode(self, searcher, enc_out, p_ctc, wav_lens):
        """Token ids per utterance, by beam search or CTC best path (``decoding``)."""
        decoding = self.hparams.decoding
        if decoding == "ctc_greedy":
            return sb.decoders.ctc_greedy_decode(
                p_ctc.detach(), wav_lens, blank_id=self.hparams.blank_index
            )
        if decoding != "beam":
            raise UserInputError(
                f"decoding must be 'beam' or 'ctc_greedy', not {decoding!r}"
            )
        hyps, _, _, _ = searcher(enc_out.detach(), wav_lens)
        return hyps

    def _search_this_epoch(self):
        """Beam search on the valid set every ``valid_search_every`` epochs and last.

        ``valid_search_every: 0`` never searches during training (validation
        then reports loss and accuracy only), for runs whose dev set is decoded
        after training anyway.
        """
        counter = self.hparams.epoch_counter
        every = self.hparams.valid_search_every
        if every == 0:
            return False
        return counter.current % every == 0 or counter.current >= counter.limit

    def compute_objectives(self, predictions, batch, stage):
        """Weighted sum of CTC and label-smoothed attention NLL; updates metrics."""
        p_ctc, p_seq, wav_lens, hyps = predictions
        tokens_eos, tokens_eos_lens = batch.tokens_eos
        tokens, tokens_lens = batch.tokens

        loss_seq = self.hparams.seq_cost(p_seq, tokens_eos, length=tokens_eos_lens)
        loss_ctc = self.hparams.ctc_cost(p_ctc, tokens, wav_lens, tokens_lens)
        weight = self.hparams.ctc_weight
        loss = weight * loss_ctc + (1 - weight) * loss_seq

        if stage != sb.Stage.TRAIN:
            self.acc_metric.append(p_seq, tokens_eos, tokens_eos_lens)
            if hyps is not None:
                normalize = self.hparams.normalize_text or str
                predicted = [normalize(self.tokenizer.decode_ids(h)).split()
                             for h in hyps]
                targets = [normalize(words).split() for words in batch.wrd]
                self.wer_metric.append(batch.id, predicted, targets)
                self.cer_metric.append(batch.id, predicted, targets)
                if self.ser_metric is not None:
                    self.ser_metric.append(
                        batch.id,
                        [tibetan_syllables(" ".join(words)) for words in predicted],
                        [tibetan_syllables(words) for words in batch.wrd],
                    )
        return loss

    def on_stage_start(self, stage, epoch=None):
        """Fresh metric trackers for validation and test."""
        if stage != sb.Stage.TRAIN:
            self.acc_metric = sb.utils.Accuracy.AccuracyStats()
            self.wer_metric = sb.utils.metric_stats.ErrorRateStats()
            self.cer_metric = sb.utils.metric_stats.ErrorRateStats(split_tokens=True)
            self.ser_metric = None
            if self.hparams.syllable_error_rate:
                self.ser_metric = sb.utils.metric_stats.ErrorRateStats()

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Logs, checkpoints on validation, writes WER files on test."""
        stats = {"loss": stage_loss}
        if stage == sb.Stage.TRAIN:
            self.train_stats = stats
            return
        stats["ACC"] = self.acc_metric.summarize()
        if self.wer_metric.scores:
            stats["WER"] = self.wer_metric.summarize("error_rate")
            stats["CER"] = self.cer_metric.summarize("error_rate")
            if self.ser_metric is not None:
                stats["SER"] = self.ser_metric.summarize("error_rate")

        if stage == sb.Stage.VALID:
            lr = self.optimizer.param_groups[0]["lr"]
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch": epoch, "lr": lr},
                train_stats=self.train_stats,
                valid_stats=stats,
            )
            self.checkpointer.save_and_keep_only(
                meta={"ACC": stats["ACC"], "epoch": epoch},
                max_keys=["ACC"],
                num_to_keep=self.hparams.keep_checkpoints,
            )
        elif stage == sb.Stage.TEST:
            self.hparams.train_logger.log_stats(
                stats_meta={
                    "test set": self.test_name,
                    "checkpoint epoch": self.hparams.epoch_counter.current,
                },
                test_stats=stats,
            )
            self.test_results[self.test_name] = stats
            metrics = {"wer": self.wer_metric, "cer": self.cer_metric}
            if self.ser_metric is not None:
                metrics["ser"] = self.ser_metric
            folder = self.hparams.output_folder
            write_utterance_errors(
                os.path.join(folder, f"utterances_{self.test_name}.csv"), metrics
            )
            if sb.utils.distributed.if_main_process():
                with open(os.path.join(folder, f"wer_{self.test_name}.txt"), "w") as w:
                    self.wer_metric.write_stats(w)
                if self.ser_metric is not None:
                    ser_file = os.path.join(folder, f"ser_{self.test_name}.txt")
                    with open(ser_file, "w", encoding="utf-8") as w:
                        self.ser_metric.write_stats(w)
