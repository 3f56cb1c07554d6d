"""Expected parameter count of a gated model, and Lagrangian control of its sparsity.

With a gate per unit group (``"<block>:<kind>"``, see
:meth:`~speechbrain_sparse.pruning.unit_structure.ModelStructure.groups`), the
expected number of parameters left is, per attention block (d = hidden size)::

    π(MHA) · [ Σ_h π(head_h) · ( Σ_j π(qk_hj)·n_qk·a_h + Σ_j π(vo_hj)·n_vo ) + n(b_O) ]

with ``n_qk = 2(d+1)`` (a row of W_Q and W_K with biases), ``n_vo = 2d+1`` (a
row of W_V, its bias, a column of W_O), ``a_h = 1 - Π_j (1 - π(vo_hj))`` the
probability that head ``h`` keeps a vo dim (without one its qk dims are
useless and removed, as :meth:`UnitMask.hierarchical` does); per FFN block
``π(FFN) · [ Σ_u π(u)·(2d+1) + n(b_down) ]``; and per conv layer
``k_i·E[C_(i-1)]·E[C_i]`` plus the per-channel bias and norm entries, with the
neighbours' *expected* channel counts (DPHuBERT). A factor of a level that has
no gate is 1 and its term drops out where only that level removes it (b_O
without an MHA gate), so with every ``π = 1`` the sum is exactly
``structure.num_params(levels)`` (``N_gated``). ``p̂ = 1 - E/N_gated``.

:class:`LagrangianController` adds ``λ1(p̂ - p_t) + λ2(p̂ - p_t)²`` to the loss
with ``p_t = p·min(1, step/warmup_steps)``; ``λ1, λ2`` (initially 0) climb their
gradient on their own Adam (``maximize=True``), which no SpeechBrain scheduler
of the main optimizer touches (those set the lr of *every* group of the
optimizer they get, which would silently undo a negative-lr λ group).

Authors
 * speechbrain_sparse contributors 2026

Example
-------
>>> controller = LagrangianController(target=0.5, warmup_steps=10)
>>> p_hat = torch.tensor(0.1, requires_grad=True)
>>> controller.penalty(p_hat, step=5)  # λ = 0 at the start
tensor(0., grad_fn=<AddBackward0>)
>>> controller.penalty(p_hat, step=5).backward()
>>> controller.step()
>>> controller.lambda_1.item() < 0  # p̂ < p_t: ascent makes λ1 negative
True
"""

import math

import torch

from speechbrain_sparse.checkpoints import StateDictRecoverable
from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.pruning.unit_structure import ATTENTION_KINDS, FFN_KINDS


def _gate_levels(structure, probabilities):
    """The unit kinds present, after checking every group's name and count."""
    levels = {group.rpartition(":")[2] for group in probabilities}
    expected = structure.groups(sorted(levels))
    for group, value in probabilities.items():
        if group not in expected:
            structure.block_of(group)  # names the group that is not in the model
        count = expected[group][1]
        if tuple(value.shape) != (count,):
            raise UserInputError(f"gate {group!r}: {tuple(value.shape)} values for "
                                 f"{count} units")
    return tuple(sorted(levels))


def _factor(pi, group, count):
    """π of ``group`` as a [count] tensor; ones when the group has no gate."""
    value = pi.get(group)
    return torch.ones(count, device=pi.device) if value is None else value


class _Probabilities(dict):
    """Group -> π tensors, all on one device (``.device``)."""

    def __init__(self, values):
        super().__init__(values)
        self.device = next(iter(values.values())).device if values else None


def _attention_params(structure, block, pi, levels):
    qk = structure.params_per_unit(f"{block.name}:head_qk_dim")
    vo = structure.params_per_unit(f"{block.name}:head_vo_dim")
    heads, width = block.num_heads, block.num_heads * block.head_dim
    pi_qk = _factor(pi, f"{block.name}:head_qk_dim", width).reshape(heads, -1)
    pi_vo = _factor(pi, f"{block.name}:head_vo_dim", width).reshape(heads, -1)
    # A head whose vo dims are all gone outputs nothing: its qk dims go too.
    any_vo = 1.0 - (1.0 - pi_vo).prod(-1)
    per_head = pi_qk.sum(-1) * qk * any_vo + pi_vo.sum(-1) * vo
    total = (per_head * _factor(pi, f"{block.name}:head", heads)).sum()
    if "mha" in levels:
        total = _factor(pi, f"{block.name}:mha", 1).sum() * (
            total + block.slot_numel("bo"))
    return total


def _ffn_params(structure, block, pi, levels):
    unit = structure.params_per_unit(f"{block.name}:ffn_unit")
    total = _factor(pi, f"{block.name}:ffn_unit", block.d_ffn).sum() * unit
    if "ffn" in levels:
        bias = 0 if block.down.bias is None else block.down.bias.numel()
        total = _factor(pi, f"{block.name}:ffn", 1).sum() * (total + bias)
    return total


def _conv_params(stack, pi):
    """Σ_i k_i·E[C_(i-1)]·E[C_i] + per-channel bias and norm entries (i < last)."""
    total = torch.zeros((), device=pi.device)
    previous = torch.tensor(float(stack.convs[0].in_channels), device=pi.device)
    last = len(stack.convs) - 1
    for i, conv in enumerate(stack.convs):
        pi_i = pi.get(f"{stack.name}.{i}:conv_channel")
        channels = pi_i.sum() if pi_i is not None and i < last else torch.tensor(
            float(conv.out_channels), device=pi.device)
        total = total + conv.weight[0, 0].numel() * previous * channels
        if i < last:
            extra = 0 if conv.bias is None else conv.bias.numel()
            norm = stack.norms[i] if i < len(stack.norms) else None
            if norm is not None:
                extra += sum(p.numel() for p in (norm.weight, norm.bias)
                             if p is not None)
            total = total + channels * (extra // conv.out_channels)
        previous = channels
    return total


def _kept_params(structure, probabilities):
    """E (or, for 0/1 values, the exact count) and N_gated of a gated structure."""
    levels = _gate_levels(structure, probabilities)
    device = next(iter(probabilities.values())).device if probabilities else "cpu"
    pi = _Probabilities({group: value.to(device, torch.float32)
                         for group, value in probabilities.items()})
    total = torch.zeros((), device=device)
    if set(levels) & set(ATTENTION_KINDS):
        for block in structure.attention:
            total = total + _attention_params(structure, block, pi, levels)
    if set(levels) & set(FFN_KINDS):
        for block in structure.ffn:
            total = total + _ffn_params(structure, block, pi, levels)
    if "conv_channel" in levels:
        total = total + _conv_params(structure.conv, pi)
    return total, structure.num_params(levels) if levels else 0


def expected_params(structure, gates):
    """Expected number of parameters left, differentiable in the gates' ``log α``.

    Arguments
    ---------
    structure : ModelStructure
        The model's units (from ``unit_structure.model_structure``).
    gates : dict
        Group name -> gate with ``prob_open()`` (``HardConcrete``, ``BinarySTE``).
        The levels are the kinds present; a group of those levels with no gate
        counts as always open.

    Returns
    -------
    torch.Tensor
        A 0-dim float tensor; ``structure.num_params(levels)`` when all π = 1.

    Example
    -------
    >>> from speechbrain_sparse.pruning.hard_concrete import HardConcrete
    >>> from speechbrain_sparse.pruning.unit_structure import model_structure
    >>> from transformers import Wav2Vec2Config, Wav2Vec2Model
    >>> config = Wav2Vec2Config(hidden_size=8, num_hidden_layers=1,
    ...     num_attention_heads=2, intermediate_size=16, conv_dim=(4, 4),
    ...     conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=8,
    ...     num_conv_pos_embedding_groups=2)
    >>> structure = model_structure(Wav2Vec2Model(config))
    >>> gates = {g: HardConcrete(n, init_keep=0.5)
    ...          for g, (_, n) in structure.groups(["ffn_unit"]).items()}
    >>> round(expected_params(structure, gates).item())
    136
    >>> structure.num_params(["ffn_unit"])  # 16 units of 2·8 + 1
    272
    """
    probabilities = {group: gate.prob_open() for group, gate in gates.items()}
    return _kept_params(structure, probabilities)[0]


def expected_sparsity(structure, gates):
    """``p̂ = 1 - E/N_gated`` (a differentiable 0-dim tensor)."""
    kept, total = _kept_params(structure,
                               {g: gate.prob_open() for g, gate in gates.items()})
    return 1.0 - kept / total


def deterministic_masks(gates):
    """``{group: bool tensor}`` of every gate's final deterministic mask."""
    return {group: gate.deterministic_mask() for group, gate in gates.items()}


def achieved_sparsity(structure, unit_mask):
    """``1 - kept/N_gated`` of a final binary mask (group -> bool [count]).

    The kept count is the hierarchical one a surgered model has (a closed
    ``:mha`` removes its heads; open blocks with no units left keep their
    output bias).

    Example
    -------
    >>> from speechbrain_sparse.pruning.unit_structure import model_structure
    >>> from transformers import Wav2Vec2Config, Wav2Vec2Model
    >>> config = Wav2Vec2Config(hidden_size=8, num_hidden_layers=1,
    ...     num_attention_heads=2, intermediate_size=16, conv_dim=(4, 4),
    ...     conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=8,
    ...     num_conv_pos_embedding_groups=2)
    >>> structure = model_structure(Wav2Vec2Model(config))
    >>> mask = {"encoder.layers.0.feed_forward:ffn_unit": torch.arange(16) < 4}
    >>> achieved_sparsity(structure, mask)
    0.75
    """
    kept, total = _kept_params(structure, {g: torch.as_tensor(m).detach().float()
                                           for g, m in unit_mask.items()})
    return 1.0 - round(kept.item()) / total


class LagrangianController(StateDictRecoverable):
    """Steers the expected sparsity to a target with learned multipliers λ1, λ2.

    Not an ``nn.Module`` on purpose: λ must not land in the main optimizer
    (which would *descend* on it) through ``modules.parameters()``. Add it to
    the checkpointer's recoverables (``"lagrangian": controller``).

    Arguments
    ---------
    target : float
        Final sparsity ``p`` in [0, 1).
    warmup_steps : int
        Steps over which the target ramps linearly from 0 to ``p`` (0: none).
    lr_lambda : float
        Learning rate of λ's Adam (gradient ascent).

    Example
    -------
    >>> controller = LagrangianController(0.8, warmup_steps=100)
    >>> controller.target_at(50), controller.target_at(500)
    (0.4, 0.8)
    >>> main = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=1.0)
    >>> from speechbrain.nnet.schedulers import NoamScheduler
    >>> _ = NoamScheduler(1.0, 4)(main)
    >>> controller.optimizer.param_groups[0]["lr"]
    0.02
    """

    def __init__(self, target, warmup_steps=0, lr_lambda=0.02):
        if not (isinstance(target, (int, float)) and 0 <= target < 1):
            raise UserInputError(f"target={target!r}: the sparsity target must lie "
                                 "in [0, 1)")
        if isinstance(warmup_steps, bool) or not isinstance(warmup_steps, int) \
                or warmup_steps < 0:
            raise UserInputError(f"warmup_steps={warmup_steps!r}: expected an "
                                 "integer >= 0")
        if not (isinstance(lr_lambda, (int, float)) and math.isfinite(lr_lambda)
                and lr_lambda > 0):
            raise UserInputError(f"lr_lambda={lr_lambda!r}: expected a finite "
                                 "number > 0")
        self.target, self.warmup_steps, self.lr_lambda = target, warmup_steps, lr_lambda
        self.lambda_1 = torch.nn.Parameter(torch.zeros(()))
        self.lambda_2 = torch.nn.Parameter(torch.zeros(()))
        self.optimizer = torch.optim.Adam([self.lambda_1, self.lambda_2],
                                          lr=lr_lambda, maximize=True)
        self.last = {}

    def target_at(self, step):
        """``p_t = p·min(1, step/warmup_steps)`` (``p`` once the warm-up is over)."""
        if self.warmup_steps == 0:
            return self.target
        return self.target * min(1.0, step / self.warmup_steps)

    def penalty(self, expected_sparsity, step):
        """``λ1(p̂ - p_t) + λ2(p̂ - p_t)²``, to add to the loss before ``backward``."""
        gap = expected_sparsity - self.target_at(step)
        lambda_1 = self.lambda_1.to(gap.device)
        lambda_2 = self.lambda_2.to(gap.device)
        self.last = {"expected_sparsity": float(expected_sparsity.detach()),
                     "target_sparsity": self.target_at(step)}
        return lambda_1 * gap + lambda_2 * gap * gap

    def step(self):
        """One ascent step on λ1, λ2 from the gradients of the last backward."""
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def stats(self):
        """λ1, λ2 and the last expected and target sparsity (for logging)."""
        return {"lambda_1": self.lambda_1.item(), "lambda_2": self.lambda_2.item(),
                **self.last}

    def state_dict(self):
        """λ1, λ2, their optimizer's state and the settings."""
        return {"lambdas": torch.stack([self.lambda_1.detach(),
                                        self.lambda_2.detach()]).cpu(),
                "optimizer": self.optimizer.state_dict(),
                "settings": {"target": self.target, "warmup_steps": self.warmup_steps,
                             "lr_lambda": self.lr_lambda}}

    def load_state_dict(self, state):
        """Restores :meth:`state_dict` (the settings given at construction win)."""
        with torch.no_grad():
            self.lambda_1.copy_(state["lambdas"][0])
            self.lambda_2.copy_(state["lambdas"][1])
        self.optimizer.load_state_dict(state["optimizer"])
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_lambda

