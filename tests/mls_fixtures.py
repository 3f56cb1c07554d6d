"""Tiny Multilingual LibriSpeech trees built by code, in the real MLS layout.

``write_mls`` writes ``mls_<language>[_opus]/`` under a root: transcripts,
segments, metainfo, the limited-supervision handles and real audio (flac or
opus, written with soundfile). ``MLS_RECIPE`` is the ASR recipe folder (load
its modules with ``tests.conftest.load_recipe_module``). Nothing here is read
from disk that the builders did not write.
"""

from pathlib import Path

import numpy as np
import soundfile

REPO = Path(__file__).resolve().parents[1]
MLS_RECIPE = REPO / "recipes" / "MLS" / "ASR" / "transformer"

RATE = 16000
DECOMPOSED = "cafe\u0301 noe\u0308l"  # NFD: the manifest must hold the NFC form
TRAIN = [f"10_100_{k:06d}" for k in range(5)] + [f"20_200_{k:06d}" for k in range(5)]
NINE_HOURS = TRAIN[:3]
ONE_HOUR_FOLDS = [[utt] for utt in TRAIN[3:9]]  # 1hr/0 .. 1hr/5, one id each
SPLITS = {"train": TRAIN, "dev": ["30_300_000000", "30_300_000001"],
          "test": ["40_400_000000"]}


def samples_of(index):
    return 1600 + 320 * index  # 0.1 s, 0.12 s, ...


def text_of(utt_id, index):
    return f"  {DECOMPOSED}   l'arbre grand-père {index}" if index == 0 else \
        f"phrase {utt_id} numéro {index}"


def write_mls(root, language="french", audio_format="flac", text=None):
    """Writes ``mls_<language>[_opus]/`` like MLS: text files, metainfo, real audio.

    ``text(utt_id, index)`` gives the transcript of the ``index``-th utterance
    of its split (:func:`text_of` by default).
    """
    text = text or text_of
    corpus = root / f"mls_{language}{'_opus' if audio_format == 'opus' else ''}"
    generator = np.random.default_rng(0)
    speakers = set()
    for split, ids in SPLITS.items():
        folder = corpus / split
        folder.mkdir(parents=True)
        texts, segments = [], []
        for index, utt_id in enumerate(ids):
            speaker, book, _ = utt_id.split("_")
            speakers.add((speaker, book, split))
            samples = samples_of(index)
            audio_folder = folder / "audio" / speaker / book
            audio_folder.mkdir(parents=True, exist_ok=True)
            audio = (0.1 * generator.standard_normal(samples)).astype("float32")
            if audio_format == "opus":
                soundfile.write(audio_folder / f"{utt_id}.opus", audio, RATE,
                                format="OGG", subtype="OPUS")
            else:
                soundfile.write(audio_folder / f"{utt_id}.flac", audio, RATE)
            start = 3.0 + index
            texts.append(f"{utt_id}\t{text(utt_id, index)}\n")
            segments.append(f"{utt_id}\thttp://www.archive.org/download/x/{book}.mp3"
                            f"\t{start:.2f}\t{start + samples / RATE:.2f}\n")
        (folder / "transcripts.txt").write_text("".join(texts), encoding="utf-8")
        (folder / "segments.txt").write_text("".join(reversed(segments)))
    limited = corpus / "train" / "limited_supervision"
    (limited / "9hr").mkdir(parents=True)
    (limited / "9hr" / "handles.txt").write_text("\n".join(NINE_HOURS) + "\n")
    for fold, handles in enumerate(ONE_HOUR_FOLDS):
        (limited / "1hr" / str(fold)).mkdir(parents=True)
        (limited / "1hr" / str(fold) / "handles.txt").write_text("\n".join(handles))
    lines = ["SPEAKER   |   GENDER   | PARTITION  |  MINUTES   |  BOOK ID   |"
             "   TITLE   |   CHAPTER  \n"]
    lines += [f"{speaker:>8}   |     {'MF'[int(speaker) % 20 == 0]}      | {split:>8} "
              f"|    12.3    | {book:>8}   | Un | titre | Chapitre 1\n"
              for speaker, book, split in sorted(speakers)]
    (corpus / "metainfo.txt").write_text("".join(lines))
    return corpus
