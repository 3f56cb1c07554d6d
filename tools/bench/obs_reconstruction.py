"""Per-layer reconstruction error of OBS vs magnitude pruning on a trained model.

For every matrix the SparseWAV pruner handles in a trained Transformer ASR
model folder of the synthetic recipe (q/k/v slices, out_proj and both FFN
matrices of every encoder and decoder layer, cross-attention included), the
inputs ``X`` of the *dense* model are collected twice: on calibration
utterances of the training manifest (``H = 2XXᵀ/n``, what OBS prunes with)
and on held-out utterances of the dev manifest. Each matrix is then pruned to
the same sparsity by layer-wise OBS (``prune_matrix``, ``--saliency``) and by
magnitude (``magnitude_prune_matrix``), both from the same dense weights and
the same inputs, and the relative reconstruction error
``||WX - ŴX||² / ||WX||²`` of both is computed on both sets of inputs. A table
gives them per matrix; the summary per layer sums the errors of its matrices.

Usage: ``python tools/bench/obs_reconstruction.py [--model DIR] [--corpus DIR]
[--sparsity 0.8]``. Last line: ``RESULT obs_lower_on_all_layers=1
obs_lower_on_all_matrices=1 worst_ratio=... median_ratio=...`` (ratios of the
OBS error to the magnitude error, on the held-out inputs; per layer for
``worst_ratio``).
"""

import argparse
import logging
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from speechbrain_sparse.pruning.calibration import (  # noqa: E402
    accumulate_hessians,
    capture_stage_entry,
    load_calibration_batches,
    propagate,
)
from speechbrain_sparse.pruning.obs import (  # noqa: E402
    magnitude_prune_matrix,
    prune_matrix,
)
from speechbrain_sparse.pruning.pretrained import load_pretrained  # noqa: E402
from speechbrain_sparse.pruning.reconstruction import (  # noqa: E402
    relative_reconstruction_error,
)

DEFAULT_MODEL = REPO / "results/reproduce/synthetic_tiny/tiny/pretrain/model"
DEFAULT_CORPUS = REPO / "corpora/synthetic_tiny_0"


@torch.no_grad()
def dense_hessians(model, family, batches):
    """Block name -> stream -> Hessian of the dense model's inputs."""
    hessians = {}
    for stage in family.stages(model):
        calls = [capture_stage_entry(model, family, stage, b) for b in batches]
        for index, block in enumerate(stage.blocks):
            accumulators = accumulate_hessians(block, calls)
            hessians[block.name] = {name: acc.hessian()
                                    for name, acc in accumulators.items()}
            if index + 1 < len(stage.blocks):
                calls = propagate(family, stage, index, calls)
    return hessians


def main():
    """Runs the comparison and prints the RESULT line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL),
                        help="trained model folder (default: the demo's tiny model)")
    parser.add_argument("--corpus", default=str(DEFAULT_CORPUS),
                        help="synthetic corpus folder with <dialect>/{train,dev}.csv")
    parser.add_argument("--dialect", default="en-us")
    parser.add_argument("--sparsity", type=float, default=0.8)
    parser.add_argument("--saliency", default="improved", choices=("improved", "obs"))
    parser.add_argument("--damp", type=float, default=0.01,
                        help="OBS dampening (fraction of the mean Hessian diagonal)")
    parser.add_argument("--calibration", type=int, default=128,
                        help="training utterances for the Hessians OBS uses")
    parser.add_argument("--held-out", type=int, default=128,
                        help="dev utterances the errors are also measured on")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    started = time.perf_counter()
    pretrained = load_pretrained(args.model)
    model, family = pretrained.model.eval(), pretrained.family
    family.normalize.eval()
    sets = {}
    for label, split, count in (("calibration", "train", args.calibration),
                                ("held-out", "dev", args.held_out)):
        batches = load_calibration_batches(
            Path(args.corpus) / args.dialect / f"{split}.csv", count, 8, seed=0,
            tokenizer=pretrained.tokenizer)
        sets[label] = dense_hessians(model, family, batches)
    rows = []
    for stage in family.stages(model):
        for block in stage.blocks:
            for matrix in block.matrices:
                weight = matrix.read().float()
                hessian = sets["calibration"][block.name][matrix.stream]
                obs = prune_matrix(weight, hessian, args.sparsity,
                                   saliency=args.saliency, damp=args.damp).weight
                magnitude = magnitude_prune_matrix(weight, args.sparsity)
                magnitude = weight * magnitude.mask
                errors = {
                    (label, kind): relative_reconstruction_error(
                        weight, pruned, sets[label][block.name][matrix.stream],
                        kind="hessian")
                    for label in sets for kind, pruned in (("obs", obs),
                                                           ("magnitude", magnitude))}
                rows.append((block.name, matrix.name, errors))
    print(f"{args.model}: {len(rows)} matrices pruned to {args.sparsity:g} "
          f"({args.saliency} saliency, damp {args.damp:g}); relative "
          "reconstruction error "
          "||WX - ŴX||²/||WX||² on calibration (train) / held-out (dev) inputs")
    print(f"{'matrix':58s} {'OBS cal':>8s} {'mag cal':>8s} {'OBS dev':>8s} "
          f"{'mag dev':>8s} {'ratio dev':>9s}")
    for _, name, e in rows:
        print(f"{name:58s} {e['calibration', 'obs']:8.4f} "
              f"{e['calibration', 'magnitude']:8.4f} {e['held-out', 'obs']:8.4f} "
              f"{e['held-out', 'magnitude']:8.4f} "
              f"{e['held-out', 'obs'] / e['held-out', 'magnitude']:9.3f}")
    layers = {}
    for block, _, e in rows:
        totals = layers.setdefault(block, dict.fromkeys(e, 0.0))
        for key, value in e.items():
            totals[key] += value
    print("per layer (sum over its matrices): layer, OBS / magnitude on held-out")
    ratios = {}
    for block, totals in layers.items():
        ratios[block] = totals["held-out", "obs"] / totals["held-out", "magnitude"]
        print(f"  {block:40s} {totals['held-out', 'obs']:.4f} / "
              f"{totals['held-out', 'magnitude']:.4f} = {ratios[block]:.3f}")
    matrix_ratios = [e["held-out", "obs"] / e["held-out", "magnitude"]
                     for _, _, e in rows]
    on_calibration = all(e["calibration", "obs"] < e["calibration", "magnitude"]
                         for _, _, e in rows)
    print(f"RESULT obs_lower_on_all_layers={int(max(ratios.values()) < 1)} "
          f"obs_lower_on_all_matrices={int(max(matrix_ratios) < 1)} "
          f"obs_lower_on_all_matrices_calibration={int(on_calibration)} "
          f"worst_ratio={max(ratios.values()):.3f} "
          f"worst_matrix_ratio={max(matrix_ratios):.3f} "
          f"median_ratio={statistics.median(matrix_ratios):.3f} "
          f"layers={len(ratios)} matrices={len(rows)} sparsity={args.sparsity:g} "
          f"seconds={time.perf_counter() - started:.1f}")


if __name__ == "__main__":
    main()
