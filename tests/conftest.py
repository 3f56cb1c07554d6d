"""Shared fixtures: a micro synthetic corpus built once per test session."""

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SYNTHETIC_RECIPE = REPO / "recipes" / "Synthetic" / "ASR" / "transformer"


def load_recipe_module(recipe_folder, name="train"):
    """Imports ``<recipe_folder>/<name>.py`` as a module (recipes are not packages)."""
    spec = importlib.util.spec_from_file_location(
        f"recipe_{recipe_folder.name}_{name}", recipe_folder / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def micro_corpus(tmp_path_factory):
    """The ``micro`` preset of the synthetic corpus (built in a few seconds)."""
    from speechbrain_sparse.data.synth import build_corpus

    return build_corpus(tmp_path_factory.mktemp("corpus") / "micro", preset="micro")
