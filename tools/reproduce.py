#!/usr/bin/env python3
"""Reproduce the sparse fine-tuning paper's Tables II-IV and Fig. 3 in one command.

Runs the whole experiment matrix of a recipe: pretraining on the source
dialect, vanilla fine-tuning per target, then the masks and the methods of the
tables (vanilla, fisher, diff, topk, random, adapter, diff+fisher and
diff30+topk10 unions/intersections) and diff at every trainable fraction of
Fig. 3; then writes the tables (Markdown + CSV), the figures and a report
under ``<out>/report/``. Finished runs are reused, interrupted ones resume,
a failed run is reported and the others go on (see
:mod:`speechbrain_sparse.reproduction.runner`).

``--seeds N`` trains the methods of ``--seed-methods`` (vanilla and diff, the
rows the main claim rests on) again with the seeds 2..N (runs
``<label>_s<k>``; a diff run of seed k takes its mask from the vanilla run of
seed k); their table cells become mean ± std over the seeds and the claims
average them per utterance (:mod:`speechbrain_sparse.reproduction.claims`).
A preset may set a default (the tiny preset of ``make demo``: 3).

Usage::

    python tools/reproduce.py --preset tiny                  # what `make demo` runs
    python tools/reproduce.py --preset small                 # hours; small + large
    python tools/reproduce.py --preset micro --methods vanilla diff --targets en-029
    python tools/reproduce.py --preset tiny --seeds 5 --seed-methods vanilla diff topk
    python tools/reproduce.py --recipe tibetan --preset paper \\
        --set xbmu_folder=/data/xbmu_amdo31 --set dialects_folder=/data/tibetan
    python tools/reproduce.py --recipe synthetic-multilingual --preset micro
    python tools/reproduce.py --preset small --device cuda:0 --workers 1

``--recipe synthetic-multilingual`` is the cross-lingual setting: languages of
the multilingual synthetic corpus in place of dialects (preset ``micro``:
French -> Dutch on ``ml_micro``; ``tiny``: English -> French, Dutch on
``ml_tiny``).

Exit status: 0 when every run finished (or was reused), 1 when some failed,
2 on bad arguments.
"""

import argparse
import logging
import os
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from speechbrain_sparse.reproduction.plan import (  # noqa: E402
    DEFAULT_DENSITY,
    FIG3_FRACTIONS,
    METHODS,
    SEED_METHODS,
    SEEDABLE,
    build_matrix,
)
from speechbrain_sparse.reproduction.report import relative, write_report  # noqa: E402
from speechbrain_sparse.reproduction.runner import (  # noqa: E402
    CACHED,
    FINISHED,
    MatrixRunner,
    summarize_status,
)

RECIPES = {
    "synthetic": {
        "folder": REPO / "recipes" / "Synthetic" / "ASR" / "transformer",
        "source": "en-us",
        "targets": ["en-gb-scotland", "en-029"],
        "metric": "WER",
    },
    "tibetan": {
        "folder": REPO / "recipes" / "Tibetan" / "ASR" / "transformer",
        "source": "amdo",
        "targets": ["khampa", "utsang"],
        "metric": "SER",
    },
    # cross-lingual: languages of the multilingual synthetic corpus in place of
    # dialects; the corpus holds exactly the source and the targets, so every
    # run is told them (language_overrides)
    "synthetic-multilingual": {
        "folder": REPO / "recipes" / "SyntheticMultilingual" / "ASR" / "transformer",
        "source": "en",
        "targets": ["fr", "nl"],
        "metric": "WER",
        "languages": True,
    },
}

# Per recipe and preset: model sizes, Fig. 3 fractions, seed runs of the seed
# methods (default 1) and the top-level YAML keys every pretraining /
# fine-tuning run gets (on top of the YAML defaults).
PRESETS = {
    ("synthetic", "micro"): {  # CI: minutes; numbers mean nothing
        "sizes": ["tiny"],
        "fractions": [0.1, 0.2, 0.5, 1.0],
        "common": {"corpus_preset": "micro", "test_beam_size": 1,
                   "valid_search_every": 0},
        "pretrain": {"number_of_epochs": 2, "n_warmup_steps": 20,
                     "eval_dialects": ["en-us"]},
        "finetune": {"number_of_epochs": 1, "fisher_batches": 2},
    },
    ("synthetic", "tiny"): {  # make demo: <= 30 minutes on 2 CPU cores
        "sizes": ["tiny"],
        "fractions": [0.1, 0.2, 0.3, 0.5, 1.0],
        "seeds": 3,  # vanilla and diff: 8 runs more than one seed (~4-5 min)
        "common": {"corpus_preset": "tiny", "test_beam_size": 1,
                   "valid_search_every": 0},
        "pretrain": {"number_of_epochs": 8, "n_warmup_steps": 300,
                     "eval_dialects": ["en-us", "en-gb-scotland", "en-029"]},
        "finetune": {"number_of_epochs": 2, "lr": 0.001},
    },
    ("synthetic", "tiny-long"): {  # ~1 h on 2 CPU cores: a better-trained source
        "sizes": ["tiny"],
        "fractions": [0.1, 0.2, 0.3, 0.5, 1.0],
        "seeds": 3,
        "common": {"corpus_preset": "tiny", "test_beam_size": 4,
                   "valid_search_every": 0, "transformer_dropout": 0.1},
        "pretrain": {"number_of_epochs": 16, "n_warmup_steps": 300,
                     "eval_dialects": ["en-us", "en-gb-scotland", "en-029"]},
        "finetune": {"number_of_epochs": 2, "lr": 0.001},
    },
    ("synthetic", "small"): {  # hours on a GPU; the paper's two sizes
        "sizes": ["small", "large"],
        "fractions": list(FIG3_FRACTIONS),
        "common": {"corpus_preset": "small"},
        "pretrain": {},
        "finetune": {},
    },
    # CI: ml_micro holds French and Dutch only, so French is the source here
    ("synthetic-multilingual", "micro"): {
        "sizes": ["tiny"],
        "fractions": [0.1, 0.2, 0.5, 1.0],
        "source": "fr",
        "targets": ["nl"],
        "common": {"corpus_preset": "ml_micro", "test_beam_size": 1,
                   "valid_search_every": 0},
        "pretrain": {"number_of_epochs": 2, "n_warmup_steps": 20},
        "finetune": {"number_of_epochs": 1, "fisher_batches": 2},
    },
    # en -> fr, nl on ml_tiny (~1 h of train per language); the tiny dialect
    # demo's settings. Not run yet: hours on 2 CPU cores.
    ("synthetic-multilingual", "tiny"): {
        "sizes": ["tiny"],
        "fractions": [0.1, 0.2, 0.3, 0.5, 1.0],
        "seeds": 3,
        "common": {"corpus_preset": "ml_tiny", "test_beam_size": 1,
                   "valid_search_every": 0},
        "pretrain": {"number_of_epochs": 8, "n_warmup_steps": 300},
        "finetune": {"number_of_epochs": 2, "lr": 0.001},
    },
    ("tibetan", "paper"): {  # a real Tibetan corpus (README of the recipe)
        "sizes": ["small", "large"],
        "fractions": list(FIG3_FRACTIONS),
        "common": {},
        "pretrain": {},
        "finetune": {},
    },
}


def top_level_keys(yaml_file):
    """The top-level keys of a YAML file (``key:`` at the start of a line)."""
    keys = set()
    with open(yaml_file, encoding="utf-8") as handle:
        for line in handle:
            match = re.match(r"([A-Za-z_][A-Za-z0-9_]*):", line)
            if match:
                keys.add(match.group(1))
    return keys


def language_overrides(source, targets, corpus_targets, pretrain):
    """The keys a run of a multilingual recipe gets: the corpus's languages
    (the source and ``corpus_targets`` plus ``targets``, so that a run on
    fewer targets reuses the corpus) and, for pretraining, the languages it
    is tested on (the source and ``targets``, zero-shot).

    Example
    -------
    >>> language_overrides("en", ["nl"], ["fr", "nl"], pretrain=False)
    {'source_dialect': 'en', 'target_dialects': ['fr', 'nl']}
    >>> language_overrides("en", ["nl"], ["fr", "nl"], pretrain=True)["eval_dialects"]
    ['en', 'nl']
    """
    languages = [code for code in dict.fromkeys([*corpus_targets, *targets])
                 if code != source]
    keys = {"source_dialect": source, "target_dialects": languages}
    if pretrain:
        keys["eval_dialects"] = [source, *targets]
    return keys


def parse_arguments(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="synthetic")
    parser.add_argument("--preset", default="tiny",
                        help="corpus/model preset: synthetic micro|tiny|tiny-long|"
                             "small, synthetic-multilingual micro|tiny, tibetan "
                             "paper")
    parser.add_argument("--out", help="output folder (default results/reproduce/"
                                      "<recipe>_<preset>)")
    parser.add_argument("--sizes", nargs="+", help="model sizes (default: preset's)")
    parser.add_argument("--source", help="source dialect (default: preset's, else "
                                          "recipe's)")
    parser.add_argument("--targets", nargs="+", help="target dialects")
    parser.add_argument("--methods", nargs="+", default=list(METHODS),
                        choices=METHODS, metavar="METHOD",
                        help=f"subset of: {' '.join(METHODS)}")
    parser.add_argument("--fractions", nargs="+", type=float,
                        help="Fig. 3 trainable fractions (default: preset's)")
    parser.add_argument("--seeds", type=int,
                        help="seed runs of each --seed-methods method (default: "
                             "preset's, else 1); tables show mean ± std over them")
    parser.add_argument("--seed-methods", nargs="+", default=list(SEED_METHODS),
                        choices=SEEDABLE, metavar="METHOD",
                        help=f"methods run with every seed (default: "
                             f"{' '.join(SEED_METHODS)}; of {' '.join(SEEDABLE)})")
    parser.add_argument("--density", type=float, default=DEFAULT_DENSITY,
                        help="trainable fraction of diff/fisher/topk/random")
    parser.add_argument("--metric", choices=["WER", "CER", "SER"],
                        help="error rate of the tables (default: recipe's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="top-level YAML key for every run (repeatable)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                        help="runs at the same time (default: CPU cores)")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1,
                        help="CPU threads the running runs share (default: CPU "
                             "cores)")
    parser.add_argument("--device", help="passed to train.py, e.g. cuda:0")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if (args.recipe, args.preset) not in PRESETS:
        valid = [p for r, p in PRESETS if r == args.recipe]
        parser.error(f"--preset {args.preset} is not a preset of the {args.recipe} "
                     f"recipe; valid: {', '.join(valid)}")
    for item in args.set:
        if "=" not in item or not item.split("=", 1)[0]:
            parser.error(f"--set {item!r}: expected KEY=VALUE")
    for value in args.fractions or []:
        if not 0 < value <= 1:
            parser.error(f"--fractions: {value} is not in (0, 1]")
    if not 0 < args.density <= 1:
        parser.error(f"--density: {args.density} is not in (0, 1]")
    if args.seeds is None:
        args.seeds = PRESETS[(args.recipe, args.preset)].get("seeds", 1)
    if args.seeds < 1:
        parser.error(f"--seeds: {args.seeds} is not at least 1")
    if args.seeds > 1 and any(item.split("=", 1)[0] == "seed" for item in args.set):
        parser.error("--set seed=... would give every seed run the same seed; "
                     "use --seeds 1 with it")
    return args


def main(argv=None):
    args = parse_arguments(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.WARNING)
    recipe = RECIPES[args.recipe]
    preset = PRESETS[(args.recipe, args.preset)]
    out = Path(args.out or REPO / "results" / "reproduce"
               / f"{args.recipe}_{args.preset}").resolve()
    sizes = args.sizes or preset["sizes"]
    source = args.source or preset.get("source", recipe["source"])
    targets = args.targets or preset.get("targets", recipe["targets"])
    fractions = sorted(set(args.fractions or preset["fractions"]))
    metric = args.metric or recipe["metric"]
    user_set = dict(item.split("=", 1) for item in args.set)

    def out_of(name):
        return str(out / name)

    runs = build_matrix(sizes, source, targets, args.methods, fractions, args.density,
                        out_of, args.seeds, args.seed_methods)

    def overrides(run):
        """Preset keys the run's YAML has (a method without Fisher has no
        ``fisher_batches``), then every ``--set`` key (unknown ones fail loudly)."""
        stage = preset["pretrain"] if run.method == "pretrain" else preset["finetune"]
        known = top_level_keys(recipe["folder"] / "hparams" / run.hparams)
        keys = {k: v for k, v in {**preset["common"], **stage}.items() if k in known}
        if recipe.get("languages"):
            keys.update(language_overrides(
                source, targets, preset.get("targets", recipe["targets"]),
                pretrain=run.method == "pretrain"))
        return {**keys, **user_set}

    runner = MatrixRunner(
        recipe["folder"], out, overrides, workers=args.workers, cores=args.cores,
        run_options=[f"--device={args.device}"] if args.device else [],
        progress=not args.no_progress,
    )
    seeds = f", {args.seeds} seeds" if args.seeds > 1 else ""
    print(f"[reproduce] {len(runs)} runs ({args.recipe} recipe, preset {args.preset}, "
          f"sizes {' '.join(sizes)}, {source} -> {' '.join(targets)}{seeds}) into "
          f"{relative(out)}", flush=True)
    started = time.time()
    status = runner.run_all(runs)
    # only runs made with this command count (a refused folder keeps its old
    # results); an unfinished run is None, so a method missing one seed run
    # shows '-' rather than a mean over fewer seeds
    results = {run.name: runner.results(run)
               if status.get(run.name, {}).get("status") in (FINISHED, CACHED)
               else None for run in runs}
    header = (f"# Sparse fine-tuning reproduction: {args.recipe} recipe, preset "
              f"{args.preset}\n\nCommand: `python tools/reproduce.py "
              f"{' '.join(sys.argv[1:] if argv is None else argv)}`\n")
    text, paths = write_report(out, runs, results, sizes, targets, metric, fractions,
                               args.density, header, source=source)
    print(text)
    print(f"[reproduce] {summarize_status(status)} in {time.time() - started:.0f} s")
    for label, path in paths.items():
        if path:
            print(f"[reproduce] {label}: {relative(path)}")
    failed = [name for name, record in status.items() if record["status"] == "failed"]
    if failed:
        print(f"[reproduce] failed runs: {', '.join(failed)} (see {relative(out)}"
              f"/status.json and the logs)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
