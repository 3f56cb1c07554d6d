"""L0 structured pruning with distillation as a ``speechbrain.Brain`` mixin.

The student (``modules.student``: an HF wav2vec2 / HuBERT / WavLM model or an
SB TransformerASR) gets hard-concrete gates at the configured levels; a frozen
copy taken before the gates go on is the teacher (``requires_grad`` False,
eval, never stepped). The loss is the layer distillation plus the Lagrangian
penalty on the expected sparsity. Three optimizers, each stepped in
:meth:`L0PruningMixin.optimizers_step`: the main one (student weights and the
distillation projections; the YAML's ``opt_class``, which a SpeechBrain
``lr_annealing`` may drive; gradient clipping only here), the gates' (``log α``,
``reg_lr``, no weight decay; then ``constrain_()`` if asked) and λ's, which
the controller owns and no SpeechBrain scheduler sees. The target ramps with
the optimizer step. Gates, controller, every optimizer and the random-number
states are checkpoint recoverables, so a run killed mid-epoch resumes
identically. :meth:`L0PruningMixin.finish_l0` saves the deterministic
``UnitMask`` (checksummed) and returns achieved vs target sparsity.

YAML shape::

    l0: !new:speechbrain_sparse.pruning.l0_training.L0Config
        levels: [head_qk_dim, head_vo_dim, mha, ffn_unit, ffn]
        distillation: !new:speechbrain_sparse.pruning.distillation.LayerDistillation
            student_dim: 768
            teacher_dim: 768
            student_layers: [4, 8, 12]
        controller: !new:speechbrain_sparse.pruning.structured_l0.LagrangianController
            target: 0.75
            warmup_steps: 5000
            lr_lambda: 0.02
        make_gate: !name:speechbrain_sparse.pruning.hard_concrete.HardConcrete
            ste: True
        init_keep: {ffn_unit: 0.5}
        reg_lr: 0.02
        max_grad_norm: 10.0
        log_every: 50

Authors
 * speechbrain_sparse contributors 2026

Example
-------
>>> from speechbrain_sparse.pruning.distillation import LayerDistillation
>>> from speechbrain_sparse.pruning.structured_l0 import LagrangianController
>>> config = L0Config(["head", "ffn_unit"], LayerDistillation(8, 8, [1]),
...                   LagrangianController(0.5))
>>> config.levels, config.reg_lr
(['head', 'ffn_unit'], 0.02)
"""

import copy
import csv
import logging
import os

import speechbrain as sb
import torch

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.pruning.gate_set import build_gates
from speechbrain_sparse.pruning.hard_concrete import HardConcrete
from speechbrain_sparse.pruning.structured_l0 import (
    LagrangianController,
    achieved_sparsity,
    expected_sparsity,
)
from speechbrain_sparse.pruning.unit_gates import attach_unit_gates
from speechbrain_sparse.pruning.unit_masks import UnitMask
from speechbrain_sparse.pruning.unit_structure import UNIT_KINDS, model_structure
from speechbrain_sparse.rng_state import RNGState

logger = logging.getLogger(__name__)

CSV_NAME = "l0_gates.csv"


class L0Config:
    """Everything the L0 stage needs, built from YAML with ``!new:``.

    Arguments
    ---------
    levels : list of str
        Gated unit kinds (FAHP: head_qk_dim, head_vo_dim, mha, ffn_unit, ffn;
        head level: head, mha, ffn_unit, ffn; plus conv_channel if wanted).
    distillation : LayerDistillation
        Student-vs-teacher loss (its projections train with the student).
    controller : LagrangianController
        Target, ramp and λ's own optimizer.
    make_gate : callable
        ``count -> gate`` (default ``HardConcrete``; STE on/off there).
    init_keep : dict or None
        Unit kind -> initial keep probability.
    reg_lr : float
        Learning rate of the gates' Adam (no weight decay).
    max_grad_norm : float
        Clipping of the main parameters' gradient norm (0: none).
    constrain : bool
        Call the gates' ``constrain_()`` after each gate step.
    log_every : int
        Write target / expected sparsity, λ and mean z per level to
        ``<output_folder>/l0_gates.csv`` every this many steps (0: never).
    """

    def __init__(self, levels, distillation, controller, make_gate=HardConcrete,
                 init_keep=None, reg_lr=0.02, max_grad_norm=10.0, constrain=False,
                 log_every=10):
        unknown = [level for level in levels if level not in UNIT_KINDS]
        if not levels or unknown:
            raise UserInputError(f"levels={list(levels)!r}: unknown level(s) "
                                 f"{unknown}; choose from {list(UNIT_KINDS)}")
        if not isinstance(controller, LagrangianController):
            raise UserInputError(f"controller={controller!r}: expected a "
                                 "LagrangianController")
        for name, value in (("reg_lr", reg_lr), ("max_grad_norm", max_grad_norm)):
            if not isinstance(value, (int, float)) or value < 0 or value != value:
                raise UserInputError(f"{name}={value!r}: expected a number >= 0")
        self.levels, self.distillation, self.controller = list(levels), distillation, \
            controller
        self.make_gate, self.init_keep, self.reg_lr = make_gate, init_keep, reg_lr
        self.max_grad_norm, self.constrain = max_grad_norm, constrain
        self.log_every = int(log_every)


def hidden_state_count(structure):
    """Hidden states a layer distillation can index: layers + 1 (the input)."""
    return sum(1 for block in structure.ffn if ".encoder." in f".{block.name}") + 1


def average_gradients(parameters):
    """Averages the gradients of ``parameters`` over the DDP ranks (if any).

    The gates and λ sit outside the DDP-wrapped student, so nothing else
    synchronises them; with the same average every rank takes the same step
    and log α stays identical on all of them.
    """
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        return
    world = torch.distributed.get_world_size()
    for parameter in parameters:
        if parameter.grad is None:
            parameter.grad = torch.zeros_like(parameter)
        torch.distributed.all_reduce(parameter.grad)
        parameter.grad.div_(world)


def check_distillation_layers(distillation, structure):
    """Named error for a distillation layer index the model does not have."""
    count = hidden_state_count(structure)
    for name in ("student_layers", "teacher_layers"):
        for index in getattr(distillation, name) or []:
            if not 0 <= index < count:
                raise UserInputError(
                    f"distillation {name}: layer {index} is out of range; the "
                    f"{structure.family} encoder has hidden states 0..{count - 1}")


class L0PruningMixin:
    """Brain mixin: ``class Stage(L0PruningMixin, sb.Brain)`` (see module doc).

    Needs ``modules.student`` and ``hparams.l0`` (an :class:`L0Config`);
    ``opt_class`` builds the main optimizer. A subclass overrides
    :meth:`encoder_states` for inputs other than ``batch.sig`` into an HF model.
    """

    gates = handle = structure = teacher = None

    # -- the model's hidden states ---------------------------------------------
    def encoder_states(self, model, batch):
        """``(hidden states per layer, relative lengths)`` of ``model`` on ``batch``."""
        wavs, lengths = batch.sig
        wavs, lengths = wavs.to(self.device), lengths.to(self.device)
        return model(wavs, output_hidden_states=True).hidden_states, lengths

    # -- set-up ----------------------------------------------------------------
    def on_fit_start(self):
        """Teacher, gates, recoverables; then SpeechBrain's (optimizers, recovery)."""
        if self.gates is None:
            self.attach_l0()
        super().on_fit_start()

    def attach_l0(self):
        """Builds teacher, structure and gates from ``hparams.l0`` (once)."""
        config, student = self.hparams.l0, self.modules.student
        self.structure = model_structure(student)
        check_distillation_layers(config.distillation, self.structure)
        hf_config = getattr(student, "config", None)
        if getattr(hf_config, "layerdrop", 0.0):
            # Skipped layers would drop hidden states the distillation pairs need.
            logger.info("L0: layerdrop %s -> 0 for distillation", hf_config.layerdrop)
            hf_config.layerdrop = 0.0
        self.teacher = copy.deepcopy(student).eval()
        for parameter in self.teacher.parameters():
            parameter.requires_grad_(False)
        self.gates = build_gates(self.structure, config.levels, config.make_gate,
                                 config.init_keep).to(self.device)
        self.handle = attach_unit_gates(student, self.structure, self.gates)
        config.distillation.to(self.device)
        self.controller = config.controller
        if self.checkpointer is not None:
            held = self.checkpointer.recoverables.values()
            if not any(obj is student or obj is self.modules for obj in held):
                self.checkpointer.add_recoverable("student", student)
            for name, obj in (("l0_gates", self.gates),
                              ("l0_distillation", config.distillation),
                              ("lagrangian", self.controller)):
                self.checkpointer.add_recoverable(name, obj)
            if "rng_state" not in self.checkpointer.recoverables:
                self.checkpointer.add_recoverable("rng_state", RNGState(),
                                                  optional_load=True)

    def init_optimizers(self):
        """Main (student + projections) and gate optimizers; λ's is the controller's."""
        config = self.hparams.l0
        main = [*self.modules.student.parameters(),
                *config.distillation.parameters()]
        self.optimizer = self.opt_class([p for p in main if p.requires_grad])
        self.gate_optimizer = torch.optim.Adam(self.gates.parameters(),
                                               lr=config.reg_lr, weight_decay=0.0)
        self.optimizers_dict = {"opt_class": self.optimizer,
                                "gates": self.gate_optimizer}
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable("optimizer", self.optimizer)
            self.checkpointer.add_recoverable("gate_optimizer", self.gate_optimizer)

    # -- one step --------------------------------------------------------------
    def compute_forward(self, batch, stage):
        """Student and (no-grad) teacher hidden states."""
        self.handle.resample()
        student, lengths = self.encoder_states(self.modules.student, batch)
        with torch.no_grad():
            teacher, _ = self.encoder_states(self.teacher, batch)
        return student, teacher, lengths

    def compute_objectives(self, predictions, batch, stage):
        """Distillation + (in training) the Lagrangian penalty."""
        student, teacher, lengths = predictions
        loss = self.hparams.l0.distillation(student, teacher, lengths)
        if stage == sb.Stage.TRAIN:
            sparsity = expected_sparsity(self.structure, self.gates)
            loss = loss + self.controller.penalty(sparsity, self.optimizer_step)
        return loss

    def optimizers_step(self):
        """Clip and step the main optimizer, step gates (+ constrain) and λ."""
        config = self.hparams.l0
        if config.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(
                [p for g in self.optimizer.param_groups for p in g["params"]],
                config.max_grad_norm)
        average_gradients([*self.gates.parameters(), self.controller.lambda_1,
                           self.controller.lambda_2])
        self.optimizer.step()
        self.gate_optimizer.step()
        if config.constrain:
            self.gates.constrain_()
        self.controller.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.gate_optimizer.zero_grad(set_to_none=True)
        self.optimizer_step += 1
        if config.log_every and self.optimizer_step % config.log_every == 0:
            self._write_csv_row()

    # -- logging and the end -----------------------------------------------------
    def l0_stats(self):
        """Target, expected, achieved sparsity, λ1, λ2 and mean z per level."""
        with torch.no_grad():
            expected = expected_sparsity(self.structure, self.gates).item()
            achieved = achieved_sparsity(self.structure,
                                         self.gates.deterministic_masks())
            values = self.handle.values()
        stats = {"step": self.optimizer_step,
                 "target": self.controller.target_at(self.optimizer_step),
                 "expected": expected, "achieved": achieved,
                 "lambda_1": self.controller.lambda_1.item(),
                 "lambda_2": self.controller.lambda_2.item()}
        for level in self.hparams.l0.levels:
            zs = [z.detach().float() for g, z in values.items()
                  if g.rpartition(":")[2] == level]
            stats[f"mean_z_{level}"] = torch.cat(zs).mean().item()
        return stats

    def _write_csv_row(self):
        if not sb.utils.distributed.if_main_process():
            return
        stats = self.l0_stats()
        path = os.path.join(self.hparams.output_folder, CSV_NAME)
        new = not os.path.exists(path)
        with open(path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(stats))
            if new:
                writer.writeheader()
            writer.writerow(stats)

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Logs the L0 statistics after each training epoch."""
        if stage == sb.Stage.TRAIN and self.gates is not None:
            stats = self.l0_stats()
            train_logger = getattr(self.hparams, "train_logger", None)
            if train_logger is not None:
                train_logger.log_stats({"epoch": epoch}, train_stats=stats)
            else:
                logger.info("L0 epoch %s: %s", epoch, stats)
        return super().on_stage_end(stage, stage_loss, epoch)

    def finish_l0(self, path):
        """Saves the deterministic ``UnitMask`` to ``path``; returns the sparsities.

        Returns
        -------
        dict
            ``{"target": p, "achieved": 1 - kept/N_gated, "mask": UnitMask}``.
        """
        masks = self.gates.deterministic_masks()
        unit_mask = UnitMask({g: m.cpu() for g, m in masks.items()},
                             self.structure.fingerprint(), method="l0")
        unit_mask.save(path)
        result = {"target": self.controller.target,
                  "achieved": achieved_sparsity(self.structure, masks),
                  "mask": unit_mask}
        logger.info("L0: achieved sparsity %.4f, target %.4f", result["achieved"],
                    result["target"])
        return result
