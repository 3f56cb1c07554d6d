"""Language-pathway training step vs dense training step (target <= 1.10x).

The model is the project's joint CTC/attention TransformerASR, built from
``speechbrain_sparse/hparams/transformer_asr.yaml`` with the ``tiny`` and
``small`` sizes of ``tools/write_hparams.py`` (CNN front-end, CTC + attention
loss as in the recipes). Two identical copies train inside SpeechBrain
``Brain`` objects on the same random fbank-like batches (8 utterances x 400
frames x 80 mels, 40 tokens):

* ``dense``: ``MaskedAdamW`` with no mask, every step updates everything;
* ``pathway``: ``PathwayTrainingMixin`` with four languages, each a random
  pathway of density 0.3 (70 % sparsity, the paper's level) over every
  Transformer layer matrix (attention and FFN; front-end, norms and heads
  shared), fixed pathways, languages in round robin. Each step masks the
  forward weights, the gradients and the AdamW update (per-entry bias
  correction).

Steps are interleaved (dense/pathway, then pathway/dense) after a warm-up.
``*_ratio`` is the median of the per-pair wall-clock ratios, ``*_cpu_ratio``
the same with this process's CPU time (steadier when other jobs share the
cores). The pathway-only work (masking the weights, the gradients and the
update) is also timed on its own (CPU time, 9 repeats) and reported as a
fraction of the median dense step's CPU time (``*_overhead``).

Usage: ``python tools/bench/pathway_step.py [--pairs-tiny 8 --pairs-small 3
--threads 2]``.
"""

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.dataio.batch import PaddedBatch

from speechbrain_sparse.masked_adamw import MaskedAdamW
from speechbrain_sparse.masks import ParameterMask
from speechbrain_sparse.pathway_training import PathwayTrainingMixin
from speechbrain_sparse.pruning.pathways import PathwayMasks

ROOT = Path(__file__).resolve().parents[2]
ARCH = ROOT / "speechbrain_sparse" / "hparams" / "transformer_asr.yaml"
VOCAB = {"tiny": 100, "small": 500}  # the recipes' tokenizer sizes
LANGUAGES = ("en", "fr", "it", "nl")
BATCH, FRAMES, TOKENS, DENSITY = 8, 400, 40, 0.3


def sizes():
    """The model sizes of ``tools/write_hparams.py``."""
    spec = importlib.util.spec_from_file_location("write_hparams",
                                                  ROOT / "tools" / "write_hparams.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SIZES


class ASRStep(sb.Brain):
    """The recipes' joint CTC/attention objective on precomputed features."""

    def compute_forward(self, batch, stage):
        feats, lengths = batch.feats
        src = self.modules.CNN(feats)
        encoded, decoded = self.modules.Transformer(
            src, batch.tokens_bos.data, lengths, pad_idx=0)
        ctc = self.hparams.log_softmax(self.modules.ctc_lin(encoded))
        seq = self.hparams.log_softmax(self.modules.seq_lin(decoded))
        return ctc, seq, lengths

    def compute_objectives(self, predictions, batch, stage):
        ctc, seq, lengths = predictions
        tokens, token_lengths = batch.tokens
        loss_ctc = self.hparams.ctc_cost(ctc, tokens, lengths, token_lengths)
        loss_seq = self.hparams.seq_cost(seq, batch.tokens_eos.data,
                                         length=token_lengths)
        return 0.3 * loss_ctc + 0.7 * loss_seq


class PathwayASRStep(PathwayTrainingMixin, ASRStep):
    """The same step on one language's pathway."""


def build(size, cls, seed=0):
    config = sizes()[size]
    keys = ("d_model", "nhead", "num_encoder_layers", "num_decoder_layers", "d_ffn")
    overrides = {k: config[k] for k in keys}
    overrides.update(vocab_size=VOCAB[size],
                     transformer_dropout=float(config["dropout"]))
    torch.manual_seed(seed)
    with open(ARCH, encoding="utf-8") as handle:
        hparams = load_hyperpyyaml(handle, overrides)
    modules = {k: v for k, v in hparams["modules"].items() if k != "normalize"}
    brain = cls(modules, lambda p: MaskedAdamW(p, lr=1e-4, betas=(0.9, 0.98),
                                               weight_decay=0.01),
                hparams=hparams, run_opts={"device": "cpu"})
    return brain


def random_pathways(brain, seed=1):
    gen = torch.Generator().manual_seed(seed)
    layers = ("Transformer.encoder.layers", "Transformer.decoder.layers")
    shapes = {n: p.shape for n, p in brain.modules.named_parameters()
              if n.startswith(layers) and p.dim() == 2}
    return PathwayMasks({
        language: ParameterMask({n: torch.rand(s, generator=gen) < DENSITY
                                 for n, s in shapes.items()})
        for language in LANGUAGES})


def make_batch(language, vocab, seed):
    gen = torch.Generator().manual_seed(seed)
    rows = []
    for i in range(BATCH):
        tokens = torch.randint(3, vocab, (TOKENS,), generator=gen)
        rows.append({"id": f"{language}{seed}_{i}", "language": language,
                     "feats": torch.randn(FRAMES, 80, generator=gen), "tokens": tokens,
                     "tokens_bos": torch.cat([torch.tensor([1]), tokens]),
                     "tokens_eos": torch.cat([tokens, torch.tensor([2])])})
    return PaddedBatch(rows)


def measure(size, pairs, warmup):
    brains = {"dense": build(size, ASRStep), "pathway": build(size, PathwayASRStep)}
    pathways = random_pathways(brains["pathway"])
    brains["pathway"].attach_pathways(pathways)
    for brain in brains.values():
        brain.init_optimizers()
        brain.modules.train()
    params = sum(p.numel() for p in brains["dense"].modules.parameters())
    masked = pathways[LANGUAGES[0]].numel()
    print(f"{size}: {params / 1e6:.2f} M parameters, {masked / 1e6:.2f} M in pathways "
          f"(density {DENSITY} per language)", flush=True)
    times = {name: [] for name in brains}
    cpu = {name: [] for name in brains}
    for i in range(warmup + pairs):
        batch = make_batch(LANGUAGES[i % len(LANGUAGES)], VOCAB[size], seed=i)
        order = ["dense", "pathway"] if i % 2 == 0 else ["pathway", "dense"]
        for name in order:
            start, start_cpu = time.perf_counter(), time.process_time()
            brains[name].fit_batch(batch)
            elapsed = time.perf_counter() - start
            if i >= warmup:
                times[name].append(elapsed)
                cpu[name].append(time.process_time() - start_cpu)
        if i >= warmup:
            print(f"  step {i}: " + " ".join(
                f"{n} {times[n][-1] * 1e3:.0f} ms (cpu {cpu[n][-1] * 1e3:.0f})"
                for n in order), flush=True)
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, seconds in medians.items():
        print(f"{size} {name:8s} median {seconds * 1e3:9.1f} ms over {pairs} steps")
    ratio = statistics.median(p / d for p, d in zip(times["pathway"], times["dense"]))
    cpu_ratio = statistics.median(p / d for p, d in zip(cpu["pathway"], cpu["dense"]))
    extra = isolated_overhead(brains)
    dense_cpu = statistics.median(cpu["dense"])
    print(f"{size} pathway-only work {extra * 1e3:.1f} ms cpu per step "
          f"= {extra / dense_cpu:.3f} of a dense step's cpu time", flush=True)
    return ratio, cpu_ratio, extra / dense_cpu


def isolated_overhead(brains, repeats=9):
    """Median cpu seconds of (pathway optimizer step + weight masking) - dense."""
    def with_grads(brain):
        gen = torch.Generator().manual_seed(0)
        for param in brain.modules.parameters():
            param.grad = torch.randn(param.shape, generator=gen)

    times = {"dense": [], "pathway": []}
    for i in range(repeats):
        language = LANGUAGES[i % len(LANGUAGES)]
        for name, brain in brains.items():
            with_grads(brain)
            start = time.process_time()
            if name == "pathway":
                with brain.language_forward(language):
                    brain._step_language = language
            brain.optimizers_step()
            times[name].append(time.process_time() - start)
    return statistics.median(times["pathway"]) - statistics.median(times["dense"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs-tiny", type=int, default=8)
    parser.add_argument("--pairs-small", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpu")
    tiny = measure("tiny", args.pairs_tiny, warmup=2)
    small = measure("small", args.pairs_small, warmup=1)
    print(f"RESULT tiny_ratio={tiny[0]:.3f} small_ratio={small[0]:.3f} "
          f"tiny_cpu_ratio={tiny[1]:.3f} small_cpu_ratio={small[1]:.3f} "
          f"tiny_overhead={tiny[2]:.3f} small_overhead={small[2]:.3f}")


if __name__ == "__main__":
    main()
