"""Training language pathways inside a Brain: each step one language's subnetwork.

With a pathway mask ``m_z`` per language (a
:class:`~speechbrain_sparse.pruning.pathways.PathwayMasks`), a batch of
language ``z`` is trained as follows:

1. the batch must be monolingual (its ``language`` key; a mixed batch is a
   ``UserInputError`` naming the utterances);
2. the forward and backward see ``theta * a_z``, with ``a_z = m_z`` (fixed
   pathways) or ``m_z | free_zone(z)`` (dynamic): the masked copy replaces
   each masked tensor's data for the forward and backward only, so the other
   languages' entries stay intact in storage (one multiply per step and
   tensor; zeroing in place would destroy them);
3. gradients outside ``a_z`` are zeroed (so clipping sees ``a_z`` only) and
   :meth:`MaskedAdamW.set_step_mask` restricts the step to ``a_z``: entries
   outside it keep their value and AdamW moments bit-identical, weight decay
   included.

Tensors the masks do not cover (front-end, norms, heads) are shared and
trained by every language. Evaluation uses ``theta * a_z`` too (oracle
language). Under DDP every rank must take the same language at every step
(:class:`~speechbrain_sparse.data.language_sampler.LanguageBatchSampler`);
the mixin checks it each step with one small all-reduce. With gradient
accumulation all micro-batches of a step must share the language.

Memory: a bool mask per language and masked tensor (1 byte per entry and
language), one 0/1 float buffer (4 bytes per entry), the masked copy during
forward and backward (4 bytes per entry), and MaskedAdamW's per-entry
``beta ** n`` (8 bytes per entry). Time: ``tools/bench/pathway_step.py``.

Authors
 * speechbrain_sparse contributors 2026
"""

import contextlib

import torch

from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.parameter_names import canonical_named_parameters


class PathwayTrainingMixin:
    """Brain mixin for language pathways: ``class ASR(PathwayTrainingMixin, Brain)``.

    Call :meth:`attach_pathways` before ``fit``; the optimizers must have
    ``set_step_mask`` (:class:`~speechbrain_sparse.masked_adamw.MaskedAdamW`).
    It composes with ``MaskedTrainingMixin`` (put this one first).

    Example
    -------
    >>> import speechbrain as sb
    >>> from speechbrain.dataio.batch import PaddedBatch
    >>> from speechbrain_sparse.masked_adamw import MaskedAdamW
    >>> from speechbrain_sparse.masks import ParameterMask
    >>> from speechbrain_sparse.pruning.pathways import PathwayMasks
    >>> class Toy(PathwayTrainingMixin, sb.Brain):
    ...     def compute_forward(self, batch, stage):
    ...         return self.modules.lin(batch.x.data)
    ...     def compute_objectives(self, predictions, batch, stage):
    ...         return predictions.pow(2).mean()
    >>> lin = torch.nn.Linear(2, 1, bias=False)
    >>> brain = Toy({"lin": lin}, lambda p: MaskedAdamW(p, 0.1),
    ...             run_opts={"device": "cpu"})
    >>> masks = {"fr": [[True, False]], "nl": [[False, True]]}
    >>> brain.attach_pathways(PathwayMasks({k: ParameterMask({"lin.weight":
    ...     torch.tensor(v)}) for k, v in masks.items()}))
    >>> before = lin.weight.detach().clone()
    >>> brain.init_optimizers()
    >>> batch = PaddedBatch([{"id": "u1", "x": torch.ones(2), "language": "fr"}])
    >>> _ = brain.fit_batch(batch)
    >>> (lin.weight != before).tolist()  # nl's entry untouched
    [[True, False]]
    """

    pathways = None
    language_key = "language"

    def attach_pathways(self, pathways, dynamic=False, module=None,
                        language_key="language"):
        """Trains ``pathways`` (a ``PathwayMasks``) from the next batch on.

        Arguments
        ---------
        pathways : PathwayMasks
            One mask per language; names relative to ``module``.
        dynamic : bool
            Train ``m_z | free_zone(z)`` instead of ``m_z``.
        module : torch.nn.Module, optional
            Module the mask names refer to; default ``self.modules``.
        language_key : str
            The batch key holding each utterance's language.
        """
        module = self.modules if module is None else module
        params = canonical_named_parameters(module)
        for name, shape in pathways.shapes.items():
            if name not in params:
                raise UserInputError(f"pathway masks name '{name}', not a parameter "
                                     f"of the model")
            if tuple(params[name].shape) != tuple(shape):
                raise UserInputError(f"pathway mask '{name}' has shape {shape}, the "
                                     f"parameter {tuple(params[name].shape)}")
        self.pathways, self.pathway_dynamic = pathways, bool(dynamic)
        self.language_key = language_key
        self._pathway_params = {name: params[name] for name in pathways.shapes}
        self._active_bool = {}  # language -> {name: bool tensor on the device}
        self._active_float = {}  # name -> 0/1 buffer of the current language
        self._float_language = None
        self._step_language = None
        self._saved_data = None
        if getattr(self, "optimizers_dict", None) or getattr(self, "optimizer", None):
            self._check_optimizers()

    # The language of a batch -------------------------------------------------------
    def batch_language(self, batch):
        """Returns the one language of ``batch``; UserInputError if mixed/unknown."""
        languages = getattr(batch, self.language_key, None)
        if languages is None:
            raise UserInputError(f"pathway training: the batch has no "
                                 f"'{self.language_key}' key (add it to the "
                                 f"dataset's output keys)")
        languages = [languages] if isinstance(languages, str) else list(languages)
        if len(set(languages)) > 1:
            ids = list(getattr(batch, "id", range(len(languages))))
            groups = {}
            for utterance, language in zip(ids, languages):
                groups.setdefault(language, []).append(str(utterance))
            listed = "; ".join(f"{k}: {', '.join(v)}" for k, v in groups.items())
            raise UserInputError(f"mixed-language batch in pathway mode ({listed}); "
                                 f"use a LanguageBatchSampler")
        language = languages[0]
        self.pathways[language]  # noqa: B018 -- raises UnknownLanguageError
        return language

    # Masks of the current language ---------------------------------------------------
    def _activate(self, language):
        """Fills the 0/1 float buffers with ``a_language``; returns them."""
        if language == self._float_language:
            return self._active_float
        if language not in self._active_bool:
            active = self.pathways.active(language, self.pathway_dynamic)
            self._active_bool[language] = {
                name: active[name].to(param.device)
                for name, param in self._pathway_params.items()}
        for name, param in self._pathway_params.items():
            buffer = self._active_float.get(name)
            if buffer is None:
                buffer = self._active_float[name] = torch.empty_like(param.detach())
            buffer.copy_(self._active_bool[language][name])
        self._float_language = language
        return self._active_float

    @contextlib.contextmanager
    def language_forward(self, language):
        """Within the block the masked tensors hold ``theta * a_language``."""
        active = self._activate(language)
        self._saved_data = {}
        with torch.no_grad():
            for name, param in self._pathway_params.items():
                self._saved_data[name] = param.data
                param.data = param.data * active[name]
        try:
            yield
        finally:
            self._restore_weights()

    def _restore_weights(self):
        if self._saved_data:
            for name, data in self._saved_data.items():
                self._pathway_params[name].data = data
        self._saved_data = None

    # Brain hooks -------------------------------------------------------------------
    def init_optimizers(self):
        """Builds the optimizers; each must offer ``set_step_mask``."""
        super().init_optimizers()
        if self.pathways is not None:
            self._check_optimizers()

    def _all_optimizers(self):
        if getattr(self, "optimizers_dict", None):
            return list(self.optimizers_dict.values())
        optimizer = getattr(self, "optimizer", None)
        return [] if optimizer is None else [optimizer]

    def _check_optimizers(self):
        masked = {id(p) for p in self._pathway_params.values()}
        for opt in self._all_optimizers():
            holds = any(id(p) in masked for g in opt.param_groups for p in g["params"])
            if holds and not hasattr(opt, "set_step_mask"):
                raise UserInputError(
                    f"pathway training needs an optimizer with set_step_mask "
                    f"(speechbrain_sparse.masked_adamw.MaskedAdamW), got "
                    f"{type(opt).__name__}: its moments would move other languages")

    def fit_batch(self, batch):
        """Trains ``batch`` on its language's pathway."""
        if self.pathways is None:
            return super().fit_batch(batch)
        language = self.batch_language(batch)
        if self._step_language not in (None, language):
            raise UserInputError(
                f"gradient accumulation mixes languages {self._step_language!r} and "
                f"{language!r} in one optimizer step; repeat each language "
                f"grad_accumulation_factor times or set it to 1")
        self._step_language = language
        self._check_ranks_agree(language)
        with self.language_forward(language):
            try:
                return super().fit_batch(batch)
            except BaseException:
                self._step_language = None  # the next batch starts a new step
                raise

    def evaluate_batch(self, batch, stage):
        """Evaluates ``batch`` on its language's pathway (oracle language)."""
        if self.pathways is None:
            return super().evaluate_batch(batch, stage)
        with self.language_forward(self.batch_language(batch)):
            return super().evaluate_batch(batch, stage)

    def optimizers_step(self):
        """Restores the weights, masks the gradients, steps on ``a_z`` only."""
        if self.pathways is None:
            return super().optimizers_step()
        self._restore_weights()
        active = self._activate(self._step_language)
        by_param = {}
        with torch.no_grad():
            for name, param in self._pathway_params.items():
                if param.grad is not None:
                    param.grad.mul_(active[name])
                by_param[param] = active[name]
        for opt in self._all_optimizers():
            opt.set_step_mask(by_param)
        try:
            return super().optimizers_step()
        finally:
            self._step_language = None
            for opt in self._all_optimizers():
                opt.set_step_mask(None)

    def _check_ranks_agree(self, language):
        """Under DDP, raises unless every rank trains ``language`` now."""
        distributed = torch.distributed
        if not (distributed.is_available() and distributed.is_initialized()):
            return
        if distributed.get_world_size() < 2:
            return
        index = self.pathways.languages.index(language)
        device = self.device if distributed.get_backend() == "nccl" else "cpu"
        bounds = torch.tensor([index, -index], device=device)
        distributed.all_reduce(bounds, op=distributed.ReduceOp.MAX)
        if int(bounds[0]) != -int(bounds[1]):
            low, high = (self.pathways.languages[i]
                         for i in (-int(bounds[1]), int(bounds[0])))
            raise UserInputError(
                f"DDP ranks train different languages in one step ({low} ... {high}); "
                f"use LanguageBatchSampler as the batch_sampler")

    def _train_loader_specifics(self, dataset, loader_kwargs):
        """Keeps a LanguageBatchSampler out of SpeechBrain's DDP wrapper."""
        sampler = loader_kwargs.get("batch_sampler")
        if getattr(sampler, "plan", None) is not None and hasattr(sampler, "set_epoch"):
            self.train_sampler = sampler  # shards by rank itself
            return loader_kwargs
        return super()._train_loader_specifics(dataset, loader_kwargs)
