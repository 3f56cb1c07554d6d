"""The Tibetan stage YAMLs stay in step with the synthetic recipe's.

Both recipes include the same architecture and fine-tuning base files; the
stage YAMLs differ only in their data keys, output paths and vocabulary size.
Read as plain YAML (nothing is built), so this runs in a fraction of a second.
"""

import io

import pytest
from ruamel.yaml import YAML

from tests.conftest import SYNTHETIC_RECIPE
from tests.tibetan_fixtures import TIBETAN_RECIPE

METHODS = (
    "pretrain",
    "vanilla",
    "diff",
    "fisher",
    "topk",
    "random",
    "adapter",
    "union",
    "intersection",
)
STAGE_YAMLS = [
    f"{method}_{size}.yaml" for size in ("small", "large") for method in METHODS
]
TIBETAN_ONLY = {
    "source_format",
    "xbmu_folder",
    "dialects_folder",
    "manifest_folder",
    "syllable_error_rate",
}
SYNTHETIC_ONLY = {"corpus_preset", "corpus_seed", "data_folder"}
OWN_VALUES = {
    "source_dialect",
    "target_dialects",
    "dialect",
    "eval_dialects",
    "output_folder",
    "pretrained_dir",
    "finetuned_dir",
    "vocab_size",
    "feature_cache_folder",  # next to each recipe's own data
}


def read_raw(path):
    """The YAML's top-level mapping with its tags, nothing resolved or built."""
    return YAML(typ="rt").load(path.read_text(encoding="utf-8"))


def as_text(node):
    stream = io.StringIO()
    YAML(typ="rt").dump({"value": node}, stream)
    return stream.getvalue()


def test_every_method_and_size_exists():
    names = sorted(path.name for path in (TIBETAN_RECIPE / "hparams").glob("*.yaml"))
    assert names == sorted(STAGE_YAMLS)


@pytest.mark.parametrize("name", STAGE_YAMLS)
def test_stage_yaml_differs_from_the_synthetic_one_only_in_data(name):
    tibetan = read_raw(TIBETAN_RECIPE / "hparams" / name)
    synthetic = read_raw(SYNTHETIC_RECIPE / "hparams" / name)
    assert set(tibetan) - set(synthetic) == TIBETAN_ONLY
    assert set(synthetic) - set(tibetan) == SYNTHETIC_ONLY
    shared = (set(tibetan) & set(synthetic)) - OWN_VALUES
    for key in sorted(shared - {"arch", "base"}):
        assert as_text(tibetan[key]) == as_text(synthetic[key]), key
    assert tibetan["syllable_error_rate"] is True
    assert tibetan["source_dialect"] == "amdo"
    assert list(tibetan["target_dialects"]) == ["utsang", "khampa"]
    assert tibetan["vocab_size"] == 2000

    included = "arch" if "arch" in tibetan else "base"
    arguments = {key: as_text(value) for key, value in tibetan[included].items()}
    assert arguments == {
        key: as_text(value) for key, value in synthetic[included].items()
    }
    path = tibetan[included].tag.value[len("!include:") :]
    target = (TIBETAN_RECIPE / "hparams" / path).resolve()
    own = synthetic[included].tag.value[len("!include:") :]
    assert target == (SYNTHETIC_RECIPE / "hparams" / own).resolve()
