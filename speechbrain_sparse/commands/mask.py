"""``sb-sparse mask``: compute a sparse fine-tuning mask from checkpoint files.

Strategies (names as in the paper): ``diff`` -- largest ``|theta_t - theta_s|``
(needs ``--finetuned``), ``topk`` -- largest ``|theta_s|``, ``random`` -- a seeded
draw. A checkpoint is a ``torch.save(state_dict)`` file or a SpeechBrain
checkpoint folder (its ``model.ckpt``). Fisher masks need data and the recipe's
Brain, so the recipe computes them (``train.py hparams/fisher_*.yaml``).

Example
-------
>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> add_arguments(parser)
>>> args = parser.parse_args(["--strategy", "topk", "--pretrained", "a.pt",
...                           "--density", "0.1", "--out", "m.pt"])
>>> args.strategy, args.density, args.per_tensor
('topk', 0.1, False)
"""

from speechbrain_sparse.commands import UserError
from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.fileio import check_writable
from speechbrain_sparse.masks import Coverage
from speechbrain_sparse.scores import load_state_dict
from speechbrain_sparse.selection import (
    DiffSelection,
    MagnitudeSelection,
    RandomSelection,
)
from speechbrain_sparse.topk import check_density

NAME = "mask"
HELP = "compute a diff / topk / random parameter mask from checkpoints"
STRATEGIES = ("diff", "topk", "random", "fisher")


def add_arguments(parser):
    """Adds the ``mask`` options to ``parser``."""
    parser.add_argument(
        "--strategy",
        required=True,
        choices=STRATEGIES,
        help="how to score the parameters",
    )
    parser.add_argument(
        "--pretrained",
        required=True,
        help="theta_s: state-dict file or SpeechBrain ckpt folder",
    )
    parser.add_argument("--finetuned", help="theta_t for --strategy diff (same forms)")
    parser.add_argument(
        "--density",
        required=True,
        type=float,
        help="fraction of covered entries to select, in (0, 1]",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for random")
    parser.add_argument(
        "--include",
        nargs="+",
        default=None,
        metavar="PAT",
        help="fnmatch patterns of covered parameters (default: all)",
    )
    parser.add_argument(
        "--exclude",
        nargs="+",
        default=None,
        metavar="PAT",
        help="fnmatch patterns of parameters to leave out",
    )
    parser.add_argument(
        "--per-tensor",
        action="store_true",
        help="select the density within each tensor, not globally",
    )
    parser.add_argument(
        "--checkpoint-name",
        default="model.ckpt",
        help="file read from a checkpoint folder (default model.ckpt)",
    )
    parser.add_argument("--out", required=True, help="mask file to write")


def build_strategy(args):
    """Returns the selection strategy the arguments ask for."""
    density = check_density(args.density)
    coverage = Coverage(args.include, args.exclude)
    common = {"per_tensor": args.per_tensor, "coverage": coverage}
    if args.strategy == "fisher":
        raise UserError(
            "fisher masks are computed by the recipe (train.py "
            "hparams/fisher_*.yaml): they need target data and the recipe's Brain"
        )
    if args.strategy == "diff":
        if not args.finetuned:
            raise UserError("--strategy diff needs --finetuned")
        finetuned = load_state_dict(args.finetuned, args.checkpoint_name)
        strategy = DiffSelection(density, finetuned_state=finetuned, **common)
        strategy.finetuned_checkpoint = args.finetuned  # recorded in the file
        return strategy
    if args.strategy == "topk":
        return MagnitudeSelection(density, **common)
    return RandomSelection(density, seed=args.seed, **common)


def run(args):
    """Writes the mask to ``--out`` and prints a one-line summary."""
    check_writable(args.out, "--out")
    strategy = build_strategy(args)
    pretrained = load_state_dict(args.pretrained, args.checkpoint_name)
    try:
        mask = strategy.select(pretrained_state=pretrained)
    except UserInputError as error:  # e.g. checkpoints of two different models
        files = [args.pretrained] + ([args.finetuned] if args.finetuned else [])
        raise UserError(f"{' and '.join(files)}: {error}") from None
    mask.options["pretrained_checkpoint"] = str(args.pretrained)
    mask.save(args.out)
    print(
        f"wrote {args.out}: {mask.method}, {mask.num_selected()} of {mask.numel()} "
        f"entries in {len(mask)} tensors, density {mask.density():.6f} "
        f"(target {mask.target_density:.6f})"
    )
    return 0
