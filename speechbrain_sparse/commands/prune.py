"""``sb-sparse prune obs``: one-shot OBS pruning (SparseWAV) of a saved model.

Prunes a local Hugging Face Wav2Vec2 / HuBERT / WavLM directory or a model
folder of our Transformer ASR recipes (see
:mod:`speechbrain_sparse.pruning.pretrained`) with calibration utterances from
a manifest CSV (``ID,duration,wav,...``; ``wrd`` too for SpeechBrain models,
whose decoder is calibrated on the transcripts), and writes the pruned model
in the same form, its ``mask.pt`` and ``pruning_info.json`` (optionally a
sparse export). No YAML needed::

    sb-sparse prune obs --model wav2vec2-base-100h --calibration train.csv \\
        --sparsity 0.8 --mixed-sparsity --out pruned/w2v2_80

Example
-------
>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> add_arguments(parser)
>>> args = parser.parse_args(["obs", "--model", "m", "--calibration", "c.csv",
...                           "--sparsity", "0.8", "--out", "o"])
>>> args.method, args.saliency, args.num_calibration, args.alpha
('obs', 'improved', 128, 0.1)
"""

import logging
import time
from pathlib import Path

from speechbrain_sparse.commands import UserError
from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.fileio import (
    NonFiniteTensorError,
    check_finite,
    check_writable,
)
from speechbrain_sparse.pruning.obs import SALIENCIES

NAME = "prune"
HELP = "prune a saved model in one shot (obs: SparseWAV layer-wise OBS)"

logger = logging.getLogger(__name__)


def add_arguments(parser):
    """Adds ``prune``'s methods and their options to ``parser``."""
    methods = parser.add_subparsers(dest="method", metavar="METHOD", required=True)
    obs = methods.add_parser(
        "obs", help="layer-wise OBS with calibration data (SparseWAV)",
        description="One-shot layer-wise OBS pruning (SparseWAV) of a local Hugging "
                    "Face model directory or a SpeechBrain model folder.")
    obs.add_argument("--model", required=True,
                     help="Hugging Face model directory or SpeechBrain model folder")
    obs.add_argument("--calibration", required=True,
                     help="manifest CSV of calibration utterances (ID,duration,wav)")
    obs.add_argument("--sparsity", required=True, type=float,
                     help="fraction of each pruned matrix set to zero, in [0, 1)")
    obs.add_argument("--out", required=True, help="output folder (replaced)")
    obs.add_argument("--saliency", choices=SALIENCIES, default="improved",
                     help="improved (|w G| + OBS, eq. 3) or obs (eq. 1)")
    obs.add_argument("--mixed-sparsity", action="store_true",
                     help="per-matrix sparsities from Hutchinson sensitivities")
    obs.add_argument("--alpha", type=float, default=0.1,
                     help="half-width of the mixed-sparsity range (default 0.1)")
    obs.add_argument("--num-probes", type=int, default=8,
                     help="Hutchinson probes per batch (default 8)")
    obs.add_argument("--num-calibration", type=int, default=128,
                     help="calibration utterances drawn from the CSV (default 128)")
    obs.add_argument("--batch-size", type=int, default=8)
    obs.add_argument("--max-duration", type=float, default=None,
                     help="leave out longer calibration utterances (seconds)")
    obs.add_argument("--seed", type=int, default=0, help="seed of the draw")
    obs.add_argument("--block-size", type=int, default=128,
                     help="columns per lazy OBS update block (default 128)")
    obs.add_argument("--damp", type=float, default=0.01,
                     help="dampening, fraction of mean diag(H) (default 0.01)")
    obs.add_argument("--hessian-dtype", choices=("float32", "float64"),
                     default="float32")
    obs.add_argument("--device", default="cpu", help="e.g. cpu, cuda:0")
    obs.add_argument("--sparse-export", action="store_true",
                     help="also write sparse_model.pt (bitmask + values)")
    obs.add_argument("--nhead", type=int, default=None,
                     help="attention heads of a SpeechBrain model (if not found)")
    obs.add_argument("--arch", default=None,
                     help="architecture YAML of a SpeechBrain model")
    obs.set_defaults(run_method=run_obs)


def run(args):
    """Runs the chosen pruning method."""
    return args.run_method(args)


def _check_arguments(args):
    checks = [
        (0.0 <= args.sparsity < 1.0,
         f"--sparsity must be in [0, 1), got {args.sparsity}"),
        (0.0 <= args.alpha < 1.0, f"--alpha must be in [0, 1), got {args.alpha}"),
        (args.num_calibration >= 1, "--num-calibration must be >= 1"),
        (args.batch_size >= 1, "--batch-size must be >= 1"),
        (args.num_probes >= 1, "--num-probes must be >= 1"),
        (args.block_size >= 1, "--block-size must be >= 1"),
        (args.damp >= 0, "--damp must be >= 0"),
        (Path(args.model).is_dir(), f"--model {args.model}: folder not found"),
        (Path(args.calibration).is_file(),
         f"--calibration {args.calibration}: file not found"),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(message)
    check_writable(args.out, "--out")  # before minutes of calibration


def run_obs(args):
    """Loads, calibrates, prunes and saves; prints a one-line summary."""
    from speechbrain_sparse.pruning.calibration import load_calibration_batches
    from speechbrain_sparse.pruning.mixed_sparsity import MixedSparsity
    from speechbrain_sparse.pruning.oneshot import OneShotPruner
    from speechbrain_sparse.pruning.pretrained import load_pretrained

    _check_arguments(args)
    try:
        pretrained = load_pretrained(args.model, args.device, args.nhead, args.arch)
    except UserInputError as error:
        raise UserError(f"--model: {error}") from None
    try:  # a NaN model would only give a NaN pruned model, after calibration
        check_finite(pretrained.model.state_dict(), f"--model {args.model}")
    except NonFiniteTensorError as error:
        raise UserError(str(error)) from None
    tokens = {}
    if pretrained.tokenizer is not None:
        tokens = {"tokenizer": pretrained.tokenizer,
                  "bos_index": pretrained.hparams["bos_index"],
                  "eos_index": pretrained.hparams["eos_index"]}
    try:
        batches = load_calibration_batches(
            args.calibration, args.num_calibration, args.batch_size, args.seed,
            max_duration=args.max_duration, **tokens)
    except UserInputError as error:
        raise UserError(f"--calibration: {error}") from None
    mixed = None
    if args.mixed_sparsity:
        mixed = MixedSparsity(alpha=args.alpha, num_probes=args.num_probes)
    pruner = OneShotPruner(saliency=args.saliency, block_size=args.block_size,
                           damp=args.damp, mixed_sparsity=mixed,
                           hessian_dtype=args.hessian_dtype)
    start = time.perf_counter()
    mask = pruner.prune(pretrained.model, pretrained.family, batches, args.sparsity)
    seconds = time.perf_counter() - start
    info = {
        "method": "obs", "source": str(Path(args.model).resolve()),
        "kind": pretrained.kind, "calibration": str(Path(args.calibration).resolve()),
        "utterances": sum(batch.batchsize for batch in batches), "seconds": seconds,
        "options": {k: v for k, v in vars(args).items()
                    if k not in ("run", "run_method")},
        "achieved_sparsity": 1.0 - mask.density(),
        "report": mask.options["report"],
    }
    out = pretrained.save(args.out, mask, info=info, sparse_export=args.sparse_export)
    print(f"wrote {out}: {len(mask)} matrices pruned to sparsity "
          f"{1.0 - mask.density():.4f} ({mask.numel() - mask.num_selected()} of "
          f"{mask.numel()} weights zero) in {seconds:.1f} s")
    return 0
