"""The package as a user installs it: a wheel, no editable checkout, no recipes.

``sb-sparse prune obs --model <SpeechBrain model folder>`` rebuilds the model
from the architecture YAML shipped as package data. This builds the wheel
(``pip wheel --no-build-isolation``), installs it with ``pip install --target``
into a scratch folder and runs that copy's ``sb-sparse`` from a folder outside
the repository, with only the scratch folder on ``PYTHONPATH``.
"""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from speechbrain_sparse.masks import ParameterMask
from tests.unit.pruning_models import calibration_manifest, speechbrain_model_folder

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("setup.py", "pyproject.toml", "README.md", "requirements.txt",
           "requirements-dev.txt", "speechbrain_sparse")
BDIST_WHEEL = """
try:
    import setuptools.command.bdist_wheel  # setuptools >= 70.1
except ImportError:
    import wheel.bdist_wheel  # older setuptools with the wheel package
"""


def run(command, **kwargs):
    """Runs ``command``; on failure the assertion shows its output."""
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
    return result.stdout


def pip(*args):
    return run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args])


def test_installed_wheel_prunes_a_speechbrain_model_folder(tmp_path):
    if subprocess.run([sys.executable, "-c", BDIST_WHEEL]).returncode != 0:
        pytest.skip("building a wheel without build isolation needs setuptools "
                    ">= 70.1 or the wheel package (requirements-dev.txt)")
    source = tmp_path / "source"
    source.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns(
                "__pycache__", "*.egg-info"))
        else:
            shutil.copy(REPO / name, source / name)
    pip("wheel", "--no-deps", "--no-build-isolation", "--no-index",
        "-w", str(tmp_path / "dist"), str(source))
    (wheel,) = (tmp_path / "dist").glob("speechbrain_sparse-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        for name in ("transformer_asr.yaml", "transformer_asr_inference.yaml"):
            assert f"speechbrain_sparse/hparams/{name}" in archive.namelist()
    site = tmp_path / "site"
    pip("install", "--no-deps", "--no-index", "--target", str(site), str(wheel))

    folder, _ = speechbrain_model_folder(tmp_path / "user")
    manifest = calibration_manifest(tmp_path / "user")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    imported = run([sys.executable, "-c", "import speechbrain_sparse.pruning.pretrained"
                    " as module; print(module.__file__)"], cwd=elsewhere, env=env)
    assert Path(imported.strip()).is_relative_to(site)
    out = tmp_path / "pruned"
    run([str(site / "bin" / "sb-sparse"), "prune", "obs", "--model", str(folder),
         "--calibration", str(manifest), "--sparsity", "0.5", "--num-calibration",
         "4", "--batch-size", "2", "--out", str(out)], cwd=elsewhere, env=env)
    assert {"model.ckpt", "normalizer.ckpt", "tokenizer.model", "mask.pt"} <= {
        path.name for path in out.iterdir()}
    assert ParameterMask.load(out / "mask.pt").density() == pytest.approx(0.5, abs=0.01)
