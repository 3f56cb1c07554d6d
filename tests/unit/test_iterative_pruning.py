"""IMP and LTH: exact global counts, zeros, nested masks, bitwise rewind, bad θ0."""

import pytest
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.checkpoints import Checkpointer

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.masks import Coverage
from speechbrain_sparse.pruning.global_magnitude import (
    TRANSFORMER_ASR_COVERAGE,
    magnitude_mask,
)
from speechbrain_sparse.pruning.iterative import (
    IterativeMagnitudePruning,
    LotteryTicketRewind,
)
from speechbrain_sparse.pruning.obs import pruned_count
from speechbrain_sparse.pruning.schedules import LinearStepsSchedule
from speechbrain_sparse.training import MaskEnforcer
from tests.unit.pruning_models import (
    ARCH_YAML,
    ASR_TINY,
    asr_family,
    tiny_transformer_asr,
)

LEVELS = [0.2, 0.5, 0.7]


@pytest.fixture(scope="module")
def asr():
    return tiny_transformer_asr()


def covered(model, coverage=TRANSFORMER_ASR_COVERAGE):
    return {n: p for n, p in model.named_parameters() if coverage.covers(n)}


@torch.no_grad()
def train_like(model, seed, enforcer=None):
    """Moves every parameter, as training would (pruned entries kept at 0)."""
    generator = torch.Generator().manual_seed(seed)
    for param in model.parameters():
        param.add_(0.3 * torch.randn(param.shape, generator=generator))
    if enforcer is not None:
        enforcer.enforce()


def test_default_coverage_is_the_family_matrices(asr):
    family = asr_family(asr)
    matrices = {m.parameter_name for stage in family.stages(asr["model"])
                for block in stage.blocks for m in block.matrices}
    assert set(covered(asr["model"])) == matrices
    assert len(matrices) == 14  # 2 enc x 4 + 1 dec x 6


def test_imp_exact_counts_zeros_and_nested_masks():
    asr = tiny_transformer_asr(seed=1)
    model = asr["model"]
    params = covered(model)
    total = sum(p.numel() for p in params.values())
    imp = IterativeMagnitudePruning(LinearStepsSchedule(LEVELS, interval=10))
    previous, enforcer = None, None
    for round_index, level in enumerate(LEVELS):
        train_like(model, round_index, enforcer)  # survivors move: the order changes
        mask = imp.prune_round(model, level)
        pruned = total - mask.num_selected()
        assert pruned == pruned_count(total, level)  # round(s·N), exactly
        zeros = sum(int((p == 0).sum()) for p in params.values())
        assert zeros == pruned  # pruned entries are exactly 0, survivors are not
        for name, param in params.items():
            assert torch.all(param[~mask[name]] == 0)
        if previous is not None:  # nested: nothing pruned comes back
            assert all(torch.all(mask[n] <= previous[n]) for n in mask)
        assert mask.method == "imp" and mask.options["level"] == level
        assert mask.options["round"] == round_index
        assert mask.target_density == pytest.approx(1 - level)
        previous = mask
        enforcer = MaskEnforcer(model, mask, mode="prune")
    # uncovered parameters are never pruned
    assert all(int((p == 0).sum()) == 0 for n, p in model.named_parameters()
               if n not in params and p.dim() > 1)


def test_round_keeps_the_largest_magnitudes_globally():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.Linear(8, 3))
    coverage = Coverage(include=["*.weight"])
    before = {n: p.detach().abs().clone() for n, p in covered(model, coverage).items()}
    mask = IterativeMagnitudePruning(LinearStepsSchedule([0.5], 1),
                                     coverage=coverage).prune_round(model, 0.5)
    kept = torch.cat([before[n][mask[n]] for n in before])
    dropped = torch.cat([before[n][~mask[n]] for n in before])
    assert kept.min() > dropped.max()
    assert mask.num_selected() == 88 - pruned_count(88, 0.5)


def test_half_counts_round_up_and_ties_go_to_the_lower_index():
    lin = torch.nn.Linear(5, 2, bias=False)
    with torch.no_grad():
        lin.weight.fill_(1.0)
    mask = magnitude_mask(lin, 0.25, Coverage(include=["weight"]))
    # 0.25 * 10 = 2.5 -> 3 pruned; equal magnitudes: the first 7 flat entries kept
    assert mask["weight"].reshape(-1).tolist() == [True] * 7 + [False] * 3


def test_on_step_follows_the_schedule():
    lin = torch.nn.Linear(10, 10)
    imp = IterativeMagnitudePruning(LinearStepsSchedule([0.0, 0.5, 0.8], 5),
                                    coverage=Coverage(include=["weight"]))
    rounds = [t for t in range(20) if imp.on_step(lin, t) is not None]
    assert rounds == [0, 5, 10] and imp.level == 0.8
    assert int((lin.weight == 0).sum()) == 80


def test_lth_survivors_equal_theta0_bitwise(asr):
    model = tiny_transformer_asr(seed=2)["model"]
    theta0 = {n: t.clone() for n, t in model.state_dict().items()}
    rewind = LotteryTicketRewind(model.state_dict())  # copied: training cannot move it
    imp = IterativeMagnitudePruning(LinearStepsSchedule(LEVELS, 10), rewind=rewind)
    params = covered(model)
    total = sum(p.numel() for p in params.values())
    previous, enforcer = None, None
    for round_index, level in enumerate(LEVELS):
        train_like(model, 10 + round_index, enforcer)
        mask = imp.prune_round(model, level)
        assert mask.method == "lth"
        assert total - mask.num_selected() == pruned_count(total, level)
        for name, param in model.named_parameters():
            if name in mask:
                keep = mask[name]
                assert torch.equal(param[keep], theta0[name][keep])
                assert torch.all(param[~keep] == 0)
            else:
                assert torch.equal(param, theta0[name])
        if previous is not None:
            assert all(torch.all(mask[n] <= previous[n]) for n in mask)
        previous, enforcer = mask, MaskEnforcer(model, mask, mode="prune")


def test_lth_theta0_from_file(tmp_path):
    lin = torch.nn.Linear(3, 3)
    torch.save(lin.state_dict(), tmp_path / "model.ckpt")
    rewind = LotteryTicketRewind(tmp_path / "model.ckpt")
    rewind.check(lin)
    with pytest.raises(UserInputError, match="missing.ckpt"):
        LotteryTicketRewind(tmp_path / "missing.ckpt")


@pytest.mark.parametrize("edit,match", [
    (lambda s: s.pop("1.encoder.layers.0.pos_ffn.ffn.0.weight"),
     r"no parameter '1.encoder.layers.0.pos_ffn.ffn.0.weight'.*another model"),
    (lambda s: s.update({"1.decoder.layers.0.norm1.norm.bias": torch.zeros(7)}),
     r"'1.decoder.layers.0.norm1.norm.bias' has shape \(7,\).*\(16,\)"),
    (lambda s: s.update({"4.extra.weight": torch.zeros(2)}),
     r"'4.extra.weight' is not in the model"),
])
def test_lth_refuses_theta0_of_another_model(asr, edit, match):
    state = dict(asr["model"].state_dict())
    edit(state)
    imp = IterativeMagnitudePruning(LinearStepsSchedule(LEVELS, 10),
                                    rewind=LotteryTicketRewind(state))
    model = tiny_transformer_asr(seed=3)["model"]
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(UserInputError, match=match):
        imp.prune_round(model, 0.2)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_lth_refuses_a_differently_sized_model():
    small = tiny_transformer_asr()["model"]
    with open(ARCH_YAML, encoding="utf-8") as handle:
        wider = load_hyperpyyaml(handle, {**ASR_TINY, "d_ffn": 24})["model"]
    with pytest.raises(UserInputError, match=r"pos_ffn.ffn.0.weight' has shape"):
        LotteryTicketRewind(wider.state_dict()).check(small)


def test_bad_inputs_named():
    lin = torch.nn.Linear(4, 4)
    coverage = Coverage(include=["weight"])
    imp = IterativeMagnitudePruning(LinearStepsSchedule([0.5], 1), coverage=coverage)
    imp.prune_round(lin, 0.5)
    with pytest.raises(UserInputError, match=r"non-monotone.*0.25 after 0.5"):
        imp.prune_round(lin, 0.25)
    with pytest.raises(UserInputError, match=r"level.*\[0, 1\).*1.0"):
        imp.prune_round(lin, 1.0)
    with pytest.raises(UserInputError, match="covers no parameter"):
        magnitude_mask(lin, 0.5, Coverage(include=["nothing*"]))
    few = {"weight": torch.zeros(4, 4, dtype=torch.bool)}
    few["weight"][0, :2] = True
    with pytest.raises(UserInputError, match="12 of 16 entries must be kept but only"):
        magnitude_mask(lin, 0.25, coverage, candidates=few)
    with pytest.raises(UserInputError, match="no entry for prunable parameter 'w"):
        magnitude_mask(lin, 0.25, coverage, candidates={})


def test_state_round_trip_and_checkpoint(tmp_path):
    def fresh():
        torch.manual_seed(5)
        return (torch.nn.Linear(6, 6),
                IterativeMagnitudePruning(LinearStepsSchedule([0.2, 0.5, 0.7], 3),
                                          coverage=Coverage(include=["weight"])))

    straight, imp = fresh()
    for step in range(9):
        train_like(straight, step)
        imp.on_step(straight, step)
    resumed, first = fresh()
    for step in range(4):
        train_like(resumed, step)
        first.on_step(resumed, step)
    checkpointer = Checkpointer(tmp_path, {"imp": first, "model": resumed})
    checkpointer.save_checkpoint()
    model, second = fresh()
    Checkpointer(tmp_path, {"imp": second, "model": model}).recover_if_possible()
    assert second.level == 0.5 and second.rounds == 2 and second.mask == first.mask
    for step in range(4, 9):
        train_like(model, step)
        second.on_step(model, step)
    assert second.mask == imp.mask and second.mask.options == imp.mask.options
    assert torch.equal(model.weight, straight.weight)
