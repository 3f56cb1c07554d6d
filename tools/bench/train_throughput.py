"""Training throughput of the tiny pretraining: the old data pipeline vs the new one.

Both configurations train the synthetic recipe's ``pretrain_tiny.yaml`` model
(same weights at the start, same optimiser and schedule) for one epoch on the
same utterances of the source dialect's training manifest, each in a fresh
process, one after the other:

* ``before``: what the recipe did until this benchmark was written: Fbank
  features computed on every batch from the waveforms, batches of 16 in
  ascending duration, 2 DataLoader worker processes, glibc's default
  allocator thresholds, dropout 0.1 in the Transformer and the CNN front-end;
* ``after``: the recipe's defaults now: features computed once per manifest
  and memory-mapped (``feature_cache_folder``), bucketed batches of at most
  ``max_batch_duration`` seconds in random order (``sorting: bucketed``), no
  worker processes, freed memory kept in the process
  (:func:`speechbrain_sparse.allocator.keep_freed_memory`), no dropout (the tiny
  YAMLs' ``transformer_dropout: 0.0``, ``cnn_dropout: 0.0``).

Reported per configuration: utterance-seconds of audio trained per wall
second of the epoch, user and system CPU seconds (the process and its
DataLoader workers), minor page faults, and the peak resident set of the
process. The one-time feature computation of ``after`` is timed separately.
Ends with ``RESULT speedup=... before_audio_s_per_s=... ...``.

Usage (from the repository root)::

    python tools/bench/train_throughput.py      # tiny corpus, 1500 utterances
    python tools/bench/train_throughput.py --utterances 300 --preset micro
"""

import argparse
import csv
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from speechbrain_sparse.fileio import write_csv_atomic  # noqa: E402

RECIPE = REPO / "recipes" / "Synthetic" / "ASR" / "transformer"

CONFIGS = {
    "before": {"sorting": "ascending", "batch_size": 16, "num_workers": 2,
               "feature_cache_folder": None, "keep_freed_memory": False,
               "dropout": 0.1},
    "after": {"sorting": "bucketed", "num_workers": 0,
              "feature_cache_folder": "features", "keep_freed_memory": True,
              "dropout": 0.0},
}


def _usage():
    """(user s, system s, minor faults) of this process and its reaped children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (own.ru_utime + children.ru_utime, own.ru_stime + children.ru_stime,
            own.ru_minflt + children.ru_minflt)


def worker(config_name, train_csv, work_dir, threads):
    """Trains one epoch in this process; prints a JSON line of measurements."""
    import torch
    from hyperpyyaml import load_hyperpyyaml

    from speechbrain_sparse.allocator import keep_freed_memory
    from speechbrain_sparse.asr.brain import TransformerASRBrain
    from speechbrain_sparse.asr.data import build_dataset, train_loader_options
    from speechbrain_sparse.asr.experiment import prepare_tokenizer
    from speechbrain_sparse.asr.options import checked_options
    from speechbrain_sparse.data.features import FeatureCache

    torch.set_num_threads(threads)
    config = CONFIGS[config_name]
    if config["keep_freed_memory"]:
        keep_freed_memory()
    overrides = {"output_folder": str(Path(work_dir) / config_name),
                 "number_of_epochs": 1, "seed": 1234,
                 "transformer_dropout": config["dropout"],
                 "cnn_dropout": config["dropout"]}
    with open(RECIPE / "hparams" / "pretrain_tiny.yaml", encoding="utf-8") as handle:
        hparams = load_hyperpyyaml(handle, overrides)
    hparams = {**checked_options(hparams), "train_csv": train_csv,
               "sorting": config["sorting"],
               "train_dataloader_opts": {"num_workers": config["num_workers"],
                                         "batch_size": config.get("batch_size", 16)}}
    tokenizer, _ = prepare_tokenizer(hparams)  # the recipe's SentencePiece, untimed

    cache, cache_seconds = None, 0.0
    if config["feature_cache_folder"]:
        started = time.time()
        cache = FeatureCache(train_csv, hparams["compute_features"],
                             Path(work_dir) / config["feature_cache_folder"],
                             progress=False)
        cache_seconds = time.time() - started
    sort = hparams["sorting"] if hparams["sorting"] != "bucketed" else None
    train_set = build_dataset(train_csv, tokenizer, hparams, sort=sort,
                              feature_cache=cache)
    brain = TransformerASRBrain(modules=hparams["modules"],
                                opt_class=hparams["opt_class"], hparams=hparams,
                                run_opts={"device": "cpu"}, checkpointer=None)
    brain.tokenizer = tokenizer
    loader_options = train_loader_options(hparams, train_set)
    user0, system0, faults0 = _usage()
    started = time.time()
    brain.fit(range(1), train_set, None, train_loader_kwargs=loader_options,
              progressbar=False)
    wall = time.time() - started
    user1, system1, faults1 = _usage()
    own_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    with open(train_csv, newline="", encoding="utf-8") as handle:
        audio = sum(float(row["duration"]) for row in csv.DictReader(handle))
    print(json.dumps({
        "config": config_name, "wall_s": wall, "audio_s": audio,
        "user_s": user1 - user0, "system_s": system1 - system0,
        "minor_faults": faults1 - faults0, "cache_s": cache_seconds,
        "peak_rss_gib": max(own_peak, child_peak) / 1024 ** 2,
        "final_loss": float(brain.train_stats["loss"]) if hasattr(
            brain, "train_stats") else None,
    }), flush=True)


def subset_manifest(source_csv, count, out_csv):
    """The first ``count`` rows of a manifest (manifest order: mixed durations)."""
    with open(source_csv, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        rows = [row for _, row in zip(range(count), reader)]
        fields = reader.fieldnames
    write_csv_atomic(out_csv, rows, fields)
    return out_csv


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tiny", help="synthetic corpus preset")
    parser.add_argument("--corpus", help="corpus folder (default corpora/synthetic_"
                                         "<preset>_0, built when missing)")
    parser.add_argument("--utterances", type=int, default=1500,
                        help="training utterances of the source dialect")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--worker", choices=sorted(CONFIGS), help=argparse.SUPPRESS)
    parser.add_argument("--train-csv", help=argparse.SUPPRESS)
    parser.add_argument("--work-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.train_csv, args.work_dir, args.threads)
        return 0

    from speechbrain_sparse.data.synth import build_corpus

    corpus = Path(args.corpus or REPO / "corpora" / f"synthetic_{args.preset}_0")
    build_corpus(corpus, preset=args.preset, seed=0)
    work_dir = Path(tempfile.mkdtemp(prefix="train_throughput_"))
    train_csv = subset_manifest(corpus / "en-us" / "train.csv", args.utterances,
                                work_dir / "train.csv")
    measured = {}
    for name in ("before", "after"):
        command = [sys.executable, __file__, "--worker", name, "--train-csv",
                   str(train_csv), "--work-dir", str(work_dir),
                   "--threads", str(args.threads)]
        output = subprocess.run(command, check=True, capture_output=True, text=True)
        measured[name] = json.loads(output.stdout.strip().splitlines()[-1])
        m = measured[name]
        print(f"{name:>6}: {m['wall_s']:.1f} s for {m['audio_s'] / 60:.1f} min of "
              f"audio ({m['audio_s'] / m['wall_s']:.1f} audio-s/s), user "
              f"{m['user_s']:.1f} s, system {m['system_s']:.1f} s "
              f"({100 * m['system_s'] / max(m['user_s'], 1e-9):.1f} % of user), "
              f"{m['minor_faults']:,} minor faults, "
              f"peak RSS {m['peak_rss_gib']:.2f} GiB"
              + (f", features cached once in {m['cache_s']:.1f} s"
                 if m["cache_s"] else ""), flush=True)
    before, after = measured["before"], measured["after"]
    rate = {name: m["audio_s"] / m["wall_s"] for name, m in measured.items()}
    print(f"RESULT speedup={rate['after'] / rate['before']:.2f} "
          f"before_audio_s_per_s={rate['before']:.2f} "
          f"after_audio_s_per_s={rate['after']:.2f} "
          f"before_sys_pct_of_user={100 * before['system_s'] / before['user_s']:.1f} "
          f"after_sys_pct_of_user={100 * after['system_s'] / after['user_s']:.1f} "
          f"before_peak_rss_gib={before['peak_rss_gib']:.2f} "
          f"after_peak_rss_gib={after['peak_rss_gib']:.2f} "
          f"after_cache_s={after['cache_s']:.1f} utterances={args.utterances} "
          f"threads={args.threads}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
