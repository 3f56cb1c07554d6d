"""Adaptive masking: soft re-ranks, regrowth, exact counts, final hard mask, resume."""

import pytest
import torch
from speechbrain.utils.checkpoints import Checkpointer

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.masks import Coverage
from speechbrain_sparse.pruning.adaptive import AdaptiveMasker
from speechbrain_sparse.pruning.global_magnitude import TRANSFORMER_ASR_COVERAGE
from speechbrain_sparse.pruning.iterative import LotteryTicketRewind
from speechbrain_sparse.pruning.obs import pruned_count
from speechbrain_sparse.pruning.schedules import (
    ConstantSchedule,
    CubicSchedule,
    LinearStepsSchedule,
)
from speechbrain_sparse.training import MaskEnforcer
from tests.unit.pruning_models import tiny_transformer_asr

WEIGHTS = Coverage(include=["*.weight"])


def mlp(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(6, 12), torch.nn.Tanh(),
                               torch.nn.Linear(12, 3))


def make_step(model, seed=0):
    """Returns step(k): one AdamW step of a regression on fixed data."""
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(32, 6, generator=generator)
    targets = torch.randn(32, 3, generator=generator)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.05, weight_decay=0.01)

    def step(enforcer=None):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(inputs), targets).backward()
        if enforcer is not None:
            enforcer.mask_gradients()
        optimizer.step()
        if enforcer is not None:
            enforcer.enforce()

    return step, optimizer


def covered(model, coverage):
    return {n: p for n, p in model.named_parameters() if coverage.covers(n)}


def test_gradient_regrows_a_pruned_weight_which_is_readmitted():
    lin = torch.nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 2.0, 3.0, 0.5]]))
    masker = AdaptiveMasker(LinearStepsSchedule([0.5, 0.6], 10), rerank_every=2,
                            coverage=Coverage(include=["weight"]))
    first = masker.on_step(lin, 0)
    assert first["weight"].tolist() == [[False, True, True, False]]
    assert lin.weight.tolist() == [[0.0, 2.0, 3.0, 0.0]]  # zero, but trainable
    optimizer = torch.optim.SGD(lin.parameters(), lr=1.0)
    direction = torch.tensor([[1.0, 0.0, 0.0, 0.0]])
    for step in (1, 2):
        optimizer.zero_grad()
        (-2.0 * lin(direction)).sum().backward()  # pushes weight 0 up by 2 a step
        optimizer.step()
        assert masker.on_step(lin, step) is None or step == 2
    assert masker.mask["weight"].tolist() == [[True, False, True, False]]
    assert lin.weight.tolist() == [[4.0, 0.0, 3.0, 0.0]]
    assert masker.mask.num_selected() == 2


def test_count_exact_after_every_rerank_and_final_mask_enforced():
    model = mlp()
    params = covered(model, WEIGHTS)
    total = sum(p.numel() for p in params.values())
    schedule = CubicSchedule(0.1, 0.7, interval=8, num_intervals=3)
    masker = AdaptiveMasker(schedule, rerank_every=3, coverage=WEIGHTS)
    step_fn, optimizer = make_step(model)
    reranks, enforcer, admitted, previous = [], None, 0, None
    for step in range(40):
        if step:
            step_fn(enforcer)
        mask = masker.on_step(model, step)
        if mask is None:
            continue
        reranks.append(step)
        level = schedule.level(step)
        assert total - mask.num_selected() == pruned_count(total, level)
        assert all(torch.all(params[n][~mask[n]] == 0) for n in mask)
        if previous is not None:  # entries zeroed at the last re-rank, now kept
            admitted += sum(int((mask[n] & ~previous[n]).sum()) for n in mask)
        previous = mask
        if masker.hard:
            enforcer = MaskEnforcer(model, mask, mode="prune")
            optimizer.param_groups[0]["params"] = enforcer.trainable_parameters()
    # every n = 3 steps, plus the level steps at 8, 16 (24 = final, hard)
    assert reranks == [0, 3, 6, 8, 9, 12, 15, 16, 18, 21, 24]
    assert masker.hard and masker.level == 0.7
    assert admitted > 0  # soft: some zeroed entries were trained back in
    final = masker.mask
    assert all(torch.all(params[n][~final[n]] == 0) for n in final)
    assert total - sum(int((p != 0).sum()) for p in params.values()) == pruned_count(
        total, 0.7)


def test_pruned_entries_train_between_reranks():
    model = mlp(1)
    masker = AdaptiveMasker(ConstantSchedule(0.5), rerank_every=5, final_mode="soft",
                            coverage=WEIGHTS)
    mask = masker.on_step(model, 0)
    step_fn, _ = make_step(model)
    step_fn()
    moved = sum(int((p[~mask[n]] != 0).sum()) for n, p in
                covered(model, WEIGHTS).items())
    assert moved > 0 and masker.on_step(model, 1) is None


def test_tiny_transformer_default_scope_exact():
    model = tiny_transformer_asr(seed=4)["model"]
    params = covered(model, TRANSFORMER_ASR_COVERAGE)
    total = sum(p.numel() for p in params.values())
    masker = AdaptiveMasker(LinearStepsSchedule([0.3, 0.7], 4), rerank_every=2)
    generator = torch.Generator().manual_seed(0)
    for step in range(6):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * torch.randn(p.shape, generator=generator))
        mask = masker.on_step(model, step)
        if mask is not None:
            assert total - mask.num_selected() == pruned_count(
                total, masker.schedule.level(step))
            assert sum(int((p == 0).sum()) for p in params.values()) == (
                total - mask.num_selected())
    assert masker.hard and set(masker.mask) == set(params)


def test_candidates_restrict_the_kept_entries():
    model = mlp(2)
    candidates = {n: torch.rand(p.shape) < 0.6 for n, p in
                  covered(model, WEIGHTS).items()}
    masker = AdaptiveMasker(ConstantSchedule(0.5), 2, final_mode="soft",
                            coverage=WEIGHTS)
    mask = masker.on_step(model, 0, candidates=candidates)
    assert all(torch.all(mask[n] <= candidates[n]) for n in mask)
    assert mask.num_selected() == mask.numel() - pruned_count(mask.numel(), 0.5)


def test_adaptive_lth_rewinds_survivors_at_level_increases_only():
    model = mlp(3)
    theta0 = {n: p.detach().clone() for n, p in model.named_parameters()}
    masker = AdaptiveMasker(LinearStepsSchedule([0.2, 0.6], 4), 2, coverage=WEIGHTS,
                            rewind=LotteryTicketRewind(model.state_dict()))
    step_fn, _ = make_step(model)
    for step in range(5):
        if step:
            step_fn()
        mask = masker.on_step(model, step)
        if step == 2:  # a plain re-rank: trained values stay
            assert not torch.equal(model[0].weight[mask["0.weight"]],
                                   theta0["0.weight"][mask["0.weight"]])
    assert mask.method == "adaptive_lth" and masker.level == 0.6
    for name, param in model.named_parameters():
        keep = mask[name] if name in mask else torch.ones_like(param, dtype=torch.bool)
        assert torch.equal(param[keep], theta0[name][keep])
        assert torch.all(param[~keep] == 0)


def test_forward_mask_keeps_values_and_final_zeroes_them():
    model = mlp(4)
    masker = AdaptiveMasker(LinearStepsSchedule([0.5, 0.6], 4), 2, coverage=WEIGHTS,
                            forward_mask=True)
    before = [p.detach().clone() for p in model.parameters()]
    mask = masker.on_step(model, 0)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    inputs = torch.randn(5, 6)
    with masker.masked_forward(model):
        masked_out = model(inputs)
        masked_out.sum().backward()
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with torch.no_grad():
        reference = mlp(4)
        for name, param in reference.named_parameters():
            if name in mask:
                param.mul_(mask[name])
    assert torch.allclose(masked_out, reference(inputs))
    assert int((model[0].weight.grad[~mask["0.weight"]] != 0).sum()) > 0  # dense
    final = masker.on_step(model, 4)
    assert masker.hard
    assert all(torch.all(p[~final[n]] == 0) for n, p in covered(model, WEIGHTS).items())


@pytest.mark.parametrize("build,match", [
    (lambda: AdaptiveMasker(LinearStepsSchedule([0.2, 0.5], 50), 50),
     r"rerank_every \(n=50\).*interval \(T=50\)"),
    (lambda: AdaptiveMasker(CubicSchedule(0.0, 0.7, 20, 4), 64),
     r"n=64.*T=20"),
    (lambda: AdaptiveMasker(ConstantSchedule(0.5), 0), r"rerank_every.*got 0"),
    (lambda: AdaptiveMasker(ConstantSchedule(0.5), 5, final_mode="hard"),
     r"final_mode.*'hard'"),
    (lambda: AdaptiveMasker(CubicSchedule(0.5, 0.5, 20, 4), 5), r"target"),
    (lambda: AdaptiveMasker(LinearStepsSchedule([0.5, 0.3], 20), 5), r"non-monotone"),
])
def test_bad_inputs_named(build, match):
    with pytest.raises(UserInputError, match=match):
        build()


def test_lth_theta0_of_another_model_named():
    other = torch.nn.Linear(6, 12).state_dict()
    masker = AdaptiveMasker(ConstantSchedule(0.5), 2, coverage=WEIGHTS,
                            rewind=LotteryTicketRewind(other))
    with pytest.raises(UserInputError, match=r"no parameter '0.weight'"):
        masker.on_step(mlp(), 0)


def run(steps, masker=None, state=None):
    """Trains mlp(5) with an adaptive masker; resumes from ``state`` if given."""
    model = mlp(5)
    masker = masker or AdaptiveMasker(CubicSchedule(0.0, 0.6, 6, 2), 4,
                                      coverage=WEIGHTS)
    step_fn, optimizer = make_step(model)
    start = 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        masker.load_state_dict(state["masker"])
        start = state["step"] + 1
    enforcer = None
    for step in range(start, steps):
        if step:
            step_fn(enforcer)
        mask = masker.on_step(model, step)
        if mask is not None and masker.hard:
            enforcer = MaskEnforcer(model, mask, mode="prune")
    if masker.hard and enforcer is None:
        enforcer = MaskEnforcer(model, masker.mask, mode="prune")
    return model, masker, optimizer


def test_resumed_run_continues_identically(tmp_path):
    straight, reference, _ = run(12)
    model, masker, optimizer = run(8)
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "masker": masker.state_dict(), "step": 7}
    torch.save(state, tmp_path / "state.pt")
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    resumed, again, _ = run(12, state=state)
    assert again.mask == reference.mask and again.reranks == reference.reranks
    assert again.hard == reference.hard and again.level == reference.level
    assert all(torch.equal(a, b) for a, b in zip(straight.parameters(),
                                                  resumed.parameters()))


def test_checkpoint_hooks(tmp_path):
    _, masker, _ = run(8)
    Checkpointer(tmp_path, {"masker": masker}).save_checkpoint()
    fresh = AdaptiveMasker(CubicSchedule(0.0, 0.6, 6, 2), 4, coverage=WEIGHTS)
    Checkpointer(tmp_path, {"masker": fresh}).recover_if_possible()
    assert fresh.state_dict()["mask"]["options"] == masker.mask.options
    assert fresh.mask == masker.mask and fresh.level == masker.level
    assert fresh.reranks == masker.reranks and fresh.hard == masker.hard
