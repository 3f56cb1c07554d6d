#!/usr/bin/env python3
"""The dev-set investigation behind the claims section of the synthetic recipe README.

Fine-tunes the demo's pretrained tiny model on both target dialects with the demo's
settings (2 epochs, beam 1, no valid search) and varies one thing at a time --
learning rate (vanilla, diff, the diff30+topk10 union), L1 weight toward the pretrained
weights (diff), epochs (diff and the union), random's density, the seed (vanilla) --
evaluating on the **dev sets only** (never tuned on test).
Runs go two at a time with one thread each; finished runs are reused.

Usage::

    python tools/dev_investigation.py \\
        --pretrained results/demo/tiny/pretrain/model --out results/investigate
"""

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "Synthetic" / "ASR" / "transformer"
TARGETS = ("en-gb-scotland", "en-029")
DEMO = ["--test_beam_size=1", "--valid_search_every=0", "--number_of_epochs=2",
        "--eval_splits=[dev]"]


def variants(out, target):
    """(name, YAML, overrides) of the second round (they need vanilla_lr1e-3)."""
    finetuned = f"--finetuned_dir={out}/{target}/vanilla_lr1e-3/model"
    return [
        ("vanilla_lr2e-3", "vanilla_tiny.yaml", ["--lr=0.002"]),
        ("vanilla_lr1e-3_seed2", "vanilla_tiny.yaml", ["--lr=0.001", "--seed=2"]),
        ("diff_lr1e-3", "diff_tiny.yaml", ["--lr=0.001", finetuned]),
        ("diff_lr2e-3", "diff_tiny.yaml", ["--lr=0.002", finetuned]),
        ("diff_lr1e-3_l1_100", "diff_tiny.yaml",
         ["--lr=0.001", "--l1_weight=100.0", finetuned]),
        ("diff_lr1e-3_l1_1000", "diff_tiny.yaml",
         ["--lr=0.001", "--l1_weight=1000.0", finetuned]),
        # the claim "diff30 + topk10 union >= diff" (Table IV): lr and epochs
        ("union_lr1e-3", "union_tiny.yaml", ["--lr=0.001", finetuned]),
        ("union_lr5e-4", "union_tiny.yaml", ["--lr=0.0005", finetuned]),
        ("diff_lr5e-4", "diff_tiny.yaml", ["--lr=0.0005", finetuned]),
        ("union_lr1e-3_4ep", "union_tiny.yaml",
         ["--lr=0.001", "--number_of_epochs=4", finetuned]),
        ("diff_lr1e-3_4ep", "diff_tiny.yaml",
         ["--lr=0.001", "--number_of_epochs=4", finetuned]),
        # the claim "random is worst" (Table III): random's density
        ("random_d0.1", "random_tiny.yaml", ["--lr=0.001", "--density=0.1"]),
        ("random_d0.5", "random_tiny.yaml", ["--lr=0.001", "--density=0.5"]),
    ]


def run(out, pretrained, target, name, yaml_file, overrides):
    """One fine-tuning run (skipped when its results exist); returns its folder."""
    folder = out / target / name
    if not (folder / "results.json").is_file():
        own = {option.split("=", 1)[0] for option in overrides}
        demo = [option for option in DEMO if option.split("=", 1)[0] not in own]
        command = [sys.executable, str(RECIPE / "train.py"),
                   str(RECIPE / "hparams" / yaml_file), f"--output_folder={folder}",
                   f"--pretrained_dir={pretrained}", f"--dialect={target}", *demo,
                   *overrides]
        folder.parent.mkdir(parents=True, exist_ok=True)
        with open(out / f"{target}_{name}.log", "w") as log:
            subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, check=True,
                           env={**os.environ, "OMP_NUM_THREADS": "1"})
    return folder


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pretrained", required=True, type=Path)
    parser.add_argument("--out", default=REPO / "results" / "investigate", type=Path)
    args = parser.parse_args(argv)
    out = args.out.resolve()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda t: run(out, args.pretrained, t, "vanilla_lr1e-3",
                                    "vanilla_tiny.yaml", ["--lr=0.001"]), TARGETS))
        jobs = [(t, *v) for t in TARGETS for v in variants(out, t)]
        list(pool.map(lambda job: run(out, args.pretrained, *job), jobs))
    print("| run | " + " | ".join(f"{t} dev WER" for t in TARGETS) + " | mean |")
    print("|---|" + "---|" * (len(TARGETS) + 1))
    for name in ["vanilla_lr1e-3"] + [v[0] for v in variants(out, TARGETS[0])]:
        wers = [json.loads((out / t / name / "results.json").read_text())
                [f"{t}_dev"]["WER"] for t in TARGETS]
        cells = " | ".join(f"{w:.2f}" for w in wers)
        print(f"| {name} | {cells} | {sum(wers) / len(wers):.2f} |")


if __name__ == "__main__":
    main()
