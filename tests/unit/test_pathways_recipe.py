"""The Dynamic ASR Pathways recipes: YAMLs, stage checks, run matrix, tables, claims.

Nothing is trained here (the integration test runs the stages); the YAMLs
are loaded with the model shrunk where it is large.
"""

import pytest
import torch

from speechbrain_sparse.asr.options import ConfigError, load_stage_hparams
from speechbrain_sparse.asr.pathways_experiment import (
    STAGES,
    check_stage,
    init_mask_files,
)
from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.pruning.adaptive import AdaptiveMasker
from speechbrain_sparse.pruning.iterative import (
    IterativeMagnitudePruning,
    LotteryTicketRewind,
)
from speechbrain_sparse.pruning.schedules import CubicSchedule
from speechbrain_sparse.reproduction.pathways_plan import pathway_runs
from speechbrain_sparse.reproduction.pathways_tables import (
    Judge,
    claim_adaptive,
    claim_lap,
    table1,
    table_rows,
)
from tests.conftest import REPO, load_recipe_module
from tests.mls_fixtures import MLS_RECIPE
from tests.recipe_checks import TINY_MODEL

PATHWAYS_RECIPE = REPO / "recipes" / "SyntheticMultilingual" / "ASR" / "pathways"
SHRINK = {arg.split("=")[0][2:]: int(arg.split("=")[1]) for arg in TINY_MODEL}


@pytest.fixture(scope="module")
def theta0(tmp_path_factory):
    """A model folder holding a ``model.ckpt`` (what LTH YAMLs read at load)."""
    folder = tmp_path_factory.mktemp("dense_multi")
    torch.save({}, folder / "model.ckpt")
    return folder


def _load(folder, name, keys, theta0, **overrides):
    if not name.startswith("dense"):
        overrides["pretrained_dir"] = str(theta0)
    return load_stage_hparams(folder / "hparams" / name, overrides, keys)


@pytest.mark.parametrize("stage", STAGES)
def test_synthetic_stage_yamls_load_with_their_objects(stage, theta0):
    keys = load_recipe_module(PATHWAYS_RECIPE).RECIPE_KEYS
    hparams = _load(PATHWAYS_RECIPE, f"{stage}_tiny.yaml", keys, theta0)
    assert hparams["stage"] == stage
    assert str(hparams["train_csv"]).endswith("/manifests/train.csv")
    monolingual = stage in ("dense_mono", "imp", "lth", "adaptive")
    assert hparams["languages"] == (["fr"] if monolingual else ["en", "fr", "it", "nl"])
    assert set(hparams["test_csvs"]) == {f"{x}_{s}" for x in hparams["languages"]
                                         for s in ("dev", "test")}
    pruner = hparams.get("pruner")
    if stage in ("lap", "imp", "lth"):
        assert isinstance(pruner, IterativeMagnitudePruning)
        assert pruner.schedule.levels() == [0.2, 0.5, 0.7]
        assert hparams["train_steps"] == 3 * hparams["prune_interval"] == 600
        assert isinstance(pruner.rewind, LotteryTicketRewind) == (stage == "lth")
    if stage == "adaptive":
        assert isinstance(pruner, AdaptiveMasker) and pruner.rewind is None
        assert (pruner.rerank_every, pruner.schedule.interval) == (50, 200)
        assert hparams["train_steps"] == 1000
        lth = _load(PATHWAYS_RECIPE, "adaptive_tiny.yaml", keys, theta0, rewind=True)
        assert isinstance(lth["pruner"].rewind, LotteryTicketRewind)
    if stage == "dynamic_pathways":
        schedule = hparams["schedule"]
        assert isinstance(schedule, CubicSchedule)
        assert (schedule.initial, schedule.final) == (0.5, 0.7)
    if stage in ("pathways", "dynamic_pathways"):
        assert str(hparams["init_masks"]["it"]).endswith(
            f"results/pathways/lth_tiny_it/1234/masks/s{hparams['init_level']:g}.pt")
        assert "MaskedAdamW" in repr(hparams["opt_class"])


def test_a_plain_key_reaches_the_objects_it_configures(theta0):
    keys = load_recipe_module(PATHWAYS_RECIPE).RECIPE_KEYS
    hparams = _load(PATHWAYS_RECIPE, "dynamic_pathways_tiny.yaml", keys, theta0,
                    init_level=0.7, prune_interval=8, rerank_every=2,
                    pathway_init="lap", init_folder="runs/lap",
                    languages=["fr", "nl"])
    assert hparams["schedule"].describe() == {
        "schedule": "held", "level": 0.7, "interval": 8, "num_intervals": 4}
    assert {k: str(v) for k, v in hparams["init_masks"].items()} == {
        "fr": "runs/lap/masks/s0.7.pt", "nl": "runs/lap/masks/s0.7.pt"}
    assert hparams["train_steps"] == 40


@pytest.mark.parametrize("name", [f"{stage}_{size}.yaml" for stage in STAGES
                                  for size in ("small", "large")])
def test_mls_pathways_yamls_pass_the_config_check(name, theta0):
    keys = load_recipe_module(MLS_RECIPE).RECIPE_KEYS
    hparams = _load(MLS_RECIPE, name, keys, theta0, **SHRINK)
    assert hparams["languages"][0] in ("english", "french")
    assert str(hparams["train_csvs"][f"{hparams['languages'][0]}_train"]).endswith(
        f"manifests/{hparams['languages'][0]}/train.csv")


def _parameters(path, **overrides):
    from hyperpyyaml import load_hyperpyyaml

    with open(path, encoding="utf-8") as handle:
        hparams = load_hyperpyyaml(handle, overrides)
    return sum(p.numel() for p in hparams["model"].parameters())


def test_the_monolingual_reference_has_about_0_3_of_the_parameters():
    folder = PATHWAYS_RECIPE / "hparams"
    ratio = (_parameters(folder / "dense_mono_tiny.yaml")
             / _parameters(folder / "dense_multi_tiny.yaml"))
    assert 0.27 <= ratio <= 0.33, ratio  # the paper's 56M / 187M = 0.30


def test_stage_checks_name_the_bad_key():
    base = {"stage": "lth", "languages": ["fr"], "corpus_languages": ["fr", "nl"]}
    assert check_stage(base) == ("lth", ["fr"])
    with pytest.raises(ConfigError, match="stage must be one of .* not 'lottery'"):
        check_stage({**base, "stage": "lottery"})
    with pytest.raises(ConfigError, match="'de' is not a language of the corpus"):
        check_stage({**base, "languages": ["de"]})
    with pytest.raises(ConfigError, match="stage lth trains on one language"):
        check_stage({**base, "languages": ["fr", "nl"]})
    with pytest.raises(ConfigError, match="pathway_init must be one of imp, lth, "
                                          "lap, not 'obs'"):
        init_mask_files("obs", ["fr"], 0.7, "r", "tiny", 1)


def test_a_missing_init_mask_is_named(tmp_path):
    from speechbrain_sparse.asr.pathway_program import load_pathways

    hparams = {"init_masks": init_mask_files("lth", ["fr"], 0.5, str(tmp_path),
                                             "tiny", 1),
               "pathway_init": "lth"}
    with pytest.raises(UserInputError, match="lth_tiny_fr/1/masks/s0.5.pt "
                                             r"\(language fr\) not found"):
        load_pathways(hparams, "pathways", ["fr"], torch.nn.Linear(2, 2))
    with pytest.raises(ConfigError, match="no mask file for language 'nl'"):
        load_pathways(hparams, "pathways", ["fr", "nl"], torch.nn.Linear(2, 2))


def test_the_matrix_has_the_papers_33_runs_in_dependency_order():
    runs = pathway_runs(["en", "fr", "it", "nl"], ["fr", "nl"])
    names = [run.name for run in runs]
    assert len(names) == len(set(names)) == 33  # spec B.6
    for index, run in enumerate(runs):
        assert set(run.needs) <= set(names[:index]), run.name
    by_name = {run.name: run for run in runs}
    assert by_name["pathways_lap70_fr+nl"].needs == ("dense_multi", "lap")
    assert by_name["dynamic_lth50_en+fr+it+nl"].overrides["init_folder"] == \
        "lth_{language}"
    assert sum(name.startswith("dynamic_") for name in names) == 7
    with pytest.raises(UserInputError, match="bilingual languages"):
        pathway_runs(["fr", "nl"], ["fr", "de"])


def _utterances(folder, language, errors):
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["ID,wer_errors,wer_tokens"] + [f"{language}{i},{e},10"
                                            for i, e in enumerate(errors)]
    (folder / f"utterances_{language}_test.csv").write_text("\n".join(lines))


def test_tables_and_claims_read_the_runs(tmp_path):
    languages = ["fr", "nl"]
    results = {}
    for run, wer in (("dense_multi", 20.0), ("lap", 30.0)):
        results[run] = {f"{x}_test": {"WER": wer, "CER": wer / 2} for x in languages}
    for x in languages:
        results[f"imp_{x}"] = {f"{x}_test": {"WER": 25.0, "CER": 9.0}}
    rows = table_rows(results, table1(languages), languages,
                      ["Stage", "Model", "Mask can change?", "Sparsity", "Training"])
    by_model = {row["Model"]: row for row in rows}
    assert by_model["LAP"]["Avg"] == 30.0 and by_model["LAP"]["CER nl"] == 15.0
    assert by_model["IMP"]["fr"] == 25.0 and by_model["Dense mono"]["Avg"] is None

    rng = torch.Generator().manual_seed(0)
    for x in languages:
        fixed = torch.randint(2, 6, (60,), generator=rng).tolist()
        _utterances(tmp_path / f"imp_{x}", x, fixed)
        _utterances(tmp_path / f"adaptive_imp_{x}", x, [e - 2 for e in fixed])
        _utterances(tmp_path / f"lth_{x}", x, fixed)
        _utterances(tmp_path / f"adaptive_lth_{x}", x, [e + 1 for e in fixed])
        _utterances(tmp_path / "dense_multi", x, fixed)
        _utterances(tmp_path / "lap", x, [e + (3 if x == "nl" else 0) for e in fixed])
    judge = Judge(tmp_path)
    lines = claim_adaptive(judge, languages)
    assert lines[0].endswith("**does not hold**")  # adaptive LTH is worse
    assert "adaptive IMP vs fixed IMP: **holds** (Δ WER -20.00" in lines[1]
    assert "120 test utterances" in lines[1]
    lines = claim_lap(judge, languages, {"fr": 0.8, "nl": 0.6})
    assert "farthest here by the mean Jaccard of the LTH-70 masks: nl): **holds**" \
        in lines[0]
    lines = claim_lap(judge, languages, {"fr": 0.5, "nl": 0.6})
    assert lines[0].endswith("**does not hold (another language is hurt more)**")


def test_a_dynamic_rerank_keeps_levels_exact_and_zeroes_only_unclaimed_entries(
        tmp_path):
    from speechbrain_sparse.asr.pathway_program import PathwayProgram
    from speechbrain_sparse.parameter_names import canonical_named_parameters
    from speechbrain_sparse.pruning.global_magnitude import magnitude_mask
    from speechbrain_sparse.pruning.pathways import PathwayMasks
    from speechbrain_sparse.pruning.schedules import ConstantSchedule
    from tests.unit.pruning_models import tiny_transformer_asr

    model = tiny_transformer_asr()["model"]
    params = canonical_named_parameters(model)
    generator = torch.Generator().manual_seed(0)
    masks = {}
    for language in ("fr", "nl"):  # two different pathways at 50 %
        with torch.no_grad():
            saved = {n: p.clone() for n, p in params.items()}
            for p in params.values():
                p.add_(torch.randn(p.shape, generator=generator))
        masks[language] = magnitude_mask(model, 0.5)
        with torch.no_grad():
            for name, p in params.items():
                p.copy_(saved[name])
    start = PathwayMasks(masks)
    before = {n: p.detach().clone() for n, p in params.items()}
    program = PathwayProgram(start, model, tmp_path, dynamic=True,
                             schedule=ConstantSchedule(0.7, 4, 1), rerank_every=2)
    program._rerank(0)
    after = program.pathways
    numel = after["fr"].numel()
    for language in ("fr", "nl"):
        assert after[language].num_selected() == numel - round(0.7 * numel)
        allowed = start.active(language, dynamic=True)  # m_z | free zone
        assert (after[language] - allowed).num_selected() == 0
    for name, unused in after.unused().items():
        assert not params[name][unused].any()  # in no pathway: exactly 0
        kept = ~unused
        assert torch.equal(params[name][kept], before[name][kept])  # untouched
    assert not program.hard and program.level == 0.7
    program._rerank(4)
    assert program.hard  # the final interval: masks fixed
    assert (tmp_path / "masks" / "nl" / "s0.7.pt").is_file()
