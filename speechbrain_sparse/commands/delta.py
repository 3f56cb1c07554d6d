"""``sb-sparse delta``: a fine-tuned model as a small sparse delta on its base.

One base model plus one delta per dialect (see :mod:`speechbrain_sparse.delta`)::

    sb-sparse delta create --base PRE --finetuned FT --out utsang.delta
    sb-sparse delta apply --base PRE --delta utsang.delta --out FT2
    sb-sparse delta inspect utsang.delta

``PRE`` and ``FT`` are checkpoint files (a ``torch.save`` state dict) or model
folders of the Transformer recipes. Of two folders, the delta holds the
changed entries of ``model.ckpt`` and, whole, the fine-tuned folder's other
files that differ from the base's (fine-tuning updates the feature
normaliser's statistics, ``normalizer.ckpt``; ``model_info.json``); the
base's files used unchanged (``tokenizer.model``) are fingerprinted. ``apply``
on a folder writes a complete model folder with the fine-tuned folder's files:
those stored in the delta, the shared ones copied from the base, and a
``model.ckpt`` whose tensors are bit-identical to the fine-tuned one's.

Example
-------
>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> add_arguments(parser)
>>> args = parser.parse_args(["create", "--base", "pre", "--finetuned", "ft",
...                           "--out", "d.delta"])
>>> args.action, args.checkpoint_name
('create', 'model.ckpt')
"""

import os
import shutil
from pathlib import Path

import torch

from speechbrain_sparse.commands import UserError
from speechbrain_sparse.delta import (
    apply_delta,
    check_shared_files,
    create_delta,
    describe_delta,
    load_delta,
)
from speechbrain_sparse.fileio import atomic_folder, torch_save_atomic
from speechbrain_sparse.scores import load_state_dict

NAME = "delta"
HELP = "store a fine-tuned model as a sparse delta on its base; rebuild it; inspect"


def add_arguments(parser):
    """Adds ``delta``'s actions (create, apply, inspect) and their options."""
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser(
        "create", help="store the entries of FT that differ from PRE",
        description="Writes the entries of the fine-tuned model that differ from "
                    "the base (bitmask + values; changed tensors' shapes whole).")
    create.add_argument("--base", required=True,
                        help="PRE: checkpoint file or model folder")
    create.add_argument("--finetuned", required=True,
                        help="FT: checkpoint file or model folder")
    create.add_argument("--out", required=True, help="delta file to write")
    create.set_defaults(run_action=run_create)
    apply = actions.add_parser(
        "apply", help="rebuild the fine-tuned model from PRE and a delta",
        description="Writes base + delta: a checkpoint file, or (when --base is a "
                    "model folder) a complete model folder.")
    apply.add_argument("--base", required=True,
                       help="PRE: checkpoint file or model folder")
    apply.add_argument("--delta", required=True, help="delta file")
    apply.add_argument("--out", required=True,
                       help="checkpoint file (or model folder) to write; replaced")
    apply.set_defaults(run_action=run_apply)
    inspect = actions.add_parser("inspect", help="what a delta holds")
    inspect.add_argument("delta", help="delta file")
    inspect.set_defaults(run_action=run_inspect)
    for sub in (create, apply):
        sub.add_argument("--checkpoint-name", default="model.ckpt",
                         help="file read from a model folder (default model.ckpt)")


def run(args):
    """Runs the chosen action."""
    return args.run_action(args)


def run_create(args):
    """Writes the delta and prints what it holds."""
    _check_writable(args.out)
    base = load_state_dict(args.base, args.checkpoint_name)
    finetuned = load_state_dict(args.finetuned, args.checkpoint_name)
    files, shared = {}, {}
    if os.path.isdir(args.finetuned):
        if not os.path.isdir(args.base):
            raise UserError(f"--finetuned {args.finetuned} is a model folder, so "
                            f"--base must be one too, not {args.base}")
        files, shared = _split_folder(args.base, args.finetuned, args.checkpoint_name)
    info = create_delta(base, finetuned, args.out, base_name=args.base,
                        finetuned_name=args.finetuned, files=files,
                        shared_files=shared)
    dense = (os.path.join(args.finetuned, args.checkpoint_name)
             if os.path.isdir(args.finetuned) else args.finetuned)
    stored = f"; files stored whole: {', '.join(sorted(files))}" if files else ""
    print(f"wrote {args.out}: {_summary_line(info, dense, os.path.getsize(dense))}"
          f"{stored}")
    return 0


def run_apply(args):
    """Writes base + delta as a checkpoint file or a model folder."""
    _check_writable(args.out)
    delta = load_delta(args.delta)
    folder = os.path.isdir(args.base)
    if folder:
        check_shared_files(delta, args.base)
    elif delta.files:
        raise UserError(f"--delta {args.delta} was made from model folders: "
                        f"--base must be the base model folder, not {args.base}")
    base = load_state_dict(args.base, args.checkpoint_name)
    state = apply_delta(base, delta, base_name=args.base)
    if folder:
        with atomic_folder(args.out) as staging:
            for name in delta.shared_files:
                shutil.copyfile(Path(args.base) / name, staging / name)
            for name, data in delta.files.items():
                (staging / name).write_bytes(data)
            # saved under its own name, as the recipe saves it, so that the
            # archive inside the file is named alike
            torch.save(state, staging / args.checkpoint_name)
    else:
        torch_save_atomic(state, args.out)
    files = len(delta.files) + len(delta.shared_files)
    print(f"wrote {args.out}: {len(state)} tensors"
          f"{f' and {files} files' if folder else ''}, base {args.base} + delta "
          f"{args.delta}")
    return 0


def run_inspect(args):
    """Prints what a delta holds (no base needed)."""
    info = describe_delta(args.delta)
    print(f"{args.delta}: {_summary_line(info, 'tensors', info['dense_bytes'])}")
    return 0


def _summary_line(info, reference, dense):
    """Changed entries / total, tensors per layout, bytes and the ratio to ``dense``."""
    layouts = info["layouts"]
    return (f"{info['changed']} of {info['entries']} entries changed "
            f"({info['changed'] / max(info['entries'], 1):.2%}); "
            f"{layouts['delta']} tensors as bitmask + values, {layouts['dense']} "
            f"whole, {layouts['same']} unchanged; {info['file_bytes']} bytes, "
            f"{info['file_bytes'] / max(dense, 1):.3f}x the dense {reference} "
            f"({dense} bytes); base {info['base']}, fine-tuned {info['finetuned']}")


def _split_folder(base, finetuned, checkpoint_name):
    """The fine-tuned folder's other files: ``(differing, shared)``, name -> bytes."""
    files, shared = {}, {}
    for item in sorted(Path(finetuned).iterdir()):
        if item.name == checkpoint_name:
            continue
        if not item.is_file():
            raise UserError(f"--finetuned {finetuned}: {item.name} is not a file; "
                            "a delta covers model folders of files only")
        data, twin = item.read_bytes(), Path(base) / item.name
        same = twin.is_file() and twin.read_bytes() == data
        (shared if same else files)[item.name] = data
    return files, shared


def _check_writable(out):
    """Raises UserError early when ``out`` cannot be written."""
    folder = Path(out).resolve().parent
    while not folder.exists():
        folder = folder.parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"--out {out}: folder {folder} is not writable")
