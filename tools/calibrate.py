#!/usr/bin/env python3
"""``make calibrate``: build the tiny synthetic corpus and calibrate the benchmark.

Runs the synthetic recipe's stages one after another, reusing finished ones:

(a) pretrain on the source dialect and test on it;
(b) the same model, zero-shot, on each target dialect's test set;
(c) a model trained from scratch on one target's data only;
(d) vanilla fine-tuning of the pretrained model on each target.

Every stage uses the settings of ``make demo`` for the preset (``tools/reproduce.py``),
so the table describes the benchmark the demo's tables stand on; ``make demo``'s own
report opens with rows (a), (b) and (d) of the same table.

It prints the table (a)-(d) and writes it to ``<out>/calibration.md``, together
with the paths of every stage's logs and checkpoints.

Usage::

    python tools/calibrate.py --out results/calibration [--preset tiny] [--size tiny]
"""

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "Synthetic" / "ASR" / "transformer"
SOURCE = "en-us"
TARGETS = ("en-gb-scotland", "en-029")


def run_stage(name, hparams_file, out, overrides, log_dir):
    """Runs ``train.py`` for one stage unless its results already exist."""
    output_folder = out / name
    results_file = output_folder / "results.json"
    if results_file.exists():
        print(f"[calibrate] {name}: finished earlier, reusing {results_file}")
        return json.loads(results_file.read_text())
    command = [
        sys.executable,
        str(RECIPE / "train.py"),
        str(RECIPE / "hparams" / hparams_file),
        f"--output_folder={output_folder}",
        *overrides,
    ]
    print(f"[calibrate] {name}: {' '.join(command[1:])}", flush=True)
    started = time.time()
    log_file = log_dir / f"{name}.log"
    with open(log_file, "w") as log:
        process = subprocess.run(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
        )
    if process.returncode != 0:
        tail = log_file.read_text().splitlines()[-25:]
        print("\n".join(tail), file=sys.stderr)
        raise SystemExit(
            f"[calibrate] {name} failed (exit {process.returncode}); log: {log_file}"
        )
    print(f"[calibrate] {name}: done in {time.time() - started:.0f} s", flush=True)
    return json.loads(results_file.read_text())


def demo_settings(preset):
    """The YAML keys ``make demo`` (``tools/reproduce.py``) uses for ``preset``.

    The calibration trains with the same settings as the demo, so that its
    table describes the benchmark the demo's tables are judged on. Presets the
    demo does not know keep the YAML defaults.
    """
    spec = importlib.util.spec_from_file_location("reproduce", REPO / "tools" /
                                                  "reproduce.py")
    reproduce = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reproduce)
    preset_keys = reproduce.PRESETS.get(("synthetic", preset), {})
    common = {k: v for k, v in preset_keys.get("common", {}).items()
              if k != "corpus_preset"}
    return {stage: {**common, **preset_keys.get(stage, {})}
            for stage in ("pretrain", "finetune")}


def calibration_table(results):
    """Markdown table of (a)-(d) test WERs from the stages' results."""
    pre = results["pretrain"]
    source_wer = pre[f"{SOURCE}_test"]["WER"]
    lines = [
        "| row | model | evaluated on | test WER (%) | test CER (%) | vs (a) |",
        "|---|---|---|---|---|---|",
        f"| (a) | pretrained on {SOURCE} | {SOURCE} | {source_wer:.2f} | "
        f"{pre[f'{SOURCE}_test']['CER']:.2f} | 1.00x |",
    ]
    for target in TARGETS:
        rows = [("(b)", f"pretrained on {SOURCE}, zero-shot", pre[f"{target}_test"])]
        if f"scratch_{target}" in results:
            rows.append(
                (
                    "(c)",
                    f"trained on {target} only",
                    results[f"scratch_{target}"][f"{target}_test"],
                )
            )
        rows.append(
            (
                "(d)",
                f"vanilla fine-tune on {target}",
                results[f"vanilla_{target}"][f"{target}_test"],
            )
        )
        for row, model, stats in rows:
            lines.append(
                f"| {row} | {model} | {target} | {stats['WER']:.2f} | "
                f"{stats['CER']:.2f} | {stats['WER'] / max(source_wer, 1e-9):.2f}x |"
            )
    return "\n".join(lines)


def main(argv=None):
    """Runs the calibration; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="results/calibration", help="output folder")
    parser.add_argument("--preset", default="tiny", help="corpus preset")
    parser.add_argument("--size", default="tiny", help="model size (hparams suffix)")
    parser.add_argument("--device", default="cpu", help="e.g. cuda:0")
    parser.add_argument(
        "--scratch-epochs", type=int, default=10, help="epochs for row (c)"
    )
    parser.add_argument(
        "--corpus",
        default=None,
        help="corpus folder (default corpora/synthetic_<preset>_0)",
    )
    args = parser.parse_args(argv)

    out = Path(args.out).resolve()
    log_dir = out / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    corpus = Path(
        args.corpus or REPO / "corpora" / f"synthetic_{args.preset}_0"
    ).resolve()
    started = time.time()

    print(
        f"[calibrate] building (or reusing) the {args.preset} corpus in {corpus}",
        flush=True,
    )
    subprocess.run(
        [
            sys.executable,
            "-m",
            "speechbrain_sparse.cli",
            "synth",
            "--preset",
            args.preset,
            "--out",
            str(corpus),
            "--source",
            SOURCE,
            "--targets",
            ",".join(TARGETS),
        ],
        check=True,
    )
    common = [
        f"--data_folder={corpus}",
        f"--corpus_preset={args.preset}",
        f"--device={args.device}",
    ]
    demo = demo_settings(args.preset)
    pretrain_keys = [f"--{key}={value}" for key, value in demo["pretrain"].items()
                     if key != "eval_dialects"]
    finetune_keys = [f"--{key}={value}" for key, value in demo["finetune"].items()]
    results = {}
    results["pretrain"] = run_stage(
        "pretrain", f"pretrain_{args.size}.yaml", out,
        [*common, *pretrain_keys, f"--eval_dialects=[{','.join((SOURCE, *TARGETS))}]"],
        log_dir,
    )
    pretrained = out / "pretrain" / "model"
    scratch_target = TARGETS[-1]
    results[f"scratch_{scratch_target}"] = run_stage(
        f"scratch_{scratch_target}",
        f"pretrain_{args.size}.yaml",
        out,
        [
            *common,
            *[k for k in pretrain_keys if not k.startswith("--number_of_epochs=")],
            "--stage=scratch",
            f"--dialect={scratch_target}",
            f"--eval_dialects=[{scratch_target}]",
            "--eval_splits=[test]",
            f"--number_of_epochs={args.scratch_epochs}",
        ],
        log_dir,
    )
    for target in TARGETS:
        results[f"vanilla_{target}"] = run_stage(
            f"vanilla_{target}",
            f"vanilla_{args.size}.yaml",
            out,
            [
                *common,
                *finetune_keys,
                f"--dialect={target}",
                f"--pretrained_dir={pretrained}",
                "--eval_splits=[test]",
            ],
            log_dir,
        )

    table = calibration_table(results)
    report = out / "calibration.md"
    report.write_text(
        f"# Benchmark calibration ({args.preset} corpus, {args.size} model)\n\n"
        f"{table}\n"
    )
    print("\n" + table + "\n")
    print(f"[calibrate] finished in {(time.time() - started) / 60:.1f} min")
    print(f"[calibrate] table: {report}")
    print(f"[calibrate] stage logs: {log_dir}")
    print(
        f"[calibrate] per stage: {out}/<stage>/train_log.txt (training log), "
        f"<stage>/save (checkpoints), <stage>/model (exported model)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
