"""A surgered model on disk: weights plus ``structure.json``, and loading it back.

Neither ``transformers`` nor SpeechBrain's YAMLs can describe per-layer sizes
(transformers #33225), so :func:`save_structured` writes a folder::

    <folder>/
        structure.json                  what surgery kept (the unit mask, per
                                        block: heads, per-head dims, constants,
                                        FFN units, conv channels), the original
                                        architecture, the weights' sha256 and a
                                        checksum of the file itself
        structured_model.safetensors    the surgered state dict (torch.save as
                                        structured_model.pt without safetensors)
        config.json                     (HF) the original config, its model_type
                                        replaced by a note: a plain
                                        ``from_pretrained`` fails, saying to use
                                        :func:`load_structured`
        normalizer.ckpt, tokenizer.model, preprocessor_config.json, ...
                                        copied from the source folder
        README.md                       how to load it

:func:`load_structured` rebuilds the original architecture (a Hugging Face
class from the config; our TransformerASR from the package's arch YAML with
the recorded sizes), replays :func:`~.remove.remove_units` with the recorded
mask and loads the weights. The folder is written atomically
(:func:`~speechbrain_sparse.fileio.atomic_folder`).

Authors
 * speechbrain_sparse contributors 2026

Example
-------
>>> load_structured("no/such/folder")
Traceback (most recent call last):
...
speechbrain_sparse.errors.MissingInputError: no/such/folder/structure.json: ...
"""

import hashlib
import json
import shutil
from pathlib import Path

import torch

from speechbrain_sparse.errors import MissingInputError, UserInputError
from speechbrain_sparse.fileio import (
    atomic_folder,
    check_finite,
    pack_bits,
    unpack_bits,
)
from speechbrain_sparse.pruning.pretrained import (
    DEFAULT_ARCH,
    HF_WEIGHT_FILES,
    PretrainedModel,
    recorded_keys,
)
from speechbrain_sparse.surgery.remove import (
    RECORD_ATTRIBUTE,
    count_parameters,
    remove_units,
)

STRUCTURE_FILE = "structure.json"
FORMAT_NAME = "speechbrain_sparse.StructuredModel"
FORMAT_VERSION = 1
HF_CLASSES = tuple(f"{p}{s}" for p in ("Wav2Vec2", "Hubert", "WavLM")
                   for s in ("Model", "ForCTC"))
#: What a plain ``from_pretrained`` shows (AutoConfig names the model_type).
LOAD_NOTE = ("speechbrain_sparse structured (pruned) model: load it with "
             "speechbrain_sparse.surgery.load_structured(folder)")
README = f"""# A structurally pruned model

Surgery removed heads, head dims, FFN units, whole blocks or conv channels, so the
layers have different sizes; `structure.json` records them. Load with

    from speechbrain_sparse.surgery import load_structured
    model = load_structured("<this folder>").model

`transformers`' `from_pretrained` cannot load this folder ({LOAD_NOTE}).
"""
SKIPPED = set(HF_WEIGHT_FILES) | {"model.ckpt", "hyperparams.yaml", "tokenizer.ckpt",
                                  STRUCTURE_FILE, "README.md", "mask.pt"}


class StructureFileError(UserInputError):
    """A ``structure.json`` or its weights that are truncated, corrupted or foreign."""


def save_structured(model, folder, arch=None, normalizer=None, source=None, info=None):
    """Writes a surgered model, its ``structure.json`` and its weights to ``folder``.

    Arguments
    ---------
    model : torch.nn.Module
        A model :func:`~.remove.remove_units` has surgered: a ``transformers``
        Wav2Vec2 / HuBERT / WavLM model, or our TransformerASR's ``model``
        (``ModuleList([CNN, Transformer, seq_lin, ctc_lin])`` of the arch YAML).
    folder : str or Path
        The output folder (replaced atomically).
    arch : dict, optional
        SpeechBrain models: the arch YAML's keys (sizes...); extra keys are
        ignored.
    normalizer : InputNormalization, optional
        SpeechBrain models: written as ``normalizer.ckpt``.
    source : str or Path, optional
        The folder the model came from; its other files (tokenizer,
        preprocessor config, ...) are copied.
    info : dict, optional
        Stored in ``structure.json`` under ``info``.

    Returns
    -------
    Path
        The folder.

    Example
    -------
    >>> import tempfile
    >>> from transformers import Wav2Vec2Config, Wav2Vec2Model
    >>> config = Wav2Vec2Config(hidden_size=8, num_hidden_layers=1,
    ...     num_attention_heads=2, intermediate_size=16, conv_dim=(4, 4),
    ...     conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=8,
    ...     num_conv_pos_embedding_groups=2)
    >>> model = Wav2Vec2Model(config).eval()
    >>> _ = remove_units(model, {"encoder.layers.0.attention:head":
    ...                          torch.tensor([False, True])})
    >>> folder = save_structured(model, tempfile.mkdtemp() + "/small")
    >>> loaded = load_structured(folder).model
    >>> loaded.encoder.layers[0].attention.q_proj.weight.shape
    torch.Size([4, 8])
    """
    record = getattr(model, RECORD_ATTRIBUTE, None)
    if record is None:
        raise UserInputError("save_structured: the model has not been surgered "
                             "(run speechbrain_sparse.surgery.remove_units first)")
    hf_type = getattr(getattr(model, "config", None), "model_type", None)
    if hf_type is None and arch is None:
        raise UserInputError("save_structured: a SpeechBrain model needs arch (the "
                             "arch YAML's sizes, e.g. the hparams it was built from)")
    whole = isinstance(model, torch.nn.ModuleList) and len(model) == 4
    if hf_type is None and not whole:
        raise UserInputError("save_structured: pass the arch YAML's model (ModuleList "
                             "[CNN, Transformer, seq_lin, ctc_lin]) surgered whole")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    check_finite(state, f"{folder}: the model")
    structure = {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION,
        "kind": "huggingface" if hf_type else "speechbrain",
        "family": record["family"], "fingerprint": record["fingerprint"],
        "mask": {g: {"count": int(b.numel()), "bits": _hex(b)}
                 for g, b in record["mask"].items()},
        "blocks": record["summary"],
        "dtype": str(next(p.dtype for p in model.parameters()
                          if p.is_floating_point())).replace("torch.", ""),
        "num_parameters": count_parameters(model),
        "num_parameters_with_padding": count_parameters(model, padding=True),
        "info": info or {},
    }
    folder = Path(folder)
    with atomic_folder(folder) as staging:
        if source is not None:
            for path in Path(source).iterdir():
                if path.is_file() and path.name not in SKIPPED:
                    shutil.copyfile(path, staging / path.name)
        if hf_type:
            config = model.config.to_dict()
            structure["huggingface"] = {"class": type(model).__name__,
                                        "model_type": hf_type,
                                        "architectures": config.get("architectures")}
            config.update(model_type=LOAD_NOTE, architectures=[LOAD_NOTE])
            (staging / "config.json").write_text(json.dumps(config, indent=2))
        else:
            keys = recorded_keys(DEFAULT_ARCH.read_text(encoding="utf-8"))
            structure["arch"] = {k: arch[k] for k in keys if k in arch}
            if normalizer is not None:
                normalizer._save(staging / "normalizer.ckpt")
        structure["weights"] = _write_weights(state, staging)
        (staging / "README.md").write_text(README)
        (staging / STRUCTURE_FILE).write_text(json.dumps(_sealed(structure), indent=1))
    return folder


def load_structured(folder, device="cpu"):
    """Rebuilds a model written by :func:`save_structured`.

    Arguments
    ---------
    folder : str or Path
        The folder.
    device : str
        Where to put the model.

    Returns
    -------
    speechbrain_sparse.pruning.pretrained.PretrainedModel
        ``.model`` (eval mode), ``.family``; SpeechBrain models also
        ``.hparams`` (the rebuilt arch: normaliser, searchers) and
        ``.tokenizer`` when the folder has ``tokenizer.model``.

    Raises
    ------
    MissingInputError
        No folder, ``structure.json`` or weights file.
    StructureFileError
        A truncated or edited ``structure.json`` (checksum), weights that do
        not match it, or another kind of file.
    """
    folder = Path(folder)
    structure = read_structure(folder / STRUCTURE_FILE)
    weights = folder / structure["weights"]["file"]
    if not weights.is_file():
        raise MissingInputError(f"{weights}: weights file not found")
    if _file_sha256(weights) != structure["weights"]["sha256"]:
        raise StructureFileError(f"{weights}: sha256 differs from {STRUCTURE_FILE} "
                                 "(truncated or replaced weights)")
    from speechbrain_sparse.pruning.unit_masks import UnitMask

    mask = UnitMask({g: unpack_bits(torch.tensor(list(bytes.fromhex(m["bits"])),
                                                 dtype=torch.uint8), m["count"])
                     for g, m in structure["mask"].items()}, structure["fingerprint"])
    if structure["kind"] == "huggingface":
        loaded = _build_huggingface(folder, structure)
    else:
        loaded = _build_speechbrain(folder, structure)
    loaded.model.to(getattr(torch, structure.get("dtype", "float32")))
    remove_units(loaded.model, mask)
    loaded.model.load_state_dict(_read_weights(weights, structure["weights"]["format"]))
    loaded.model.to(device).eval()
    return loaded


def read_structure(path):
    """Returns the checked content of a ``structure.json``.

    Example
    -------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "structure.json"
    >>> _ = path.write_text('{"format": "speechbrain_sparse.Struc')
    >>> read_structure(path)
    Traceback (most recent call last):
    ...
    speechbrain_sparse.surgery.io.StructureFileError: ...json: truncated or not JSON ...
    """
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{path}: not found (not a folder written by "
                                "save_structured / sb-sparse surgery)")
    try:
        structure = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise StructureFileError(f"{path}: truncated or not JSON ({error})") from None
    if not isinstance(structure, dict) or structure.get("format") != FORMAT_NAME:
        raise StructureFileError(f"{path}: not a {FORMAT_NAME} file")
    if structure.get("format_version", 0) > FORMAT_VERSION:
        raise StructureFileError(f"{path}: format version {structure['format_version']}"
                                 " is newer than this reader")
    if structure.get("sha256") != _sealed(structure)["sha256"]:
        raise StructureFileError(f"{path}: checksum mismatch (edited or damaged)")
    return structure


def _hex(bits):
    return pack_bits(bits).numpy().tobytes().hex()


def _sealed(structure):
    content = {k: v for k, v in structure.items() if k != "sha256"}
    text = json.dumps(content, sort_keys=True)
    return {**content, "sha256": hashlib.sha256(text.encode()).hexdigest()}


def _write_weights(state, folder):
    try:
        from safetensors.torch import save_file
    except ImportError:
        path = folder / "structured_model.pt"
        torch.save(state, path)
        return {"file": path.name, "format": "torch", "sha256": _file_sha256(path)}
    seen, tensors = set(), {}
    for name, tensor in state.items():  # safetensors refuses shared storage
        pointer = tensor.untyped_storage().data_ptr()
        tensors[name] = tensor.clone() if pointer in seen else tensor.contiguous()
        seen.add(pointer)
    path = folder / "structured_model.safetensors"
    save_file(tensors, str(path), metadata={"format": FORMAT_NAME})
    return {"file": path.name, "format": "safetensors", "sha256": _file_sha256(path)}


def _read_weights(path, kind):
    if kind == "safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    return torch.load(path, map_location="cpu", weights_only=True)


def _file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _build_huggingface(folder, structure):
    import transformers

    from speechbrain_sparse.pruning.model_families import HuggingFaceSSLFamily

    settings = structure["huggingface"]
    if settings["class"] not in HF_CLASSES:
        raise StructureFileError(f"{folder / STRUCTURE_FILE}: unknown model class "
                                 f"{settings['class']!r} (expected {HF_CLASSES})")
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config.update(model_type=settings["model_type"],
                  architectures=settings["architectures"])
    config = transformers.AutoConfig.for_model(**config)
    model = getattr(transformers, settings["class"])(config)
    preprocessor = folder / "preprocessor_config.json"
    audio = json.loads(preprocessor.read_text()) if preprocessor.is_file() else {}
    family = HuggingFaceSSLFamily(
        normalize_audio=bool(audio.get("do_normalize", True)),
        use_attention_mask=audio.get("return_attention_mask"))
    return PretrainedModel("huggingface", folder, model, family)


def _build_speechbrain(folder, structure):
    from hyperpyyaml import load_hyperpyyaml

    from speechbrain_sparse.pruning.model_families import TransformerASRFamily

    with open(DEFAULT_ARCH, encoding="utf-8") as handle:
        hparams = load_hyperpyyaml(handle, dict(structure["arch"]))
    if (folder / "normalizer.ckpt").is_file():
        hparams["normalize"]._load(folder / "normalizer.ckpt")
    hparams["normalize"].eval()
    tokenizer = None
    if (folder / "tokenizer.model").is_file():
        import sentencepiece

        tokenizer = sentencepiece.SentencePieceProcessor(
            model_file=str(folder / "tokenizer.model"))
    family = TransformerASRFamily(
        hparams["Transformer"], hparams["CNN"], hparams["compute_features"],
        normalize=hparams["normalize"], seq_lin=hparams["seq_lin"],
        pad_index=hparams["pad_index"])
    return PretrainedModel("speechbrain", folder, hparams["model"], family,
                           tokenizer=tokenizer, hparams=hparams)
