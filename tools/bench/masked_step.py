"""Vanilla vs masked fine-tuning step time and optimizer-state memory.

Two SpeechBrain ``TransformerASR`` shapes, both with TransformerASR's linear
front-end on 80-dim features (no CNN), a CTC head on the encoder and a
cross-entropy head on the decoder:

* ``tiny``: d_model 144, 4 encoder / 2 decoder layers, d_ffn 576, 4 heads,
  vocabulary 64;
* ``small`` (the paper's transformer-small): d_model 256, 12 encoder / 6
  decoder layers, d_ffn 2048, 4 heads, vocabulary 64.

Each shape trains two identical copies inside real ``speechbrain.core.Brain``
objects, on the same random batch (8 x 300 frames, 30 tokens): ``vanilla`` is
``sb.Brain`` with dense ``torch.optim.AdamW``; ``masked`` is
``MaskedTrainingMixin`` + ``MaskedAdamW`` with a random freeze mask of
density 0.1 covering *every* parameter (worst case: every tensor is
partially trainable, so no tensor leaves the optimizer and backward does the
full work). Steps are interleaved (vanilla/masked, then masked/vanilla) and
the median of each is taken. ``masked_torch_adamw`` (the mask enforced
around dense AdamW) is timed the same way on ``tiny``.

Optimizer state: bytes of the tensors in ``optimizer.state`` after one step
of dense AdamW vs MaskedAdamW at densities 0.1 and 0.3 on the small shape,
plus, reported separately, MaskedAdamW's int32 index cache (derived from the
mask, not checkpointed) and dense AdamW over the same masked model (every
tensor partially trainable, so excluding fully frozen tensors saves nothing).

Peak memory: the resident-set peak of a fresh process that trains three
steps of the small shape, vanilla vs masked (density 0.1), each in its own
process (``ru_maxrss``).

Usage: ``python tools/bench/masked_step.py [--pairs-tiny 12 --pairs-small 12
--threads 1]`` (CPU; one torch thread by default, since the 2 cores are shared).
"""

import argparse
import resource
import statistics
import subprocess
import sys
import time

import speechbrain as sb
import torch
from speechbrain.lobes.models.transformer.TransformerASR import TransformerASR

from speechbrain_sparse.masked_adamw import MaskedAdamW
from speechbrain_sparse.training import MaskedTrainingMixin

SHAPES = {
    "tiny": dict(
        d_model=144, nhead=4, num_encoder_layers=4, num_decoder_layers=2, d_ffn=576
    ),
    "small": dict(
        d_model=256, nhead=4, num_encoder_layers=12, num_decoder_layers=6, d_ffn=2048
    ),
}
VOCAB, FEATS, BATCH, FRAMES, TOKENS = 64, 80, 8, 300, 30


class ASRStep(sb.Brain):
    """CTC on the encoder + cross-entropy on the decoder."""

    def compute_forward(self, batch, stage):
        feats, tokens = batch
        encoded, decoded = self.modules.model(feats, tokens[:, :-1], pad_idx=0)
        return self.modules.ctc_head(encoded), self.modules.seq_head(decoded)

    def compute_objectives(self, predictions, batch, stage):
        ctc_logits, seq_logits = predictions
        tokens = batch[1]
        log_probs = ctc_logits.float().log_softmax(-1).transpose(0, 1)
        lengths = torch.full((BATCH,), log_probs.shape[0], dtype=torch.long)
        ctc = torch.nn.functional.ctc_loss(
            log_probs, tokens[:, 1:], lengths, torch.full((BATCH,), TOKENS - 1)
        )
        ce = torch.nn.functional.cross_entropy(
            seq_logits.float().reshape(-1, VOCAB), tokens[:, 1:].reshape(-1)
        )
        return ctc + ce


class MaskedASRStep(MaskedTrainingMixin, ASRStep):
    """The same step with the mask enforced."""


def make_modules(shape, seed=0):
    torch.manual_seed(seed)
    config = SHAPES[shape]
    model = TransformerASR(VOCAB, FEATS, dropout=0.0, causal=False, **config)
    return {
        "model": model,
        "ctc_head": torch.nn.Linear(config["d_model"], VOCAB),
        "seq_head": torch.nn.Linear(config["d_model"], VOCAB),
    }


def random_mask(modules, density, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return {
        n: torch.rand(p.shape, generator=gen) < density
        for n, p in torch.nn.ModuleDict(modules).named_parameters()
    }


def make_brain(cls, modules, opt_class, mask=None):
    brain = cls(modules, opt_class, run_opts={"device": "cpu"})
    if mask is not None:
        brain.attach_mask(mask, mode="freeze")
    brain.on_fit_start()
    brain.modules.train()
    return brain


def make_batch():
    gen = torch.Generator().manual_seed(2)
    feats = torch.randn(BATCH, FRAMES, FEATS, generator=gen)
    tokens = torch.randint(1, VOCAB, (BATCH, TOKENS), generator=gen)
    return feats, tokens


def adamw(params):
    return torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)


def masked_adamw(params):
    return MaskedAdamW(params, lr=1e-4, weight_decay=0.01)


def interleaved_medians(brains, pairs, warmup=1):
    """Median seconds per fit_batch of each brain, steps interleaved."""
    batch = make_batch()
    times = {name: [] for name in brains}
    order = list(brains)
    for i in range(warmup + pairs):
        for name in order if i % 2 == 0 else order[::-1]:
            start = time.perf_counter()
            brains[name].fit_batch(batch)
            elapsed = time.perf_counter() - start
            if i >= warmup:
                times[name].append(elapsed)
    return {name: statistics.median(t) for name, t in times.items()}


def state_bytes(optimizer):
    return sum(
        t.numel() * t.element_size()
        for state in optimizer.state.values()
        for t in state.values()
        if torch.is_tensor(t)
    )


def optimizer_state_report(shape="small"):
    """Optimizer-state bytes after one step with random gradients."""
    report = {}
    for label, density, opt_class in [
        ("dense", None, adamw),
        ("masked_d0.1", 0.1, masked_adamw),
        ("masked_d0.3", 0.3, masked_adamw),
        ("adamw_masked_d0.1", 0.1, adamw),
    ]:
        modules = make_modules(shape)
        mask = None if density is None else random_mask(modules, density)
        cls = ASRStep if mask is None else MaskedASRStep
        brain = make_brain(cls, modules, opt_class, mask)
        for p in brain.modules.parameters():
            if p.requires_grad:
                p.grad = torch.randn_like(p)
        brain.optimizers_step()
        report[label] = state_bytes(brain.optimizer)
        cache = getattr(brain.optimizer, "_indices", {})
        report[label + "_index"] = sum(
            t.numel() * t.element_size() for t in cache.values()
        )
    return report


def peak_rss_child(variant, shape="small", steps=3):
    """Trains ``steps`` batches of one variant; prints this process's peak RSS."""
    modules = make_modules(shape)
    if variant == "vanilla":
        brain = make_brain(ASRStep, modules, adamw)
    else:
        brain = make_brain(
            MaskedASRStep, modules, masked_adamw, random_mask(modules, 0.1)
        )
    batch = make_batch()
    for _ in range(steps):
        brain.fit_batch(batch)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # KiB -> MiB


def peak_rss_mib(variant):
    """Peak resident memory of a fresh process training ``variant`` (MiB)."""
    output = subprocess.run(
        [sys.executable, __file__, "--peak-rss", variant],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return float(output.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs-tiny", type=int, default=12)
    parser.add_argument("--pairs-small", type=int, default=12)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1: stable on a shared 2-core box)",
    )
    parser.add_argument(
        "--peak-rss", choices=("vanilla", "masked"), help=argparse.SUPPRESS
    )  # child process of the memory check
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.peak_rss:
        return peak_rss_child(args.peak_rss)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpu")

    ratios = {}
    for shape, pairs in (("tiny", args.pairs_tiny), ("small", args.pairs_small)):
        brains = {
            "vanilla": make_brain(ASRStep, make_modules(shape), adamw),
            "masked": make_brain(
                MaskedASRStep,
                make_modules(shape),
                masked_adamw,
                random_mask(make_modules(shape), 0.1),
            ),
        }
        if shape == "tiny":
            brains["masked_torch_adamw"] = make_brain(
                MaskedASRStep,
                make_modules(shape),
                adamw,
                random_mask(make_modules(shape), 0.1),
            )
        params = sum(p.numel() for p in brains["vanilla"].modules.parameters())
        medians = interleaved_medians(brains, pairs)
        for name, seconds in medians.items():
            print(
                f"{shape:5s} ({params / 1e6:.2f} M params) {name:18s} "
                f"median {seconds * 1e3:8.1f} ms over {pairs} steps"
            )
            ratios[f"{name}_{shape}"] = seconds / medians["vanilla"]
        del brains

    report = optimizer_state_report("small")
    dense = report["dense"]
    for label, value in report.items():
        print(
            f"optimizer state {label:24s} {value / 2**20:8.2f} MiB "
            f"({value / dense:.3f} x dense AdamW)"
        )
    peak = {variant: peak_rss_mib(variant) for variant in ("vanilla", "masked")}
    for variant, mib in peak.items():
        print(
            f"peak RSS, small, 3 steps, {variant:8s} {mib:8.1f} MiB (separate process)"
        )
    print(
        "RESULT"
        f" masked_over_vanilla_tiny={ratios['masked_tiny']:.3f}"
        f" masked_over_vanilla_small={ratios['masked_small']:.3f}"
        f" optstate_ratio_d0.1={report['masked_d0.1'] / dense:.3f}"
        f" optstate_ratio_d0.3={report['masked_d0.3'] / dense:.3f}"
        f" torch_adamw_masked_over_vanilla_tiny="
        f"{ratios['masked_torch_adamw_tiny']:.3f}"
        f" optstate_with_index_ratio_d0.1="
        f"{(report['masked_d0.1'] + report['masked_d0.1_index']) / dense:.3f}"
        f" optstate_with_index_ratio_d0.3="
        f"{(report['masked_d0.3'] + report['masked_d0.3_index']) / dense:.3f}"
        f" dense_adamw_under_mask_ratio_d0.1="
        f"{report['adamw_masked_d0.1'] / dense:.3f}"
        f" peak_rss_mib_vanilla_small={peak['vanilla']:.0f}"
        f" peak_rss_mib_masked_small={peak['masked']:.0f}"
    )


if __name__ == "__main__":
    main()
