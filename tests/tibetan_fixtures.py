"""Tiny Tibetan corpora built by code: the XBMU-AMDO31 tree and the generic layout.

``TIBETAN_RECIPE`` is the recipe folder (load its modules with
``tests.conftest.load_recipe_module``).

Real Tibetan Unicode text (everyday sentences, whitespace between words as in
XBMU-AMDO31's ``transcript_clean.txt``) and short 16 kHz wavs written with
soundfile. Nothing here is read from disk that the builders did not write.
"""

import shutil
import tarfile
import unicodedata
from pathlib import Path

import numpy
import soundfile

REPO = Path(__file__).resolve().parents[1]
TIBETAN_RECIPE = REPO / "recipes" / "Tibetan" / "ASR" / "transformer"
SAMPLE_RATE = 16000

SENTENCES = (
    "བཀྲ་ཤིས་ བདེ་ལེགས།",  # good luck
    "ཁྱེད་རང་ སྐུ་གཟུགས་ བདེ་པོ་ ཡིན་པས།",  # how are you?
    "ང་ བོད་པ་ ཡིན།",  # I am Tibetan
    "ཐུགས་རྗེ་ ཆེ།",  # thank you
    "ང་ལ་ དཔེ་ཆ་ ཞིག་ ཡོད།",  # I have a book
    "དེ་རིང་ གནམ་གཤིས་ ཡག་པོ་ འདུག",  # the weather is fine today
    "ངས་ བོད་ཡིག་ སློབ་སྦྱོང་ བྱེད་ཀྱི་ ཡོད།",  # I am learning Tibetan
    "ཨ་མ་ ཁྱིམ་ ལ་ ཡོད།",  # mother is at home
    "སློབ་གྲྭ་ ག་པར་ ཡོད།",  # where is the school?
    "ཁ་ལག་ ཞིམ་པོ་ འདུག",  # the food is tasty
    "ཉི་མ་ ཤར་ སོང་།",  # the sun has risen
    "ཆུ་ ཁོལ་མ་ འཐུང་།",  # drink boiled water
)

# Spelled with U+0F43 GHA and U+0F73, which NFC decomposes; two spaces and a tab.
DECOMPOSABLE = "\u0f43\u0f0b\u0f40\u0f73  ཡོད།\tའདུག"


def nfc_words(text):
    """What a manifest's ``wrd`` column must hold for ``text``."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def write_wav(path, seconds, seed=0):
    """A mono 16-bit 16 kHz wav of quiet noise and a tone."""
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = int(seconds * SAMPLE_RATE)
    rng = numpy.random.default_rng(seed)
    tone = numpy.sin(2 * numpy.pi * (200 + 20 * seed) * numpy.arange(frames) / 16000)
    signal = 0.3 * tone + 0.05 * rng.standard_normal(frames)
    soundfile.write(str(path), signal.astype("float32"), SAMPLE_RATE, subtype="PCM_16")


XBMU_SPEAKERS = {"train": ("A01", "A02"), "dev": ("D01",), "test": ("T01",)}


def build_xbmu_tree(
    root, id_style="bare", tarball_splits=(), speakers=None, per_speaker=3
):
    """Writes an XBMU-AMDO31 tree in the real layout under ``root``.

    Arguments
    ---------
    root : Path
        The corpus root (``root/data/wav``, ``root/data/transcript``).
    id_style : str
        ``bare``: transcript lines start with ``<uttid>`` (as the corpus);
        ``full``: with ``<spk>-<uttid>``.
    tarball_splits : sequence of str
        Splits shipped as ``data/wav/<split>.tar.gz`` only (folder removed).
    speakers : dict, optional
        Split -> speaker folders; :data:`XBMU_SPEAKERS` by default.
    per_speaker : int
        Utterances per speaker.

    Returns
    -------
    dict
        Split -> list of expected rows ``{"ID", "spk_id", "wrd", "duration"}``.
    """
    speakers = speakers or XBMU_SPEAKERS
    wav_root = root / "data" / "wav"
    lines, expected, counter = [], {}, 0
    for split, folders in speakers.items():
        expected[split] = []
        for speaker in folders:
            for _ in range(per_speaker):
                counter += 1
                utt_id = f"{counter:06d}"
                name = f"{speaker}-{utt_id}"
                text = SENTENCES[counter % len(SENTENCES)]
                if counter == 2:
                    text = DECOMPOSABLE
                seconds = 0.5 + 0.05 * (counter % 6)
                write_wav(wav_root / split / speaker / f"{name}.wav", seconds, counter)
                transcript_id = utt_id if id_style == "bare" else name
                lines.append(f"{transcript_id} {text}\n")
                expected[split].append(
                    {
                        "ID": name,
                        "spk_id": speaker,
                        "wrd": nfc_words(text),
                        "duration": seconds,
                    }
                )
    transcript = root / "data" / "transcript" / "transcript_clean.txt"
    transcript.parent.mkdir(parents=True, exist_ok=True)
    transcript.write_text("".join(lines), encoding="utf-8")
    for split in tarball_splits:
        with tarfile.open(wav_root / f"{split}.tar.gz", "w:gz") as archive:
            archive.add(wav_root / split, arcname=split)
        shutil.rmtree(wav_root / split)
    return expected


def build_generic_tree(root, dialects=("utsang", "khampa"), per_speaker=3):
    """Writes the generic per-dialect layout with Tibetan transcripts.

    ``<root>/<dialect>/<split>/<spk>/<utt>.wav`` and ``<split>/text``; one
    speaker per split. Returns ``{(dialect, split): [(utt_id, wrd), ...]}``.
    """
    expected, counter = {}, 0
    for dialect in dialects:
        for split in ("train", "dev", "test"):
            speaker = f"{dialect}_{split}_s1"
            lines, rows = [], []
            for index in range(per_speaker):
                counter += 1
                utt_id = f"{speaker}_{index:03d}"
                text = SENTENCES[(counter * 5) % len(SENTENCES)]
                if counter == 1:
                    text = DECOMPOSABLE
                path = root / dialect / split / speaker / f"{utt_id}.wav"
                write_wav(path, 0.5 + 0.05 * (counter % 5), counter)
                lines.append(f"{utt_id} {text}\n")
                rows.append((utt_id, nfc_words(text)))
            (root / dialect / split / "text").write_text(
                "".join(lines), encoding="utf-8"
            )
            expected[(dialect, split)] = rows
    return expected
