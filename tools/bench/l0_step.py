"""Gate overhead of a training step: L0 distill step vs plain distill step.

One frozen teacher and two copies of the same student (a wav2vec2-shaped
random model: hidden 144, 6 layers, 4 heads, FFN 576, 7 x 128 group-norm
convs), on a batch of 4 x 4 s. The plain step: teacher forward (no grad),
student forward, :class:`LayerDistillation` (layers 2, 4, 6), backward,
gradient clipping, AdamW step. The L0 step adds hard-concrete gates at the
FAHP levels and the conv channels (``--levels`` to choose) attached with
``attach_unit_gates`` (sampled
once per forward), the Lagrangian penalty on ``expected_sparsity``, the gates'
Adam and λ's step. The two are timed interleaved; process CPU time and wall
time are both printed, the ratio is the median of per-round ratios
(``--clock`` picks which one the RESULT line's ratio uses).

Usage: ``python tools/bench/l0_step.py [--steps 8] [--threads 2]
[--clock process|wall] [--levels KIND ...] [--profile]``.
Last line: ``RESULT l0_step_ratio=<L0 / plain> ...`` (target <= 1.10).

Authors
 * speechbrain_sparse contributors 2026
"""

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from speechbrain_sparse.pruning.distillation import LayerDistillation  # noqa: E402
from speechbrain_sparse.pruning.gate_set import build_gates  # noqa: E402
from speechbrain_sparse.pruning.structured_l0 import (  # noqa: E402
    LagrangianController,
    expected_sparsity,
)
from speechbrain_sparse.pruning.unit_gates import attach_unit_gates  # noqa: E402
from speechbrain_sparse.pruning.unit_structure import model_structure  # noqa: E402

LEVELS = ["head_qk_dim", "head_vo_dim", "mha", "ffn_unit", "ffn", "conv_channel"]


def student_model():
    from transformers import Wav2Vec2Config, Wav2Vec2Model

    torch.manual_seed(0)
    config = Wav2Vec2Config(hidden_size=144, num_hidden_layers=6, num_attention_heads=4,
                            intermediate_size=576, conv_dim=(128,) * 7,
                            feat_extract_norm="group", layerdrop=0.0,
                            mask_time_prob=0.0)
    return Wav2Vec2Model(config)


class Setup:
    """Teacher, a trainable student copy, distillation, optimizers; gates if ``l0``."""

    def __init__(self, teacher, l0, levels=LEVELS):
        torch.manual_seed(1)
        self.teacher = teacher
        self.student = copy.deepcopy(teacher).train().requires_grad_(True)
        self.distill = LayerDistillation(144, 144, [2, 4, 6])
        self.main = torch.optim.AdamW([*self.student.parameters(),
                                       *self.distill.parameters()], lr=1e-4)
        self.gates = self.controller = None
        if l0:
            self.structure = model_structure(self.student)
            self.gates = build_gates(self.structure, levels)
            self.handle = attach_unit_gates(self.student, self.structure, self.gates)
            self.gate_optimizer = torch.optim.Adam(self.gates.parameters(), lr=0.02)
            self.controller = LagrangianController(0.5, warmup_steps=100)

    def step(self, audio, lengths, index):
        with torch.no_grad():
            target = self.teacher(audio, output_hidden_states=True).hidden_states
        if self.gates is not None:
            self.handle.resample()
        hidden = self.student(audio, output_hidden_states=True).hidden_states
        loss = self.distill(hidden, target, lengths)
        if self.gates is not None:
            loss = loss + self.controller.penalty(
                expected_sparsity(self.structure, self.gates), index)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(
            [p for g in self.main.param_groups for p in g["params"]], 10.0)
        self.main.step()
        self.main.zero_grad(set_to_none=True)
        if self.gates is not None:
            self.gate_optimizer.step()
            self.gate_optimizer.zero_grad(set_to_none=True)
            self.controller.step()


def main():
    """Runs the benchmark and prints the RESULT line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--clock", choices=["process", "wall"], default="process")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--levels", nargs="+", default=LEVELS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"threads={args.threads} load={os.getloadavg()[0]:.2f}", flush=True)
    teacher = student_model().eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    plain, l0 = Setup(teacher, False), Setup(teacher, True, args.levels)
    generator = torch.Generator().manual_seed(0)
    audio = torch.randn(4, 64000, generator=generator)
    lengths = torch.ones(4)
    times = {("plain", "cpu"): [], ("l0", "cpu"): [], ("plain", "wall"): [],
             ("l0", "wall"): []}
    for i in range(args.steps + 1):
        for label, setup in (("plain", plain), ("l0", l0)):
            cpu, wall = time.process_time(), time.perf_counter()
            setup.step(audio, lengths, i)
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            if i >= 1:  # one warm-up round
                times[(label, "cpu")].append(cpu)
                times[(label, "wall")].append(wall)
        if i >= 1:
            print(f"round {i}: plain {times[('plain', 'cpu')][-1]:.3f} s cpu "
                  f"{times[('plain', 'wall')][-1]:.3f} s wall, l0 "
                  f"{times[('l0', 'cpu')][-1]:.3f} s cpu "
                  f"{times[('l0', 'wall')][-1]:.3f} s wall", flush=True)
    ratios = {clock: statistics.median(
        a / b for a, b in zip(times[("l0", clock)], times[("plain", clock)]))
        for clock in ("cpu", "wall")}
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            l0.step(audio, lengths, args.steps + 1)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))
    chosen = ratios["cpu" if args.clock == "process" else "wall"]
    print(f"RESULT l0_step_ratio={chosen:.3f} cpu_ratio={ratios['cpu']:.3f} "
          f"wall_ratio={ratios['wall']:.3f} "
          f"plain_cpu_s={statistics.median(times[('plain', 'cpu')]):.3f} "
          f"l0_cpu_s={statistics.median(times[('l0', 'cpu')]):.3f} "
          f"threads={args.threads} clock={args.clock} levels={','.join(args.levels)} "
          "target=1.10")


if __name__ == "__main__":
    main()
