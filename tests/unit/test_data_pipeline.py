"""The training data pipeline: cached features, orderings, the allocator setting."""

import csv
import threading

import numpy as np
import pytest
import soundfile
import speechbrain as sb
import torch
from speechbrain.lobes.features import Fbank

from speechbrain_sparse.allocator import keep_freed_memory
from speechbrain_sparse.asr.data import (
    build_dataset,
    build_datasets,
    train_loader_options,
)
from speechbrain_sparse.data.features import FeatureCache, batch_features

DURATIONS = [0.9, 0.3, 1.5, 0.6, 1.2, 0.45, 0.75, 1.05, 0.5, 1.35, 0.2, 0.8]


class CharTokenizer:
    """Letters -> ids (enough for the text pipeline)."""

    def encode_as_ids(self, text):
        return [3 + ord(c) % 20 for c in text]


def write_manifest(folder, name="train", durations=DURATIONS, seed=0):
    """Noise wavs of the given durations and their manifest."""
    rng = np.random.default_rng(seed)
    rows = []
    for index, duration in enumerate(durations):
        wav = folder / f"{name}_{index}.wav"
        soundfile.write(wav, 0.1 * rng.standard_normal(int(16000 * duration)), 16000)
        rows.append({"ID": f"{name}{index}", "duration": duration, "wav": str(wav),
                     "spk_id": "s", "wrd": "HELLO WORLD"})
    path = folder / f"{name}.csv"
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["ID", "duration", "wav", "spk_id", "wrd"])
        writer.writeheader()
        writer.writerows(rows)
    return path


HPARAMS = {"bos_index": 1, "eos_index": 2, "seed": 3,
           "train_dataloader_opts": {"batch_size": 3, "num_workers": 0}}


def epoch_order(dataset, hparams, epoch, brain_free=True):
    """The utterance IDs of one epoch, batch by batch, as the loader yields them."""
    options = train_loader_options({**HPARAMS, **hparams}, dataset)
    for key in ("sampler", "batch_sampler"):
        if key in options and hasattr(options[key], "set_epoch"):
            options[key].set_epoch(epoch)
    loader = sb.dataio.dataloader.make_dataloader(dataset, **options)
    return [list(batch.id) for batch in loader]


def test_cached_features_equal_features_of_each_utterance(tmp_path):
    manifest = write_manifest(tmp_path)
    fbank = Fbank(n_mels=40)
    cache = FeatureCache(manifest, fbank, tmp_path / "cache", progress=False)
    assert len(cache) == len(DURATIONS)
    for index in (0, 5):
        signal = sb.dataio.dataio.read_audio(str(tmp_path / f"train_{index}.wav"))
        expected = fbank(signal.unsqueeze(0).float())[0]
        assert torch.equal(cache[f"train{index}"], expected)


def test_cache_is_reused_and_keyed_by_extractor_and_manifest(tmp_path):
    manifest = write_manifest(tmp_path)
    first = FeatureCache(manifest, Fbank(n_mels=40), tmp_path / "cache", progress=False)
    stamp = first.path.stat().st_mtime_ns
    again = FeatureCache(manifest, Fbank(n_mels=40), tmp_path / "cache", progress=False)
    assert again.path == first.path and again.path.stat().st_mtime_ns == stamp
    other = FeatureCache(manifest, Fbank(n_mels=24), tmp_path / "cache", progress=False)
    assert other.path != first.path and other["train0"].shape[1] == 24
    write_manifest(tmp_path, durations=DURATIONS[:4])  # another manifest content
    changed = FeatureCache(manifest, Fbank(n_mels=40), tmp_path / "cache",
                           progress=False)
    assert changed.path != first.path and len(changed) == 4


def test_concurrent_builders_write_one_complete_file(tmp_path):
    manifest = write_manifest(tmp_path)
    caches, errors = [], []

    def build():
        try:
            caches.append(FeatureCache(manifest, Fbank(n_mels=40), tmp_path / "c",
                                       progress=False))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert [p.name for p in (tmp_path / "c").glob("*.pt")] == [caches[0].path.name]
    assert not list((tmp_path / "c").glob(".*tmp*"))
    assert torch.equal(caches[0]["train3"], caches[1]["train3"])


def test_batches_of_cached_and_computed_features_agree(tmp_path):
    manifest = write_manifest(tmp_path, durations=[0.5, 0.5])
    fbank = Fbank(n_mels=40)
    cache = FeatureCache(manifest, fbank, tmp_path / "cache", progress=False)
    cached = build_dataset(manifest, CharTokenizer(), HPARAMS, feature_cache=cache)
    plain = build_dataset(manifest, CharTokenizer(), HPARAMS)
    collate = sb.dataio.batch.PaddedBatch
    feats, lens = batch_features(collate([cached[0], cached[1]]), fbank)
    computed, computed_lens = batch_features(collate([plain[0], plain[1]]), fbank)
    assert torch.equal(lens, computed_lens)
    assert torch.allclose(feats, computed, atol=1e-4)


def test_ascending_sorts_and_keeps_the_order_every_epoch(tmp_path):
    dataset = build_dataset(write_manifest(tmp_path), CharTokenizer(), HPARAMS,
                            sort="ascending")
    first = epoch_order(dataset, {"sorting": "ascending"}, 0)
    flat = [utt for batch in first for utt in batch]
    durations = [DURATIONS[int(utt[5:])] for utt in flat]
    assert durations == sorted(durations)
    assert epoch_order(dataset, {"sorting": "ascending"}, 1) == first


def test_random_really_shuffles_differently_each_epoch(tmp_path):
    dataset = build_dataset(write_manifest(tmp_path), CharTokenizer(), HPARAMS)
    orders = [sum(epoch_order(dataset, {"sorting": "random"}, e), []) for e in (0, 1)]
    assert sorted(orders[0]) == sorted(orders[1]) == sorted(dataset.data_ids)
    assert orders[0] != orders[1]
    durations = [DURATIONS[int(utt[5:])] for utt in orders[0]]
    assert durations != sorted(durations)
    # the same seed and epoch give the same order (resumable)
    assert sum(epoch_order(dataset, {"sorting": "random"}, 1), []) == orders[1]


def test_bucketed_batches_bound_the_audio_and_change_order(tmp_path):
    dataset = build_dataset(write_manifest(tmp_path), CharTokenizer(), HPARAMS)
    bucketed = {"sorting": "bucketed", "max_batch_duration": 2.0, "num_buckets": 3}
    epochs = [epoch_order(dataset, bucketed, e) for e in (0, 1)]
    for batches in epochs:
        assert sorted(sum(batches, [])) == sorted(dataset.data_ids)
        for batch in batches:
            assert sum(DURATIONS[int(utt[5:])] for utt in batch) <= 2.0 + 1e-9
    assert epochs[0] != epochs[1]


def test_unknown_sorting_is_named(tmp_path):
    manifest = write_manifest(tmp_path)
    hparams = {**HPARAMS, "sorting": "shuffled", "train_csv": manifest,
               "valid_csv": manifest, "test_csvs": {}}
    with pytest.raises(ValueError, match="sorting: must be one of .* not 'shuffled'"):
        build_datasets(hparams, CharTokenizer())


def test_build_datasets_serves_cached_features(tmp_path):
    manifest = write_manifest(tmp_path)
    hparams = {**HPARAMS, "sorting": "bucketed", "train_csv": manifest,
               "valid_csv": manifest, "test_csvs": {"t": manifest},
               "feature_cache_folder": str(tmp_path / "features")}
    train, valid, tests = build_datasets(hparams, CharTokenizer(), Fbank(n_mels=40))
    assert train[0]["feats"].shape[1] == 40 and "sig" not in train[0]
    assert tests["t"][0]["feats"].shape[1] == 40
    assert len(list((tmp_path / "features").glob("*.pt"))) == 1  # one manifest


def test_keep_freed_memory_applies_on_glibc():
    import platform

    applied = keep_freed_memory()
    assert applied == (platform.libc_ver()[0] == "glibc")


@pytest.mark.parametrize("sorting", ["random", "bucketed"])
def test_brain_fit_gives_each_epoch_its_own_order(tmp_path, sorting):
    """Through ``Brain.fit`` (no manual ``set_epoch``), as the recipes train."""
    from speechbrain_sparse.asr.brain import ASRBrain

    class Recorder(ASRBrain):
        def compute_forward(self, batch, stage):
            self.seen.setdefault(self.hparams.epoch_counter.current, []).extend(
                batch.id)
            return self.modules.lin.weight.sum()

        def compute_objectives(self, predictions, batch, stage):
            return predictions ** 2

    dataset = build_dataset(write_manifest(tmp_path), CharTokenizer(), HPARAMS)
    hparams = {**HPARAMS, "sorting": sorting, "max_batch_duration": 2.0,
               "num_buckets": 3, "epoch_counter": sb.utils.epoch_loop.EpochCounter(3),
               "lr_annealing": None}
    brain = Recorder({"lin": torch.nn.Linear(1, 1)},
                     lambda params: torch.optim.SGD(params, 0.0), hparams=hparams,
                     run_opts={"device": "cpu", "noprogressbar": True})
    brain.seen = {}
    brain.fit(brain.hparams.epoch_counter, dataset,
              train_loader_kwargs=train_loader_options(hparams, dataset))
    orders = [brain.seen[epoch] for epoch in (1, 2, 3)]
    assert all(sorted(order) == sorted(dataset.data_ids) for order in orders)
    assert orders[0] != orders[1] and orders[1] != orders[2]
