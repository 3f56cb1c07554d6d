"""The run matrix of the Dynamic ASR Pathways paper's Tables 1-3.

Each :class:`~speechbrain_sparse.reproduction.plan.Run` is one
``train.py hparams/<stage>_<size>.yaml`` of the pathways recipe, run by
:class:`~speechbrain_sparse.reproduction.runner.MatrixRunner` into
``<out>/<run name>/``. With ``L`` the languages (``ml_tiny``: en, fr, it, nl)
and ``B`` the bilingual pair of Table 2 (fr, nl):

* R0 ``dense_multi`` (all of ``L``), the model every other run starts from;
* the references ``dense_mono_<l>``, one per language;
* ``lap`` (IMP on multilingual data: the LAP-20/50/70 masks), ``imp_<l>`` and
  ``lth_<l>`` (IMP / LTH on language ``l``: its IMP-x / LTH-x masks);
* ``adaptive_imp_<l>`` and ``adaptive_lth_<l>`` (Table 1, proposed);
* ``pathways_<init><level>_<languages>``: fixed pathways (IMP-70 and LTH-70 on
  ``L``; LTH-70 and LAP-70 on ``B``);
* ``dynamic_<init><level>_<languages>``: dynamic pathways (from LTH and LAP at
  every level on ``B``; from LTH-50 on ``L``).

A run of the same stage, init and languages appears once (with ``L == B``, as in
the ``micro`` preset's fr + nl, Tables 2 and 3 share their runs). Sparsity is
70 % everywhere.

Example
-------
>>> runs = pathway_runs(["fr", "nl"], ["fr", "nl"])
>>> len(runs), runs[0].name, runs[-1].name
(21, 'dense_multi', 'dynamic_lap20_fr+nl')
>>> [r.name for r in runs if r.name.startswith("pathways")]
['pathways_imp70_fr+nl', 'pathways_lth70_fr+nl', 'pathways_lap70_fr+nl']
>>> by_name = {run.name: run for run in runs}
>>> by_name["dynamic_lth50_fr+nl"].needs
('dense_multi', 'lth_fr', 'lth_nl')
>>> by_name["dynamic_lth50_fr+nl"].overrides["init_level"]
0.5
"""

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.reproduction.plan import Run

LEVELS = (0.2, 0.5, 0.7)
TARGET = 0.7
DENSE = "dense_multi"


def level_label(level):
    """``0.7`` -> ``'70'``.

    Example
    -------
    >>> level_label(0.7), level_label(0.2)
    ('70', '20')
    """
    return f"{round(level * 100):d}"


def languages_label(languages):
    """``['fr', 'nl']`` -> ``'fr+nl'`` (part of a run name)."""
    return "+".join(languages)


def pathway_run_name(kind, init, level, languages):
    """``pathways_lth70_fr+nl``; ``kind`` is ``pathways`` or ``dynamic``."""
    return f"{kind}_{init}{level_label(level)}_{languages_label(languages)}"


def init_runs(init, languages):
    """The runs whose masks initialise pathways of ``init`` on ``languages``."""
    return ("lap",) if init == "lap" else tuple(f"{init}_{lang}" for lang in languages)


def pathway_runs(languages, bilingual, size="tiny", out_of=lambda name: name,
                 levels=LEVELS):
    """Lists the runs of Tables 1-3 in dependency order (see the module docstring).

    Arguments
    ---------
    languages : list of str
        The languages of the corpus (Tables 1 and 3).
    bilingual : list of str
        Table 2's languages, a subset of ``languages``.
    size : str
        The YAMLs' size (``<stage>_<size>.yaml``).
    out_of : callable
        Run name -> its output folder (a string), used in the overrides.
    levels : sequence of float
        The IMP / LTH / LAP levels (the last is the target, 0.7); Table 2's
        dynamic pathways start from each.

    Returns
    -------
    list of Run
    """
    languages, bilingual = list(languages), list(bilingual)
    unknown = sorted(set(bilingual) - set(languages))
    if unknown or not bilingual:
        raise UserInputError(f"bilingual languages {bilingual} must be some of "
                             f"{languages}")
    levels = [float(level) for level in levels]
    if levels[-1] != TARGET:
        raise UserInputError(f"the last level must be the target {TARGET}, not "
                             f"{levels[-1]}")
    model = f"{out_of(DENSE)}/model"
    runs = {}

    def add(name, stage, overrides, needs=(DENSE,)):
        if name not in runs:
            runs[name] = Run(name, f"{stage}_{size}.yaml", overrides, tuple(needs),
                             size, None, stage)

    add(DENSE, "dense_multi", {"languages": languages}, needs=())
    for lang in languages:
        add(f"dense_mono_{lang}", "dense_mono", {"dialect": lang}, needs=())
    masked = {"pretrained_dir": model}
    add("lap", "lap", {**masked, "languages": languages, "prune_levels": levels})
    for method in ("imp", "lth"):
        for lang in languages:
            add(f"{method}_{lang}", method, {**masked, "dialect": lang,
                                             "prune_levels": levels})
    for rewind, method in ((False, "imp"), (True, "lth")):
        for lang in languages:
            add(f"adaptive_{method}_{lang}", "adaptive",
                {**masked, "dialect": lang, "rewind": rewind})

    def pathway(kind, init, level, langs):
        stage = "pathways" if kind == "pathways" else "dynamic_pathways"
        folder = out_of("lap") if init == "lap" else out_of(f"{init}_{{language}}")
        add(pathway_run_name(kind, init, level, langs), stage,
            {**masked, "languages": langs, "pathway_init": init, "init_level": level,
             "init_folder": folder}, needs=(DENSE, *init_runs(init, langs)))

    for init in ("imp", "lth"):                       # Table 1 (3)
        pathway("pathways", init, TARGET, languages)
    for init in ("lth", "lap"):                       # Table 2
        pathway("pathways", init, TARGET, bilingual)
    pathway("dynamic", "lth", 0.5 if 0.5 in levels else levels[0], languages)  # Table 3
    for init in ("lth", "lap"):
        for level in reversed(levels):
            pathway("dynamic", init, level, bilingual)
    return list(runs.values())
