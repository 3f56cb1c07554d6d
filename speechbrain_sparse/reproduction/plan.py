"""The experiment matrix of the sparse fine-tuning paper as a list of runs.

One :class:`Run` is one ``python train.py hparams/<method>_<size>.yaml ...`` of a
recipe folder, with its output folder and the runs it needs first: pretraining
on the source dialect, then per target dialect vanilla fine-tuning (whose
weights ``diff`` needs), the sparse methods of Tables II-IV and the trainable
fractions of Fig. 3. :func:`build_matrix` lists them in dependency order.

With ``seeds`` > 1, the methods of ``seed_methods`` (vanilla and diff: the rows
the main claim rests on) are trained again with the seeds 2..N, as runs
``<size>/<target>/<label>_s<k>`` that set the YAML's ``seed`` to ``k`` (seed 1
is the YAML's own seed: the runs without the suffix). A diff or combined run
of seed ``k`` takes its mask from the vanilla run of seed ``k``. Fig. 3's
sweep is trained with seed 1 only.

Example
-------
>>> runs = build_matrix(["tiny"], "en-us", ["en-029"], methods=["sweep"],
...                     fractions=[0.1, 0.2, 1.0])
>>> [run.name for run in runs]
['tiny/pretrain', 'tiny/en-029/vanilla', 'tiny/en-029/diff', 'tiny/en-029/diff_d0.1']
>>> runs[2].needs
('tiny/pretrain', 'tiny/en-029/vanilla')
>>> runs = build_matrix(["tiny"], "en-us", ["en-029"], methods=["diff"], seeds=2)
>>> for run in runs[3:]:
...     print(run.name, run.needs[-1], run.overrides["seed"])
tiny/en-029/vanilla_s2 tiny/pretrain 2
tiny/en-029/diff_s2 tiny/en-029/vanilla_s2 2
"""

import re
from dataclasses import dataclass, field

from speechbrain_sparse.errors import UserInputError

# Table IV's combinations: (YAML, first diff density, second method, its density).
COMBINATIONS = {
    "union_diff_fisher": ("union", 0.2, "fisher", 0.2),
    "intersection_diff_fisher": ("intersection", 0.2, "fisher", 0.2),
    "union_diff30_topk10": ("union", 0.3, "topk", 0.1),
    "intersection_diff30_topk10": ("intersection", 0.3, "topk", 0.1),
}
SINGLE_METHODS = ("vanilla", "diff", "fisher", "topk", "random", "adapter")
METHODS = SINGLE_METHODS + tuple(COMBINATIONS) + ("sweep",)
FIG3_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
DEFAULT_DENSITY = 0.2
SEED_METHODS = ("vanilla", "diff")  # retrained with other seeds by default
SEEDABLE = SINGLE_METHODS + tuple(COMBINATIONS)


@dataclass(frozen=True)
class Run:
    """One training run of the matrix.

    Arguments
    ---------
    name : str
        ``<size>/pretrain`` or ``<size>/<target>/<label>``; also its folder.
    hparams : str
        YAML file name inside the recipe's ``hparams/``.
    overrides : dict
        Top-level YAML keys set on the command line (``--key=value``).
    needs : tuple
        Names of the runs that must finish first.
    size, target, method : str
        What the tables index it by (``target`` is None for pretraining).
    density : float or None
        Trainable fraction of a masked method (``None`` when not one number).
    seed : int
        Which seed run of its method it is (1: the YAML's own seed).
    """

    name: str
    hparams: str
    overrides: dict = field(default_factory=dict)
    needs: tuple = ()
    size: str = ""
    target: str = None
    method: str = ""
    density: float = None
    seed: int = 1


def density_label(density):
    """``0.1`` -> ``'d0.1'`` (run names of the Fig. 3 sweep)."""
    return f"d{density:g}"


def seed_run_name(name, seed):
    """The run of seed ``seed`` of the run ``name`` (seed 1 is ``name`` itself).

    Example
    -------
    >>> seed_run_name("tiny/a/diff", 1), seed_run_name("tiny/a/diff", 3)
    ('tiny/a/diff', 'tiny/a/diff_s3')
    """
    return name if seed == 1 else f"{name}_s{seed}"


def seed_replicates(name, names):
    """The seed runs of ``name`` among ``names``, by seed (``name`` first).

    Example
    -------
    >>> seed_replicates("t/a/diff", ["t/a/diff_s3", "t/a/diff", "t/a/diff_d0.1",
    ...                              "t/a/diff_s2", "t/a/vanilla_s2"])
    ['t/a/diff', 't/a/diff_s2', 't/a/diff_s3']
    """
    pattern = re.compile(re.escape(name) + r"_s(\d+)")
    seeds = {1: name} if name in names else {}
    for other in names:
        match = pattern.fullmatch(other)
        if match:
            seeds[int(match.group(1))] = other
    return [seeds[seed] for seed in sorted(seeds)]


def build_matrix(sizes, source, targets, methods=METHODS, fractions=FIG3_FRACTIONS,
                 density=DEFAULT_DENSITY, out_of=lambda name: name, seeds=1,
                 seed_methods=SEED_METHODS):
    """Lists the runs Tables II-IV and Fig. 3 need, in dependency order.

    Arguments
    ---------
    sizes : list of str
        Model sizes (``tiny``, ``small``, ``large``); YAMLs ``<method>_<size>.yaml``.
    source : str
        The high-resource dialect pretrained on.
    targets : list of str
        Low-resource dialects fine-tuned on.
    methods : list of str
        Subset of :data:`METHODS` (``sweep`` = the Fig. 3 fractions of diff; it
        implies ``diff``). ``diff`` and the combinations imply ``vanilla``
        (theta_t comes from it).
    fractions : list of float
        Fig. 3 trainable fractions; ``1.0`` is the vanilla run and ``density``
        the diff run, so neither is trained twice.
    density : float
        Trainable fraction of diff / fisher / topk / random.
    out_of : callable
        Run name -> output folder (a string), used in the overrides.
    seeds : int
        Seed runs of each method of ``seed_methods`` (see the module docstring).
    seed_methods : list of str
        Methods trained with every seed, among those of ``methods`` (diff and
        the combinations imply vanilla: their masks need its seed runs).

    Returns
    -------
    list of Run
    """
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        raise UserInputError(f"unknown methods {unknown}; valid: {', '.join(METHODS)}")
    unknown = sorted(set(seed_methods) - set(SEEDABLE))
    if unknown:
        raise UserInputError(f"methods {unknown} cannot be run with several seeds; "
                             f"valid: {', '.join(SEEDABLE)}")
    if int(seeds) < 1:
        raise UserInputError(f"seeds must be at least 1, not {seeds}")
    wanted = _with_needs(methods)
    seeded = _with_needs(wanted & set(seed_methods))
    runs = []
    for size in sizes:
        pretrain = f"{size}/pretrain"
        runs.append(Run(pretrain, f"pretrain_{size}.yaml", size=size, method="pretrain",
                        overrides={"dialect": source}))
        model = f"{out_of(pretrain)}/model"
        for target in targets:
            runs.extend(_target_runs(size, target, wanted, fractions, density, pretrain,
                                     model, out_of))
            for seed in range(2, int(seeds) + 1):
                runs.extend(_target_runs(size, target, seeded, fractions, density,
                                         pretrain, model, out_of, seed))
    return runs


def _with_needs(methods):
    """``methods`` plus what they imply: the sweep needs diff, diff vanilla."""
    wanted = set(methods)
    if "sweep" in wanted:
        wanted.add("diff")
    if wanted & ({"diff"} | set(COMBINATIONS)):
        wanted.add("vanilla")
    return wanted


def _target_runs(size, target, wanted, fractions, density, pretrain, model, out_of,
                 seed=1):
    """The runs of one size, target dialect and seed (the sweep: seed 1 only)."""
    prefix = f"{size}/{target}"
    vanilla = seed_run_name(f"{prefix}/vanilla", seed)
    base = {"dialect": target, "pretrained_dir": model}
    if seed != 1:
        base["seed"] = seed
    finetuned = {**base, "finetuned_dir": f"{out_of(vanilla)}/model"}

    def run(label, yaml_method, overrides, needs, method, run_density=None):
        return Run(seed_run_name(f"{prefix}/{label}", seed),
                   f"{yaml_method}_{size}.yaml", overrides, needs, size, target,
                   method, run_density, seed)

    runs = []
    if "vanilla" in wanted:
        runs.append(run("vanilla", "vanilla", base, (pretrain,), "vanilla", 1.0))
    if "diff" in wanted:
        runs.append(run("diff", "diff", {**finetuned, "density": density},
                        (pretrain, vanilla), "diff", density))
    for method in ("fisher", "topk", "random"):
        if method in wanted:
            runs.append(run(method, method, {**base, "density": density}, (pretrain,),
                            method, density))
    if "adapter" in wanted:
        runs.append(run("adapter", "adapter", base, (pretrain,), "adapter"))
    for label, (yaml_method, first, second, second_density) in COMBINATIONS.items():
        if label in wanted:
            overrides = {**finetuned, "diff_density": first, "second_method": second,
                         "second_density": second_density}
            runs.append(run(label, yaml_method, overrides, (pretrain, vanilla), label))
    if "sweep" in wanted and seed == 1:
        for fraction in fractions:
            if fraction in (1.0, density):
                continue  # the vanilla and diff runs
            runs.append(run(f"diff_{density_label(fraction)}", "diff",
                            {**finetuned, "density": fraction}, (pretrain, vanilla),
                            "diff", fraction))
    return runs


def sweep_run_name(size, target, fraction, density=DEFAULT_DENSITY):
    """The run that holds Fig. 3's point at ``fraction`` (vanilla at 1.0).

    Example
    -------
    >>> sweep_run_name("tiny", "en-029", 1.0), sweep_run_name("tiny", "en-029", 0.2)
    ('tiny/en-029/vanilla', 'tiny/en-029/diff')
    """
    if fraction == 1.0:
        return f"{size}/{target}/vanilla"
    if fraction == density:
        return f"{size}/{target}/diff"
    return f"{size}/{target}/diff_{density_label(fraction)}"
