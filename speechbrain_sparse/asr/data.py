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
speechbrain_sparse.fileio.reading.ManifestError: ...bad.csv: missing column(s) spk_id...
"""

import logging

import speechbrain as sb
import torch

from speechbrain_sparse.asr.options import checked_options
from speechbrain_sparse.data.features import FeatureCache
from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.fileio import (
    ManifestError,
    check_audio_file,
    read_audio_checked,
    read_manifest,
    row_place,
)

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("ID", "duration", "wav", "spk_id", "wrd")

#: The sample rate (Hz) of the recipes' audio (their feature extractors').
SAMPLE_RATE = 16000


def check_manifest(csv_path, check_audio=True, sample_rate=SAMPLE_RATE):
    """Checks that ``csv_path`` is a usable ASR manifest.

    The file is UTF-8 with the :data:`REQUIRED_COLUMNS`, no ``ID`` twice and a
    transcript in every row (:func:`~speechbrain_sparse.fileio.read_manifest`);
    every wav has samples, is mono at ``sample_rate`` and lasts its
    ``duration`` (:func:`~speechbrain_sparse.fileio.check_audio_file`, from
    the header alone: about 0.1 ms a file).

    Arguments
    ---------
    csv_path : str or Path
        The manifest to check.
    check_audio : bool
        Also check every listed wav's header.
    sample_rate : int
        The rate the recipes read (Hz).

    Returns
    -------
    int
        The number of utterances in the manifest.

    Raises
    ------
    ManifestError
        Naming the file, the row (1-based, header excluded) and what is wrong.
    """
    rows = read_manifest(csv_path, REQUIRED_COLUMNS)
    for row_number, row in enumerate(rows, start=1):
        where = row_place(csv_path, row_number, row)
        if not (row["wrd"] or "").strip():
            raise ManifestError(f"{where}: empty transcript in column 'wrd'")
        if check_audio:
            check_audio_file(row["wav"], where, sample_rate, row["duration"])
    if not rows:
        raise ManifestError(f"{csv_path}: manifest has no utterances")
    return len(rows)


def check_manifests(hparams):
    """Checks every manifest of a stage (:func:`check_manifest`) before any work.

    Arguments
    ---------
    hparams : dict
        ``train_csv``, ``valid_csv`` and ``test_csvs`` (name -> manifest).

    Raises
    ------
    ManifestError
        For the first manifest that cannot be used.
    """
    for path in [hparams["train_csv"], hparams["valid_csv"],
                 *hparams["test_csvs"].values()]:
        count = check_manifest(path)
        logger.info("manifest %s: %d utterances", path, count)


def build_dataset(csv_path, tokenizer, hparams, sort=None, feature_cache=None):
    """Builds one ``DynamicItemDataset`` with audio (or feature) and token pipelines.

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
    feature_cache : speechbrain_sparse.data.features.FeatureCache, optional
        When given, items carry the cached ``feats`` instead of the waveform
        ``sig`` (see :func:`speechbrain_sparse.data.features.batch_features`).

    Returns
    -------
    speechbrain.dataio.dataset.DynamicItemDataset
    """
    dataset = sb.dataio.dataset.DynamicItemDataset.from_csv(csv_path=str(csv_path))
    hparams = checked_options(hparams)
    if sort or hparams["max_duration"]:
        dataset = dataset.filtered_sorted(
            sort_key="duration" if sort else None,
            reverse=sort == "descending",
            key_max_value={"duration": hparams["max_duration"] or float("inf")},
        )

    @sb.utils.data_pipeline.takes("wav")
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(wav):
        return read_audio_checked(wav)

    @sb.utils.data_pipeline.takes("id")
    @sb.utils.data_pipeline.provides("feats")
    def feature_pipeline(utt_id):
        return feature_cache[utt_id]

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

    if feature_cache is None:
        dataset.add_dynamic_item(audio_pipeline)
        signal_key = "sig"
    else:
        dataset.add_dynamic_item(feature_pipeline)
        signal_key = "feats"
    if hparams["bos_index"] is None:  # CTC only: no decoder input or target
        dataset.add_dynamic_item(ctc_text_pipeline)
        dataset.set_output_keys(["id", signal_key, "wrd", "tokens"])
        return dataset
    dataset.add_dynamic_item(text_pipeline)
    dataset.set_output_keys(
        ["id", signal_key, "wrd", "tokens_bos", "tokens_eos", "tokens"]
    )
    return dataset


def train_loader_options(hparams, train_set):
    """The training DataLoader options for the recipe's ``sorting``.

    ``ascending`` / ``descending``: the dataset is already sorted and batches
    keep that order every epoch. ``random``: a new random order every epoch
    (SpeechBrain's ``ReproducibleRandomSampler``, seeded by ``seed``).
    ``bucketed``: SpeechBrain's ``DynamicBatchSampler``: utterances of similar
    duration share a batch of at most ``max_batch_duration`` seconds of audio
    (``num_buckets`` length buckets), batches in a new random order every epoch;
    little padding and few distinct tensor shapes.

    Arguments
    ---------
    hparams : dict
        ``sorting``, ``train_dataloader_opts``, ``seed``; for ``bucketed`` also
        ``max_batch_duration`` and ``num_buckets``.
    train_set : speechbrain.dataio.dataset.DynamicItemDataset
        The training set (built by :func:`build_datasets`).

    Returns
    -------
    dict
        DataLoader keyword arguments for ``Brain.fit``.
    """
    hparams = checked_options(hparams)
    options = dict(hparams["train_dataloader_opts"])
    sorting, seed = hparams["sorting"], hparams["seed"]
    if sorting == "random":
        options["sampler"] = sb.dataio.sampler.ReproducibleRandomSampler(
            train_set, seed=seed
        )
        options.pop("shuffle", None)
    elif sorting == "bucketed":
        options.pop("batch_size", None)
        options.pop("shuffle", None)
        options["batch_sampler"] = sb.dataio.sampler.DynamicBatchSampler(
            train_set,
            max_batch_length=float(hparams["max_batch_duration"]),
            num_buckets=hparams["num_buckets"],
            length_func=lambda item: float(item["duration"]),
            shuffle=True,
            batch_ordering="random",
            seed=seed,
        )
    return options


def build_datasets(hparams, tokenizer, compute_features=None):
    """Builds train, valid and test datasets from manifests checked before.

    The manifests were checked by :func:`check_manifests` at the start of the
    stage (before the tokenizer reads them).

    Arguments
    ---------
    hparams : dict
        ``train_csv``, ``valid_csv`` and ``test_csvs`` (a mapping from a test
        set's name to its manifest), plus what :func:`build_dataset` needs.
        ``sorting`` (one of :data:`SORTINGS`) orders training (see
        :func:`train_loader_options`). ``feature_cache_folder`` (optional):
        compute each manifest's features once with ``compute_features`` and
        read them from there (:class:`~speechbrain_sparse.data.features.FeatureCache`).
    tokenizer : sentencepiece.SentencePieceProcessor
        Turns words into token ids.
    compute_features : callable, optional
        The feature extractor; needed with ``feature_cache_folder``.

    Returns
    -------
    tuple
        ``(train, valid, tests)`` where ``tests`` maps names to datasets.
    """
    manifests = [hparams["train_csv"], hparams["valid_csv"],
                 *hparams["test_csvs"].values()]
    hparams = checked_options(hparams)
    sorting = hparams["sorting"]
    caches = _feature_caches(hparams, manifests, compute_features)
    train = build_dataset(
        hparams["train_csv"],
        tokenizer,
        hparams,
        sort=sorting if sorting in ("ascending", "descending") else None,
        feature_cache=caches.get(str(hparams["train_csv"])),
    )

    def evaluation_set(path):
        return build_dataset(path, tokenizer, hparams, sort="descending",
                             feature_cache=caches.get(str(path)))

    valid = evaluation_set(hparams["valid_csv"])
    tests = {name: evaluation_set(path) for name, path in hparams["test_csvs"].items()}
    return train, valid, tests


def _feature_caches(hparams, manifests, compute_features):
    """Manifest path -> FeatureCache, built on the main process first (DDP)."""
    folder = hparams["feature_cache_folder"]
    if not folder:
        return {}
    if compute_features is None:
        raise UserInputError("feature_cache_folder needs the recipe's compute_features")
    def build():
        for path in manifests:
            FeatureCache(path, compute_features, folder)

    sb.utils.distributed.run_on_main(build)
    return {str(path): FeatureCache(path, compute_features, folder, progress=False)
            for path in manifests}
