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

``--paper l0`` (the task-agnostic structured pruning paper): the same
upstream is pruned to ``--target`` by L0 + distillation three ways
(``l0_distill_tiny.yaml``: FAHP + STE; ``l0_noste_tiny.yaml``;
``l0_headlevel_tiny.yaml``: w/o FAHP), then the teacher and each pruned encoder
are probed on every task; ``<out>/report/`` gets Tables 1-3 in shape
(:mod:`speechbrain_sparse.reproduction.l0_tables`), Fig. 1 (the gate's
math, ``fig1_hard_concrete.png``) and the claims. Fig. 3 (gate means over
training) is not drawn: the runs do not log per-step gate values.

Usage::

    python tools/reproduce_structured.py --paper trimming --preset micro
    python tools/reproduce_structured.py --paper trimming --preset tiny \\
        --upstream results/synthetic/wav2vec2_group_tiny_en-us/1234/model
    python tools/reproduce_structured.py --paper l0 --preset micro

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
        "l0": {"number_of_epochs": 2, "target_warmup_steps": 5, "reg_lr": 0.5,
               "distill_layers": [0, 1, 2], "max_duration": 3.0, "batch_size": 16,
               "num_workers": 0},
    },
    "tiny": {  # 2 CPU cores: the YAMLs' settings
        "corpus_preset": "tiny", "thresholds": [0.3, 0.4, 0.5, 0.6, 0.7],
        "upstream": {}, "stage": {"num_workers": 0}, "trim": {}, "timing_runs": 10,
        "l0": {"num_workers": 0},
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
    parser.add_argument("--target", type=float, default=0.8,
                        help="--paper l0: the target sparsity (default 0.8)")
    parser.add_argument("--out", help="default results/reproduce/<paper>_<preset>")
    parser.add_argument("--data-folder", help="default corpora/synthetic_<preset>_0")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="top-level YAML key for every structured run")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    for item in args.set:
        if "=" not in item or not item.split("=", 1)[0]:
            parser.error(f"--set {item!r}: expected KEY=VALUE")
    if args.upstream and not (Path(args.upstream) / "config.json").is_file():
        parser.error(f"--upstream {args.upstream}: no config.json there")
    if not 0 <= args.target < 1:
        parser.error(f"--target {args.target}: must lie in [0, 1)")
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


def prepare(args, preset, out, options):
    """Corpus, benchmark manifests and the upstream; returns ``(common, upstream,
    status)`` (``upstream`` None when its training failed)."""
    data = Path(args.data_folder or f"corpora/synthetic_{preset['corpus_preset']}_0")
    print(f"[{args.paper}] corpus {data} and its mini-SUPERB manifests", flush=True)
    build_corpus(data, preset=preset["corpus_preset"], source=SOURCE, targets=TARGETS)
    build_mini_superb(data, data / "mini_superb", SOURCE, TARGETS)
    common = {"corpus_preset": preset["corpus_preset"],
              "data_folder": str(data.resolve())}
    if args.upstream:
        return common, str(Path(args.upstream).resolve()), {}
    run = Run("upstream", "wav2vec2_group_tiny.yaml", method="upstream")
    runner = MatrixRunner(RECIPES / "wav2vec2", out / "pretrain",
                          lambda run: {**common, **preset["upstream"]}, **options)
    status = runner.run_all([run])
    if status["upstream"]["status"] not in ("finished", "cached"):
        return common, None, status
    return common, str(runner.folder(run) / "model"), status


def trimming(args, preset, runner, upstream):
    """Runs the trimming matrix; returns ``(sections, claims, status, rows)``."""
    runs = structured_runs(args.tasks, args.thresholds or preset["thresholds"],
                           preset["trim"])
    status = dict(runner.run_all(runs))
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
    sections = {"Table I": text_one, "Table II (4-s input)": tables.table_two(costs)}
    return sections, tables.claims(records, args.tasks, costs), status, rows


L0_RUNS = {"proposed": "l0_distill_tiny.yaml", "no_ste": "l0_noste_tiny.yaml",
           "headlevel": "l0_headlevel_tiny.yaml"}


def l0_distillation(args, preset, runner, upstream, report):
    """Runs the L0 matrix; returns ``(sections, claims, status)``."""
    from speechbrain_sparse.pruning.pretrained import load_huggingface
    from speechbrain_sparse.pruning.unit_masks import UnitMask
    from speechbrain_sparse.reproduction import l0_tables
    from speechbrain_sparse.reproduction.structured_figures import (
        hard_concrete_figure,
    )
    from speechbrain_sparse.surgery import count_parameters, load_structured

    runs = [Run(f"l0/{name}", yaml, {"target_sparsity": args.target, **preset["l0"]},
                method=name) for name, yaml in L0_RUNS.items()]
    status = dict(runner.run_all(runs))
    folders = {"base": Path(upstream)}
    folders.update({run.method: runner.folder(run) / "pruned_upstream" for run in runs
                    if runner.results(run) is not None})
    probes = [Run(f"{task}/probe_{name}", "probe_tiny.yaml",
                  {"task": task, "upstream_dir": str(folder)}, target=task,
                  method=name) for name, folder in folders.items()
              for task in args.tasks]
    status.update(runner.run_all(probes))
    records = [{"upstream": run.method, "task": run.target,
                "folder": runner.folder(run),
                "score": tables.run_score(runner.results(run), run.target)}
               for run in probes if runner.results(run) is not None]
    l0_runs = {run.method: runner.results(run) for run in runs
               if runner.results(run) is not None}
    base = load_huggingface(upstream).model.base_model
    costs = {"base": tables.model_cost(base, runs=preset["timing_runs"])}
    blocks = {}
    by_name = {run.method: run for run in runs}
    for name in l0_runs:
        model = load_structured(folders[name]).model
        costs[name] = tables.model_cost(model, baseline=base,
                                        runs=preset["timing_runs"])
        mask = UnitMask.load(runner.folder(by_name[name]) / "unit_mask.pt")
        blocks[name] = l0_tables.removed_blocks(mask)
    params = {name: round(cost["params"]) for name, cost in costs.items()}
    params["base"] = count_parameters(base)
    hard_concrete_figure(report / "fig1_hard_concrete.png")
    sections = {"Table 1 (mini-SUPERB in place of SUPERB)":
                l0_tables.table_one(records, args.tasks, params),
                "Table 2 (4-s input)": l0_tables.table_two(costs, blocks),
                "Table 3 (STE ablation)": l0_tables.table_three(records, args.tasks)}
    return sections, l0_tables.claims(records, l0_runs, costs, blocks), status


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_arguments(argv)
    logging.basicConfig(level=logging.WARNING)
    preset = PRESETS[args.preset]
    out = Path(args.out or REPO / "results" / "reproduce"
               / f"{args.paper}_{args.preset}").resolve()
    report = out / "report"
    report.mkdir(parents=True, exist_ok=True)
    started = time.time()
    options = dict(workers=args.workers, cores=args.threads,
                   progress=not args.no_progress)
    common, upstream, status = prepare(args, preset, out, options)
    if upstream is None:
        print(f"[{args.paper}] the upstream failed; see {out / 'pretrain'}")
        return 1
    user = dict(item.split("=", 1) for item in args.set)
    runner = MatrixRunner(
        RECIPES / "structured", out,
        lambda run: {**common, **preset["stage"], "upstream_dir": upstream,
                     **run.overrides, **user}
        if run.method not in L0_RUNS else {**common, "upstream_dir": upstream, **user},
        **options)
    if args.paper == "trimming":
        sections, verdicts, more, rows = trimming(args, preset, runner, upstream)
        with open(report / "table1.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        title = "Trimming (Genova et al. 2024)"
    else:
        sections, verdicts, more = l0_distillation(args, preset, runner, upstream,
                                                   report)
        title = "L0 + distillation (task-agnostic structured pruning)"
    status.update(more)
    minutes = (time.time() - started) / 60
    lines = [f"# {title} on the synthetic mini-SUPERB: preset {args.preset}", "",
             f"Upstream `{upstream}`; command `python tools/reproduce_structured.py "
             f"{' '.join(argv)}`; {minutes:.1f} min."]
    for name, text in sections.items():
        lines += ["", f"## {name}", "", text]
        stem = name.split(" (")[0].lower().replace(" ", "")
        write_text_atomic(report / f"{stem}.md", text + "\n")
    lines += ["", "## Claims", ""]
    lines += [f"- {'holds' if ok else 'does not hold'}: {claim} ({evidence})"
              for claim, ok, evidence in verdicts]
    text = "\n".join(lines) + "\n"
    write_text_atomic(report / "report.md", text)
    print(text)
    print(f"[{args.paper}] {summarize_status(status)} in {minutes:.1f} min; report: "
          f"{report}")
    failed = [name for name, entry in status.items() if entry["status"] == "failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
