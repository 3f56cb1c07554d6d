"""Language pathways inside the ASR recipe: fixed and dynamic, monolingual batches.

The ``pathways`` and ``dynamic_pathways`` stages of
:mod:`speechbrain_sparse.asr.pathways_experiment`. Every language ``z`` of the
stage has a mask ``m_z`` (:class:`~speechbrain_sparse.pruning.pathways.PathwayMasks`,
from the ``init_masks`` files: each language's IMP / LTH run, or the one LAP
mask for all). Training draws monolingual batches, the languages in turn
(:class:`LanguageBatches`); a batch of language ``z``

* runs its forward and backward pass with ``θ ⊙ a_z``: ``a_z = m_z`` (fixed)
  or ``m_z ∪ free_z`` (dynamic; ``free_z`` = entries of no other pathway),
  the other covered entries held at zero for the pass and restored after;
* updates only ``a_z`` (``MaskedAdamW.set_step_mask``): the entries of the
  other languages, their AdamW moments and weight decay, stay bit-identical.

Dynamic pathways re-rank every ``rerank_every`` steps: each language keeps the
``N - round(s·N)`` largest ``|θ|`` of its ``a_z`` (``s`` from the
``schedule``, stepping up to the target every ``prune_interval`` steps), then
the entries of no pathway are set to zero (one kept by another language is
left alone). From the schedule's final step the masks are fixed. Evaluation
uses ``θ ⊙ m_z`` with the test set's own language (oracle language ID).

What this module adds to :mod:`speechbrain_sparse.pruning.pathways` is the
recipe's side: the Brain hooks, the batch order and the re-rank loop.
"""

import contextlib
import logging
import random
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
from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.masks import ParameterMask
from speechbrain_sparse.parameter_names import canonical_named_parameters
from speechbrain_sparse.pruning.iterative import (
    TRANSFORMER_ASR_COVERAGE,
    magnitude_mask,
    mask_from_state,
    mask_state,
)
from speechbrain_sparse.pruning.pathways import PathwayMasks, lap_init

logger = logging.getLogger(__name__)


class LanguageBatches:
    """Monolingual batches, the languages in turn, a new order every epoch.

    Each language's utterances are shuffled (seeded by ``seed`` and the epoch)
    and cut into batches of ``batch_size``; the batches of the languages are
    then interleaved round-robin (a language that runs out drops out). The
    order depends only on the seed and the epoch, so every process draws the
    same one.

    Example
    -------
    >>> batches = LanguageBatches(["fr", "nl", "fr", "nl", "fr"], 2, seed=0)
    >>> [sorted(batch) for batch in batches]
    [[0, 2], [1, 3], [4]]
    >>> len(batches)
    3
    """

    def __init__(self, languages, batch_size, seed=0, shuffle=True):
        self.by_language = {}
        for index, language in enumerate(languages):
            self.by_language.setdefault(language, []).append(index)
        self.batch_size = int(batch_size)
        self.seed, self.shuffle, self.epoch = int(seed), shuffle, 0

    def set_epoch(self, epoch):
        """The epoch whose order :meth:`__iter__` gives."""
        self.epoch = int(epoch)

    def _order(self):
        rng = random.Random(self.seed * 100003 + self.epoch)
        queues = []
        for language in sorted(self.by_language):
            indices = list(self.by_language[language])
            if self.shuffle:
                rng.shuffle(indices)
            queues.append([indices[i:i + self.batch_size]
                           for i in range(0, len(indices), self.batch_size)])
        order = []
        for turn in range(max(len(queue) for queue in queues)):
            order.extend(queue[turn] for queue in queues if turn < len(queue))
        return order

    def __iter__(self):
        return iter(self._order())

    def __len__(self):
        return sum(-(-len(v) // self.batch_size) for v in self.by_language.values())


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
        self.params = canonical_named_parameters(model)
        self._active = {}

    @property
    def final_step(self):
        """The step from which the masks are fixed."""
        return self.schedule.final_step if self.dynamic else 0

    def active(self, language, train=True):
        """``{parameter: float 0/1 tensor}``: what ``language`` uses now (cached)."""
        key = (language, train and self.dynamic)
        if key not in self._active:
            mask = self.pathways.active(language, dynamic=key[1])
            self._active[key] = {
                self.params[name]: keep.to(self.params[name].device,
                                           self.params[name].dtype)
                for name, keep in mask.items()}
        return self._active[key]

    def start(self, brain):
        """Zeroes the entries of no pathway (dynamic: the first re-rank)."""
        if self.dynamic and self.level is None:
            self._rerank(0)
        elif not self.dynamic:
            self.pathways.zero_unused(self.model)

    def after_step(self, brain):
        """Dynamic: re-ranks when due at ``brain.optimizer_step``."""
        step = brain.optimizer_step
        if self.hard or (step % self.rerank_every and
                         self.schedule.level(step) == self.level):
            return
        self._rerank(step)

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
        self._active = {}
        self.level, self.hard = level, step >= self.schedule.final_step
        if sb.utils.distributed.if_main_process():
            for language, mask in masks.items():
                mask.save(self.output_folder / "masks" / language / f"s{level:g}.pt")
        logger.info("pathways re-ranked at step %d: sparsity %.4f%s", step, level,
                    " (final)" if self.hard else "")

    @contextlib.contextmanager
    def language_pass(self, language, train):
        """Holds the entries ``language`` does not use at zero inside the block."""
        saved = []
        with torch.no_grad():
            for param, keep in self.active(language, train).items():
                saved.append((param, param.detach().clone()))
                param.mul_(keep)
        try:
            yield
        finally:
            with torch.no_grad():
                for param, value in saved:
                    keep = self.active(language, train)[param] > 0
                    torch.where(keep, param, value, out=param)

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
        self._active = {}

    def loader_options(self, hparams, train_set, valid_set):
        """Monolingual batches for training and validation."""
        def batches(dataset, shuffle):
            with dataset.output_keys_as(["language"]):
                languages = [item["language"] for item in dataset]
            return LanguageBatches(languages, hparams["batch_size"], hparams["seed"],
                                   shuffle=shuffle)

        workers = hparams["train_dataloader_opts"].get("num_workers", 0)
        return ({"batch_sampler": batches(train_set, True), "num_workers": workers},
                {"batch_sampler": batches(valid_set, False), "num_workers": workers})


class PathwayBrain(StageBrain):
    """:class:`StageBrain` whose batches run on their language's pathway."""

    def batch_language(self, batch):
        """The one language of ``batch``; UserInputError naming a mixed batch."""
        languages = set(batch.language)
        if len(languages) != 1:
            ids = ", ".join(f"{i} ({x})" for i, x in zip(batch.id, batch.language))
            raise UserInputError(f"a batch mixes languages in pathway mode: {ids}")
        return languages.pop()

    def fit_batch(self, batch):
        """One training step on the batch's pathway (forward, backward, update)."""
        self.language = self.batch_language(batch)
        with self.program.language_pass(self.language, train=True):
            return super().fit_batch(batch)

    def evaluate_batch(self, batch, stage):
        """Evaluates with ``θ ⊙ m_z``, ``z`` the batch's language."""
        with self.program.language_pass(self.batch_language(batch), train=False):
            return super().evaluate_batch(batch, stage)

    def optimizers_step(self):
        """Zeroes the inactive entries' gradients; updates the active ones only."""
        active = self.program.active(self.language, train=True)
        with torch.no_grad():
            for param, keep in active.items():
                if param.grad is not None:
                    param.grad.mul_(keep)
        for opt in self._optimizers().values():
            if not hasattr(opt, "set_step_mask"):
                raise ConfigError("pathway stages need opt_class MaskedAdamW "
                                  "(set_step_mask), not " + type(opt).__name__)
            opt.set_step_mask(active)
        return super().optimizers_step()


PathwayProgram.brain_class = PathwayBrain


def pathway_program(hparams, stage, languages):
    """The :class:`PathwayProgram` of a ``pathways`` / ``dynamic_pathways`` YAML."""
    if hparams.get("grad_accumulation_factor", 1) != 1:
        raise ConfigError("grad_accumulation_factor must be 1 in pathway stages "
                          "(one language per optimizer step)")
    model = hparams["model"]
    pathways = load_pathways(hparams, stage, languages, model)
    dynamic = stage == "dynamic_pathways"
    return PathwayProgram(pathways, model, hparams["output_folder"],
                          dynamic=dynamic,
                          schedule=hparams["schedule"] if dynamic else None,
                          rerank_every=hparams["rerank_every"] if dynamic else None)
