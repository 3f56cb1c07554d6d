#!/usr/bin/env python3
"""SparseWAV's Table 1 ablation and Fig. 1 curve on a model trained on our corpus.

``--model transformer`` (default) prunes a pretrained Transformer ASR of the
synthetic recipe with ``prune_obs_<size>.yaml`` of
``recipes/Synthetic/ASR/transformer/hparams/``;
``--model wav2vec2`` / ``wavlm`` prune a small Wav2Vec2 / WavLM CTC model
trained from scratch on the corpus, with
``recipes/Synthetic/ASR/wav2vec2/hparams/prune_obs_<model>_<size>.yaml``.
Every configuration of the ablation
(dense / magnitude / OBS uniform / + mixed sparsity / + improved saliency /
+ post-pruning fine-tuning / + progressive, at ``--sparsity``) and of the
curve (WER at each ``--fig-sparsities``, one-shot and fine-tuned), then writes
``<out>/report/``: ``table1.{md,csv}``, ``fig1.csv``,
``fig1_wer_vs_sparsity.png`` and ``report.md`` with the paper's claims and
whether they hold (a paired bootstrap over the test utterances of the two runs
each compares, from their ``utterances_<dialect>_test.csv``). Runs are cached
and resumable (:class:`~speechbrain_sparse.reproduction.runner.MatrixRunner`): a second
invocation reuses every finished run. Without ``--pretrained`` the model is
pretrained first, as one more run.

Usage::

    python tools/reproduce_sparsewav.py --preset tiny \\
        --pretrained results/reproduce/synthetic_tiny/tiny/pretrain/model
    python tools/reproduce_sparsewav.py --preset tiny --model wav2vec2 \\
        --pretrained results/synthetic/wav2vec2_tiny_en-us/1234/model
    python tools/reproduce_sparsewav.py --preset micro --set data_folder=/tmp/micro

Exit status: 0 when every run finished (or was reused), 1 when some failed,
2 on bad arguments.
"""

import argparse
import logging
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from speechbrain_sparse.fileio import read_json  # noqa: E402
from speechbrain_sparse.reproduction.plan import Run  # noqa: E402
from speechbrain_sparse.reproduction.runner import (  # noqa: E402
    MatrixRunner,
    summarize_status,
)
from speechbrain_sparse.reproduction.sparsewav_tables import (  # noqa: E402
    TABLE_ROWS,
    ablation_runs,
    run_record,
    utterance_counts,
    write_tables,
)

RECIPES = REPO / "recipes" / "Synthetic" / "ASR"
MODELS = {  # recipe folder, pretraining and pruning YAMLs, the file a model has,
    # whether its YAMLs have the beam search keys (the CTC models decode greedily)
    "transformer": {"recipe": RECIPES / "transformer", "pretrain": "pretrain_{size}",
                    "prune": "prune_obs_{size}", "marker": "model.ckpt",
                    "beam_search": True},
    "wav2vec2": {"recipe": RECIPES / "wav2vec2", "pretrain": "wav2vec2_{size}",
                 "prune": "prune_obs_wav2vec2_{size}", "marker": "config.json",
                 "beam_search": False},
    "wavlm": {"recipe": RECIPES / "wav2vec2", "pretrain": "wavlm_{size}",
              "prune": "prune_obs_wavlm_{size}", "marker": "config.json",
              "beam_search": False},
}
PRESETS = {
    "micro": {  # CI: one small end-to-end pass; the numbers mean nothing
        "corpus_preset": "micro",
        "decoding": "ctc_greedy",
        "pretrain": {"number_of_epochs": 1, "n_warmup_steps": 20},
        "pretrain_ctc": {"number_of_epochs": 1, "n_warmup_steps": 20},
        "rows": ["dense", "obs_uniform", "finetuned", "progressive"],
        "fig_sparsities": [], "fig_progressive": {},
        "progressive": [0.5, 0.75], "epochs": 2,
        "stage": {"num_calibration": 8, "calibration_batch_size": 4,
                  "mixed_num_probes": 1, "mixed_num_batches": 1},
    },
    "tiny": {  # 2 CPU cores, 17 runs, with the demo's pretrained model
        "corpus_preset": "tiny",
        "decoding": "beam",
        "pretrain": {"number_of_epochs": 8, "n_warmup_steps": 300},  # as make demo
        "pretrain_ctc": {},  # the YAML's 15 epochs
        "rows": list(TABLE_ROWS),
        "fig_sparsities": [0.5, 0.7, 0.8, 0.9],
        "fig_progressive": {0.9: [0.7, 0.8, 0.9]},
        "progressive": [0.55, 0.65, 0.75], "epochs": 3,
        "stage": {"finetune_max_utterances": 600, "lr": 0.0005},
    },
}


def parse_arguments(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--model", choices=list(MODELS), default="transformer",
                        help="the model pruned (default transformer: our "
                             "Transformer ASR; wav2vec2 / wavlm: CTC models)")
    parser.add_argument("--out", help="output folder (default results/reproduce/"
                                      "sparsewav_<preset>, sparsewav_<model>_<preset> "
                                      "for the CTC models)")
    parser.add_argument("--pretrained", help="model folder to prune (default: "
                                             "pretrain one as the first run)")
    parser.add_argument("--size", default="tiny", help="model size of the YAMLs")
    parser.add_argument("--sparsity", type=float, default=0.75,
                        help="Table 1's sparsity (default 0.75)")
    parser.add_argument("--fig-sparsities", nargs="*", type=float,
                        help="Fig. 1's sparsities (default: preset's)")
    parser.add_argument("--rows", nargs="+", choices=list(TABLE_ROWS),
                        metavar="ROW", help="Table 1 rows to run (default: "
                        f"preset's; of {' '.join(TABLE_ROWS)})")
    parser.add_argument("--epochs", type=int,
                        help="fine-tuning epochs of a one-pass run (default: preset's)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="top-level YAML key for every run (repeatable)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads shared by the running runs (default 1)")
    parser.add_argument("--device", help="passed to train.py, e.g. cuda:0")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    for item in args.set:
        if "=" not in item or not item.split("=", 1)[0]:
            parser.error(f"--set {item!r}: expected KEY=VALUE")
    values = [args.sparsity, *(args.fig_sparsities or [])]
    if any(not 0 < value < 1 for value in values):
        parser.error("sparsities must be in (0, 1)")
    marker = MODELS[args.model]["marker"]
    if args.pretrained and not (Path(args.pretrained) / marker).is_file():
        parser.error(f"--pretrained {args.pretrained}: no {marker} there "
                     f"(--model {args.model})")
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_arguments(argv)
    logging.basicConfig(level=logging.WARNING)
    preset = PRESETS[args.preset]
    model = MODELS[args.model]
    suffix = "" if args.model == "transformer" else f"_{args.model}"
    out = Path(args.out or REPO / "results" / "reproduce"
               / f"sparsewav{suffix}_{args.preset}").resolve()
    user_set = dict(item.split("=", 1) for item in args.set)
    common = {"corpus_preset": preset["corpus_preset"], "eval_splits": ["dev", "test"]}
    if model["beam_search"]:
        common.update(test_beam_size=1, decoding=preset["decoding"])
        pretrain_keys = {**preset["pretrain"], "valid_search_every": 1000}
    else:
        pretrain_keys = preset["pretrain_ctc"]
    pretrain = None
    if args.pretrained:
        pretrained_dir = str(Path(args.pretrained).resolve())
    else:
        pretrain = Run(name="pretrain",
                       hparams=model["pretrain"].format(size=args.size) + ".yaml",
                       overrides={**pretrain_keys, "eval_dialects": ["en-us"]},
                       method="pretrain")
        pretrained_dir = str(out / "pretrain" / "model")
    rows = args.rows or preset["rows"]
    fig_sparsities = (preset["fig_sparsities"] if args.fig_sparsities is None
                      else args.fig_sparsities)
    fig_progressive = {k: v for k, v in preset["fig_progressive"].items()
                       if k in fig_sparsities}
    progressive = [s for s in preset["progressive"] if s < args.sparsity]
    runs = ablation_runs(
        args.sparsity, fig_sparsities, progressive + [args.sparsity],
        args.epochs if args.epochs is not None else preset["epochs"],
        fig_progressive, rows, needs=("pretrain",) if pretrain else (),
        hparams=model["prune"].format(size=args.size) + ".yaml")

    def overrides(run):
        if run is pretrain:
            return {**common, **user_set}
        return {**common, **preset["stage"], "pretrained_dir": pretrained_dir,
                **user_set}

    runner = MatrixRunner(model["recipe"], out, overrides, workers=args.workers,
                          cores=args.threads,
                          run_options=[f"--device={args.device}"] if args.device
                          else [], progress=not args.no_progress)
    everything = ([pretrain] if pretrain else []) + runs
    print(f"[sparsewav] {len(everything)} runs (preset {args.preset}) into {out}",
          flush=True)
    started = time.time()
    status = runner.run_all(everything)
    dialect = user_set.get("dialect", "en-us")
    records = {run.name: run_record(runner.results(run),
                                    read_json(runner.folder(run) / "pruning_info.json"),
                                    dialect)
               for run in runs}
    counts = {run.name: utterance_counts(runner.folder(run), dialect) for run in runs}
    header = (f"# SparseWAV on our {args.model} model: preset {args.preset}\n\n"
              f"Pruned model: "
              f"`{pretrained_dir}`. Command: `python tools/reproduce_sparsewav.py "
              f"{' '.join(argv)}`\n")
    text = write_tables(out / "report", records, args.sparsity, fig_sparsities,
                        fig_progressive, rows, header, counts)
    print(text)
    print(f"[sparsewav] {summarize_status(status)} in {time.time() - started:.0f} s;"
          f" report: {out / 'report'}")
    failed = [name for name, record in status.items() if record["status"] == "failed"]
    if failed:
        print(f"[sparsewav] failed runs: {', '.join(failed)} (see {out}/status.json)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
