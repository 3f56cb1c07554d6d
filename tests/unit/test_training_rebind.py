"""MaskEnforcer.rebind: the mask changes, the optimizers keep every tensor."""

import pytest
import torch

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.masked_adamw import MaskedAdamW
from speechbrain_sparse.training import MaskEnforcer


def step(lin, enforcer, opt, seed):
    gen = torch.Generator().manual_seed(seed)
    (lin(torch.randn(5, 4, generator=gen)) - 1).pow(2).sum().backward()
    enforcer.mask_gradients()
    opt.step()
    enforcer.enforce()
    opt.zero_grad(set_to_none=True)


@pytest.mark.parametrize("mode", ["freeze", "prune"])
def test_rebind_moves_the_mask_and_keeps_tensors_in_the_optimizer(mode):
    torch.manual_seed(0)
    lin = torch.nn.Linear(4, 3)
    first = {"weight": torch.arange(12).view(3, 4) < 6, "bias": torch.ones(3).bool()}
    enforcer = MaskEnforcer(lin, first, mode=mode)
    opt = MaskedAdamW(list(lin.parameters()), lr=0.1, weight_decay=0.1)
    enforcer.prepare_optimizers([opt])
    for seed in range(2):
        step(lin, enforcer, opt, seed)
    avg = opt.state[lin.weight]["exp_avg"].clone()  # compact: entries 0..5
    second = {"weight": torch.arange(12).view(3, 4) >= 3,
              "bias": torch.zeros(3).bool()}  # bias: no trainable entry left
    at_rebind = lin.weight.detach().clone()
    bias_at_rebind = lin.bias.detach().clone()
    enforcer.rebind(second)
    assert [len(g["params"]) for g in opt.param_groups] == [2]
    moved = opt.state[lin.weight]["exp_avg"]
    assert moved.shape == (9,)
    assert torch.equal(moved[:3], avg[3:6])  # entries 3..5 keep their moments
    assert torch.equal(moved[3:], torch.zeros(6))  # 6..11 join with zero moments
    for seed in range(2, 4):
        step(lin, enforcer, opt, seed)
    left = ~second["weight"]
    if mode == "freeze":
        assert torch.equal(lin.weight.detach()[left], at_rebind[left])
        assert torch.equal(lin.bias.detach(), bias_at_rebind)
    else:
        assert (lin.weight.detach()[left] == 0).all()
        assert (lin.bias.detach() == 0).all()
    assert (lin.weight.detach()[second["weight"]] != 0).all()
    grown = torch.arange(12).view(3, 4) >= 6
    assert (lin.weight.detach()[grown] != at_rebind[grown]).all()


def test_rebind_refuses_a_tensor_dropped_from_the_optimizers():
    lin = torch.nn.Linear(4, 3)
    enforcer = MaskEnforcer(lin, {"weight": torch.ones(3, 4).bool(),
                                  "bias": torch.zeros(3).bool()})
    opt = MaskedAdamW(list(lin.parameters()), lr=0.1)
    enforcer.prepare_optimizers([opt])
    with pytest.raises(UserInputError, match="'bias' was removed from the optimizers"):
        enforcer.rebind({"weight": torch.ones(3, 4).bool(),
                         "bias": torch.ones(3).bool()})
