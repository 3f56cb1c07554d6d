"""Manifests to SpeechBrain datasets for the Transformer ASR recipes.

A manifest is a SpeechBrain CSV with at least the columns
``ID,duration,wav,spk_id,wrd``. Every manifest is checked before training starts,
so that a bad corpus fails at once with a message that names the file, the row
and the column, never later with a stack trace from inside torch.

Example
-------
>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "bad.csv").write_text("ID,duration,wav,wrd\\nu1,1.0,x.wav,HI\\n")
>>> check_manifest(folder / "bad.csv")
Traceback (most recent call last):
...
speechbrain_sparse.asr.data.ManifestError: ...bad.csv: missing column(s) spk_id ...
"""

import csv
import logging
from pathlib import Path

import soundfile
import speechbrain as sb
import torch

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("ID", "duration", "wav", "spk_id", "wrd")


class ManifestError(ValueError):
    """A manifest (CSV) that cannot be used; the message names file and row."""


def check_manifest(csv_path, check_audio=True):
    """Checks that ``csv_path`` is a usable ASR manifest.

    Arguments
    ---------
    csv_path : str or Path
        The manifest to check.
    check_audio : bool
        Also open every listed wav (header only) to make sure it can be read.

    Returns
    -------
    int
        The number of utterances in the manifest.

    Raises
    ------
    ManifestError
        Naming the file, the row (1-based, header excluded) and what is wrong.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise ManifestError(f"{csv_path}: manifest not found")
    with open(csv_path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ManifestError(
                f"{csv_path}: missing column(s) {', '.join(missing)} "
                f"(found: {', '.join(reader.fieldnames or [])})"
            )
        count = 0
        for row_number, row in enumerate(reader, start=1):
            where = f"{csv_path}, row {row_number} (ID {row['ID']!r})"
            if not (row["wrd"] or "").strip():
                raise ManifestError(f"{where}: empty transcript in column 'wrd'")
            try:
                float(row["duration"])
            except (TypeError, ValueError):
                raise ManifestError(
                    f"{where}: column 'duration' is not a number: {row['duration']!r}"
                ) from None
            if check_audio:
                _check_audio(row["wav"], where)
            count += 1
    if count == 0:
        raise ManifestError(f"{csv_path}: manifest has no utterances")
    return count


def _check_audio(wav_path, where):
    """Raises ManifestError if ``wav_path`` is missing or unreadable."""
    if not Path(wav_path).is_file():
        raise ManifestError(f"{where}: audio file not found: {wav_path}")
    try:
        soundfile.info(wav_path)
    except (RuntimeError, soundfile.LibsndfileError) as error:
        raise ManifestError(f"{where}: cannot read audio {wav_path}: {error}") from None


def read_audio_checked(wav_path):
    """Reads a wav with SpeechBrain, turning a failure into a message naming it.

    Arguments
    ---------
    wav_path : str
        Path of the audio file.

    Returns
    -------
    torch.Tensor
        The signal, shape ``[samples]``.
    """
    try:
        return sb.dataio.dataio.read_audio(wav_path)
    except Exception as error:  # torchaudio/soundfile raise many types
        raise ManifestError(f"cannot read audio {wav_path}: {error}") from error


def build_dataset(csv_path, tokenizer, hparams, sort=None):
    """Builds one ``DynamicItemDataset`` with audio and token pipelines.

    Arguments
    ---------
    csv_path : str or Path
        A manifest that passed :func:`check_manifest`.
    tokenizer : sentencepiece.SentencePieceProcessor or CharacterCTCTokenizer
        Turns words into token ids (``encode_as_ids``).
    hparams : dict
        ``bos_index`` and ``eos_index`` add the decoder's ``tokens_bos`` and
        ``tokens_eos``; without ``bos_index`` only ``tokens`` (CTC models).
        ``max_duration`` (optional) drops longer utterances.
    sort : str or None
        ``"ascending"``, ``"descending"`` or None (keep manifest order).

    Returns
    -------
    speechbrain.dataio.dataset.DynamicItemDataset
    """
    dataset = sb.dataio.dataset.DynamicItemDataset.from_csv(csv_path=str(csv_path))
    if sort or hparams.get("max_duration"):
        dataset = dataset.filtered_sorted(
            sort_key="duration",
            reverse=sort == "descending",
            key_max_value={"duration": hparams.get("max_duration", float("inf"))},
        )

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(wav):
        return read_audio_checked(wav)

    @sb.utils.data_pipeline.takes("wrd")
    @sb.utils.data_pipeline.provides(
        "wrd", "tokens_list", "tokens_bos", "tokens_eos", "tokens"
    )
    def text_pipeline(wrd):
        yield wrd
        tokens_list = tokenizer.encode_as_ids(wrd)
        yield tokens_list
        yield torch.LongTensor([hparams["bos_index"]] + tokens_list)
        yield torch.LongTensor(tokens_list + [hparams["eos_index"]])
        yield torch.LongTensor(tokens_list)

    @sb.utils.data_pipeline.takes("wrd")
    @sb.utils.data_pipeline.provides("wrd", "tokens")
    def ctc_text_pipeline(wrd):
        yield wrd
        yield torch.LongTensor(tokenizer.encode_as_ids(wrd))

    dataset.add_dynamic_item(audio_pipeline)
    if hparams.get("bos_index") is None:  # CTC only: no decoder input or target
        dataset.add_dynamic_item(ctc_text_pipeline)
        dataset.set_output_keys(["id", "sig", "wrd", "tokens"])
        return dataset
    dataset.add_dynamic_item(text_pipeline)
    dataset.set_output_keys(["id", "sig", "wrd", "tokens_bos", "tokens_eos", "tokens"])
    return dataset


def build_datasets(hparams, tokenizer):
    """Checks the recipe's manifests and builds train, valid and test datasets.

    Arguments
    ---------
    hparams : dict
        ``train_csv``, ``valid_csv`` and ``test_csvs`` (a mapping from a test
        set's name to its manifest), plus what :func:`build_dataset` needs.
        ``sorting`` (``ascending``/``descending``/``random``) orders training.
    tokenizer : sentencepiece.SentencePieceProcessor
        Turns words into token ids.

    Returns
    -------
    tuple
        ``(train, valid, tests)`` where ``tests`` maps names to datasets.
    """
    for path in [
        hparams["train_csv"],
        hparams["valid_csv"],
        *hparams["test_csvs"].values(),
    ]:
        count = check_manifest(path)
        logger.info("manifest %s: %d utterances", path, count)
    sorting = hparams.get("sorting", "ascending")
    train = build_dataset(
        hparams["train_csv"],
        tokenizer,
        hparams,
        sort=None if sorting == "random" else sorting,
    )
    valid = build_dataset(hparams["valid_csv"], tokenizer, hparams, sort="descending")
    tests = {
        name: build_dataset(path, tokenizer, hparams, sort="descending")
        for name, path in hparams["test_csvs"].items()
    }
    return train, valid, tests
