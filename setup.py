"""Installs the ``speechbrain_sparse`` add-on and its ``sb-sparse`` command."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def read_requirements(name):
    """Returns the requirement lines of ``name``, without comments or includes."""
    lines = (HERE / name).read_text().splitlines()
    return [
        line.strip()
        for line in lines
        if line.strip() and not line.startswith(("#", "-r"))
    ]


setup(
    name="speechbrain_sparse",
    version="0.1.0",
    description=(
        "Choose which weights of a SpeechBrain speech model take part: "
        "sparse fine-tuning and pruning recipes."
    ),
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
    packages=find_packages(include=["speechbrain_sparse", "speechbrain_sparse.*"]),
    package_data={"speechbrain_sparse": ["data/*.txt", "hparams/*.yaml"]},
    install_requires=read_requirements("requirements.txt"),
    extras_require={"dev": read_requirements("requirements-dev.txt")},
    entry_points={"console_scripts": ["sb-sparse=speechbrain_sparse.cli:main"]},
)
