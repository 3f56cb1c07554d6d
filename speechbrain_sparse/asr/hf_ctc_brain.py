"""A Hugging Face wav2vec2-family CTC model as a SpeechBrain ``Brain``.

``modules.model`` is a ``transformers`` ``Wav2Vec2ForCTC`` / ``HubertForCTC``
/ ``WavLMForCTC``; raw audio goes in the way the pruning code feeds it
(:class:`~speechbrain_sparse.pruning.model_families.HuggingFaceSSLFamily`:
per-utterance normalisation and the padding mask as the model's
``preprocessor_config.json`` says), so the model is trained, pruned and
evaluated on identical inputs. The loss is SpeechBrain's ``ctc_loss`` with
the ``<pad>`` blank over the real frames; decoding is the CTC best path,
scored with ``ErrorRateStats`` (WER, CER). Checkpoints keep the lowest
validation WER. Mask-aware training mixes in as for the Transformer ASR:
:class:`MaskedHuggingFaceCTCBrain`. A non-finite training loss stops the run
naming the batch's utterances, as for every
:class:`~speechbrain_sparse.asr.brain.ASRBrain` (stop, not skip: NaN never
reaches the weights).

Hyperparameters it reads: ``family``, ``epoch_counter``, ``train_logger``,
``output_folder``; optional ``lr_annealing`` (called with the optimizer after
each optimizer step) and ``keep_checkpoints``. Set ``self.tokenizer`` (a
:class:`~speechbrain_sparse.asr.ctc_characters.CharacterCTCTokenizer`) first.
"""

import os

import speechbrain as sb
import torch

from speechbrain_sparse.asr.brain import ASRBrain, write_utterance_errors
from speechbrain_sparse.training import MaskedTrainingMixin


def ctc_log_probs(family, model, batch):
    """Raw audio -> CTC log-probabilities and the relative lengths of the real frames.

    Arguments
    ---------
    family : HuggingFaceSSLFamily
        How audio goes into ``model`` (normalisation, padding mask).
    model : transformers.PreTrainedModel
        A ``*ForCTC`` model.
    batch : object
        With ``sig``: ``(waveforms [batch, samples], relative lengths)``.

    Returns
    -------
    tuple
        ``(log_probs [batch, frames, vocab], frame_lens [batch])``: what
        ``speechbrain.decoders.ctc_greedy_decode`` takes.
    """
    log_probs = torch.log_softmax(family.forward(model, batch).logits, dim=-1)
    real_frames = family.frame_mask(model, batch, log_probs.shape[1])
    frame_lens = real_frames.sum(1).float() / log_probs.shape[1]
    return log_probs, frame_lens


class HuggingFaceCTCBrain(ASRBrain):
    """Trains and evaluates a wav2vec2-family CTC model on characters."""

    checkpoint_key = {"min_key": "WER"}

    def compute_forward(self, batch, stage):
        """Raw audio -> log-probabilities and the relative lengths of the frames."""
        batch = batch.to(self.device)
        return ctc_log_probs(self.hparams.family, self.modules.model, batch)

    def compute_objectives(self, predictions, batch, stage):
        """CTC loss; best-path hypotheses scored on validation and test."""
        log_probs, frame_lens = predictions
        tokens, token_lens = batch.tokens
        loss = sb.nnet.losses.ctc_loss(log_probs, tokens, frame_lens, token_lens,
                                       blank_index=self.tokenizer.blank_index)
        if stage != sb.Stage.TRAIN:
            hyps = sb.decoders.ctc_greedy_decode(log_probs.detach(), frame_lens,
                                                 blank_id=self.tokenizer.blank_index)
            predicted = [self.tokenizer.decode_ids(ids).split() for ids in hyps]
            targets = [words.split() for words in batch.wrd]
            self.wer_metric.append(batch.id, predicted, targets)
            self.cer_metric.append(batch.id, predicted, targets)
        return loss

    def on_stage_start(self, stage, epoch=None):
        """Fresh WER and CER trackers for validation and test."""
        if stage != sb.Stage.TRAIN:
            self.wer_metric = sb.utils.metric_stats.ErrorRateStats()
            self.cer_metric = sb.utils.metric_stats.ErrorRateStats(split_tokens=True)

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Logs; checkpoints on validation (lowest WER kept); WER files on test."""
        stats = {"loss": stage_loss}
        if stage == sb.Stage.TRAIN:
            self.train_stats = stats
            return
        stats["WER"] = self.wer_metric.summarize("error_rate")
        stats["CER"] = self.cer_metric.summarize("error_rate")
        if stage == sb.Stage.VALID:
            self.hparams.train_logger.log_stats(
                stats_meta={"epoch": epoch, "lr": self.optimizer.param_groups[0]["lr"]},
                train_stats=self.train_stats, valid_stats=stats)
            self.checkpointer.save_and_keep_only(
                meta={"WER": stats["WER"], "epoch": epoch}, min_keys=["WER"],
                num_to_keep=self.hparams.keep_checkpoints)
        elif stage == sb.Stage.TEST:
            self.hparams.train_logger.log_stats(
                stats_meta={"test set": self.test_name,
                            "checkpoint epoch": self.hparams.epoch_counter.current},
                test_stats=stats)
            self.test_results[self.test_name] = stats
            write_utterance_errors(
                os.path.join(self.hparams.output_folder,
                             f"utterances_{self.test_name}.csv"),
                {"wer": self.wer_metric, "cer": self.cer_metric})
            if sb.utils.distributed.if_main_process():
                path = os.path.join(self.hparams.output_folder,
                                    f"wer_{self.test_name}.txt")
                with open(path, "w", encoding="utf-8") as handle:
                    self.wer_metric.write_stats(handle)


class MaskedHuggingFaceCTCBrain(MaskedTrainingMixin, HuggingFaceCTCBrain):
    """The wav2vec2-family CTC Brain with a parameter mask enforced while training."""
