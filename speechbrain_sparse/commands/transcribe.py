"""``sb-sparse transcribe``: decode audio with a model folder, score it on references.

Works on a model folder of the Transformer recipes (through SpeechBrain's
``EncoderDecoderASR`` and the folder's ``hyperparams.yaml``, see
:mod:`speechbrain_sparse.asr.inference`) and on a Hugging Face CTC folder
(``config.json`` + ``vocab.json``, CTC best path)::

    sb-sparse transcribe results/.../model a.wav b.wav
    sb-sparse transcribe results/.../model --manifest test.csv --out hyps.tsv

Audio files are decoded in batches (longest first, padded; resampled to 16 kHz
mono as SpeechBrain's inference classes do) with a progress bar on a terminal.
``--batch-size 1`` reproduces the recipe's test hypotheses exactly (its
features are computed per utterance); larger batches pad the waveforms, which
can change the features of an utterance's last frames. Each hypothesis is
written as ``ID<TAB>text`` in input order (an audio file's
ID is its name without extension), to stdout or atomically to ``--out``. A
manifest (``ID,wav`` and optionally ``wrd``, the reference) with references
also gets WER and CER (and the Tibetan syllable error rate with
``--syllables``), computed with SpeechBrain's ``ErrorRateStats``
(:func:`speechbrain_sparse.metrics.error_rate_stats`) and printed on stderr.
``--delta`` patches the loaded model with a sparse delta first.

Example
-------
>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> add_arguments(parser)
>>> args = parser.parse_args(["model", "a.wav", "--decoding", "ctc_greedy"])
>>> args.audio, args.decoding, args.batch_size, args.device
(['a.wav'], 'ctc_greedy', 8, 'cpu')
"""

import logging
import sys
from pathlib import Path

from speechbrain_sparse.commands import UserError
from speechbrain_sparse.errors import MissingInputError

NAME = "transcribe"
HELP = "transcribe audio with a model folder (Transformer ASR or Hugging Face CTC)"
SAMPLE_RATE = 16000

logger = logging.getLogger(__name__)


def add_arguments(parser):
    """Adds ``transcribe``'s arguments to ``parser``."""
    parser.add_argument("model", help="model folder: Transformer ASR (hyperparams."
                        "yaml) or Hugging Face CTC (config.json, vocab.json)")
    parser.add_argument("audio", nargs="*", help="audio files to transcribe")
    parser.add_argument("--manifest", default=None,
                        help="CSV with ID and wav columns (wrd: references, scored)")
    parser.add_argument("--decoding", choices=("beam", "ctc_greedy"), default=None,
                        help="beam: the recipe's joint CTC/attention beam search "
                             "(Transformer default); ctc_greedy: CTC best path")
    parser.add_argument("--batch-size", type=int, default=8,
                        help="utterances decoded together (default 8)")
    parser.add_argument("--device", default="cpu", help="e.g. cpu, cuda:0")
    parser.add_argument("--out", default=None,
                        help="write ID<TAB>text lines here instead of stdout")
    parser.add_argument("--syllables", action="store_true",
                        help="also the Tibetan syllable error rate (SER)")
    parser.add_argument("--delta", default=None,
                        help="sparse delta applied to the model before decoding")


def utterances_to_transcribe(args):
    """``[(ID, wav path, reference or None)]`` from the audio files or the manifest.

    Raises
    ------
    UserError
        Neither or both of audio files and ``--manifest``.
    MissingInputError, ManifestError
        A missing audio file or manifest, a manifest without ``ID``/``wav``.
    """
    from speechbrain_sparse.fileio import read_manifest

    if bool(args.audio) == bool(args.manifest):
        raise UserError("give audio files or --manifest CSV (one of the two)")
    if args.manifest:
        rows = read_manifest(args.manifest, required=("ID", "wav"))
        return [(row["ID"], row["wav"], row.get("wrd")) for row in rows]
    return [(Path(path).stem, path, None) for path in args.audio]


def check_audio(utterances, manifest=None):
    """Checks every audio file before the model loads; returns their headers."""
    from speechbrain_sparse.fileio import check_audio_file, row_place

    infos = []
    for number, (utterance, path, _) in enumerate(utterances, start=1):
        where = (row_place(manifest, number, {"ID": utterance}) if manifest
                 else None)
        if not manifest and not Path(path).is_file():
            raise MissingInputError(f"{path}: audio file not found")
        infos.append(check_audio_file(path, where))
    return infos


def batches(utterances, infos, batch_size):
    """Indices of the utterances in batches of similar length, longest first."""
    order = sorted(range(len(utterances)),
                   key=lambda i: -infos[i].frames / infos[i].samplerate)
    return [order[start:start + batch_size]
            for start in range(0, len(order), batch_size)]


def load_batch(paths, infos):
    """Padded 16 kHz mono waveforms and their relative lengths."""
    from speechbrain.dataio.preprocess import AudioNormalizer
    from speechbrain.utils.data_utils import batch_pad_right

    from speechbrain_sparse.fileio import read_audio_checked

    normalize = AudioNormalizer(sample_rate=SAMPLE_RATE)
    signals = [normalize(read_audio_checked(path), info.samplerate)
               for path, info in zip(paths, infos)]
    return batch_pad_right(signals)


def transcribe(transcriber, utterances, infos, batch_size):
    """Hypothesis texts in the order of ``utterances``."""
    from tqdm import tqdm

    hypotheses = [None] * len(utterances)
    for indices in tqdm(batches(utterances, infos, batch_size), desc="transcribe",
                        unit="batch", disable=None):
        wavs, wav_lens = load_batch([utterances[i][1] for i in indices],
                                    [infos[i] for i in indices])
        for index, text in zip(indices, transcriber(wavs, wav_lens)):
            hypotheses[index] = text
    return hypotheses


def error_rates(utterances, hypotheses, syllables=False):
    """``{"WER": stats, "CER": stats[, "SER": stats]}`` (ErrorRateStats summaries)."""
    from speechbrain_sparse.metrics import error_rate_stats

    ids = [utterance for utterance, _, _ in utterances]
    references = [reference for _, _, reference in utterances]
    units = {"WER": "word", "CER": "character"}
    if syllables:
        units["SER"] = "syllable"
    return {name: error_rate_stats(hypotheses, references, unit, ids).summarize()
            for name, unit in units.items()}


def apply_delta_hook(model, delta_path):
    """Patches ``model``'s parameters in place with the sparse delta ``delta_path``.

    The hook for ``--delta``: :func:`speechbrain_sparse.delta.apply_delta`
    (imported here, so that ``transcribe`` works without that module).
    """
    from speechbrain_sparse.delta import apply_delta

    apply_delta(model, delta_path)


def _check_paths(args):
    """Fails before any work on a missing ``--out`` folder or ``--delta`` file."""
    if args.out is not None and not Path(args.out).resolve().parent.is_dir():
        raise MissingInputError(f"--out: folder {Path(args.out).parent} does not "
                                "exist")
    if args.delta is not None and not Path(args.delta).is_file():
        raise MissingInputError(f"--delta: {args.delta}: delta file not found")


def run(args):
    """Runs ``sb-sparse transcribe``; returns the exit status."""
    from speechbrain_sparse.asr.inference import load_transcriber
    from speechbrain_sparse.fileio import write_text_atomic

    if args.batch_size < 1:
        raise UserError(f"--batch-size: must be at least 1, not {args.batch_size}")
    _check_paths(args)
    utterances = utterances_to_transcribe(args)
    infos = check_audio(utterances, args.manifest)
    transcriber = load_transcriber(args.model, args.decoding, args.device)
    if args.delta is not None:
        apply_delta_hook(transcriber.model, args.delta)
    hypotheses = transcribe(transcriber, utterances, infos, args.batch_size)

    lines = "".join(f"{utterance}\t{text}\n"
                    for (utterance, _, _), text in zip(utterances, hypotheses))
    if args.out is not None:
        write_text_atomic(args.out, lines)
        logger.info("%d hypotheses written to %s", len(hypotheses), args.out)
    else:
        sys.stdout.write(lines)
    if all(reference is not None for _, _, reference in utterances):
        for name, stats in error_rates(utterances, hypotheses,
                                       args.syllables).items():
            print(f"{name} {stats['error_rate']:.2f} [ {stats['num_edits']} / "
                  f"{stats['num_scored_tokens']}, {stats['insertions']} ins, "
                  f"{stats['deletions']} del, {stats['substitutions']} sub ]",
                  file=sys.stderr)
    return 0
