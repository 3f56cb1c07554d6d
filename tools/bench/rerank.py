"""Exact global re-rank of adaptive masking: 87.5 M entries, and its amortised cost.

Two measurements, in one run, on ``--threads`` torch threads (default 2):

1. ``rerank_seconds``: one exact global re-rank
   (:meth:`~speechbrain_sparse.pruning.adaptive.AdaptiveMasker.on_step`: rank
   ``|θ|`` of every prunable entry, keep exactly ``N - round(0.7·N)``, zero
   the rest) over random tensors in the shapes of the prunable matrices of the
   paper's Transformer-large (d_model 512, 16 encoder / 8 decoder layers,
   d_ffn 2048: q/k/v/out of self and cross attention and the FFN Linears,
   83.9 M entries) plus one dense-head-like filler, 87.5 M entries in all.
   One masker re-ranks ``--reranks + 1`` times (weights redrawn each time),
   as in training; the first, which allocates the masker's reusable
   workspace, is reported apart (``first_rerank_seconds``), the median of the
   others is ``rerank_seconds`` (wall clock; ``rerank_cpu_seconds``, the
   process CPU time of both threads, says how much of it is work when other
   jobs share the cores). The exact count and the zeros are checked each
   time. Target: ≤ 2 s.
2. ``overhead_n50``: the recipe's ``tiny`` Transformer ASR (Fbank, CNN
   front-end, d_model 144, 4 encoder / 2 decoder layers, d_ffn 576; joint
   CTC/attention loss, AdamW; a batch of 4 one-second utterances, smaller
   than the recipe's, so the relative overhead is an upper bound) trains
   blocks of 50 steps, alternately plain
   and with ``masker.on_step`` after every step (it re-ranks once per block,
   ``rerank_every=50``), ``--pairs`` pairs with the order swapped in every
   other pair. ``overhead_n50`` = (time with - time without) / time without,
   summed over the pairs; ``overhead_parts`` = median re-rank time / (50 ×
   median plain step time), the same quantity from the parts (less noisy on
   a shared machine). Target: ≤ 5 %.

Usage: ``python tools/bench/rerank.py [--threads 2 --reranks 3 --pairs 3]``;
ends with ``RESULT rerank_seconds=... overhead_n50=...``.

Authors
 * speechbrain_sparse contributors 2026
"""

import argparse
import statistics
import time
from pathlib import Path

import torch
from hyperpyyaml import load_hyperpyyaml

from speechbrain_sparse.masks import Coverage
from speechbrain_sparse.pruning.adaptive import AdaptiveMasker
from speechbrain_sparse.pruning.schedules import ConstantSchedule

ROOT = Path(__file__).resolve().parents[2]
ARCH = ROOT / "speechbrain_sparse" / "hparams" / "transformer_asr.yaml"
TINY = {"d_model": 144, "nhead": 4, "num_encoder_layers": 4, "num_decoder_layers": 2,
        "d_ffn": 576, "vocab_size": 64, "n_mels": 80, "transformer_dropout": 0.0}
TOTAL = 87_500_000


def large_shapes():
    """The prunable matrices of Transformer-large, plus fillers up to 87.5 M."""
    d, ffn = 512, 2048
    shapes = {}
    for i in range(16):
        shapes[f"enc{i}.in_proj"] = (3 * d, d)
        shapes[f"enc{i}.out_proj"] = (d, d)
        shapes[f"enc{i}.ffn0"], shapes[f"enc{i}.ffn3"] = (ffn, d), (d, ffn)
    for i in range(8):
        for att in ("self", "cross"):
            shapes[f"dec{i}.{att}.in_proj"] = (3 * d, d)
            shapes[f"dec{i}.{att}.out_proj"] = (d, d)
        shapes[f"dec{i}.ffn0"], shapes[f"dec{i}.ffn3"] = (ffn, d), (d, ffn)
    rest = TOTAL - sum(a * b for a, b in shapes.values())
    shapes["filler"] = (rest // d, d)
    shapes["filler_tail"] = (rest - (rest // d) * d,)
    return shapes


class ParameterSet(torch.nn.Module):
    """Holds random tensors of the given shapes as parameters."""

    def __init__(self, shapes):
        super().__init__()
        self.weights = torch.nn.ParameterDict(
            {n.replace(".", "_"): torch.nn.Parameter(torch.empty(s)) for n, s in
             shapes.items()})

    @torch.no_grad()
    def redraw(self, seed):
        generator = torch.Generator().manual_seed(seed)
        for param in self.parameters():
            param.normal_(generator=generator)


def measure_rerank(reranks):
    shapes = large_shapes()
    model = ParameterSet(shapes)
    total = sum(p.numel() for p in model.parameters())
    print(f"[rerank] {len(shapes)} tensors, {total:,} entries", flush=True)
    masker = AdaptiveMasker(ConstantSchedule(0.7), rerank_every=50,
                            final_mode="soft", coverage=Coverage())
    times, cpu = [], []
    for r in range(reranks + 1):  # the first allocates the masker's workspace
        model.redraw(r)
        start, start_cpu = time.perf_counter(), time.process_time()
        mask = masker.on_step(model, 50 * r)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        kept = mask.num_selected()
        expected = total - int(0.7 * total + 0.5)
        assert kept == expected, (kept, expected)
        zeros = sum(int((p == 0).sum()) for p in model.parameters())
        assert zeros == total - kept, (zeros, total - kept)
        print(f"[rerank] {r}{' (first)' if r == 0 else ''}: {times[-1]:.3f} s "
              f"(CPU {cpu[-1]:.3f} s), kept {kept:,} (exact)", flush=True)
    return statistics.median(times[1:]), times[0], statistics.median(cpu[1:])


def tiny_asr():
    with open(ARCH, encoding="utf-8") as handle:
        hparams = load_hyperpyyaml(handle, dict(TINY))
    generator = torch.Generator().manual_seed(0)
    wavs = torch.randn(4, 16000, generator=generator)  # 4 x 1 s: a cheap step
    lens = torch.tensor([1.0, 0.9, 0.8, 0.7])
    tokens = torch.randint(3, TINY["vocab_size"], (4, 12), generator=generator)
    token_lens = torch.ones(4)
    bos = torch.cat([torch.ones(4, 1, dtype=torch.long), tokens], 1)
    eos = torch.cat([tokens, torch.full((4, 1), 2, dtype=torch.long)], 1)
    feats = hparams["normalize"](hparams["compute_features"](wavs), lens)
    hparams["normalize"].eval()
    model = hparams["model"].train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step():
        enc, dec = hparams["Transformer"](hparams["CNN"](feats), bos, lens, pad_idx=0)
        ctc = torch.log_softmax(hparams["ctc_lin"](enc), -1)
        seq = torch.log_softmax(hparams["seq_lin"](dec), -1)
        loss = (0.3 * hparams["ctc_cost"](ctc, tokens, lens, token_lens)
                + 0.7 * hparams["seq_cost"](seq, eos, length=token_lens))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return model, step


def measure_overhead(pairs, n=50):
    from speechbrain_sparse.pruning.global_magnitude import TRANSFORMER_ASR_COVERAGE

    model, step = tiny_asr()
    masker = AdaptiveMasker(ConstantSchedule(0.7), rerank_every=n, final_mode="soft",
                            coverage=TRANSFORMER_ASR_COVERAGE)
    counter = {"step": 0}
    step_times, rerank_times = [], []

    def block(with_rerank):
        start = time.perf_counter()
        for _ in range(n):
            t0 = time.perf_counter()
            step()
            counter["step"] += 1
            t1 = time.perf_counter()
            if with_rerank:
                if masker.on_step(model, counter["step"]) is not None:
                    rerank_times.append(time.perf_counter() - t1)
            else:
                step_times.append(t1 - t0)
        return time.perf_counter() - start

    masker.on_step(model, 0)
    for _ in range(5):  # warm-up
        step()
    counter["step"] = 0
    numel = masker.mask.numel()
    print(f"[overhead] tiny ASR: {numel:,} prunable entries", flush=True)
    plain, ranked = 0.0, 0.0
    for p in range(pairs):
        order = (False, True) if p % 2 == 0 else (True, False)
        for with_rerank in order:
            seconds = block(with_rerank)
            if with_rerank:
                ranked += seconds
            else:
                plain += seconds
            print(f"[overhead] pair {p} {'rerank' if with_rerank else 'plain '}: "
                  f"{seconds:.2f} s", flush=True)
    parts = statistics.median(rerank_times) / (n * statistics.median(step_times))
    print(f"[overhead] step {statistics.median(step_times) * 1e3:.1f} ms, re-rank "
          f"{statistics.median(rerank_times) * 1e3:.1f} ms ({len(rerank_times)})",
          flush=True)
    return (ranked - plain) / plain, parts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--reranks", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with open("/proc/loadavg", encoding="ascii") as handle:
        print(f"[load] {handle.read().strip()}", flush=True)
    rerank_seconds, first, cpu = measure_rerank(args.reranks)
    overhead, parts = measure_overhead(args.pairs)
    print(f"RESULT rerank_seconds={rerank_seconds:.3f} overhead_n50={overhead:.4f} "
          f"overhead_parts={parts:.4f} first_rerank_seconds={first:.3f} "
          f"rerank_cpu_seconds={cpu:.3f} threads={args.threads}")


if __name__ == "__main__":
    main()
