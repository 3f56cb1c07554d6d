"""Model folders used the SpeechBrain way (``EncoderDecoderASR``) and transcribers.

Every model folder of the Transformer recipes
(:mod:`speechbrain_sparse.asr.model_folder`) carries a ``hyperparams.yaml``, so
that SpeechBrain's own inference class loads it and decodes as the recipe's
test stage does::

    from speechbrain.inference.ASR import EncoderDecoderASR
    asr = EncoderDecoderASR.from_hparams(source="results/.../model",
                                         savedir="pretrained_models/mine")
    asr.transcribe_file("utterance.wav")

The file is the package's architecture YAML
(``speechbrain_sparse/hparams/transformer_asr.yaml``) with every one of its
keys (sizes, beam settings, token indices) set to the value the stage trained
with, its training ``modules`` map replaced by the inference section
(``transformer_asr_inference.yaml`` next to it: ``encoder`` = features,
normalisation, CNN and the Transformer encoder; ``decoder`` = the stage's
``test_search``; ``tokenizer``; ``pretrainer``). It refers to no file outside
the folder, so a copied folder loads the same. The Pretrainer reads
``<name>.ckpt`` from the folder, hence the SentencePiece model is also written
as ``tokenizer.ckpt``. The adapter stage's folders also insert their Houlsby
adapters (``speechbrain_sparse.adapters``) before the weights are loaded.

:func:`load_transcriber` wraps such a folder, or a Hugging Face CTC folder of
the wav2vec2 recipe, as a :class:`Transcriber` (padded waveforms -> texts),
what ``sb-sparse transcribe`` decodes with.

Example
-------
>>> text = inference_hparams({"d_model": 32, "nhead": 2, "causal": False})
>>> recorded_keys(text)["nhead"], recorded_keys(text)["test_beam_size"]
(2, 8)
>>> "decoder: !ref <test_search>" in text
True
"""

import re
import shutil
from pathlib import Path
from types import SimpleNamespace

from speechbrain_sparse.errors import MissingInputError, UserInputError
from speechbrain_sparse.pruning.pretrained import (
    DEFAULT_ARCH,
    SCALAR_LINE,
    detect_kind,
    load_huggingface,
    recorded_keys,
)

ARCH_FILE = DEFAULT_ARCH
INFERENCE_TEMPLATE = DEFAULT_ARCH.parent / "transformer_asr_inference.yaml"
HPARAMS_FILE = "hyperparams.yaml"
TOKENIZER_CHECKPOINT = "tokenizer.ckpt"

# The training ``modules:`` map of the architecture YAML: the key and its block.
_MODULES_BLOCK = re.compile(r"^modules:\n(?:[ \t]+.*\n)+", re.MULTILINE)

HEADER = """\
# ############################################################################
# A Transformer ASR model folder of speechbrain_sparse, for SpeechBrain inference:
#   from speechbrain.inference.ASR import EncoderDecoderASR
#   asr = EncoderDecoderASR.from_hparams(source=<this folder>, savedir=<cache>)
#   asr.transcribe_file("utterance.wav")
# or: sb-sparse transcribe <this folder> utterance.wav
# Written from speechbrain_sparse/hparams/transformer_asr.yaml with the values
# the model was trained with; model.ckpt, normalizer.ckpt and tokenizer.ckpt
# (the SentencePiece model, also tokenizer.model) are read from this folder.
# ############################################################################

"""

ADAPTERS = """
# ---- Houlsby adapters (adapter stage): inserted into Transformer in place ----
adapters: !apply:speechbrain_sparse.adapters.add_adapters
    model: !ref <Transformer>
    projection_size: {projection_size}
"""


def architecture_keys():
    """The keys of the architecture YAML that a stage passes in, with defaults.

    Example
    -------
    >>> keys = architecture_keys()
    >>> keys["d_model"], "nhead" in keys, "eos_index" in keys
    (144, True, True)
    """
    return recorded_keys(ARCH_FILE.read_text(encoding="utf-8"))


def _yaml_value(value):
    """A scalar as YAML writes it (``True``, ``0.4``, ``null``)."""
    if isinstance(value, bool) or value is None:
        return {True: "True", False: "False", None: "null"}[value]
    return str(value)


def inference_hparams(hparams):
    """The ``hyperparams.yaml`` text of a model trained with ``hparams``.

    Arguments
    ---------
    hparams : dict
        The stage's hyperparameters: every key of the architecture YAML it
        has is recorded (the others keep the architecture's default, which is
        what the stage's ``!include`` used); ``adapter_projection_size``
        (optional) adds the adapters.

    Returns
    -------
    str
        A HyperPyYAML file for ``EncoderDecoderASR.from_hparams``.
    """
    arch = ARCH_FILE.read_text(encoding="utf-8")
    body = arch[arch.index("\n\n") + 2:]  # without the header comment block
    keys = architecture_keys()

    def record(match):
        key = match["key"]
        if key not in keys or key not in hparams:
            return match.group(0)
        comment = f"  {match['comment']}" if match["comment"] else ""
        return f"{key}: {_yaml_value(hparams[key])}{comment}"

    body = SCALAR_LINE.sub(record, body)
    body = _MODULES_BLOCK.sub("", body)
    projection = hparams.get("adapter_projection_size")
    adapters = ADAPTERS.format(projection_size=projection) if projection else ""
    template = INFERENCE_TEMPLATE.read_text(encoding="utf-8")
    return f"{HEADER}{body}{adapters}\n{template}"


def write_inference_files(folder, hparams, tokenizer_file):
    """Writes ``hyperparams.yaml`` and ``tokenizer.ckpt`` into ``folder``.

    Arguments
    ---------
    folder : Path
        A model folder being written (e.g. the staging folder of
        :func:`~speechbrain_sparse.fileio.atomic_folder`).
    hparams : dict
        The stage's hyperparameters (see :func:`inference_hparams`).
    tokenizer_file : str or Path
        The SentencePiece model.
    """
    folder = Path(folder)
    (folder / HPARAMS_FILE).write_text(inference_hparams(hparams), encoding="utf-8")
    shutil.copyfile(tokenizer_file, folder / TOKENIZER_CHECKPOINT)


def load_asr(folder, device="cpu", savedir=None):
    """``EncoderDecoderASR`` of a model folder, with the project's errors.

    Arguments
    ---------
    folder : str or Path
        A model folder with a ``hyperparams.yaml``.
    device : str
        Where the model runs (``cpu``, ``cuda:0``).
    savedir : str or Path, optional
        Where SpeechBrain links the files (default: read in place).

    Returns
    -------
    speechbrain.inference.ASR.EncoderDecoderASR

    Example
    -------
    >>> load_asr("no/such/model")
    Traceback (most recent call last):
    ...
    speechbrain_sparse.errors.MissingInputError: no/such/model: model folder not found
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise MissingInputError(f"{folder}: model folder not found")
    for name in (HPARAMS_FILE, "model.ckpt", "normalizer.ckpt", TOKENIZER_CHECKPOINT):
        if not (folder / name).is_file():
            raise MissingInputError(
                f"{folder}: model folder lacks {name} (folders exported before "
                "hyperparams.yaml existed: run the stage's export again)"
            )
    from speechbrain.inference.ASR import EncoderDecoderASR

    return EncoderDecoderASR.from_hparams(
        source=str(folder.resolve()),
        savedir=None if savedir is None else str(savedir),
        run_opts={"device": device},
    )


class Transcriber:
    """Waveforms -> texts with a loaded model, the same call for every kind.

    Arguments
    ---------
    decode : callable
        ``(wavs [batch, samples], relative lengths) -> list of str``.
    model : torch.nn.Module
        The parameters a sparse delta patches: the recipe's ``model``
        (``[CNN, Transformer, seq_lin, ctc_lin]``, the keys of
        ``model.ckpt``) or the Hugging Face model.
    device : str
        Where the model runs.
    """

    def __init__(self, decode, model, device="cpu"):
        self._decode = decode
        self.model = model
        self.device = device

    def __call__(self, wavs, wav_lens):
        """The texts of a padded batch (whitespace as in the recipe's scoring)."""
        import torch

        with torch.no_grad():
            texts = self._decode(wavs.to(self.device), wav_lens.to(self.device))
        return [" ".join(text.split()) for text in texts]


def transformer_transcriber(folder, decoding="beam", device="cpu"):
    """A :class:`Transcriber` of a Transformer model folder (``EncoderDecoderASR``).

    Arguments
    ---------
    folder : str or Path
        A model folder with ``hyperparams.yaml``.
    decoding : str
        ``beam``: ``EncoderDecoderASR.transcribe_batch`` (the stage's
        ``test_search``, joint CTC/attention); ``ctc_greedy``: best path of
        the CTC head on the same encoder output.
    device : str
        Where the model runs.

    Returns
    -------
    Transcriber
    """
    import speechbrain as sb

    asr = load_asr(folder, device)
    hparams = asr.hparams

    def beam(wavs, wav_lens):
        return asr.transcribe_batch(wavs, wav_lens)[0]

    def ctc_greedy(wavs, wav_lens):
        encoded = asr.encode_batch(wavs, wav_lens)
        log_probs = hparams.log_softmax(hparams.ctc_lin(encoded))
        hyps = sb.decoders.ctc_greedy_decode(log_probs, wav_lens,
                                             blank_id=hparams.blank_index)
        return [asr.tokenizer.decode_ids(ids) for ids in hyps]

    decode = {"beam": beam, "ctc_greedy": ctc_greedy}[decoding]
    return Transcriber(decode, hparams.model, device)


def huggingface_ctc_transcriber(folder, device="cpu"):
    """A :class:`Transcriber` of a Hugging Face CTC folder: CTC best path.

    Audio goes in as the recipe trained and tested it
    (:func:`~speechbrain_sparse.asr.hf_ctc_brain.ctc_log_probs`, settings from
    the folder's ``preprocessor_config.json``); characters from its
    ``vocab.json``.
    """
    import speechbrain as sb

    from speechbrain_sparse.asr.ctc_characters import CharacterCTCTokenizer
    from speechbrain_sparse.asr.hf_ctc_brain import ctc_log_probs

    pretrained = load_huggingface(folder, device)
    pretrained.model.eval()
    tokenizer = CharacterCTCTokenizer.from_pretrained(folder)

    def decode(wavs, wav_lens):
        batch = SimpleNamespace(sig=(wavs, wav_lens))  # what the family reads
        log_probs, frame_lens = ctc_log_probs(pretrained.family, pretrained.model,
                                              batch)
        hyps = sb.decoders.ctc_greedy_decode(log_probs, frame_lens,
                                             blank_id=tokenizer.blank_index)
        return [tokenizer.decode_ids(ids) for ids in hyps]

    return Transcriber(decode, pretrained.model, device)


def load_transcriber(folder, decoding=None, device="cpu"):
    """A :class:`Transcriber` of any model folder this package writes.

    Arguments
    ---------
    folder : str or Path
        A Transformer model folder (``hyperparams.yaml``) or a Hugging Face
        CTC folder (``config.json``, ``vocab.json``).
    decoding : str, optional
        ``beam`` or ``ctc_greedy``; default: ``beam`` for Transformer models,
        ``ctc_greedy`` (the only one) for CTC models.
    device : str
        Where the model runs.

    Returns
    -------
    Transcriber

    Example
    -------
    >>> load_transcriber("no/such/model")
    Traceback (most recent call last):
    ...
    speechbrain_sparse.errors.MissingInputError: no/such/model: model folder not found
    """
    if detect_kind(folder) == "huggingface":
        if decoding not in (None, "ctc_greedy"):
            raise UserInputError(f"--decoding {decoding}: {folder} is a Hugging Face "
                                 "CTC model, decoded with ctc_greedy only")
        return huggingface_ctc_transcriber(folder, device)
    return transformer_transcriber(folder, decoding or "beam", device)
