"""Layer distillation: losses on padded batches, fixed pairs, learned CoFi mapping."""

import math

import pytest
import torch
import torch.nn.functional as F

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.pruning.distillation import (
    LayerDistillation,
    frame_mask,
    layer_loss,
)


def states(count, batch=2, time=6, dim=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, time, dim, generator=generator) for _ in range(count)]


def test_losses_by_hand_and_padding_is_ignored():
    student, teacher = states(2, batch=2, time=5, dim=3)
    lengths = torch.tensor([1.0, 0.6])  # 5 and 3 real frames
    mask = frame_mask(lengths, 2, 5)
    assert mask.sum().item() == 8
    kept_s = torch.cat([student[0], student[1, :3]])  # [8, 3]
    kept_t = torch.cat([teacher[0], teacher[1, :3]])
    mse = F.mse_loss(kept_s, kept_t)
    l1 = F.l1_loss(kept_s, kept_t)
    cos = F.cosine_similarity(kept_s, kept_t, dim=-1)
    assert layer_loss(student, teacher, mask, "mse").item() == pytest.approx(mse.item())
    assert layer_loss(student, teacher, mask, "l1_cos", l1_weight=2.0,
                      cos_weight=0.5).item() == pytest.approx(
        (2.0 * l1 - 0.5 * F.logsigmoid(cos).mean()).item(), rel=1e-6)
    assert layer_loss(student, teacher, mask, "l1_cos", cos_form="one_minus").item() \
        == pytest.approx((l1 + (1 - cos).mean()).item(), rel=1e-6)
    # Garbage in the padded frames changes nothing.
    padded = student.clone()
    padded[1, 3:] = 1e6
    assert layer_loss(padded, teacher, mask, "mse").item() == pytest.approx(mse.item())


def test_fixed_pairs_identity_start_and_gradients():
    teacher = states(5)
    student = [t.clone().requires_grad_() for t in teacher]
    distill = LayerDistillation(8, 8, student_layers=[0, 2, 4], loss="l1_cos",
                                cos_form="one_minus")
    loss = distill(student, [t.requires_grad_() for t in teacher])
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    assert distill.last_pairs == [(0, 0), (2, 2), (4, 4)]
    assert len(distill.projections) == 3
    distill = LayerDistillation(8, 8, student_layers=[0, 2, 4], loss="mse")
    (distill([s * 2 for s in student], teacher)).backward()
    assert student[2].grad is not None and student[1].grad is None
    assert teacher[2].grad is None  # the teacher is a target only
    assert distill.projections[1].weight.grad is not None


def test_fixed_pairs_across_widths_and_depths():
    teacher, student = states(13, dim=12), states(5, dim=8, seed=1)
    distill = LayerDistillation(8, 12, student_layers=[0, 2, 4],
                                teacher_layers=[0, 6, 12])
    assert distill.projections[0].weight.shape == (12, 8)
    assert torch.isfinite(distill(student, teacher))
    assert distill.last_pairs == [(0, 0), (2, 6), (4, 12)]


def test_learned_mapping_with_order_constraint():
    teacher = states(5)  # 4 layers; teacher layers 2 and 4 are matched
    near_2 = teacher[2] + 0.5 * states(1, seed=3)[0]
    # Unconstrained, teacher layer 2 would take student layer 3 (a copy of it).
    student = [teacher[0], near_2, teacher[4], teacher[2]]
    distill = LayerDistillation(8, 8, mapping="learned", loss="mse",
                                teacher_layers=[2, 4])
    assert torch.equal(distill.projections[0].weight, torch.eye(8))
    loss = distill(student, teacher)
    assert distill.last_pairs == [(1, 2), (2, 4)]
    expected = F.mse_loss(near_2, teacher[2])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    # A pruned student layer is never chosen.
    distill(student, teacher, alive=[True, True, False, True])
    assert distill.last_pairs == [(1, 2), (3, 4)]
    # No layer left below the top match: the match is reused (CoFi).
    distill(student, teacher, alive=[True, False, True, True])
    assert distill.last_pairs == [(2, 2), (2, 4)]


def test_learned_mapping_defaults_to_quarters():
    distill = LayerDistillation(8, 8, mapping="learned")
    assert distill.default_teacher_layers(12) == [3, 6, 9, 12]
    teacher = states(13)
    student = [teacher[i] for i in (0, 3, 6, 9, 12)]
    distill(student, teacher)
    assert distill.last_pairs == [(1, 3), (2, 6), (3, 9), (4, 12)]


def test_hugging_face_hidden_states(tmp_path):
    from tests.unit.pruning_models import tiny_hf_model

    model, _ = tiny_hf_model("wav2vec2", tmp_path, ctc=False)
    audio = torch.randn(2, 1600)
    with torch.no_grad():
        hidden = model(audio, output_hidden_states=True).hidden_states
    distill = LayerDistillation(32, 32, student_layers=[0, 1, 2], loss="mse")
    assert distill(list(hidden), hidden, lengths=torch.tensor([1.0, 0.5])).item() == 0.0
    with pytest.raises(UserInputError, match="layer 3 is out of range"):
        LayerDistillation(32, 32, student_layers=[3])(hidden, hidden)


@pytest.mark.parametrize("kwargs, name", [
    ({"student_layers": [1], "loss": "l2"}, "loss"),
    ({"student_layers": [1], "mapping": "dynamic"}, "mapping"),
    ({"student_layers": [1], "cos_form": "raw"}, "cos_form"),
    ({"student_layers": [1], "l1_weight": -1.0}, "l1_weight"),
    ({"student_layers": [1], "cos_weight": math.inf}, "cos_weight"),
    ({}, "student_layers"),
    ({"student_layers": [-1]}, "student_layers"),
    ({"student_layers": [1, 2], "teacher_layers": [1]}, "teacher_layers"),
])
def test_bad_settings_are_named(kwargs, name):
    with pytest.raises(UserInputError, match=name):
        LayerDistillation(8, 8, **kwargs)


def test_width_and_range_errors_are_named():
    with pytest.raises(UserInputError, match="projection=True"):
        LayerDistillation(8, 12, student_layers=[1], projection=False)
    distill = LayerDistillation(8, 8, student_layers=[1], projection=False)
    with pytest.raises(UserInputError, match="student layer 1: width 4"):
        distill(states(2, dim=4), states(2))
    with pytest.raises(UserInputError, match="teacher layer 1: width 4"):
        distill(states(2), states(2, dim=4))
    with pytest.raises(UserInputError, match="teacher_layers: layer 9"):
        LayerDistillation(8, 8, student_layers=[1], teacher_layers=[9])(
            states(3), states(3))
    learned = LayerDistillation(8, 8, mapping="learned", teacher_layers=[7])
    with pytest.raises(UserInputError, match="teacher_layers: layer 7"):
        learned(states(3), states(5))
    with pytest.raises(UserInputError, match="alive"):
        LayerDistillation(8, 8, mapping="learned")(states(3), states(5), alive=[True])
