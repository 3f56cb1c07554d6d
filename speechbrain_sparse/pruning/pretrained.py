"""Pretrained models on disk, for pruning without writing YAML.

Two kinds of folders are understood:

* a local Hugging Face model directory (``config.json`` + weights) of a
  Wav2Vec2, HuBERT or WavLM model (``*ForCTC`` when the config says so),
  loaded with ``from_pretrained(directory, local_files_only=True)``; its
  ``preprocessor_config.json`` (if any) says whether audio is normalised and
  whether the model takes a padding mask;
* a SpeechBrain model folder of our Transformer ASR recipes
  (:mod:`speechbrain_sparse.asr.model_folder`: ``model.ckpt``,
  ``normalizer.ckpt``, ``tokenizer.model``). Its architecture is rebuilt from
  the recipes' ``transformer_asr.yaml`` (package data in
  ``speechbrain_sparse/hparams/``) with the keys recorded in the folder's own
  ``hyperparams.yaml`` (:mod:`speechbrain_sparse.asr.inference`) and the sizes
  read from the checkpoint's shapes; the number of heads, which no shape shows,
  comes from ``nhead``, else that record, else (folders exported before it
  existed) ``model_info.json`` or the ``hyperparams.yaml`` SpeechBrain saved
  next to the folder.

:func:`load_pretrained` returns a :class:`PretrainedModel` whose ``save``
writes the pruned model in the same form (plus ``mask.pt``), so the result
loads exactly as the original did.

Example
-------
>>> detect_kind(".")
Traceback (most recent call last):
...
speechbrain_sparse.errors.UserInputError: .: neither a Hugging Face model directory ...
"""

import json
import re
import shutil
from pathlib import Path

import torch
import yaml

from speechbrain_sparse.errors import MissingInputError, UserInputError
from speechbrain_sparse.fileio import atomic_folder, check_finite
from speechbrain_sparse.pruning.model_families import (
    HuggingFaceSSLFamily,
    TransformerASRFamily,
)

DEFAULT_ARCH = Path(__file__).parents[1] / "hparams" / "transformer_asr.yaml"
# A top-level ``key: plain value  # comment`` line of a YAML file (no tag, no block).
SCALAR_LINE = re.compile(
    r"^(?P<key>[A-Za-z_]\w*):[ \t]+(?P<value>[^!\s#&*][^#\n]*?)[ \t]*"
    r"(?P<comment>#.*)?$",
    re.MULTILINE,
)
HF_WEIGHT_FILES = ("config.json", "model.safetensors", "pytorch_model.bin",
                   "model.safetensors.index.json", "pytorch_model.bin.index.json",
                   "generation_config.json")


class PretrainedModel:
    """A loaded model, the family that prunes it and how to save it back.

    Arguments
    ---------
    kind : str
        ``"huggingface"`` or ``"speechbrain"``.
    source : Path or None
        The folder it was loaded from (None: built here).
    model : torch.nn.Module
        What the mask's parameter names refer to.
    family : ModelFamily
        Its model family.
    tokenizer : optional
        SentencePiece (SpeechBrain models: calibration batches with tokens)
        or :class:`~speechbrain_sparse.asr.ctc_characters.CharacterCTCTokenizer`
        (CTC models trained here: written as ``vocab.json``).
    hparams : dict, optional
        The rebuilt architecture (SpeechBrain models).
    """

    def __init__(self, kind, source, model, family, tokenizer=None, hparams=None):
        self.kind = kind
        self.source = Path(source) if source is not None else None
        self.model = model
        self.family = family
        self.tokenizer = tokenizer
        self.hparams = hparams

    def save(self, destination, mask=None, info=None, sparse_export=False,
             info_file="pruning_info.json"):
        """Writes the (pruned) model, ``mask.pt`` and optionally a sparse export.

        The folder is written under a temporary name and then renamed, so it
        is never seen half-written; an existing folder is replaced. A Hugging
        Face model gets the other files of its source folder; a model trained
        here (no source) gets its ``tokenizer``'s ``vocab.json`` and a
        ``preprocessor_config.json`` from its family's audio settings.

        Arguments
        ---------
        destination : str or Path
            The output folder.
        mask : ParameterMask, optional
            Saved as ``mask.pt`` (needed for ``sparse_export``).
        info : dict, optional
            Written to ``info_file``.
        sparse_export : bool
            Also write ``sparse_model.pt`` (bitmask + surviving values).
        info_file : str
            The name ``info`` is written under.

        Returns
        -------
        Path
            The destination.

        Raises
        ------
        speechbrain_sparse.fileio.NonFiniteTensorError
            The model holds NaN or inf (a failed run); nothing is written.
        """
        check_finite(self.model.state_dict(), f"{destination}: the model")
        destination = Path(destination)
        with atomic_folder(destination) as staging:
            if self.kind == "huggingface":
                self.model.save_pretrained(staging)
                if self.source is not None:
                    _copy_other_files(self.source, staging, skip=HF_WEIGHT_FILES)
                self._write_processor_files(staging)
            else:
                torch.save(self.model.state_dict(), staging / "model.ckpt")
                _copy_other_files(self.source, staging,
                                  skip=("model.ckpt", "model_info.json"))
                self._write_model_info(staging, info)
            if mask is not None:
                mask.save(staging / "mask.pt")
            if sparse_export:
                from speechbrain_sparse.pruning.sparse_export import (
                    save_sparse_checkpoint,
                )

                save_sparse_checkpoint(self.model.state_dict(),
                                       staging / "sparse_model.pt", masks=mask)
            (staging / info_file).write_text(
                json.dumps(info or {}, indent=2, default=str))
        return destination


    def _write_processor_files(self, folder):
        """``vocab.json`` and ``preprocessor_config.json`` where still missing."""
        if self.tokenizer is not None and not (folder / "vocab.json").exists():
            self.tokenizer.save(folder)
        if not (folder / "preprocessor_config.json").exists():
            from transformers import Wav2Vec2FeatureExtractor

            Wav2Vec2FeatureExtractor(
                feature_size=1, sampling_rate=16000, padding_value=0.0,
                do_normalize=self.family.normalize_audio,
                return_attention_mask=bool(self.family.use_attention_mask),
            ).save_pretrained(folder)

    def _write_model_info(self, folder, info):
        """``model_info.json`` of the source plus ``nhead`` and what pruned it."""
        source = self.source / "model_info.json"
        model_info = json.loads(source.read_text()) if source.is_file() else {}
        model_info["nhead"] = self.hparams["nhead"]
        model_info["pruned"] = {k: (info or {}).get(k) for k in
                                ("method", "achieved_sparsity", "source")}
        (folder / "model_info.json").write_text(json.dumps(model_info, indent=2))


def detect_kind(folder):
    """Returns ``"huggingface"`` or ``"speechbrain"``; ValueError naming the folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingInputError(f"{folder}: model folder not found")
    if (folder / "structure.json").is_file():  # written by sb-sparse surgery
        raise UserInputError(f"{folder}: a structurally pruned (surgered) model; load "
                             "it with speechbrain_sparse.surgery.load_structured")
    if (folder / "config.json").is_file():
        return "huggingface"
    if (folder / "model.ckpt").is_file() and (folder / "tokenizer.model").is_file():
        return "speechbrain"
    raise UserInputError(f"{folder}: neither a Hugging Face model directory "
                         "(config.json) nor a SpeechBrain model folder (model.ckpt, "
                         "tokenizer.model)")


def load_pretrained(folder, device="cpu", nhead=None, arch_file=None):
    """Loads a Hugging Face directory or a SpeechBrain model folder.

    Arguments
    ---------
    folder : str or Path
        The model folder.
    device : str
        Where to put the model.
    nhead : int, optional
        Attention heads of a SpeechBrain model (else read from the
        ``hyperparams.yaml`` next to the folder).
    arch_file : str or Path, optional
        Architecture YAML of a SpeechBrain model (default:
        :data:`DEFAULT_ARCH`, the recipes' ``transformer_asr.yaml`` shipped
        with the package).

    Returns
    -------
    PretrainedModel
    """
    if detect_kind(folder) == "huggingface":
        return load_huggingface(folder, device)
    return load_speechbrain_folder(folder, device, nhead, arch_file)


def load_huggingface(directory, device="cpu"):
    """Loads a Wav2Vec2 / HuBERT / WavLM directory with ``from_pretrained``."""
    from transformers import AutoConfig, AutoModel, AutoModelForCTC

    directory = Path(directory)
    config = AutoConfig.from_pretrained(directory, local_files_only=True)
    family = _huggingface_family(directory)
    if config.model_type not in ("wav2vec2", "hubert", "wavlm"):
        raise UserInputError(f"{directory}: model_type {config.model_type!r} is not "
                             "Wav2Vec2, HuBERT or WavLM")
    ctc = any(a.endswith("ForCTC") for a in (config.architectures or []))
    loader = AutoModelForCTC if ctc else AutoModel
    model = loader.from_pretrained(directory, local_files_only=True).to(device)
    return PretrainedModel("huggingface", directory, model, family)


def _huggingface_family(directory):
    settings = {}
    preprocessor = directory / "preprocessor_config.json"
    if preprocessor.is_file():
        settings = json.loads(preprocessor.read_text())
    return HuggingFaceSSLFamily(
        normalize_audio=bool(settings.get("do_normalize", True)),
        use_attention_mask=settings.get("return_attention_mask"),
    )


def load_speechbrain_folder(folder, device="cpu", nhead=None, arch_file=None):
    """Rebuilds our Transformer ASR from a model folder (see the module docstring)."""
    import sentencepiece
    from hyperpyyaml import load_hyperpyyaml

    folder = Path(folder)
    arch_file = Path(arch_file) if arch_file else DEFAULT_ARCH
    if not arch_file.is_file():
        raise MissingInputError(
            f"{arch_file}: architecture YAML not found (pass --arch)"
        )
    state = torch.load(folder / "model.ckpt", map_location="cpu", weights_only=True)
    record = folder_record(folder)
    arch_keys = recorded_keys(arch_file.read_text(encoding="utf-8"))
    sizes = {key: value for key, value in record.items() if key in arch_keys}
    sizes.update(transformer_sizes(state, folder / "model.ckpt"))
    sizes["nhead"] = int(nhead) if nhead else _read_nhead(folder, record)
    with open(arch_file, encoding="utf-8") as handle:
        hparams = load_hyperpyyaml(handle, sizes)
    try:
        hparams["model"].load_state_dict(state)
    except RuntimeError as error:
        raise UserInputError(f"{folder / 'model.ckpt'}: does not fit {arch_file}: "
                             f"{error}") from None
    if (folder / "normalizer.ckpt").is_file():
        hparams["normalize"]._load(folder / "normalizer.ckpt")
    for name in ("model", "normalize"):
        hparams[name].to(device)
    tokenizer = sentencepiece.SentencePieceProcessor(
        model_file=str(folder / "tokenizer.model"))
    family = TransformerASRFamily(
        hparams["Transformer"], hparams["CNN"], hparams["compute_features"],
        normalize=hparams["normalize"], seq_lin=hparams["seq_lin"],
        pad_index=hparams["pad_index"],
    )
    return PretrainedModel("speechbrain", folder, hparams["model"], family,
                           tokenizer=tokenizer, hparams=hparams)


def transformer_sizes(state, source="checkpoint"):
    """Returns the arch YAML's size keys read from a recipe checkpoint's shapes.

    Arguments
    ---------
    state : dict
        State dict of the recipe's ``model`` (``[CNN, Transformer, seq_lin,
        ctc_lin]``, so keys start with ``0.`` ... ``3.``).
    source : str
        Named in the error message.

    Returns
    -------
    dict
        ``d_model``, ``d_ffn``, ``num_encoder_layers``, ``num_decoder_layers``,
        ``vocab_size``, ``n_mels``.

    Example
    -------
    >>> state = {"1.encoder.layers.0.self_att.att.in_proj_weight": torch.zeros(48, 16),
    ...          "1.encoder.layers.0.pos_ffn.ffn.0.weight": torch.zeros(32, 16),
    ...          "1.decoder.layers.0.pos_ffn.ffn.0.weight": torch.zeros(32, 16),
    ...          "1.custom_src_module.layers.0.w.weight": torch.zeros(16, 160),
    ...          "3.w.weight": torch.zeros(20, 16)}
    >>> transformer_sizes(state)["n_mels"], transformer_sizes(state)["vocab_size"]
    (20, 20)
    """
    try:
        return {
            "d_model": state["1.encoder.layers.0.self_att.att.in_proj_weight"].shape[1],
            "d_ffn": state["1.encoder.layers.0.pos_ffn.ffn.0.weight"].shape[0],
            "num_encoder_layers": _count_layers(state, "1.encoder.layers."),
            "num_decoder_layers": _count_layers(state, "1.decoder.layers."),
            "vocab_size": state["3.w.weight"].shape[0],
            "n_mels": state["1.custom_src_module.layers.0.w.weight"].shape[1] // 8,
        }
    except KeyError as error:
        raise UserInputError(f"{source}: not a checkpoint of the recipe's Transformer "
                             f"ASR model (no {error})") from None


def _count_layers(state, prefix):
    indices = {int(key[len(prefix):].split(".")[0]) for key in state
               if key.startswith(prefix)}
    return max(indices) + 1 if indices else 0


def recorded_keys(text):
    """The top-level plain ``key: value`` entries of a YAML text, values parsed.

    What a model folder's ``hyperparams.yaml`` records (sizes, beam settings,
    token indices) read without building its objects.

    Arguments
    ---------
    text : str
        A YAML file's text (tags such as ``!new:`` are skipped, not parsed).

    Returns
    -------
    dict
        Key -> value (int, float, bool, str or None).

    Example
    -------
    >>> recorded_keys("d_model: 32   # width\\nCNN: !new:torch.nn.Identity\\n")
    {'d_model': 32}
    """
    return {
        match["key"]: yaml.safe_load(match["value"])
        for match in SCALAR_LINE.finditer(text)
    }


def folder_record(folder):
    """:func:`recorded_keys` of ``<folder>/hyperparams.yaml`` (``{}`` without one).

    Example
    -------
    >>> folder_record("no/such/folder")
    {}
    """
    path = Path(folder) / "hyperparams.yaml"
    if not path.is_file():
        return {}
    return recorded_keys(path.read_text(encoding="utf-8"))


def _read_nhead(folder, record):
    if record.get("nhead"):
        return int(record["nhead"])
    info = folder / "model_info.json"
    if info.is_file():
        value = json.loads(info.read_text()).get("nhead")
        if value:
            return int(value)
    saved = folder.parent / "hyperparams.yaml"
    if saved.is_file():
        match = re.search(r"^nhead:\s*(\d+)\s*$", saved.read_text(), re.MULTILINE)
        if match:
            return int(match.group(1))
    raise UserInputError(f"{folder}: cannot tell the number of attention heads (no "
                         f"nhead in {saved}); pass --nhead")


def _copy_other_files(source, destination, skip):
    for path in source.iterdir():
        if path.is_file() and path.name not in skip and not (
            destination / path.name).exists():
            shutil.copyfile(path, destination / path.name)
