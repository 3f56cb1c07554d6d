"""One gate per unit group of a model, held as a single module.

:func:`build_gates` makes a gate (``HardConcrete`` by default, any callable
``count -> gate module``) for every group of
``structure.groups(levels)``; the :class:`GateSet` it returns is an
``nn.Module`` (so the gates' ``log α`` go to their own optimizer, into the
checkpoint as one recoverable, to a device, train/eval together) that also reads
like the ``{group: gate}`` dict which
:func:`~speechbrain_sparse.pruning.unit_gates.attach_unit_gates` and
:func:`~speechbrain_sparse.pruning.structured_l0.expected_params` take. A group
name holds dots, which module names may not, so the sub-module names spell
them ``/``.

Authors
 * speechbrain_sparse contributors 2026

Example
-------
>>> from speechbrain_sparse.pruning.unit_structure import model_structure
>>> from transformers import Wav2Vec2Config, Wav2Vec2Model
>>> config = Wav2Vec2Config(hidden_size=8, num_hidden_layers=1,
...     num_attention_heads=2, intermediate_size=16, conv_dim=(4, 4),
...     conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=8,
...     num_conv_pos_embedding_groups=2)
>>> structure = model_structure(Wav2Vec2Model(config))
>>> gates = build_gates(structure, ["head", "ffn_unit"], init_keep={"ffn_unit": 0.5})
>>> list(gates)
['encoder.layers.0.attention:head', 'encoder.layers.0.feed_forward:ffn_unit']
>>> round(gates["encoder.layers.0.feed_forward:ffn_unit"].prob_open()[0].item(), 3)
0.5
>>> sorted(gates.state_dict())[0]
'gates.encoder/layers/0/attention:head.log_alpha'
"""

import torch

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.pruning.hard_concrete import HardConcrete


def _module_name(group):
    return group.replace(".", "/")


class GateSet(torch.nn.Module):
    """``{group: gate}`` as one module (see the module docstring).

    Arguments
    ---------
    gates : dict
        Group name -> gate module (``forward()`` -> z [count], ``prob_open()``,
        ``deterministic_mask()``).
    """

    def __init__(self, gates):
        super().__init__()
        self.groups = list(gates)
        self.gates = torch.nn.ModuleDict(
            {_module_name(group): gate for group, gate in gates.items()})

    def __getitem__(self, group):
        return self.gates[_module_name(group)]

    def __iter__(self):
        return iter(self.groups)

    def __len__(self):
        return len(self.groups)

    def __contains__(self, group):
        return group in self.groups

    def keys(self):
        """The group names, in the structure's order."""
        return list(self.groups)

    def items(self):
        """``(group, gate)`` pairs."""
        return [(group, self[group]) for group in self.groups]

    def values(self):
        """The gates."""
        return [self[group] for group in self.groups]

    def forward(self):
        """``{group: z}``, one evaluation of every gate."""
        return {group: gate() for group, gate in self.items()}

    def deterministic_masks(self):
        """``{group: bool tensor}``: every gate's final mask."""
        return {group: gate.deterministic_mask() for group, gate in self.items()}

    def constrain_(self):
        """Calls every gate's ``constrain_()`` (the CoFi clamp, after a step)."""
        for gate in self.values():
            gate.constrain_()


def build_gates(structure, levels, make_gate=HardConcrete, init_keep=None):
    """A :class:`GateSet` with one gate per group of ``structure.groups(levels)``.

    Arguments
    ---------
    structure : ModelStructure
        The model's units.
    levels : list of str
        Unit kinds to gate (``"head_qk_dim"``, ``"mha"``, ...).
    make_gate : callable
        ``make_gate(count, **kwargs)`` -> gate; e.g. in a YAML
        ``!name:speechbrain_sparse.pruning.hard_concrete.HardConcrete`` with
        ``ste: False``.
    init_keep : dict or None
        Unit kind -> initial keep probability passed as ``init_keep`` (DPHuBERT
        starts FFN units at 0.5, the rest at 0.99); kinds not named keep
        ``make_gate``'s default.
    """
    init_keep = dict(init_keep or {})
    groups = structure.groups(levels)
    unknown = sorted(set(init_keep) - {kind for kind, _ in groups.values()})
    if unknown:
        raise UserInputError(f"init_keep: {unknown} are not among the gated levels "
                             f"{sorted(set(structure.check_levels(levels)))}")
    gates = {}
    for group, (kind, count) in groups.items():
        extra = {"init_keep": init_keep[kind]} if kind in init_keep else {}
        gates[group] = make_gate(count, **extra)
    return GateSet(gates)
