"""``sb-sparse surgery``: remove the units a unit mask prunes, save the smaller model.

Loads a local Hugging Face Wav2Vec2 / HuBERT / WavLM directory or a model
folder of our Transformer ASR recipes (as ``sb-sparse prune`` does), applies
a unit mask file (:class:`~speechbrain_sparse.pruning.unit_masks.UnitMask`,
written by the structured-pruning recipes) with
:func:`~speechbrain_sparse.surgery.remove.remove_units` and writes a structured
folder (:func:`~speechbrain_sparse.surgery.io.save_structured`), which
:func:`~speechbrain_sparse.surgery.io.load_structured` loads::

    sb-sparse surgery results/l0/unit_mask.pt --model wav2vec2-base --out small/

Authors
 * speechbrain_sparse contributors 2026

Example
-------
>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> add_arguments(parser)
>>> args = parser.parse_args(["m.pt", "--model", "dir", "--out", "o"])
>>> args.mask, args.model, args.out, args.nhead
('m.pt', 'dir', 'o', None)
"""

import time
from pathlib import Path

from speechbrain_sparse.commands import UserError
from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.fileio import check_writable

NAME = "surgery"
HELP = "remove the units a unit mask prunes and save the smaller model"


def add_arguments(parser):
    """Adds the ``surgery`` options to ``parser``."""
    parser.add_argument("mask", help="unit mask file (UnitMask.save)")
    parser.add_argument("--model", required=True,
                        help="Hugging Face model directory or SpeechBrain model folder")
    parser.add_argument("--out", required=True, help="output folder (replaced)")
    parser.add_argument("--nhead", type=int, default=None,
                        help="attention heads of a SpeechBrain model (if not found)")


def run(args):
    """Loads, checks the mask against the model, removes the units, saves."""
    from speechbrain_sparse.pruning.pretrained import load_pretrained
    from speechbrain_sparse.pruning.unit_masks import UnitMask
    from speechbrain_sparse.pruning.unit_structure import model_structure
    from speechbrain_sparse.surgery.io import save_structured
    from speechbrain_sparse.surgery.remove import count_parameters, remove_units

    if not Path(args.mask).is_file():
        raise UserError(f"MASK {args.mask}: file not found")
    if not Path(args.model).is_dir():
        raise UserError(f"--model {args.model}: folder not found")
    check_writable(args.out, "--out")
    try:
        pretrained = load_pretrained(args.model, "cpu", args.nhead)
    except UserInputError as error:
        raise UserError(f"--model: {error}") from None
    model = pretrained.model
    structure = model_structure(model)
    mask = UnitMask.load(args.mask, structure)
    before = count_parameters(model)
    start = time.perf_counter()
    remove_units(model, mask, structure)
    seconds = time.perf_counter() - start
    after = count_parameters(model)
    arch = normalizer = None
    if pretrained.kind == "speechbrain":
        arch, normalizer = pretrained.hparams, pretrained.hparams["normalize"]
    info = {"source": str(Path(args.model).resolve()),
            "mask": str(Path(args.mask).resolve()),
            "parameters_before": before, "parameters_after": after}
    out = save_structured(model, args.out, arch=arch, normalizer=normalizer,
                          source=args.model, info=info)
    print(f"wrote {out}: {before} -> {after} parameters ({after / before:.4f}), "
          f"surgery {seconds:.2f} s; load with "
          "speechbrain_sparse.surgery.load_structured")
    return 0
