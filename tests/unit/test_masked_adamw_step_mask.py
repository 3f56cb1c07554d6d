"""MaskedAdamW.set_step_mask: only the marked entries move, moments included."""

import torch

from speechbrain_sparse.masked_adamw import MaskedAdamW

BETAS = (0.8, 0.99)


def make(shape=(6, 5), seed=0, **options):
    torch.manual_seed(seed)
    weight = torch.nn.Parameter(torch.randn(shape))
    options = {"lr": 0.05, "betas": BETAS, "weight_decay": 0.1, **options}
    return weight, MaskedAdamW([weight], **options)


def grads(count, shape=(6, 5), seed=1):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen) for _ in range(count)]


def snapshot(weight, opt):
    state = opt.state[weight]
    return (weight.detach().clone(), state["exp_avg"].clone(),
            state["exp_avg_sq"].clone())


def test_inactive_entries_and_their_moments_stay_bit_identical():
    weight, opt = make()
    for grad in grads(3):  # dense steps: every moment is non-zero
        weight.grad = grad
        opt.step()
    active = torch.rand(weight.shape, generator=torch.Generator().manual_seed(5)) < 0.4
    before = snapshot(weight, opt)
    assert (before[1] != 0).all() and (before[2] != 0).all()
    weight.grad = grads(1, seed=9)[0]
    opt.set_step_mask({weight: active})
    opt.step()
    after = snapshot(weight, opt)
    for old, new in zip(before, after):
        assert torch.equal(new[~active], old[~active])
        assert (new[active] != old[active]).all()


def test_the_mask_holds_for_one_step_only():
    weight, opt = make()
    weight.grad = grads(1)[0]
    opt.set_step_mask({weight: torch.zeros(weight.shape, dtype=torch.bool)})
    before = weight.detach().clone()
    opt.step()
    assert torch.equal(weight.detach(), before)
    assert torch.equal(opt.state[weight]["exp_avg"], torch.zeros(weight.shape))
    opt.step()  # no mask: every entry moves
    assert (weight.detach() != before).all()


def test_each_entry_follows_adamw_over_the_steps_it_took_part_in():
    weight, opt = make()
    start = weight.detach().clone()
    gen = torch.Generator().manual_seed(3)
    masks = [torch.rand(weight.shape, generator=gen) < 0.5 for _ in range(6)]
    masks[0][:] = False  # some entries join late
    sequence = grads(6)
    for grad, active in zip(sequence, masks):
        weight.grad = grad.clone()
        opt.set_step_mask({weight: active})
        opt.step()
    for i in range(weight.numel()):  # torch.optim.AdamW on the entry's own steps
        entry = torch.nn.Parameter(start.view(-1)[i : i + 1].clone())
        ref = torch.optim.AdamW([entry], lr=0.05, betas=BETAS, weight_decay=0.1)
        for grad, active in zip(sequence, masks):
            if active.view(-1)[i]:
                entry.grad = grad.view(-1)[i : i + 1].clone()
                ref.step()
        torch.testing.assert_close(weight.detach().view(-1)[i], entry.detach()[0],
                                   rtol=1e-5, atol=1e-6)


def test_float_masks_work_like_bool_masks():
    results = []
    for dtype in (torch.bool, torch.float32):
        weight, opt = make()
        active = (torch.arange(30) % 3 == 0).view(6, 5)
        for grad in grads(3):
            weight.grad = grad
            opt.set_step_mask({weight: active.to(dtype)})
            opt.step()
        results.append(weight.detach().clone())
    assert torch.equal(*results)


def test_step_mask_composes_with_compact_trainable_state():
    weight, opt = make()
    frozen_value = weight.detach().clone()
    trainable = (torch.arange(30) % 2 == 0).view(6, 5)
    opt.set_trainable_masks({weight: trainable})
    for grad in grads(2):
        weight.grad = grad
        opt.step()
    assert opt.state[weight]["exp_avg"].shape == (15,)
    active = (torch.arange(30) % 4 == 0).view(6, 5)  # half the trainable entries
    before_value = weight.detach().clone()
    before_avg = opt.state[weight]["exp_avg"].clone()
    weight.grad = grads(1, seed=4)[0]
    opt.set_step_mask({weight: active})
    opt.step()
    value = weight.detach()
    assert torch.equal(value[~trainable], frozen_value[~trainable])
    idle = trainable & ~active
    assert torch.equal(value[idle], before_value[idle])
    assert (value[active] != before_value[active]).all()
    still = idle.view(-1)[trainable.view(-1)]  # compact positions of idle entries
    assert torch.equal(opt.state[weight]["exp_avg"][still], before_avg[still])


def test_changing_the_trainable_mask_keeps_moments_of_staying_entries():
    weight, opt = make()
    first = (torch.arange(30) < 20).view(6, 5)
    opt.set_trainable_masks({weight: first})
    weight.grad = grads(1)[0]
    opt.step()
    dense_avg = torch.zeros(30)
    dense_avg[first.view(-1)] = opt.state[weight]["exp_avg"]
    second = (torch.arange(30) >= 10).view(6, 5)
    opt.set_trainable_masks({weight: second})
    avg = opt.state[weight]["exp_avg"]
    assert avg.shape == (20,)
    assert torch.equal(avg[:10], dense_avg[10:20])  # entries 10..19 stay
    assert torch.equal(avg[10:], torch.zeros(10))  # entries 20..29 join
    frozen = weight.detach()[~second].clone()
    weight.grad = grads(1, seed=2)[0]
    opt.step()
    assert torch.equal(weight.detach()[~second], frozen)


def test_dense_steps_without_step_masks_equal_torch_adamw():
    weight, opt = make()
    reference = torch.nn.Parameter(weight.detach().clone())
    ref = torch.optim.AdamW([reference], lr=0.05, betas=BETAS, weight_decay=0.1)
    for grad in grads(3):
        weight.grad, reference.grad = grad.clone(), grad.clone()
        opt.step()
        ref.step()
    torch.testing.assert_close(weight.detach(), reference.detach())
    assert "beta1_power" not in opt.state[weight]  # the fast path keeps no extra state
