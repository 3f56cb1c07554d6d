"""Character vocabulary of a Hugging Face CTC model, with the recipe's interface.

Wav2Vec2-family ``*ForCTC`` checkpoints (``facebook/wav2vec2-base-100h`` and
the models our synthetic recipe trains from scratch) carry their output
vocabulary as ``vocab.json``: ``<pad>`` is the CTC blank, ``|`` separates
words, the rest are characters. :class:`CharacterCTCTokenizer` wraps
``transformers.Wav2Vec2CTCTokenizer`` (which reads and writes that file)
behind the two methods the recipe's data pipeline and Brain call on a
SentencePiece model, ``encode_as_ids`` and ``decode_ids``, so both tokenizers
fit the same pipeline.

Example
-------
>>> tokenizer = CharacterCTCTokenizer.from_transcripts(["HELLO WORLD", "HOLD"])
>>> ids = tokenizer.encode_as_ids("HELLO OLD")
>>> tokenizer.decode_ids(ids)
'HELLO OLD'
>>> tokenizer.blank_index, len(tokenizer)
(0, 10)
"""

import json
import tempfile
from pathlib import Path

from speechbrain_sparse.errors import UserInputError

SPECIAL_TOKENS = ("<pad>", "<unk>", "|")


class CharacterCTCTokenizer:
    """Characters <-> ids for CTC, stored as Hugging Face ``vocab.json``.

    Arguments
    ---------
    vocab_file : str or Path
        A ``vocab.json`` mapping tokens to ids, with ``<pad>`` (the blank),
        ``<unk>`` and the word delimiter ``|``.
    """

    def __init__(self, vocab_file):
        from transformers import Wav2Vec2CTCTokenizer

        vocab_file = Path(vocab_file)
        try:
            vocabulary = json.loads(vocab_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise UserInputError(f"{vocab_file}: not a readable vocab.json: "
                                 f"{error}") from None
        missing = [token for token in SPECIAL_TOKENS if token not in vocabulary]
        if missing:
            raise UserInputError(f"{vocab_file}: the CTC vocabulary lacks {missing}")
        self.tokenizer = Wav2Vec2CTCTokenizer(
            str(vocab_file), unk_token="<unk>", pad_token="<pad>",
            word_delimiter_token="|", bos_token=None, eos_token=None,
        )

    @classmethod
    def from_transcripts(cls, transcripts):
        """Builds the vocabulary from the characters of ``transcripts``.

        Ids: ``<pad>`` 0, ``<unk>`` 1, ``|`` 2, then the characters sorted.
        """
        characters = sorted({char for text in transcripts for char in text} - {" "})
        vocabulary = {token: index for index, token in
                      enumerate(list(SPECIAL_TOKENS) + characters)}
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "vocab.json"
            path.write_text(json.dumps(vocabulary, ensure_ascii=False),
                            encoding="utf-8")
            return cls(path)

    @classmethod
    def from_pretrained(cls, directory):
        """Loads ``<directory>/vocab.json``; ValueError naming it if absent."""
        vocab_file = Path(directory) / "vocab.json"
        if not vocab_file.is_file():
            raise UserInputError(
                f"{directory}: no vocab.json (the CTC model's characters)"
            )
        return cls(vocab_file)

    @property
    def blank_index(self):
        """The CTC blank (``<pad>``)."""
        return self.tokenizer.pad_token_id

    def __len__(self):
        return len(self.tokenizer)

    def encode_as_ids(self, text):
        """Character ids of ``text`` (spaces become ``|``)."""
        return self.tokenizer(text).input_ids

    def decode_ids(self, ids):
        """Text of ids already collapsed by CTC decoding (no grouping again)."""
        return self.tokenizer.decode(list(ids), group_tokens=False).strip()

    def save(self, directory):
        """Writes ``vocab.json`` and ``tokenizer_config.json`` into ``directory``.

        With the model's ``config.json`` and ``preprocessor_config.json`` this
        is what ``transformers.pipeline("automatic-speech-recognition",
        model=directory)`` reads (``AutoTokenizer`` finds the class in
        ``tokenizer_config.json``).
        """
        self.tokenizer.save_pretrained(str(directory))
