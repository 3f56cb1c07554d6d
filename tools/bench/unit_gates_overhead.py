"""Gate overhead: a forward + backward with all-open unit gates vs without.

Two copies of the same random model, one with learnable gates (sigmoid of a
parameter, the cost of a hard-concrete sample) attached by
:func:`speechbrain_sparse.pruning.unit_gates.attach_unit_gates` at the FAHP
levels (qk dims, vo dims, mha, ffn units, ffn; plus conv channels for the
wav2vec2-shaped model), one plain; their steps are timed interleaved and the
median ratio is reported. Models: SpeechBrain TransformerASR at the recipe's
tiny size (d 144, 4 heads, 4 + 2 layers, d_ffn 576) on 4 x 3 s (75 encoder
frames, 30 tokens) and on 16 x 3 s, the unit tests' 16-wide TransformerASR, and a
wav2vec2-shaped model (hidden 144, 6 layers, 7 x 128 group-norm convs) on
4 x 2 s of audio. Times are the process's CPU time by default (``--clock
process``) with one thread: on the shared 2-core machine (load ~12) wall time
is meaningless, and with 2 threads the OpenMP workers' spinning dominates the
CPU time; ``--clock wall --threads 2`` on an idle machine.

Usage: ``python tools/bench/unit_gates_overhead.py [--steps 20] [--threads 1]
[--clock process|wall] [--models asr_tiny ...]``
Last line: ``RESULT ratio_<model>=<gated / plain> ...``.
"""

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from speechbrain_sparse.pruning.unit_gates import attach_unit_gates  # noqa: E402
from speechbrain_sparse.pruning.unit_structure import model_structure  # noqa: E402

LEVELS = ["head_qk_dim", "head_vo_dim", "mha", "ffn_unit", "ffn"]


class SigmoidGate(torch.nn.Module):
    """A learnable gate, fully open."""

    def __init__(self, count):
        super().__init__()
        self.logit = torch.nn.Parameter(torch.full((count,), 10.0))

    def forward(self):
        return torch.sigmoid(self.logit)


def asr_case(d_model, nhead, layers, d_ffn, batch=4, frames=75, tokens=30):
    from speechbrain.lobes.models.transformer.TransformerASR import TransformerASR

    torch.manual_seed(0)
    model = TransformerASR(input_size=640, tgt_vocab=100, d_model=d_model, nhead=nhead,
                           num_encoder_layers=layers[0], num_decoder_layers=layers[1],
                           d_ffn=d_ffn, dropout=0.0, activation=torch.nn.GELU,
                           normalize_before=True, causal=False)
    src = torch.randn(batch, frames, 640)
    tgt = torch.randint(3, 100, (batch, tokens))
    lengths = torch.ones(batch)

    def step(m):
        encoded, decoded = m(src, tgt, lengths, pad_idx=0)
        (encoded.square().mean() + decoded.square().mean()).backward()

    return model, step, LEVELS


def w2v2_case(batch=4, samples=32000):
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    config = Wav2Vec2Config(hidden_size=144, num_hidden_layers=6, num_attention_heads=4,
                            intermediate_size=576, conv_dim=(128,) * 7,
                            feat_extract_norm="group", hidden_dropout=0.0,
                            attention_dropout=0.0, activation_dropout=0.0,
                            feat_proj_dropout=0.0, layerdrop=0.0)
    model = Wav2Vec2Model(config)
    audio = torch.randn(batch, samples)

    def step(m):
        m(audio).last_hidden_state.square().mean().backward()

    return model, step, LEVELS + ["conv_channel"]


def measure(name, model, step, levels, steps, clock):
    model.train()
    gated = copy.deepcopy(model)
    structure = model_structure(gated)
    gates = {g: SigmoidGate(n) for g, (_, n) in structure.groups(levels).items()}
    attach_unit_gates(gated, structure, gates)
    times = {"plain": [], "gated": []}
    for i in range(steps + 2):
        for label, m in (("plain", model), ("gated", gated)):
            m.zero_grad(set_to_none=True)
            for gate in gates.values():
                gate.zero_grad(set_to_none=True)
            start = clock()
            step(m)
            if i >= 2:  # two warm-up rounds
                times[label].append(clock() - start)
    plain = statistics.median(times["plain"])
    ratio = statistics.median(g / p for g, p in zip(times["gated"], times["plain"]))
    print(f"{name}: {len(gates)} gates, plain {plain * 1000:.1f} ms, gated "
          f"{statistics.median(times['gated']) * 1000:.1f} ms, ratio {ratio:.3f}",
          flush=True)
    return ratio


def main():
    """Runs the benchmark and prints the RESULT line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clock", choices=["process", "wall"], default="process")
    parser.add_argument("--models", nargs="+",
                        default=["asr_tiny", "asr_tiny_b16", "asr_test16",
                                 "w2v2_small6"])
    args = parser.parse_args()
    clock = time.process_time if args.clock == "process" else time.perf_counter
    torch.set_num_threads(args.threads)
    cases = {
        "asr_tiny": lambda: asr_case(144, 4, (4, 2), 576),
        "asr_tiny_b16": lambda: asr_case(144, 4, (4, 2), 576, batch=16),
        "asr_test16": lambda: asr_case(16, 2, (2, 1), 32),
        "w2v2_small6": w2v2_case,
    }
    ratios = {}
    for name in args.models:
        model, step, levels = cases[name]()
        ratios[name] = measure(name, model, step, levels, args.steps, clock)
    print("RESULT " + " ".join(f"ratio_{k}={v:.3f}" for k, v in ratios.items())
          + f" threads={args.threads} clock={args.clock} target=1.10")


if __name__ == "__main__":
    main()
