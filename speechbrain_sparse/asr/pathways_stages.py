"""The masked stages of the pathways experiments: masks that change while training.

Every masked stage starts from the dense multilingual model (``pretrained_dir``)
and trains for ``train_steps`` optimizer steps, a *mask program* acting after
each step (:class:`StageBrain`):

* ``lap``, ``imp``, ``lth``: the YAML's ``pruner`` is an
  :class:`~speechbrain_sparse.pruning.iterative.IterativeMagnitudePruning`
  (LTH: with a rewind to the dense weights); each round's mask is enforced in
  ``prune`` mode (pruned entries exactly zero) until the next round;
* ``adaptive``: the ``pruner`` is an
  :class:`~speechbrain_sparse.pruning.adaptive.AdaptiveMasker`: soft (pruned
  entries zeroed at each re-rank, trainable in between) until its final mask,
  which is enforced in ``prune`` mode;
* ``pathways`` / ``dynamic_pathways``: one mask per language
  (:mod:`speechbrain_sparse.asr.pathway_program`).

Each new mask of a level is written to ``<output_folder>/masks/s<level>.pt``
(the last one of that level), so the LTH-x / LAP-x inits of the pathway stages
are files of these runs. The stage is tested on the **last** checkpoint (the
final masks; an earlier, denser one may have a better validation accuracy),
exported to ``model_export_dir`` with ``pathways_info.json`` next to it.
"""

import json
import logging
import os
from pathlib import Path

import speechbrain as sb

from speechbrain_sparse.asr.data import (
    build_datasets,
    check_manifests,
    train_loader_options,
)
from speechbrain_sparse.asr.experiment import prepare_tokenizer
from speechbrain_sparse.asr.model_folder import export_model_folder
from speechbrain_sparse.asr.options import ConfigError
from speechbrain_sparse.asr.sparse_finetuning import MaskedTransformerASRBrain
from speechbrain_sparse.fileio import write_text_atomic

logger = logging.getLogger(__name__)


def mask_file(folder, level):
    """``<folder>/masks/s<level>.pt``.

    Example
    -------
    >>> str(mask_file("out", 0.5))
    'out/masks/s0.5.pt'
    """
    return Path(folder) / "masks" / f"s{level:g}.pt"


def rebind_mask(brain, mask, model, mode="prune"):
    """Enforces ``mask`` from now on, keeping the optimizers' tensors.

    Uses ``MaskEnforcer.rebind`` where the enforcer has it; otherwise attaches a
    new enforcer (with the same optimizers) in place of the old one.
    """
    enforcer = brain.mask_enforcer
    if enforcer is not None and enforcer.mode == mode and hasattr(enforcer, "rebind"):
        enforcer.rebind(mask)
        return
    brain.attach_mask(mask, mode=mode, module=model)
    optimizers = brain._optimizers().values()
    if optimizers:
        brain.mask_enforcer.prepare_optimizers(optimizers)


class PruningProgram:
    """Runs an IMP / LTH / adaptive ``pruner`` after every optimizer step.

    Arguments
    ---------
    pruner : IterativeMagnitudePruning or AdaptiveMasker
        ``on_step(model, step)`` returns a new mask or None; an adaptive masker
        says with ``hard`` when its mask is final.
    model : torch.nn.Module
        The pruned model (the recipe's ``model``).
    output_folder : str or Path
        Where ``masks/`` goes.
    """

    def __init__(self, pruner, model, output_folder):
        self.pruner = pruner
        self.model = model
        self.output_folder = Path(output_folder)

    @property
    def final_step(self):
        """The step from which the mask no longer changes its level."""
        return self.pruner.schedule.final_step

    def start(self, brain):
        """The first mask (step 0), or the checkpointed one on resume."""
        mask = self.pruner.mask
        if mask is None:
            mask = self.pruner.on_step(self.model, brain.optimizer_step)
            self._save(mask)
        self._enforce(brain, mask)

    def after_step(self, brain):
        """Lets the pruner act at ``brain.optimizer_step``."""
        mask = self.pruner.on_step(self.model, brain.optimizer_step)
        if mask is not None:
            self._save(mask)
            self._enforce(brain, mask)

    def _enforce(self, brain, mask):
        if getattr(self.pruner, "hard", True):  # IMP: every round's mask
            rebind_mask(brain, mask, self.model)

    def _save(self, mask):
        if sb.utils.distributed.if_main_process():
            mask.save(mask_file(self.output_folder, self.pruner.level))

    def language_masks(self, languages):
        """Language -> the final mask (one mask for all the stage's languages)."""
        return dict.fromkeys(languages, self.pruner.mask)

    def info(self):
        """What the stage reports about its masks."""
        mask = self.pruner.mask
        return {"method": mask.method, "sparsity": 1.0 - mask.density(),
                "kept": mask.num_selected(), "prunable": mask.numel(),
                "schedule": self.pruner.schedule.describe()}


class StageBrain(MaskedTransformerASRBrain):
    """The Transformer ASR Brain with a mask program acting after every step.

    Set ``program`` (:class:`PruningProgram` or a pathway program) before
    ``fit``. Tested on the last checkpoint (``checkpoint_key``).
    """

    program = None
    checkpoint_key = {"max_key": "epoch"}

    def on_fit_start(self):
        """SpeechBrain's start (optimizers, resume), then the first masks."""
        super().on_fit_start()
        self.program.start(self)

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        """The learning-rate schedule, then the program at the new step."""
        super().on_fit_batch_end(batch, outputs, loss, should_step)
        if should_step:
            self.program.after_step(self)


def make_program(hparams, stage, languages):
    """The stage's mask program from its YAML (``pruner`` or pathway keys)."""
    if stage in ("pathways", "dynamic_pathways"):
        from speechbrain_sparse.asr.pathway_program import pathway_program

        return pathway_program(hparams, stage, languages)
    pruner = hparams["pruner"]
    if not callable(getattr(pruner, "on_step", None)):
        raise ConfigError(f"pruner must be an IterativeMagnitudePruning or an "
                          f"AdaptiveMasker, not {pruner!r}")
    return PruningProgram(pruner, hparams["model"], hparams["output_folder"])


def check_train_steps(hparams, program):
    """``train_steps`` as an int; ConfigError unless the schedule ends before it."""
    steps = hparams["train_steps"]
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"train_steps must be a positive integer, not {steps!r}")
    if steps <= program.final_step:
        raise ConfigError(f"train_steps ({steps}) must exceed the schedule's last "
                          f"step up ({program.final_step}): the target would not "
                          "be trained at")
    return steps


def run_masked_stage(hparams, run_opts, stage, languages):
    """Trains a masked stage, tests it per language and exports it.

    Arguments
    ---------
    hparams : dict
        The checked stage hparams, with the merged manifests written.
    run_opts : dict
        SpeechBrain run options.
    stage : str
        ``lap``, ``imp``, ``lth``, ``adaptive``, ``pathways`` or
        ``dynamic_pathways``.
    languages : list of str
        The stage's languages.

    Returns
    -------
    dict
        Test-set name -> stats (also ``results.json``).
    """
    check_manifests(hparams)
    tokenizer, tokenizer_file = prepare_tokenizer(hparams)  # loads the dense model
    train_set, valid_set, test_sets = build_datasets(
        hparams, tokenizer, hparams["compute_features"])
    program = make_program(hparams, stage, languages)
    steps = check_train_steps(hparams, program)
    if stage in ("pathways", "dynamic_pathways"):  # batches tell their language
        for dataset in (train_set, valid_set, *test_sets.values()):
            dataset.set_output_keys([*dataset.pipeline.output_mapping, "language"])
    brain_class = getattr(program, "brain_class", StageBrain)
    brain = brain_class(modules=hparams["modules"], opt_class=hparams["opt_class"],
                       hparams=hparams, run_opts=run_opts,
                       checkpointer=hparams["checkpointer"])
    brain.tokenizer = tokenizer
    brain.program = program
    if hasattr(program, "recoverable"):
        brain.checkpointer.add_recoverable("masks", program.recoverable())
    else:
        brain.checkpointer.add_recoverable("pruner", program.pruner)
    brain.optimizer_step_limit = steps
    if hasattr(program, "loader_options"):
        train_options, valid_options = program.loader_options(
            hparams, train_set, valid_set)
    else:
        train_options = train_loader_options(hparams, train_set)
        valid_options = hparams["valid_dataloader_opts"]
    brain.fit(brain.hparams.epoch_counter, train_set, valid_set,
              train_loader_kwargs=train_options, valid_loader_kwargs=valid_options)
    if hasattr(program, "evaluate_sets"):
        results = program.evaluate_sets(brain, test_sets, hparams)
    else:
        results = brain.evaluate_sets(
            test_sets, hparams["test_dataloader_opts"],
            results_file=os.path.join(hparams["output_folder"], "results.json"))
    for name, stats in results.items():
        logger.info("%s: WER %.2f  CER %.2f", name, stats["WER"], stats["CER"])
    if sb.utils.distributed.if_main_process():
        _export(brain, hparams, program, stage, languages, steps, results,
                tokenizer_file)
    return results


def _export(brain, hparams, program, stage, languages, steps, results,
            tokenizer_file):
    """The last checkpoint as a model folder, its masks and ``pathways_info.json``."""
    info = {"stage": stage, "size": hparams["size"], "languages": languages,
            "train_steps": steps, "optimizer_steps": brain.optimizer_step,
            **program.info()}
    last = brain.checkpointer.find_checkpoint(max_key="epoch")
    if last is not None:
        folder = export_model_folder(
            last, tokenizer_file, hparams["model_export_dir"],
            info={**info, "dialect": hparams.get("dialect"), "results": results},
            hparams=hparams)
        for language, mask in program.language_masks(languages).items():
            mask.save(Path(folder) / f"mask_{language}.pt")
    if hasattr(program, "save_final"):
        program.save_final(Path(hparams["output_folder"]) / "pathways")
    write_text_atomic(Path(hparams["output_folder"]) / "pathways_info.json",
                      json.dumps(info, indent=2))
