"""A trained model as a folder that later stages start from.

After training, the best checkpoint's modules and the tokenizer are copied into
one folder (written under a temporary name, then renamed, so it is never seen
half-written: :func:`speechbrain_sparse.fileio.atomic_folder`)::

    <output_folder>/model/
        model.ckpt        state dict of [CNN, Transformer, seq_lin, ctc_lin]
        normalizer.ckpt   the feature normaliser's statistics
        tokenizer.model   the SentencePiece model
        model_info.json   what was trained, on what, for how long
        hyperparams.yaml  the architecture with every size key, for SpeechBrain's
                          ``EncoderDecoderASR`` (see :mod:`.inference`)
        tokenizer.ckpt    the SentencePiece model again, under the name that
                          ``EncoderDecoderASR``'s Pretrainer reads

Fine-tuning YAMLs load it with SpeechBrain's ``Pretrainer`` (``pretrained_dir``);
``EncoderDecoderASR.from_hparams(source=folder)`` and ``sb-sparse transcribe``
decode with it.
"""

import json
import shutil
from pathlib import Path

from speechbrain_sparse.asr.inference import write_inference_files
from speechbrain_sparse.errors import MissingInputError
from speechbrain_sparse.fileio import atomic_folder, check_finite_file

MODEL_FILES = ("model.ckpt", "normalizer.ckpt")


def export_model_folder(checkpoint, tokenizer_file, destination, info=None,
                        hparams=None):
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
    hparams : dict, optional
        The stage's hyperparameters: when given, ``hyperparams.yaml`` (with
        every architecture key the stage trained with) and ``tokenizer.ckpt``
        are written too (:func:`.inference.write_inference_files`).

    Returns
    -------
    pathlib.Path
        The destination folder.

    Raises
    ------
    speechbrain_sparse.fileio.NonFiniteTensorError
        A model file holds NaN or inf (a failed run); nothing is written.

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
    >>> out = export_model_folder(ckpt, work / "tok.model", work / "model",
    ...                           hparams={"nhead": 2})
    >>> (out / "hyperparams.yaml").is_file(), (out / "tokenizer.ckpt").is_file()
    (True, True)
    """
    for key in (name.split(".")[0] for name in MODEL_FILES):
        if key in checkpoint.paramfiles:  # nothing is written from a failed run
            check_finite_file(checkpoint.paramfiles[key])
    destination = Path(destination)
    with atomic_folder(destination) as staging:
        for name in MODEL_FILES:
            key = name.split(".")[0]
            if key not in checkpoint.paramfiles:
                raise KeyError(f"checkpoint has no recoverable named {key!r}")
            shutil.copyfile(checkpoint.paramfiles[key], staging / name)
        shutil.copyfile(tokenizer_file, staging / "tokenizer.model")
        (staging / "model_info.json").write_text(json.dumps(info or {}, indent=2))
        if hparams is not None:
            write_inference_files(staging, hparams, tokenizer_file)
    return destination


def check_model_folder(folder, key="pretrained_dir", stage="pretrain"):
    """Raises MissingInputError naming what is missing from a model folder.

    Arguments
    ---------
    folder : str or Path
        A folder written by :func:`export_model_folder`.
    key : str
        The YAML key that names it (in the message).
    stage : str
        The stage that writes it (in the message).

    Example
    -------
    >>> try:
    ...     check_model_folder("no/such/folder", "finetuned_dir", "vanilla")
    ... except FileNotFoundError as error:
    ...     print(str(error).split(": run")[0])
    finetuned_dir: model folder no/such/folder not found
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingInputError(
            f"{key}: model folder {folder} not found: run the {stage} "
            f"stage first (python train.py hparams/{stage}_<size>.yaml) or set "
            f"--{key}"
        )
    for name in (*MODEL_FILES, "tokenizer.model"):
        if not (folder / name).is_file():
            raise MissingInputError(f"{key}: model folder {folder} lacks {name}")

