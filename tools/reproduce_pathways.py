#!/usr/bin/env python3
"""Reproduce the Dynamic ASR Pathways paper's Tables 1-3 in one command.

Builds the multilingual synthetic corpus, then runs the paper's matrix with the
pathways recipe (``recipes/SyntheticMultilingual/ASR/pathways``;
:mod:`speechbrain_sparse.reproduction.pathways_plan`): the dense multilingual
model, the dense monolingual references, LAP, IMP and LTH per language,
adaptive IMP / LTH, ASR Pathways and Dynamic ASR Pathways from LTH and LAP
masks, 70 % sparsity everywhere. Writes under ``<out>/report/``: Tables 1-3
(test WER per language and average, CER alongside; Markdown and CSV), the
Jaccard heatmaps of the language masks and ``report.md`` judging the paper's
claims with a paired bootstrap over the test utterances. Finished runs are
reused, interrupted ones resume, a failed run is reported and the others go on
(:class:`~speechbrain_sparse.reproduction.runner.MatrixRunner`).

Usage::

    python tools/reproduce_pathways.py --preset micro --out /tmp/pathways_micro
    python tools/reproduce_pathways.py --preset tiny --workers 2 --threads 2

Presets: ``micro`` (CI: ``ml_micro``, French and Dutch, a few steps per stage;
its numbers mean nothing) and ``tiny`` (``ml_tiny``: English, French, Italian,
Dutch, ~1 h of speech each; T = 200 steps, n = 50).

Exit status: 0 when every run finished (or was reused), 1 when some failed,
2 on bad arguments.
"""

import argparse
import logging
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from speechbrain_sparse.reproduction.pathways_plan import pathway_runs  # noqa: E402
from speechbrain_sparse.reproduction.pathways_tables import write_report  # noqa: E402
from speechbrain_sparse.reproduction.runner import (  # noqa: E402
    CACHED,
    FINISHED,
    MatrixRunner,
    summarize_status,
)

RECIPE = REPO / "recipes" / "SyntheticMultilingual" / "ASR" / "pathways"
PRESETS = {
    "micro": {  # CI: ~21 runs of a few steps each
        "corpus_preset": "ml_micro", "languages": ["fr", "nl"],
        "bilingual": ["fr", "nl"],
        # beam 1 (greedy CTC gives every micro model the same empty output)
        "common": {"test_beam_size": 1, "valid_search_every": 0,
                   "eval_splits": ["test"],
                   # a width-32 model: the plumbing, in seconds per run
                   "d_model": 32, "nhead": 2, "d_ffn": 64, "num_encoder_layers": 2,
                   "num_decoder_layers": 1},
        "dense": {"number_of_epochs": 2, "n_warmup_steps": 20},
        "dense_mono": {"d_model": 16, "d_ffn": 32},
        "masked": {"prune_interval": 2, "rerank_every": 1, "num_intervals": 2},
        "pathways": {"train_steps": 4},
    },
    "tiny": {  # the paper's four languages, ~1 h of training speech each
        "corpus_preset": "ml_tiny", "languages": ["en", "fr", "it", "nl"],
        "bilingual": ["fr", "nl"],
        "common": {"test_beam_size": 1, "valid_search_every": 0,
                   "eval_splits": ["test"]},
        "dense": {"number_of_epochs": 8, "n_warmup_steps": 300},
        "masked": {},  # the YAMLs' T = 200, n = 50, R = 4
    },
}


def top_level_keys(yaml_file):
    """The top-level keys of a YAML file."""
    with open(yaml_file, encoding="utf-8") as handle:
        return {m.group(1) for m in (re.match(r"([A-Za-z_]\w*):", line)
                                     for line in handle) if m}


def parse_arguments(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="micro")
    parser.add_argument("--out", help="output folder (default results/reproduce/"
                                      "pathways_<preset>)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="top-level YAML key for every run (repeatable)")
    parser.add_argument("--workers", type=int, default=1, help="runs at once")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads shared by the running runs")
    parser.add_argument("--device", help="passed to train.py, e.g. cuda:0")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    for item in args.set:
        if "=" not in item or not item.split("=", 1)[0]:
            parser.error(f"--set {item!r}: expected KEY=VALUE")
    return args


def build_corpus(preset, data_folder):
    """Builds (or reuses) the corpus once, before any run needs it."""
    from speechbrain_sparse.data.synth import build_multilingual_corpus

    return build_multilingual_corpus(out_dir=data_folder,
                                     preset=preset["corpus_preset"],
                                     languages=tuple(preset["languages"]))


def timing_lines(status, runs, wall):
    """The report's timing section: the wall time and seconds per stage."""
    by_stage = {}
    for run in runs:
        seconds = status.get(run.name, {}).get("seconds")
        if seconds is not None:
            by_stage.setdefault(run.method, []).append(seconds)
    lines = [f"## Time\n\n{wall:.0f} s wall for {len(runs)} runs "
             f"({summarize_status(status)}).\n", "| stage | runs | seconds each |",
             "|---|---|---|"]
    lines += [f"| {stage} | {len(values)} | {sum(values) / len(values):.0f} |"
              for stage, values in by_stage.items()]
    return "\n".join(lines) + "\n"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_arguments(argv)
    logging.basicConfig(level=logging.WARNING)
    preset = PRESETS[args.preset]
    out = Path(args.out or REPO / "results" / "reproduce"
               / f"pathways_{args.preset}").resolve()
    user_set = dict(item.split("=", 1) for item in args.set)
    data_folder = Path(user_set.pop("data_folder", REPO / "corpora" /
                                    f"pathways_{preset['corpus_preset']}_0"))
    started = time.time()
    build_corpus(preset, data_folder)
    runs = pathway_runs(preset["languages"], preset["bilingual"],
                        out_of=lambda name: str(out / name))
    corpus = {"corpus_preset": preset["corpus_preset"],
              "corpus_languages": preset["languages"],
              "data_folder": str(data_folder)}

    def overrides(run):
        stage = preset["dense"] if run.method.startswith("dense") else preset["masked"]
        stage = {**stage, **preset.get(run.method, {})}
        known = top_level_keys(RECIPE / "hparams" / run.hparams)
        keys = {k: v for k, v in {**preset["common"], **stage}.items() if k in known}
        return {**corpus, **keys, **user_set}

    runner = MatrixRunner(RECIPE, out, overrides, workers=args.workers,
                          cores=args.threads,
                          run_options=[f"--device={args.device}"] if args.device
                          else [], progress=not args.no_progress)
    print(f"[pathways] {len(runs)} runs (preset {args.preset}, "
          f"{' '.join(preset['languages'])}) into {out}", flush=True)
    status = runner.run_all(runs)
    results = {run.name: runner.results(run)
               if status.get(run.name, {}).get("status") in (FINISHED, CACHED)
               else None for run in runs}
    wall = time.time() - started
    header = (f"# Dynamic ASR Pathways reproduction: preset {args.preset}\n\n"
              f"Command: `python tools/reproduce_pathways.py {' '.join(argv)}`. "
              "Model: our joint CTC/attention Transformer (not the paper's "
              "streaming Emformer RNN-T). Test sets: each language's, with the "
              "oracle language ID.\n")
    text = write_report(out, results, preset["languages"], preset["bilingual"],
                        header, timing_lines(status, runs, wall))
    print(text)
    print(f"[pathways] {summarize_status(status)} in {wall:.0f} s; report: "
          f"{out / 'report' / 'report.md'}")
    failed = [name for name, record in status.items() if record["status"] == "failed"]
    if failed:
        print(f"[pathways] failed runs: {', '.join(failed)} (see {out}/status.json)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
