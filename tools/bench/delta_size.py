"""Sparse delta size and speed for an 87.5M-parameter model at several densities.

The base is random fp32 tensors shaped like the paper's Transformer (Large)
(the shapes of ``tools/bench/mask_selection.py``); the fine-tuned model
changes a random ``density`` of every tensor's entries. For each density the
script writes the delta (:func:`speechbrain_sparse.delta.create_delta`),
rebuilds the fine-tuned state dict from base + delta
(:func:`speechbrain_sparse.delta.apply_delta`, checked ``torch.equal``) and
compares the delta's file size with the dense ``torch.save`` checkpoint.
One process; peak resident memory about six copies of the model (2.1 GB measured).

Usage: ``python tools/bench/delta_size.py [--densities 0.05 0.1 0.2 0.5]``
Last lines: ``RESULT delta_ratio_d<density>=<file / dense> create_s=... apply_s=...``
per density, then ``RESULT params=<int> dense_bytes=<int> target_ratio_d0.2=0.25``.
"""

import argparse
import os
import tempfile
import time

import torch
from mask_selection import large_transformer_shapes

from speechbrain_sparse.delta import apply_delta, create_delta


def changed_state(base, density, generator):
    """``base`` with a random ``density`` of each tensor's entries changed."""
    out = {}
    for name, tensor in base.items():
        pick = torch.rand(tensor.shape, generator=generator) < density
        out[name] = torch.where(pick, tensor + 0.01, tensor)
    return out


def main():
    """Runs the benchmark and prints the RESULT lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--densities", type=float, nargs="+",
                        default=[0.05, 0.1, 0.2, 0.5])
    parser.add_argument("--vocab", type=int, default=2000)
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    base = {name: torch.randn(shape, generator=generator)
            for name, shape in large_transformer_shapes(vocab=args.vocab).items()}
    params = sum(t.numel() for t in base.values())
    print(f"{params} parameters in {len(base)} tensors, "
          f"{torch.get_num_threads()} threads")
    results = []
    with tempfile.TemporaryDirectory() as folder:
        dense_path = os.path.join(folder, "model.ckpt")
        torch.save(base, dense_path)
        dense = os.path.getsize(dense_path)
        os.remove(dense_path)
        path = os.path.join(folder, "dialect.delta")
        for density in args.densities:
            finetuned = changed_state(base, density, generator)
            start = time.perf_counter()
            info = create_delta(base, finetuned, path)
            create_s = time.perf_counter() - start
            start = time.perf_counter()
            rebuilt = apply_delta(base, path)
            apply_s = time.perf_counter() - start
            assert all(torch.equal(rebuilt[k], finetuned[k]) for k in finetuned)
            ratio = info["file_bytes"] / dense
            print(f"density {density}: {info['changed']} of {info['entries']} "
                  f"entries changed, {info['file_bytes']} bytes = {ratio:.4f}x the "
                  f"dense checkpoint ({dense} bytes), create {create_s:.2f} s, "
                  f"apply {apply_s:.2f} s")
            results.append(f"RESULT delta_ratio_d{density}={ratio:.4f} "
                           f"create_s={create_s:.2f} apply_s={apply_s:.2f}")
            del finetuned, rebuilt
    for line in results:
        print(line)
    print(f"RESULT params={params} dense_bytes={dense} target_ratio_d0.2=0.25")


if __name__ == "__main__":
    main()
