"""The masked-training invariant inside a real ``speechbrain.core.Brain``.

Freeze mode: every frozen entry stays ``torch.equal`` to theta_s, through
AdamW weight decay, SGD momentum, gradient accumulation, clipping, bf16
autocast and a resume from a checkpoint. Prune mode: pruned entries are
exactly zero. Plus the L1 pull, clipping and checkpoint layout.
"""

import pytest
import speechbrain as sb
import torch
from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.epoch_loop import EpochCounter
from torch.utils.data import DataLoader, TensorDataset

from speechbrain_sparse.masked_adamw import MaskedAdamW
from speechbrain_sparse.training import MaskedTrainingMixin, MaskEnforcer


class ToyBrain(MaskedTrainingMixin, sb.Brain):
    """A two-layer regressor trained on random data."""

    def compute_forward(self, batch, stage):
        return self.modules.model(batch[0].to(self.device))

    def compute_objectives(self, predictions, batch, stage):
        target = batch[1].to(self.device)
        return torch.nn.functional.mse_loss(predictions.float(), target)

    def on_stage_end(self, stage, stage_loss, epoch=None):
        if stage == sb.Stage.TRAIN and self.checkpointer is not None:
            self.checkpointer.save_and_keep_only(meta={"loss": stage_loss})


def make_model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(6, 12), torch.nn.LayerNorm(12), torch.nn.Linear(12, 3)
    )


def make_mask(model, density=0.5, seed=1):
    """Covers both weights and the first bias; the LayerNorm is uncovered."""
    gen = torch.Generator().manual_seed(seed)
    names = ["model.0.weight", "model.0.bias", "model.2.weight"]
    params = dict(model.named_parameters(prefix="model"))
    return {n: torch.rand(params[n].shape, generator=gen) < density for n in names}


def make_data():
    gen = torch.Generator().manual_seed(2)
    data = TensorDataset(torch.randn(16, 6, generator=gen), torch.randn(16, 3))
    return DataLoader(data, batch_size=4)


def make_brain(tmp_path, model, opt_class, mode="freeze", l1_weight=0.0, **opts):
    counter = EpochCounter(limit=opts.pop("epochs", 2))
    checkpointer = Checkpointer(tmp_path, {"model": model, "counter": counter})
    run_opts = {"device": "cpu", "noprogressbar": True, **opts}
    brain = ToyBrain(
        {"model": model}, opt_class, run_opts=run_opts, checkpointer=checkpointer
    )
    brain.attach_mask(make_mask(model), mode=mode, l1_weight=l1_weight)
    return brain, counter


def adamw(params):
    return torch.optim.AdamW(params, lr=0.05, weight_decay=0.1)


def sgd_momentum(params):
    return torch.optim.SGD(params, lr=0.05, momentum=0.9, weight_decay=0.01)


def plain_sgd(params):
    return torch.optim.SGD(params, lr=0.05)


def masked_adamw(params):
    return MaskedAdamW(params, lr=0.05, weight_decay=0.1)


def assert_invariant(model, theta_s, mask, mode="freeze"):
    params = dict(model.named_parameters(prefix="model"))
    for name, keep in mask.items():
        frozen_now = params[name].detach()[~keep]
        if mode == "freeze":
            assert torch.equal(frozen_now, theta_s[name][~keep]), name
        else:
            assert torch.equal(frozen_now, torch.zeros_like(frozen_now)), name
        assert not torch.equal(params[name].detach()[keep], theta_s[name][keep])
    # uncovered LayerNorm: frozen in freeze mode, trained in prune mode
    changed = not torch.equal(
        params["model.1.weight"].detach(), theta_s["model.1.weight"]
    )
    assert changed == (mode == "prune")


CASES = {
    "adamw_weight_decay": (adamw, {}),
    "sgd_momentum": (sgd_momentum, {}),
    "grad_accumulation": (adamw, {"grad_accumulation_factor": 2}),
    "clipping": (sgd_momentum, {"max_grad_norm": 0.01}),
    "bf16_autocast": (adamw, {"precision": "bf16"}),
    "masked_adamw": (masked_adamw, {}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_frozen_entries_bit_identical_and_after_resume(tmp_path, case):
    opt_class, opts = CASES[case]
    model = make_model()
    theta_s = {n: p.detach().clone() for n, p in model.named_parameters("model")}
    mask = make_mask(model)
    brain, counter = make_brain(tmp_path, model, opt_class, **opts)
    brain.fit(counter, make_data())
    assert_invariant(model, theta_s, mask)

    # resume: fresh random model, so theta_s must come from the checkpoint
    resumed_model = make_model(seed=5)
    brain2, counter2 = make_brain(tmp_path, resumed_model, opt_class, epochs=4, **opts)
    brain2.fit(counter2, make_data())
    assert counter2.current == 4
    reference = brain2.mask_enforcer.reference["model.0.weight"]
    assert torch.equal(reference, theta_s["model.0.weight"])
    assert_invariant(resumed_model, theta_s, mask)


def test_prune_mode_zero_after_training_and_resume(tmp_path):
    model = make_model()
    theta_s = {n: p.detach().clone() for n, p in model.named_parameters("model")}
    mask = make_mask(model)
    brain, counter = make_brain(tmp_path, model, adamw, mode="prune")
    brain.fit(counter, make_data())
    assert_invariant(model, theta_s, mask, mode="prune")
    resumed = make_model(seed=5)
    brain2, counter2 = make_brain(tmp_path, resumed, adamw, mode="prune", epochs=3)
    brain2.fit(counter2, make_data())
    assert_invariant(resumed, theta_s, mask, mode="prune")


def test_mask_is_its_own_recoverable_not_in_model_state_dict(tmp_path):
    model = make_model()
    brain, counter = make_brain(tmp_path, model, adamw)
    brain.fit(counter, make_data())
    ckpt = brain.checkpointer.find_checkpoint()
    saved_model = torch.load(ckpt.paramfiles["model"], weights_only=True)
    assert set(saved_model) == set(make_model().state_dict())
    saved_mask = torch.load(ckpt.paramfiles["parameter_mask"], weights_only=True)
    assert saved_mask["mask"]["model.0.weight"].dtype == torch.bool
    assert torch.equal(
        saved_mask["mask"]["model.0.weight"], make_mask(model)["model.0.weight"]
    )


def test_fully_frozen_tensors_leave_the_optimizer(tmp_path):
    model = make_model()
    brain, counter = make_brain(tmp_path, model, adamw, epochs=1)
    brain.fit(counter, make_data())
    optimized = {id(p) for g in brain.optimizer.param_groups for p in g["params"]}
    layer_norm = model[1]
    assert id(layer_norm.weight) not in optimized
    assert not layer_norm.weight.requires_grad
    assert id(model[0].weight) in optimized


def test_l1_penalty_matches_hand_computation():
    model = make_model()
    mask = {"0.weight": torch.rand(12, 6) < 0.3, "2.weight": torch.rand(3, 12) < 0.3}
    theta_s = {n: p.detach().clone() for n, p in model.named_parameters()}
    enforcer = MaskEnforcer(model, mask, mode="freeze", l1_weight=0.7)
    with torch.no_grad():
        for name, keep in mask.items():
            dict(model.named_parameters())[name][keep] += 0.25
    params = dict(model.named_parameters())
    total = sum((params[n] - theta_s[n])[k].abs().sum() for n, k in mask.items())
    n_trainable = sum(int(k.sum()) for k in mask.values())
    expected = 0.7 * total / n_trainable
    assert torch.allclose(enforcer.l1_penalty(), expected)
    assert enforcer.num_trainable == n_trainable

    # the gradient added once per step equals autograd's gradient of it
    autograd = torch.autograd.grad(enforcer.l1_penalty(), params["0.weight"])[0]
    enforcer.add_l1_gradient()
    assert torch.allclose(params["0.weight"].grad, autograd)


def test_large_l1_weight_pulls_trainable_entries_toward_theta_s(tmp_path):
    # plain SGD: the sign pull of size lr * l1_weight / n does not overshoot
    distances = {}
    for l1_weight in (0.0, 5.0):
        model = make_model()
        theta_s = model[0].weight.detach().clone()
        brain, counter = make_brain(
            tmp_path / str(l1_weight), model, plain_sgd, l1_weight=l1_weight, epochs=3
        )
        brain.fit(counter, make_data())
        distances[l1_weight] = (model[0].weight.detach() - theta_s).abs().sum()
    assert distances[5.0] < 0.5 * distances[0.0]


class RecordingSGD(torch.optim.SGD):
    """SGD that records the gradient norm it is asked to apply."""

    def step(self, closure=None):
        grads = [
            p.grad for g in self.param_groups for p in g["params"] if p.grad is not None
        ]
        self.seen_norm = torch.linalg.vector_norm(
            torch.stack([torch.linalg.vector_norm(g) for g in grads])
        )
        return super().step(closure)


def test_clipping_counts_only_trainable_entries_of_all_groups(tmp_path):
    model = make_model()
    mask = make_mask(model)
    x, y = next(iter(make_data()))

    # the norms a clipper would see over trainable / all entries
    probe = make_model()
    torch.nn.functional.mse_loss(probe(x), y).backward()
    probe_params = dict(probe.named_parameters(prefix="model"))
    trainable = torch.cat([probe_params[n].grad[k] for n, k in mask.items()])
    trainable_norm = torch.linalg.vector_norm(trainable)
    all_norm = torch.linalg.vector_norm(
        torch.cat([p.grad.flatten() for p in probe.parameters()])
    )
    assert trainable_norm < 0.7 * all_norm

    def two_groups(params):  # SpeechBrain 1.1.2 would clip group 0 only
        params = list(params)
        return RecordingSGD([{"params": params[:2]}, {"params": params[2:]}], lr=0.1)

    max_norm = float(trainable_norm + all_norm) / 2
    brain, _ = make_brain(tmp_path, model, two_groups, max_grad_norm=max_norm)
    brain.on_fit_start()
    brain.fit_batch((x, y))
    assert torch.allclose(brain.optimizer.seen_norm, trainable_norm)  # not clipped

    brain.max_grad_norm = 0.5 * float(trainable_norm)
    brain.fit_batch((x, y))
    assert brain.optimizer.seen_norm <= brain.max_grad_norm * (1 + 1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_invariant_on_cuda(tmp_path):
    model = make_model()
    theta_s = {n: p.detach().clone().cuda() for n, p in model.named_parameters("model")}
    mask = {n: k.cuda() for n, k in make_mask(model).items()}
    brain = ToyBrain(
        {"model": model}, adamw, run_opts={"device": "cuda:0", "precision": "fp16"}
    )
    brain.attach_mask(make_mask(model))
    brain.fit(range(2), make_data(), progressbar=False)
    assert_invariant(model, theta_s, mask)


def test_masked_adamw_matches_adamw_on_trainable_entries_only():
    torch.manual_seed(0)
    weight, bias = (
        torch.nn.Parameter(torch.randn(5, 7)),
        torch.nn.Parameter(torch.randn(7)),
    )
    dense = [torch.nn.Parameter(p.detach().clone()) for p in (weight, bias)]
    keep = torch.rand(5, 7) < 0.3
    start = weight.detach().clone()
    masked = MaskedAdamW([weight, bias], lr=0.01, weight_decay=0.1)
    masked.set_trainable_masks({weight: keep})
    reference = torch.optim.AdamW(dense, lr=0.01, weight_decay=0.1)
    for _ in range(4):
        for a, b in zip((weight, bias), dense):
            a.grad = torch.randn_like(a)
            b.grad = a.grad.clone()
        masked.step()
        reference.step()
    assert torch.allclose(weight[keep], dense[0][keep])
    assert torch.allclose(bias, dense[1])  # no mask: dense AdamW
    assert torch.equal(weight.detach()[~keep], start[~keep])  # never written
    assert masked.state[weight]["exp_avg"].numel() == int(keep.sum())
