#!/usr/bin/env python3
"""Tables I and II of the trimming paper on the synthetic mini-SUPERB.

``--paper trimming``: a group-norm wav2vec2 is CTC-trained on the corpus
(``recipes/Synthetic/ASR/wav2vec2/hparams/wav2vec2_group_tiny.yaml``; skip with
``--upstream DIR``) and frozen; on each task of the benchmark (ASR, dialect
ID, speaker ID) the recipe ``recipes/Synthetic/ASR/structured/`` runs Base
(probe), SSF, trimming at every ``--thresholds`` value, then Scratch at the
thresholds whose trimmed % is nearest 25 / 50 / 75 %. ``<out>/report/`` gets
``table1.{md,csv}``, ``table2.md`` (size, FLOPs of 4 s, speedup of the
trimmed encoders within a 5 % drop of Base) and ``report.md`` with the
paper's claims judged by paired bootstraps over the test utterances
(:mod:`speechbrain_sparse.reproduction.trimming_tables`). Runs are cached
and resumable (:class:`~speechbrain_sparse.reproduction.runner.MatrixRunner`).

``--paper l0`` (Tables 1-3 and Figs. 1, 3 of the structured-pruning paper) is
not wired yet: the L0 + distillation training stage has no recipe. The
command says so and exits 2.

Usage::

    python tools/reproduce_structured.py --paper trimming --preset micro
    python tools/reproduce_structured.py --paper trimming --preset tiny \\
        --upstream results/synthetic/wav2vec2_group_tiny_en-us/1234/model

Exit status: 0 when every run finished (or was reused), 1 when some failed,
2 on bad arguments.
"""

import argparse
import csv
import logging
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from speechbrain_sparse.data.mini_superb import build_mini_superb  # noqa: E402
from speechbrain_sparse.data.synth import build_corpus  # noqa: E402
from speechbrain_sparse.fileio import read_json, write_text_atomic  # noqa: E402
from speechbrain_sparse.reproduction import trimming_tables as tables  # noqa: E402
from speechbrain_sparse.reproduction.plan import Run  # noqa: E402
from speechbrain_sparse.reproduction.runner import (  # noqa: E402
    MatrixRunner,
    summarize_status,
)

RECIPES = REPO / "recipes" / "Synthetic" / "ASR"
SOURCE, TARGETS = "en-us", ("en-gb-scotland", "en-029")
MICRO_UPSTREAM = ("{model_type: wav2vec2, hidden_size: 32, num_hidden_layers: 2, "
                  "num_attention_heads: 2, intermediate_size: 64, conv_dim: [32, 32, "
                  "32, 32, 32, 32, 32], conv_stride: [5, 2, 2, 2, 2, 2, 2], "
                  "conv_kernel: [10, 3, 3, 3, 3, 2, 2], feat_extract_norm: group, "
                  "do_stable_layer_norm: False, num_conv_pos_embeddings: 8, "
                  "num_conv_pos_embedding_groups: 2}")
PRESETS = {
    "micro": {  # CI: every stage once; the numbers mean nothing
        "corpus_preset": "micro", "thresholds": [0.3, 0.6],
        "upstream": {"number_of_epochs": 2, "n_warmup_steps": 10, "batch_size": 8,
                     "hf_config": MICRO_UPSTREAM},
        "stage": {"number_of_epochs": 1, "lstm_units": 16, "mlp_units": 32,
                  "max_duration": 3.0, "batch_size": 16, "num_workers": 0},
        "trim": {"mask_lr": 0.3, "mask_init": 0.2}, "timing_runs": 3,
    },
    "tiny": {  # 2 CPU cores: the YAMLs' settings
        "corpus_preset": "tiny", "thresholds": [0.3, 0.4, 0.5, 0.6, 0.7],
        "upstream": {}, "stage": {"num_workers": 0}, "trim": {}, "timing_runs": 10,
    },
}


def parse_arguments(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--paper", choices=["trimming", "l0"], default="trimming")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--upstream", help="frozen upstream folder (default: train "
                                           "wav2vec2_group_tiny.yaml first)")
    parser.add_argument("--tasks", nargs="+", choices=list(tables.TASKS),
                        default=list(tables.TASKS))
    parser.add_argument("--thresholds", nargs="+", type=float)
    parser.add_argument("--out", help="default results/reproduce/trimming_<preset>")
    parser.add_argument("--data-folder", help="default corpora/synthetic_<preset>_0")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="top-level YAML key for every structured run")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    if args.paper == "l0":
        parser.exit(2, "--paper l0: not available yet: the L0 + distillation "
                       "training stage (gates, Lagrangian and distillation are in "
                       "speechbrain_sparse/pruning/) has no recipe YAML to run\n")
    for item in args.set:
        if "=" not in item or not item.split("=", 1)[0]:
            parser.error(f"--set {item!r}: expected KEY=VALUE")
    if args.upstream and not (Path(args.upstream) / "config.json").is_file():
        parser.error(f"--upstream {args.upstream}: no config.json there")
    return args


def structured_runs(tasks, thresholds, trim_keys):
    """Base, SSF and trimming runs of every task."""
    runs = []
    for task in tasks:
        runs.append(Run(f"{task}/probe", "probe_tiny.yaml", {"task": task},
                        target=task, method="base"))
        runs.append(Run(f"{task}/ssf", "ssf_tiny.yaml", {"task": task}, target=task,
                        method="ssf"))
        runs += [Run(f"{task}/trim_{t}", "trim_tiny.yaml",
                     {"task": task, "threshold": t, **trim_keys}, target=task,
                     method="trim") for t in thresholds]
    return runs


def record(runner, run, fraction=None):
    """The table record of a finished run (None when it did not finish); a
    scratch run is given the ``fraction`` its trim run removed."""
    folder = runner.folder(run)
    results, report = runner.results(run), read_json(folder / "trimming.json")
    if results is None or report is None:
        return None
    if fraction is None:
        fraction = report.get("trimmed_fraction", 0.0)
    return {"task": run.target, "kind": run.method, "folder": folder,
            "threshold": run.overrides.get("threshold"), "fraction": fraction,
            "score": tables.run_score(results, run.target)}


def costs_of(records, tasks, upstream_dir, timing_runs):
    """Table II: base and, per task type, the most trimmed run within 5 %."""
    from speechbrain_sparse.pruning.pretrained import load_huggingface
    from speechbrain_sparse.surgery import load_structured

    base = load_huggingface(upstream_dir).model.base_model
    costs = {"base": tables.model_cost(base, runs=timing_runs)}
    for label, kinds in (("trim (classification)", ("dialect_id", "speaker_id")),
                         ("trim (ASR)", ("asr",))):
        chosen = [tables.best_within_drop(records, t) for t in kinds if t in tasks]
        chosen = [r for r in chosen if r is not None]
        if not chosen:
            continue
        measured = [tables.model_cost(
            load_structured(r["folder"] / "trimmed_upstream").model,
            baseline=base, runs=timing_runs) for r in chosen]
        costs[label] = {key: sum(m[key] for m in measured) / len(measured)
                        for key in measured[0]}
    return costs


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_arguments(argv)
    logging.basicConfig(level=logging.WARNING)
    preset = PRESETS[args.preset]
    out = Path(args.out or REPO / "results" / "reproduce"
               / f"trimming_{args.preset}").resolve()
    data = Path(args.data_folder or f"corpora/synthetic_{preset['corpus_preset']}_0")
    started = time.time()
    print(f"[trimming] corpus {data} and its mini-SUPERB manifests", flush=True)
    build_corpus(data, preset=preset["corpus_preset"], source=SOURCE, targets=TARGETS)
    build_mini_superb(data, data / "mini_superb", SOURCE, TARGETS)
    common = {"corpus_preset": preset["corpus_preset"],
              "data_folder": str(data.resolve())}
    options = dict(workers=args.workers, cores=args.threads,
                   progress=not args.no_progress)
    status = {}
    upstream = args.upstream and str(Path(args.upstream).resolve())
    if not upstream:
        run = Run("upstream", "wav2vec2_group_tiny.yaml", method="upstream")
        runner = MatrixRunner(RECIPES / "wav2vec2", out / "pretrain",
                              lambda run: {**common, **preset["upstream"]}, **options)
        status.update(runner.run_all([run]))
        upstream = str(runner.folder(run) / "model")
        if status["upstream"]["status"] not in ("finished", "cached"):
            print("[trimming] the upstream failed; see " + str(out / "pretrain"))
            return 1
    user = dict(item.split("=", 1) for item in args.set)
    runner = MatrixRunner(
        RECIPES / "structured", out,
        lambda run: {**common, **preset["stage"], "upstream_dir": upstream, **user},
        **options)
    runs = structured_runs(args.tasks, args.thresholds or preset["thresholds"],
                           preset["trim"])
    status.update(runner.run_all(runs))
    records = [r for r in (record(runner, run) for run in runs) if r is not None]
    scratch = []
    for task in args.tasks:
        chosen = {id(r): r for r in (tables.nearest_trim(records, task, t)
                                     for t in tables.TARGETS) if r is not None}
        scratch += [Run(f"{task}/scratch_{r['threshold']}", "scratch_tiny.yaml",
                        {"task": task, "threshold": r["threshold"],
                         "trimmed_run": str(r["folder"])}, target=task,
                        method="scratch") for r in chosen.values()]
    status.update(runner.run_all(scratch))
    sizes = {str(r["folder"]): r["fraction"] for r in records}
    records += [r for r in (record(runner, run, sizes[run.overrides["trimmed_run"]])
                            for run in scratch) if r is not None]
    text_one, rows = tables.table_one(records, args.tasks)
    costs = costs_of(records, args.tasks, upstream, preset["timing_runs"])
    text_two = tables.table_two(costs)
    verdicts = tables.claims(records, args.tasks, costs)
    report = out / "report"
    report.mkdir(parents=True, exist_ok=True)
    write_text_atomic(report / "table1.md", text_one + "\n")
    write_text_atomic(report / "table2.md", text_two + "\n")
    with open(report / "table1.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    minutes = (time.time() - started) / 60
    lines = [f"# Trimming (Genova et al. 2024) on the synthetic mini-SUPERB: preset "
             f"{args.preset}", "", f"Upstream `{upstream}`; command `python "
             f"tools/reproduce_structured.py {' '.join(argv)}`; {minutes:.1f} min.",
             "", "## Table I", "", text_one, "", "## Table II (4-s input)", "",
             text_two, "", "## Claims", ""]
    lines += [f"- {'holds' if ok else 'does not hold'}: {claim} ({evidence})"
              for claim, ok, evidence in verdicts]
    text = "\n".join(lines) + "\n"
    write_text_atomic(report / "report.md", text)
    print(text)
    print(f"[trimming] {summarize_status(status)} in {minutes:.1f} min; report: "
          f"{report}")
    failed = [name for name, entry in status.items() if entry["status"] == "failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
