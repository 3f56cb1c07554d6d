"""Measures how fast ``sb-sparse synth`` makes audio, as a multiple of real time.

Builds a fresh corpus of about ``--utterances`` utterances (source, two targets, all
splits, in the proportions of the presets) into a temporary folder with ``--workers``
processes, and divides the seconds of audio made by the wall-clock seconds of the
whole build (synthesis, degradation, writing wavs and manifests). ``cpu_xrt`` divides
by the CPU seconds of this process and its children instead (the speed per busy core,
useful on a shared machine where the wall clock depends on the neighbours' load).

Usage: ``python tools/bench/synth_speed.py [--utterances 1000] [--workers 2]``
Last line: ``RESULT synth_xrt=<float> audio_s=<float> wall_s=<float> workers=<int>
cpu_xrt=<float>``
"""

import argparse
import json
import logging
import resource
import tempfile
import time
from pathlib import Path

from speechbrain_sparse.data.synth import build_corpus


def bench_sizes(utterances):
    """Splits ``utterances`` over roles and splits, about like the ``tiny`` preset.

    Example
    -------
    >>> bench_sizes(1000)["source"]["train"]
    [10, 500]
    """
    share = {"train": (0.5, 0.1), "dev": (0.05, 0.05), "test": (0.05, 0.05)}
    sizes = {"source": {}, "target": {}}
    for split, (source_share, target_share) in share.items():
        for role, fraction in (("source", source_share), ("target", target_share)):
            count = max(1, round(utterances * fraction))
            sizes[role][split] = [max(1, min(count // 50, 40)), count]
    return sizes


def cpu_seconds():
    """User + system CPU seconds of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--utterances", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    with tempfile.TemporaryDirectory(prefix="synth_speed_") as folder:
        start, cpu_start = time.perf_counter(), cpu_seconds()
        root = build_corpus(
            Path(folder) / "corpus",
            seed=args.seed,
            num_workers=args.workers,
            sizes=bench_sizes(args.utterances),
        )
        wall = time.perf_counter() - start
        cpu = cpu_seconds() - cpu_start
        corpus = json.loads((root / "corpus.json").read_text())
    utterances = sum(
        split["utterances"] for d in corpus["stats"].values() for split in d.values()
    )
    audio = corpus["total_hours"] * 3600
    print(
        f"{utterances} utterances, {audio / 3600:.3f} h of audio in {wall:.1f} s "
        f"({cpu:.1f} CPU s)"
    )
    print(
        f"RESULT synth_xrt={audio / wall:.1f} audio_s={audio:.1f} wall_s={wall:.2f} "
        f"workers={args.workers} cpu_xrt={audio / cpu:.1f}"
    )


if __name__ == "__main__":
    main()
