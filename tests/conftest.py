"""Shared fixtures: a micro synthetic corpus built once per test session."""

import importlib.util
import sys
from pathlib import Path

import pytest


def _tolerate_unimportable_lazy_modules():
    """Lets Hypothesis scan ``sys.modules`` next to SpeechBrain's lazy modules.

    Hypothesis reads ``__file__`` of every loaded module; a SpeechBrain
    ``LazyModule`` for an optional integration that is not installed (k2) raises
    ImportError there, which aborts the pytest session. Dunder lookups on such a
    module now raise AttributeError instead.
    """
    from speechbrain.utils.importutils import LazyModule

    original = LazyModule.__getattr__
    if getattr(original, "tolerant", False):
        return

    def tolerant_getattr(self, attr):
        if attr.startswith("__") and self.lazy_module is None:
            raise AttributeError(attr)  # do not import just to be scanned
        try:
            return original(self, attr)
        except ImportError as error:
            if attr.startswith("__"):
                raise AttributeError(attr) from error
            raise

    tolerant_getattr.tolerant = True
    LazyModule.__getattr__ = tolerant_getattr


_tolerate_unimportable_lazy_modules()


REPO = Path(__file__).resolve().parents[1]
SYNTHETIC_RECIPE = REPO / "recipes" / "Synthetic" / "ASR" / "transformer"


def load_recipe_module(recipe_folder, name="train"):
    """Imports ``<recipe_folder>/<name>.py`` as a module (recipes are not packages).

    The recipe folder goes on ``sys.path`` first, as when Python runs the
    script, so that it imports its own prepare script.
    """
    if str(recipe_folder) not in sys.path:
        sys.path.insert(0, str(recipe_folder))
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
