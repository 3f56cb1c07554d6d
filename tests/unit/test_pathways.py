"""Language pathways: masks, free zones, LAP, files, and training in a Brain."""

import pytest
import speechbrain as sb
import torch
from speechbrain.dataio.batch import PaddedBatch

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.masked_adamw import MaskedAdamW
from speechbrain_sparse.masks import ParameterMask
from speechbrain_sparse.pathway_training import PathwayTrainingMixin
from speechbrain_sparse.pruning.pathways import (
    PathwayMasks,
    UnknownLanguageError,
    lap_init,
)


def bits(text):
    return torch.tensor([c == "1" for c in text])


def three_languages():
    return PathwayMasks({
        "en": ParameterMask({"w": bits("110000"), "b": bits("10")}),
        "fr": ParameterMask({"w": bits("011000"), "b": bits("10")}),
        "nl": ParameterMask({"w": bits("000110"), "b": bits("11")}),
    })


def test_free_zone_is_what_no_other_language_uses():
    pathways = three_languages()
    assert pathways.free_zone("en")["w"].tolist() == [c == "1" for c in "100001"]
    assert pathways.free_zone("en")["b"].tolist() == [False, False]
    assert pathways.free_zone("nl")["w"].tolist() == [c == "1" for c in "000111"]
    assert pathways.active("fr")["w"].tolist() == [c == "1" for c in "011000"]
    dynamic = pathways.active("fr", dynamic=True)
    assert dynamic["w"].tolist() == [c == "1" for c in "011001"]
    assert pathways.unused()["w"].tolist() == [c == "1" for c in "000001"]


def test_overlap_statistics_are_exact_counts():
    stats = three_languages().overlap()
    assert stats["numel"] == 8
    assert stats["selected"] == {"en": 3, "fr": 3, "nl": 4}
    assert stats["shared_by_all"] == 1  # b[0]
    assert stats["exclusive"] == {"en": 1, "fr": 1, "nl": 3}
    assert stats["in_no_pathway"] == 1
    assert stats["jaccard"]["en"]["fr"] == pytest.approx(2 / 4)
    assert stats["jaccard"]["fr"]["en"] == stats["jaccard"]["en"]["fr"]
    assert stats["jaccard"]["nl"]["nl"] == 1.0


def test_lap_gives_identical_masks():
    mask = ParameterMask({"w": torch.rand(50) < 0.3}, target_density=None)
    pathways = lap_init(mask, ["en", "fr", "it", "nl"])
    assert pathways.languages == ["en", "fr", "it", "nl"]
    assert all(pathways[x] == mask for x in pathways)
    assert pathways.overlap()["shared_by_all"] == mask.num_selected()
    assert pathways.free_zone("en").num_selected() == 50 - mask.num_selected()


def test_each_language_density_equals_its_level_exactly():
    gen = torch.Generator().manual_seed(0)
    scores = {x: {"a": torch.randn(37, 11, generator=gen), "b": torch.randn(13)}
              for x in ("en", "fr", "nl")}
    levels = {"en": 0.3, "fr": 0.5, "nl": 0.7}
    pathways = PathwayMasks.from_scores(scores, levels)
    total = 37 * 11 + 13
    for language, level in levels.items():
        assert pathways[language].num_selected() == round(level * total)
        assert pathways[language].density() == round(level * total) / total
    wrong = ParameterMask({"w": bits("1100")}, target_density=0.75)
    with pytest.raises(UserInputError, match="needs exactly 3"):
        PathwayMasks({"en": wrong})


def test_shared_entries_survive_one_language_dropping_them():
    model = torch.nn.Module()
    model.w = torch.nn.Parameter(torch.arange(1.0, 7.0))
    model.b = torch.nn.Parameter(torch.ones(2))
    pathways = three_languages()
    # fr drops w[1] (shared with en) and w[2] (its own)
    pathways = pathways.replace("fr", ParameterMask({"w": bits("000000"),
                                                     "b": bits("10")}))
    pathways.zero_unused(model)
    assert model.w.tolist() == [1.0, 2.0, 0.0, 4.0, 5.0, 0.0]
    assert model.b.tolist() == [1.0, 1.0]


def test_save_and_load_round_trip_and_heatmap(tmp_path):
    pathways = three_languages()
    pathways.save(tmp_path / "pathways")
    assert sorted(p.name for p in (tmp_path / "pathways").iterdir()) == [
        "en.mask", "fr.mask", "nl.mask", "pathways.json"]
    loaded = PathwayMasks.load(tmp_path / "pathways")
    assert loaded.languages == pathways.languages
    assert all(loaded[x] == pathways[x] for x in pathways)
    matrix = pathways.write_jaccard_heatmap(tmp_path / "jaccard.png")
    assert (tmp_path / "jaccard.png").stat().st_size > 1000
    assert matrix[0][1] == pytest.approx(0.5)


def test_named_errors():
    pathways = three_languages()
    with pytest.raises(UnknownLanguageError, match="unknown language 'de'; the "
                                                   "pathways have: en, fr, nl"):
        pathways.free_zone("de")
    assert "de" not in pathways and pathways.get("de") is None
    with pytest.raises(UserInputError, match="absent from the data: nl"):
        pathways.check_data_languages(["en", "fr"])
    with pytest.raises(UnknownLanguageError, match="'it'"):
        pathways.check_data_languages(["en", "fr", "nl", "it"])
    with pytest.raises(UserInputError, match="'en' and 'fr' differ.*shape of 'w'"):
        PathwayMasks({"en": ParameterMask({"w": bits("11")}),
                      "fr": ParameterMask({"w": bits("111")})})
    with pytest.raises(UserInputError, match="bad language name"):
        PathwayMasks({"../x": ParameterMask({"w": bits("11")})})


# ---- training ---------------------------------------------------------------------
class Toy(PathwayTrainingMixin, sb.Brain):
    def compute_forward(self, batch, stage):
        return self.modules.net(batch.x.data)

    def compute_objectives(self, predictions, batch, stage):
        return (predictions - batch.y.data).pow(2).mean()


def toy_brain(seed=0, opt_class=None):
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(),
                              torch.nn.Linear(8, 3))
    opt_class = opt_class or (lambda p: MaskedAdamW(p, lr=0.01, betas=(0.8, 0.99),
                                                    weight_decay=0.1))
    brain = Toy({"net": net}, opt_class, run_opts={"device": "cpu"})
    gen = torch.Generator().manual_seed(seed + 1)
    names = ("net.0.weight", "net.2.weight")
    shapes = {n: p.shape for n, p in brain.modules.named_parameters() if n in names}
    masks = {x: ParameterMask({n: torch.rand(s, generator=gen) < 0.35
                               for n, s in shapes.items()})
             for x in ("en", "fr", "nl")}
    return brain, PathwayMasks(masks)


def batch(language, n=4, seed=0, ids=None):
    gen = torch.Generator().manual_seed(seed)
    return PaddedBatch([
        {"id": (ids or [f"{language}{i}" for i in range(n)])[i],
         "x": torch.randn(6, generator=gen), "y": torch.randn(3, generator=gen),
         "language": language if isinstance(language, str) else language[i]}
        for i in range(n)])


def test_perturbing_entries_outside_the_pathway_leaves_the_forward_bit_identical():
    for dynamic in (False, True):
        brain, pathways = toy_brain()
        brain.attach_pathways(pathways, dynamic=dynamic)
        data = batch("fr")
        with brain.language_forward("fr"):
            before = brain.compute_forward(data, sb.Stage.VALID)
        outside = ~pathways.active("fr", dynamic)
        stored = {}
        with torch.no_grad():
            for name, param in brain.modules.named_parameters():
                if name in outside:
                    param.add_(torch.randn_like(param) * outside[name])
                stored[name] = param.detach().clone()
        with brain.language_forward("fr"):
            after = brain.compute_forward(data, sb.Stage.VALID)
        assert torch.equal(before, after)
        for name, param in brain.modules.named_parameters():  # storage intact
            assert torch.equal(param.detach(), stored[name])
        with brain.language_forward("en"):  # a language that sees them differs
            assert not torch.equal(brain.compute_forward(data, sb.Stage.VALID), after)


def optimizer_state(brain, names):
    params = dict(brain.modules.named_parameters())
    state = brain.optimizer.state
    return {n: (params[n].detach().clone(), state[params[n]]["exp_avg"].clone(),
                state[params[n]]["exp_avg_sq"].clone()) for n in names}


@pytest.mark.parametrize("dynamic", [False, True])
def test_a_language_step_moves_no_entry_exclusive_to_another_language(dynamic):
    brain, pathways = toy_brain()
    brain.attach_pathways(pathways, dynamic=dynamic)
    brain.init_optimizers()
    for step, language in enumerate(["en", "nl", "fr", "en", "nl"]):
        brain.fit_batch(batch(language, seed=step))
    names = list(pathways.shapes)
    before = optimizer_state(brain, names)
    bias = brain.modules.net[0].bias.detach().clone()
    brain.fit_batch(batch("fr", seed=99))
    after = optimizer_state(brain, names)
    active = pathways.active("fr", dynamic)
    others = pathways.union(["en", "nl"])
    exclusive_to_others = others - pathways["fr"]
    assert exclusive_to_others.num_selected() > 0
    for name in names:
        keep = ~active[name]
        assert (exclusive_to_others[name] <= keep).all()  # those are inactive
        for old, new in zip(before[name], after[name]):
            assert torch.equal(new[keep], old[keep]), name
        moved = active[name] & (before[name][0] != after[name][0])
        assert moved.sum() == active[name].sum(), name  # every active entry moved
        assert (before[name][1][keep] != 0).any()  # the moments were non-zero
    # uncovered tensors (biases) are shared: they train too
    assert (brain.modules.net[0].bias.detach() != bias).all()


def test_mixed_language_batch_names_the_utterances():
    brain, pathways = toy_brain()
    brain.attach_pathways(pathways)
    brain.init_optimizers()
    mixed = batch(["en", "fr", "en"], n=3, ids=["a1", "b2", "c3"])
    with pytest.raises(UserInputError, match=r"mixed-language batch in pathway mode "
                                             r"\(en: a1, c3; fr: b2\)"):
        brain.fit_batch(mixed)
    with pytest.raises(UnknownLanguageError, match="'de'"):
        brain.fit_batch(batch("de"))


def test_an_optimizer_without_step_masks_is_refused():
    brain, pathways = toy_brain(opt_class=lambda p: torch.optim.AdamW(p, lr=0.01))
    brain.attach_pathways(pathways)
    with pytest.raises(UserInputError, match="set_step_mask.*AdamW"):
        brain.init_optimizers()


def test_gradient_accumulation_must_keep_one_language_per_step():
    brain, pathways = toy_brain()
    brain.attach_pathways(pathways)
    brain.init_optimizers()
    brain.grad_accumulation_factor = 2
    brain.step = 1  # SpeechBrain steps when step % factor == 0: this one accumulates
    brain.fit_batch(batch("en"))
    with pytest.raises(UserInputError, match="mixes languages 'en' and 'fr'"):
        brain.fit_batch(batch("fr"))
    brain.step = 2
    brain.fit_batch(batch("en"))  # completes the English step
    brain.step = 3
    brain.fit_batch(batch("fr"))  # a new step may take another language
