"""Language pathways inside the ASR recipe: fixed and dynamic, monolingual batches.

The ``pathways`` and ``dynamic_pathways`` stages of
:mod:`speechbrain_sparse.asr.pathways_experiment`. Every language ``z`` of the
stage has a mask ``m_z`` (:class:`~speechbrain_sparse.pruning.pathways.PathwayMasks`,
from the ``init_masks`` files: each language's IMP / LTH run, or the one LAP
mask for all). Training draws monolingual batches, the languages in turn
(:class:`~speechbrain_sparse.data.language_sampler.LanguageBatchSampler`); a
batch of language ``z`` runs with ``θ ⊙ a_z``, ``a_z = m_z`` (fixed) or
``m_z ∪ free_z`` (dynamic; ``free_z`` = entries of no other pathway), and
updates only ``a_z``: the other languages' entries and AdamW moments stay
bit-identical (:class:`~speechbrain_sparse.pathway_training.PathwayTrainingMixin`).

Dynamic pathways start from the init masks as they are and re-rank every
``rerank_every`` steps: each language keeps the
``N - round(s·N)`` largest ``|θ|`` of its ``a_z`` (``s`` from the
``schedule``, stepping up to the target every ``prune_interval`` steps), then
the entries of no pathway are set to zero (one kept by another language is
left alone). From the schedule's final step the masks are fixed. Evaluation
uses ``θ ⊙ m_z`` with the test set's own language (oracle language ID).

What this module adds to :mod:`speechbrain_sparse.pruning.pathways` and the
mixin is the recipe's side: the init masks, the re-rank loop, checkpoints.
"""

import logging
from pathlib import Path

import speechbrain as sb
import torch
from speechbrain.utils.checkpoints import (
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)

from speechbrain_sparse.asr.options import ConfigError
from speechbrain_sparse.asr.pathways_stages import StageBrain
from speechbrain_sparse.data.language_sampler import LanguageBatchSampler
from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.masks import ParameterMask
from speechbrain_sparse.pathway_training import PathwayTrainingMixin
from speechbrain_sparse.pruning.global_magnitude import (
    TRANSFORMER_ASR_COVERAGE,
    magnitude_mask,
    mask_from_state,
    mask_state,
)
from speechbrain_sparse.pruning.pathways import PathwayMasks, lap_init

logger = logging.getLogger(__name__)


def load_pathways(hparams, stage, languages, model):
    """The stage's initial :class:`PathwayMasks` from its ``init_masks`` files."""
    files = hparams["init_masks"]
    missing = sorted(set(languages) - set(files))
    if missing:
        raise ConfigError(f"init_masks: no mask file for language {missing[0]!r}")
    for language in languages:
        if not Path(files[language]).is_file():
            raise UserInputError(
                f"init_masks: {files[language]} (language {language}) not found: run "
                f"the {hparams['pathway_init']} stage first or set init_folder")
    if hparams["pathway_init"] == "lap":
        pathways = lap_init(ParameterMask.load(files[languages[0]], model=model),
                            languages)
    else:
        pathways = PathwayMasks({language: ParameterMask.load(files[language],
                                                              model=model)
                                 for language in languages})
    pathways.check_data_languages(languages)
    return pathways


@register_checkpoint_hooks
class PathwayProgram:
    """The masks of a pathway stage and what happens to them after each step.

    Arguments
    ---------
    pathways : PathwayMasks
        The initial masks.
    model : torch.nn.Module
        The recipe's ``model``.
    output_folder : str or Path
        Where the final masks go (``<output_folder>/pathways/``).
    dynamic : bool
        Dynamic pathways (free zone, re-ranks) or fixed ones.
    schedule : Schedule, optional
        The level per step (dynamic).
    rerank_every : int, optional
        ``n``: steps between re-ranks (dynamic).
    """

    def __init__(self, pathways, model, output_folder, dynamic=False, schedule=None,
                 rerank_every=None):
        self.pathways = pathways
        self.model = model
        self.output_folder = Path(output_folder)
        self.dynamic = dynamic
        self.schedule = schedule
        self.rerank_every = rerank_every
        self.hard = not dynamic
        self.level = None

    @property
    def final_step(self):
        """The step from which the masks are fixed."""
        return self.schedule.final_step if self.dynamic else 0

    def start(self, brain):
        """Zeroes the entries of no pathway; the init masks train as they are
        until the first re-rank (step ``rerank_every``)."""
        if self.dynamic and self.level is None:
            self.level = self.schedule.level(0)
            self._check_init_level()
        self.pathways.zero_unused(self.model)
        self._attach(brain)

    def _check_init_level(self):
        """The init masks must be at the schedule's first level (``init_level``)."""
        for language, mask in self.pathways.items():
            expected = mask.numel() - round(self.level * mask.numel())
            if mask.num_selected() != expected:
                raise ConfigError(
                    f"init_masks: the mask of {language} keeps {mask.num_selected()} "
                    f"of {mask.numel()} entries, not the {expected} of init_level "
                    f"{self.level}")

    def _attach(self, brain):
        brain.attach_pathways(self.pathways, dynamic=self.dynamic and not self.hard,
                              module=self.model)

    def after_step(self, brain):
        """Dynamic: re-ranks when due at ``brain.optimizer_step``."""
        step = brain.optimizer_step
        if self.hard or (step % self.rerank_every and
                         self.schedule.level(step) == self.level):
            return
        self._rerank(step)
        self._attach(brain)

    @torch.no_grad()
    def _rerank(self, step):
        level = self.schedule.level(step)
        masks = {}
        for language in self.pathways.languages:
            candidates = self.pathways.active(language, dynamic=True)
            masks[language] = magnitude_mask(
                self.model, level, TRANSFORMER_ASR_COVERAGE, candidates=candidates,
                method="dynamic_pathway", options={"language": language, "step": step})
        self.pathways = PathwayMasks(masks)
        self.pathways.zero_unused(self.model)
        self.level, self.hard = level, step >= self.schedule.final_step
        if sb.utils.distributed.if_main_process():
            for language, mask in masks.items():
                mask.save(self.output_folder / "masks" / language / f"s{level:g}.pt")
        logger.info("pathways re-ranked at step %d: sparsity %.4f%s", step, level,
                    " (final)" if self.hard else "")

    def language_masks(self, languages):
        """Language -> its final mask."""
        return {language: self.pathways[language] for language in languages}

    def info(self):
        """The final masks' statistics (overlap, exclusive entries, Jaccard)."""
        overlap = self.pathways.overlap()
        return {"method": "dynamic_pathways" if self.dynamic else "pathways",
                "sparsity": {x: 1.0 - d for x, d in overlap["density"].items()},
                "overlap": overlap,
                "schedule": self.schedule.describe() if self.dynamic else None}

    def save_final(self, folder):
        """Writes the final masks as a :class:`PathwayMasks` folder."""
        self.pathways.save(folder)

    def recoverable(self):
        """The object the checkpointer saves (this one)."""
        return self

    @mark_as_saver
    def _save(self, path):
        torch.save({"level": self.level, "hard": self.hard,
                    "masks": {x: mask_state(m) for x, m in self.pathways.items()}},
                   path)

    @mark_as_loader
    def _recover(self, path, end_of_epoch):
        del end_of_epoch
        state = torch.load(path, map_location="cpu", weights_only=True)
        self.level, self.hard = state["level"], state["hard"]
        self.pathways = PathwayMasks({x: mask_from_state(m)
                                      for x, m in state["masks"].items()})

    def loader_options(self, hparams, train_set, valid_set):
        """Monolingual batches (``max_batch_duration`` seconds of audio at most)
        for training and validation, languages in ``language_sampling`` order."""
        def batches(dataset, shuffle):
            with dataset.output_keys_as(["language", "duration"]):
                items = [(item["language"], float(item["duration"]))
                         for item in dataset]
            return LanguageBatchSampler(
                [language for language, _ in items],
                max_batch_length=hparams["max_batch_duration"],
                durations=[duration for _, duration in items], seed=hparams["seed"],
                order=hparams["language_sampling"], shuffle=shuffle)

        workers = hparams["train_dataloader_opts"].get("num_workers", 0)
        return ({"batch_sampler": batches(train_set, True), "num_workers": workers},
                {"batch_sampler": batches(valid_set, False), "num_workers": workers})


class PathwayBrain(PathwayTrainingMixin, StageBrain):
    """:class:`StageBrain` whose batches run on their language's pathway
    (:class:`~speechbrain_sparse.pathway_training.PathwayTrainingMixin`)."""


PathwayProgram.brain_class = PathwayBrain


def pathway_program(hparams, stage, languages):
    """The :class:`PathwayProgram` of a ``pathways`` / ``dynamic_pathways`` YAML."""
    model = hparams["model"]
    pathways = load_pathways(hparams, stage, languages, model)
    dynamic = stage == "dynamic_pathways"
    return PathwayProgram(pathways, model, hparams["output_folder"],
                          dynamic=dynamic,
                          schedule=hparams["schedule"] if dynamic else None,
                          rerank_every=hparams["rerank_every"] if dynamic else None)
