"""Times SparseWAV one-shot OBS pruning of a wav2vec2-base-shaped model.

The model is ``Wav2Vec2ForCTC(Wav2Vec2Config())`` (the defaults are
wav2vec2-base: 12 layers, hidden 768, FFN 3072; ~94.4M parameters) with
random weights, which is all the cost depends on. Calibration: ``--clips``
random waveforms of 90-100 % of ``--seconds`` (so batches carry a little
padding), in batches of ``--batch-size``. The floor is one dense forward
pass of the same model over the same calibration batches, timed first in the
same run; pruning (``prune_model``, block by block, every layer's q/k/v/out
and FFN matrices to ``--sparsity``) is then timed in parts: calibration
forwards (block entry capture, the capture forward of each block, the
propagation forward), the Hessian accumulation inside them, and the OBS
solves (with the per-matrix reconstruction error when reported). Peak memory
is the process's maximum resident set size.

Two configurations are timed side by side in the same run, on copies of the
same model and batches: ``baseline``, the full ``XᵀX`` product in the Hessian
accumulation and the per-matrix reconstruction error in the report (as before
this comparison existed, except that the error is now taken in fp32), and
``fast``, the default: only the lower triangle of ``XᵀX`` (4 column blocks,
5/8 of the multiply-adds) and no reconstruction error
(``report_errors=False``). ``--configs fast`` times only the latter.

The solves are many small tensor operations: on a machine whose cores are
busy with other jobs, OpenMP threads that spin while they wait make them up to
20x slower (measured); ``OMP_WAIT_POLICY=passive`` avoids that, and the value
in effect is printed. Compare timings only from a quiet machine.

Usage: ``python tools/bench/obs_prune.py [--clips 32] [--seconds 10] [--layers 12]``
(quick: ``--clips 4 --seconds 4 --layers 2``).
Last line: ``RESULT prune_s=... dense_forward_s=... ratio=... target_ratio=2.5
baseline_ratio=... ...`` (``ratio`` and the parts are those of ``fast``).
"""

import argparse
import copy
import logging
import os
import resource
import time

import torch
from speechbrain.dataio.batch import PaddedBatch
from transformers import Wav2Vec2Config, Wav2Vec2ForCTC

from speechbrain_sparse.pruning.hessian import HessianAccumulator
from speechbrain_sparse.pruning.model_families import HuggingFaceSSLFamily
from speechbrain_sparse.pruning.oneshot import prune_model


def calibration_batches(clips, seconds, batch_size, seed=0):
    """Random waveforms of 90-100 % of ``seconds`` at 16 kHz, in batches."""
    generator = torch.Generator().manual_seed(seed)
    lengths = (16000 * seconds * (0.9 + 0.1 * torch.rand(clips, generator=generator)))
    examples = [{"id": f"clip{i}", "sig": torch.randn(int(n), generator=generator)}
                for i, n in enumerate(lengths.tolist())]
    return [PaddedBatch(examples[i:i + batch_size])
            for i in range(0, clips, batch_size)]


def peak_rss_gb():
    """Maximum resident set size of this process so far, in GB (Linux: KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def main():
    """Runs the benchmark and prints the RESULT line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--sparsity", type=float, default=0.8)
    parser.add_argument("--saliency", default="improved", choices=("improved", "obs"))
    parser.add_argument("--block-size", type=int, default=128)
    parser.add_argument("--configs", nargs="+", choices=list(CONFIGS),
                        default=["baseline", "fast"],
                        help="configurations timed, in this order")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.manual_seed(0)
    model = Wav2Vec2ForCTC(Wav2Vec2Config(num_hidden_layers=args.layers)).eval()
    params = sum(p.numel() for p in model.parameters())
    family = HuggingFaceSSLFamily()
    batches = calibration_batches(args.clips, args.seconds, args.batch_size)
    print(f"{params} parameters, {args.layers} layers, {args.clips} clips of "
          f"~{args.seconds:g} s in batches of {args.batch_size}, "
          f"{torch.get_num_threads()} threads, sparsity {args.sparsity}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}")

    with torch.no_grad():
        family.forward(model, calibration_batches(1, 1.0, 1)[0])  # warm-up
        start = time.perf_counter()
        for batch in batches:
            family.forward(model, batch)
        dense = time.perf_counter() - start
    print(f"dense forward over the calibration set: {dense:.2f} s "
          f"(peak RSS {peak_rss_gb():.2f} GB)")

    timed = {}
    for config in args.configs:
        timed[config] = time_pruning(copy.deepcopy(model), family, batches, args,
                                     config)
        report_config(config, timed[config], dense)
    fast = timed.get("fast") or timed[args.configs[-1]]
    total, timings = fast["total"], fast["timings"]
    forwards = timings["forward"] - timings["hessian"]
    baseline = timed.get("baseline")
    baseline_ratio = baseline["total"] / dense if baseline else float("nan")
    print(f"RESULT prune_s={total:.2f} dense_forward_s={dense:.2f} "
          f"ratio={total / dense:.2f} target_ratio=2.5 "
          f"baseline_ratio={baseline_ratio:.2f} "
          f"calib_forward_s={forwards:.2f} hessian_s={timings['hessian']:.2f} "
          f"solve_s={timings['solve']:.2f} error_s={timings['error']:.2f} "
          f"peak_rss_gb={peak_rss_gb():.2f} "
          f"params={params} layers={args.layers} clips={args.clips} "
          f"seconds={args.seconds:g} threads={torch.get_num_threads()} "
          f"omp_wait={os.environ.get('OMP_WAIT_POLICY', 'unset')}")


CONFIGS = {"baseline": {"column_blocks": 1, "report_errors": True},
           "fast": {"column_blocks": 4, "report_errors": False}}


def time_pruning(model, family, batches, args, config):
    """Prunes ``model`` with one configuration; returns its total and parts."""
    settings = CONFIGS[config]
    default = HessianAccumulator.DEFAULT_COLUMN_BLOCKS
    HessianAccumulator.DEFAULT_COLUMN_BLOCKS = settings["column_blocks"]
    try:
        start = time.perf_counter()
        mask = prune_model(model, family, batches, sparsity=args.sparsity,
                           saliency=args.saliency, block_size=args.block_size,
                           progress=False, report_errors=settings["report_errors"])
        total = time.perf_counter() - start
    finally:
        HessianAccumulator.DEFAULT_COLUMN_BLOCKS = default
    assert abs(mask.density() - (1 - args.sparsity)) < 1e-6, mask.density()
    errors = [m["relative_error"] for m in mask.options["report"]["matrices"].values()
              if m["relative_error"] is not None]
    return {"total": total, "timings": mask.options["report"]["timings"],
            "matrices": len(mask), "errors": errors}


def report_config(config, result, dense):
    """One line per configuration: total, ratio and where the time went."""
    total, timings = result["total"], result["timings"]
    forwards = timings["forward"] - timings["hessian"]
    errors = result["errors"]
    mean_error = f"{sum(errors) / len(errors):.4f}" if errors else "not computed"
    print(f"[{config}] pruned {result['matrices']} matrices in {total:.2f} s = "
          f"{total / dense:.2f}x the dense forward: calibration forwards "
          f"{forwards:.2f} s ({forwards / dense:.2f}x), Hessians "
          f"{timings['hessian']:.2f} s ({timings['hessian'] / dense:.2f}x), solves "
          f"{timings['solve']:.2f} s ({timings['solve'] / dense:.2f}x; of which "
          f"reconstruction errors {timings['error']:.2f} s), other "
          f"{total - timings['forward'] - timings['solve']:.2f} s; mean relative "
          f"reconstruction error {mean_error}", flush=True)


if __name__ == "__main__":
    main()
