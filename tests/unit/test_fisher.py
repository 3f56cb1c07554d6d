"""Fisher scores against a brute-force per-example autograd computation."""

import pytest
import speechbrain as sb
import torch

from speechbrain_sparse.scores import fisher_scores
from speechbrain_sparse.selection import FisherSelection


class ToyBrain(sb.core.Brain):
    """A classifier Brain: features -> logits, cross-entropy loss."""

    def compute_forward(self, batch, stage):
        inputs, _ = batch
        return self.modules.model(inputs)

    def compute_objectives(self, predictions, batch, stage):
        _, targets = batch
        return torch.nn.functional.cross_entropy(predictions, targets)


def make_brain(dropout=0.0):
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(4, 6),
        torch.nn.Tanh(),
        torch.nn.Dropout(dropout),
        torch.nn.Linear(6, 3),
    )
    brain = ToyBrain(modules={"model": model}, run_opts={"device": "cpu"})
    return brain, model


def make_batches(count=3, size=5):
    generator = torch.Generator().manual_seed(1)
    return [
        (
            torch.randn(size, 4, generator=generator),
            torch.randint(0, 3, (size,), generator=generator),
        )
        for _ in range(count)
    ]


def brute_force(model, batches, per_example):
    """Sum of squared gradients of the loss of each batch / each example."""
    params = dict(model.named_parameters())
    total = {name: torch.zeros_like(p) for name, p in params.items()}
    model.eval()
    for inputs, targets in batches:
        pieces = (
            [(inputs[i : i + 1], targets[i : i + 1]) for i in range(len(targets))]
            if per_example
            else [(inputs, targets)]
        )
        for x, y in pieces:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            grads = torch.autograd.grad(loss, list(params.values()))
            for name, grad in zip(params, grads):
                total[name] += grad.square()
    return total


@pytest.mark.parametrize("per_example", [False, True])
def test_fisher_equals_brute_force(per_example):
    brain, model = make_brain(dropout=0.5)
    batches = make_batches()
    scores = fisher_scores(
        brain, batches, num_batches=None, per_example=per_example, model=model
    )
    expected = brute_force(model, batches, per_example)
    assert list(scores) == list(expected)
    for name in expected:
        torch.testing.assert_close(scores[name], expected[name], rtol=1e-5, atol=1e-8)


def test_fisher_num_batches_modes_and_grads():
    brain, model = make_brain(dropout=0.5)
    model.train()
    model[2].eval()  # a mixed mode must come back as it was
    batches = make_batches(count=4)
    scores = fisher_scores(brain, batches, num_batches=2, model=model)
    expected = brute_force(model, batches[:2], per_example=False)
    torch.testing.assert_close(scores["0.weight"], expected["0.weight"])
    model.train()
    model[2].eval()
    fisher_scores(brain, batches, num_batches=1, model=model, train_mode=True)
    assert model.training and model[0].training and not model[2].training
    assert all(p.grad is None for p in model.parameters())


def test_fisher_default_model_is_brain_modules():
    brain, model = make_brain()
    scores = fisher_scores(brain, make_batches(count=1))
    assert list(scores) == [
        "model.0.weight",
        "model.0.bias",
        "model.3.weight",
        "model.3.bias",
    ]


def test_fisher_selection_exact_density():
    brain, model = make_brain()
    strategy = FisherSelection(0.25, num_batches=2, per_example=True)
    mask = strategy.select(model, brain=brain, data=make_batches())
    total = sum(p.numel() for p in model.parameters())
    assert mask.num_selected() == int(0.25 * total + 0.5)
    assert mask.method == "fisher" and mask.options["per_example"] is True
    with pytest.raises(ValueError, match="brain"):
        strategy.select(model)


class PaddedBrain(ToyBrain):
    """Mean-pools padded frames (using the relative lengths) then classifies."""

    def compute_forward(self, batch, stage):
        data, lengths = batch.x
        frames = torch.arange(data.shape[1])[None, :]
        valid = (frames < (lengths * data.shape[1]).round()[:, None]).float()
        pooled = (data * valid[..., None]).sum(1) / valid.sum(1, keepdim=True)
        return self.modules.model(pooled)

    def compute_objectives(self, predictions, batch, stage):
        return torch.nn.functional.cross_entropy(predictions, batch.y.data[:, 0])


def test_per_example_fisher_on_padded_batches():
    from speechbrain.dataio.batch import PaddedBatch

    generator = torch.Generator().manual_seed(2)
    examples = [
        {"x": torch.randn(length, 4, generator=generator), "y": torch.tensor([i % 3])}
        for i, length in enumerate([3, 7, 5])
    ]
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    brain = PaddedBrain(modules={"model": model}, run_opts={"device": "cpu"})
    scores = fisher_scores(
        brain, [PaddedBatch(examples)], per_example=True, model=model
    )
    singles = [PaddedBatch([example]) for example in examples]
    expected = fisher_scores(brain, singles, model=model)
    for name in expected:
        torch.testing.assert_close(scores[name], expected[name])


def test_fisher_all_reduces_under_distributed(tmp_path, monkeypatch):
    """With torch.distributed initialised, scores are summed over ranks (1 here)."""
    import torch.distributed as dist

    reduced = []
    original = dist.all_reduce

    def counting_all_reduce(tensor, op):
        reduced.append(op)
        return original(tensor, op=op)

    monkeypatch.setattr(dist, "all_reduce", counting_all_reduce)
    brain, model = make_brain()
    batches = make_batches(count=2)
    expected = fisher_scores(brain, batches, model=model)
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1
    )
    try:
        scores = fisher_scores(brain, batches, model=model)
    finally:
        dist.destroy_process_group()
    assert reduced == [dist.ReduceOp.SUM] * len(expected)
    for name in expected:
        torch.testing.assert_close(scores[name], expected[name])
