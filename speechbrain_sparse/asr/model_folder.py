"""A trained model as a folder that later stages start from.

After training, the best checkpoint's modules and the tokenizer are copied into
one folder (written under a temporary name, then renamed, so it is never seen
half-written)::

    <output_folder>/model/
        model.ckpt        state dict of [CNN, Transformer, seq_lin, ctc_lin]
        normalizer.ckpt   the feature normaliser's statistics
        tokenizer.model   the SentencePiece model
        model_info.json   what was trained, on what, for how long

Fine-tuning YAMLs load it with SpeechBrain's ``Pretrainer`` (``pretrained_dir``).
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

from speechbrain_sparse.errors import MissingInputError

MODEL_FILES = ("model.ckpt", "normalizer.ckpt")


def export_model_folder(checkpoint, tokenizer_file, destination, info=None):
    """Copies a checkpoint's model files and the tokenizer into ``destination``.

    Arguments
    ---------
    checkpoint : speechbrain.utils.checkpoints.Checkpoint
        The checkpoint to export (e.g. ``checkpointer.find_checkpoint(max_key="ACC")``).
    tokenizer_file : str or Path
        The SentencePiece ``.model`` file.
    destination : str or Path
        The folder to create or replace.
    info : dict, optional
        Written to ``model_info.json``.

    Returns
    -------
    pathlib.Path
        The destination folder.

    Example
    -------
    >>> import types, torch, tempfile, pathlib
    >>> work = pathlib.Path(tempfile.mkdtemp())
    >>> for name in MODEL_FILES:
    ...     torch.save({}, work / name)
    >>> _ = (work / "tok.model").write_bytes(b"spm")
    >>> ckpt = types.SimpleNamespace(
    ...     paramfiles={n.split(".")[0]: work / n for n in MODEL_FILES})
    >>> out = export_model_folder(ckpt, work / "tok.model", work / "model")
    >>> sorted(p.name for p in out.iterdir())
    ['model.ckpt', 'model_info.json', 'normalizer.ckpt', 'tokenizer.model']
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent)
    )
    try:
        for name in MODEL_FILES:
            key = name.split(".")[0]
            if key not in checkpoint.paramfiles:
                raise KeyError(f"checkpoint has no recoverable named {key!r}")
            shutil.copyfile(checkpoint.paramfiles[key], staging / name)
        shutil.copyfile(tokenizer_file, staging / "tokenizer.model")
        (staging / "model_info.json").write_text(json.dumps(info or {}, indent=2))
        replace_folder(staging, destination)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return destination


def check_model_folder(folder):
    """Raises FileNotFoundError naming what is missing from a model folder.

    Arguments
    ---------
    folder : str or Path
        A folder written by :func:`export_model_folder`.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingInputError(
            f"pretrained model folder {folder} not found: run the pretraining "
            "stage first (python train.py hparams/pretrain_<size>.yaml) or set "
            "--pretrained_dir"
        )
    for name in (*MODEL_FILES, "tokenizer.model"):
        if not (folder / name).is_file():
            raise MissingInputError(f"pretrained model folder {folder} lacks {name}")


def replace_folder(staging, destination):
    """Swaps the finished folder ``staging`` in as ``destination`` (a rename each).

    An existing ``destination`` is moved aside first and removed only once the
    new folder is in place, so readers never see a half-written folder.
    """
    staging, destination = Path(staging), Path(destination)
    if destination.exists():
        old = destination.with_name(f".{destination.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(destination, old)
        os.replace(staging, destination)
        shutil.rmtree(old)
    else:
        os.replace(staging, destination)
