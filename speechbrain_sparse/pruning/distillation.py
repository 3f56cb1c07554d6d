"""Layer distillation: a pruned student's hidden states regress its teacher's.

:class:`LayerDistillation` compares lists of hidden states ``[B, T, D]`` (index
0 = the input of the first Transformer layer, ``i`` = the output of layer ``i``,
as Hugging Face's ``output_hidden_states``), on the frames a padding mask keeps:

* ``mapping="fixed"`` (DPHuBERT): given pairs (student layer, teacher layer),
  one ``Linear`` projection per pair;
* ``mapping="learned"`` (CoFi, "layer distill version 4"): teacher layers at
  1/4, 2/4, 3/4 and 4/4 of its depth, each matched at every step to the
  student layer (>= 1, pruned ones excluded) with the smallest loss, under an
  order constraint: from the top teacher layer down, each match must lie
  strictly below the previous one (if none is left, the previous is reused).
  One shared ``Linear``, initialised to the identity, maps every student layer.

Losses: ``"mse"`` (the task-agnostic pruning paper's eq. 5), or ``"l1_cos"``:
``l1_weight·L1 + cos_weight·c`` with ``c = -log σ(cos)`` (DistilHuBERT and
DPHuBERT, ``cos_form="logsigmoid"``) or ``c = 1 - cos`` (``"one_minus"``),
``cos`` the cosine similarity of a frame's two vectors. L1/MSE average over
kept frames and dimensions, the cosine term over kept frames; the pairs' losses
are summed. Projections start at the identity (so a student that is a copy of
its teacher starts at zero loss); ``projection=False`` compares raw states.

Authors
 * speechbrain_sparse contributors 2026

Example
-------
>>> _ = torch.manual_seed(0)
>>> teacher = [torch.randn(2, 5, 8) for _ in range(5)]
>>> distill = LayerDistillation(8, 8, student_layers=[2, 4])
>>> distill([t.clone() for t in teacher], teacher).item()  # a copy: -log σ(1)
0.6265...
>>> learned = LayerDistillation(8, 8, mapping="learned", loss="mse",
...                             teacher_layers=[2, 4])
>>> student = [teacher[0], teacher[2], teacher[4]]  # 2 layers
>>> learned(student, teacher, lengths=torch.tensor([1.0, 0.6])).item()
0.0
>>> learned.last_pairs  # (student layer, teacher layer)
[(1, 2), (2, 4)]
"""

import math

import torch
import torch.nn.functional as F

from speechbrain_sparse.errors import UserInputError

LOSSES = ("mse", "l1_cos")
COS_FORMS = ("logsigmoid", "one_minus")
MAPPINGS = ("fixed", "learned")


def frame_mask(lengths, batch, time, device=None):
    """Bool ``[B, T]``: True on real frames. ``lengths`` are relative (SpeechBrain).

    Example
    -------
    >>> frame_mask(torch.tensor([1.0, 0.5]), 2, 4).tolist()
    [[True, True, True, True], [True, True, False, False]]
    """
    if lengths is None:
        return torch.ones(batch, time, dtype=torch.bool, device=device)
    frames = torch.round(lengths.to(device=device, dtype=torch.float64) * time)
    return torch.arange(time, device=device)[None, :] < frames[:, None]


def layer_loss(student, teacher, mask, loss="l1_cos", cos_form="logsigmoid",
               l1_weight=1.0, cos_weight=1.0):
    """The distillation loss of one pair of ``[B, T, D]`` states on ``mask`` [B, T].

    Example
    -------
    >>> s, t = torch.ones(1, 2, 3), torch.zeros(1, 2, 3)
    >>> layer_loss(s, t, torch.tensor([[True, False]]), loss="mse").item()
    1.0
    """
    frames = mask.sum().clamp(min=1)
    weight = mask.unsqueeze(-1).to(student.dtype)
    difference = student - teacher
    if loss == "mse":
        return (difference.pow(2) * weight).sum() / (frames * student.shape[-1])
    l1 = (difference.abs() * weight).sum() / (frames * student.shape[-1])
    cos = F.cosine_similarity(student, teacher, dim=-1)
    term = -F.logsigmoid(cos) if cos_form == "logsigmoid" else 1.0 - cos
    return l1_weight * l1 + cos_weight * (term * mask).sum() / frames


def _identity_linear(in_dim, out_dim):
    linear = torch.nn.Linear(in_dim, out_dim)
    with torch.no_grad():
        torch.nn.init.eye_(linear.weight)
        linear.bias.zero_()
    return linear


def _layer_list(value, name):
    if value is None:
        return None
    value = [value] if isinstance(value, int) else list(value)
    for index in value:
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise UserInputError(f"{name}={value!r}: layer indices must be integers "
                                 ">= 0")
    return value


def _choose(options, value, name):
    if value not in options:
        raise UserInputError(f"{name}={value!r}: expected one of {', '.join(options)}")


def _check_index(index, states, side):
    if index >= len(states):
        raise UserInputError(
            f"{side}_layers: layer {index} is out of range; the {side} gave "
            f"{len(states)} hidden states (layers 0..{len(states) - 1})")


class LayerDistillation(torch.nn.Module):
    """Student-vs-teacher hidden-state loss with fixed or learned layer pairs.

    The projections are trained with the student: give this module's
    parameters to the main optimizer. Teacher states are used detached.

    Arguments
    ---------
    student_dim, teacher_dim : int
        Widths of the student's and the teacher's hidden states.
    student_layers : list of int or None
        ``"fixed"``: the student side of each pair (DPHuBERT: ``[0, 4, 8, 12]``).
        ``"learned"``: the candidate student layers (None: all but layer 0).
    teacher_layers : list of int or None
        ``"fixed"``: the teacher side of each pair (None: ``student_layers``).
        ``"learned"``: the layers to match (None: 1/4..4/4 of the depth).
    mapping : str
        ``"fixed"`` or ``"learned"`` (see the module docstring).
    loss : str
        ``"mse"`` or ``"l1_cos"``.
    cos_form : str
        ``"logsigmoid"`` (``-log σ(cos)``) or ``"one_minus"`` (``1 - cos``).
    projection : bool
        Map student states with a Linear (identity-initialised) before comparing.
    l1_weight, cos_weight : float
        Weights of the two ``"l1_cos"`` terms (>= 0).
    """

    def __init__(self, student_dim, teacher_dim, student_layers=None,
                 teacher_layers=None, mapping="fixed", loss="l1_cos",
                 cos_form="logsigmoid", projection=True, l1_weight=1.0,
                 cos_weight=1.0):
        super().__init__()
        _choose(MAPPINGS, mapping, "mapping")
        _choose(LOSSES, loss, "loss")
        _choose(COS_FORMS, cos_form, "cos_form")
        for name, weight in (("l1_weight", l1_weight), ("cos_weight", cos_weight)):
            if not (isinstance(weight, (int, float)) and math.isfinite(weight)
                    and weight >= 0):
                raise UserInputError(f"{name}={weight!r}: expected a number >= 0")
        if not projection and student_dim != teacher_dim:
            raise UserInputError(
                f"student_dim={student_dim} differs from teacher_dim={teacher_dim}; "
                "comparing them needs projection=True")
        student_layers = _layer_list(student_layers, "student_layers")
        teacher_layers = _layer_list(teacher_layers, "teacher_layers")
        if mapping == "fixed":
            if student_layers is None:
                raise UserInputError("student_layers: the fixed mapping needs the "
                                     "student layers of its pairs")
            if teacher_layers is None:
                teacher_layers = student_layers
            if len(teacher_layers) != len(student_layers):
                raise UserInputError(
                    f"teacher_layers={teacher_layers} and student_layers="
                    f"{student_layers}: the fixed pairs need as many of each")
        self.student_dim, self.teacher_dim = student_dim, teacher_dim
        self.student_layers, self.teacher_layers = student_layers, teacher_layers
        self.mapping, self.loss, self.cos_form = mapping, loss, cos_form
        self.l1_weight, self.cos_weight = l1_weight, cos_weight
        count = len(student_layers) if mapping == "fixed" else 1
        self.projections = torch.nn.ModuleList(
            _identity_linear(student_dim, teacher_dim) if projection
            else torch.nn.Identity() for _ in range(count))
        self.last_pairs = []

    def _pair_loss(self, student, teacher, mask):
        return layer_loss(student, teacher, mask, self.loss, self.cos_form,
                          self.l1_weight, self.cos_weight)

    def _project(self, projection, state, layer):
        if state.shape[-1] != self.student_dim:
            raise UserInputError(
                f"student layer {layer}: width {state.shape[-1]}, but the "
                f"distillation was built for student_dim={self.student_dim}")
        return projection(state)

    def _check_teacher(self, state, layer):
        if state.shape[-1] != self.teacher_dim:
            raise UserInputError(
                f"teacher layer {layer}: width {state.shape[-1]}, but the "
                f"distillation was built for teacher_dim={self.teacher_dim}")

    def forward(self, student_states, teacher_states, lengths=None, alive=None):
        """The summed loss over the layer pairs (a 0-dim tensor).

        Arguments
        ---------
        student_states, teacher_states : sequence of torch.Tensor
            Hidden states ``[B, T, D]`` per layer (index 0 = before layer 1).
        lengths : torch.Tensor or None
            Relative lengths [B] (SpeechBrain's ``wav_lens``); None = no padding.
        alive : sequence of bool or None
            ``"learned"``: per student hidden state, False for a layer that is
            pruned away (CoFi excludes layers whose MHA gate is 0).
        """
        batch, time = teacher_states[-1].shape[:2]
        mask = frame_mask(lengths, batch, time, teacher_states[-1].device)
        if self.mapping == "fixed":
            return self._fixed(student_states, teacher_states, mask)
        return self._learned(student_states, teacher_states, mask, alive)

    def _fixed(self, student_states, teacher_states, mask):
        total = 0.0
        for projection, s, t in zip(self.projections, self.student_layers,
                                    self.teacher_layers):
            _check_index(s, student_states, "student")
            _check_index(t, teacher_states, "teacher")
            self._check_teacher(teacher_states[t], t)
            student = self._project(projection, student_states[s], s)
            total = total + self._pair_loss(student, teacher_states[t].detach(), mask)
        self.last_pairs = list(zip(self.student_layers, self.teacher_layers))
        return total

    def default_teacher_layers(self, depth):
        """Teacher layers at 1/4, 2/4, 3/4, 4/4 of ``depth`` (12: 3, 6, 9, 12).

        Example
        -------
        >>> LayerDistillation(4, 4, mapping="learned").default_teacher_layers(6)
        [2, 3, 4, 6]
        """
        return sorted({max(1, round(depth * k / 4)) for k in range(1, 5)})

    def _learned(self, student_states, teacher_states, mask, alive):
        teacher_layers = self.teacher_layers or self.default_teacher_layers(
            len(teacher_states) - 1)
        candidates = self.student_layers or list(range(1, len(student_states)))
        for t in teacher_layers:
            _check_index(t, teacher_states, "teacher")
            self._check_teacher(teacher_states[t], t)
        for s in candidates:
            _check_index(s, student_states, "student")
        if alive is not None:
            if len(alive) != len(student_states):
                raise UserInputError(f"alive: {len(alive)} flags for "
                                     f"{len(student_states)} student hidden states")
            candidates = [s for s in candidates if alive[s]] or candidates
        projection = self.projections[0]
        mapped = {s: self._project(projection, student_states[s], s)
                  for s in candidates}
        costs = {(s, t): self._pair_loss(mapped[s], teacher_states[t].detach(), mask)
                 for t in teacher_layers for s in candidates}
        pairs, below = [], math.inf
        for t in reversed(teacher_layers):
            allowed = [s for s in candidates if s < below]
            choice = min(allowed, key=lambda s: costs[(s, t)].item()) if allowed \
                else below
            pairs.append((choice, t))
            below = choice
        self.last_pairs = pairs[::-1]
        return sum(costs[pair] for pair in self.last_pairs)
