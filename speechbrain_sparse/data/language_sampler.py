"""Monolingual batches, the same language on every DDP rank at every step.

Language pathways train language ``z``'s subnetwork on batches of language
``z`` only, and under DDP the gradients of all ranks are averaged, so every
rank must take the same language at the same step (otherwise the all-reduce
mixes languages). :class:`LanguageBatchSampler` shards the items of each
language across the ranks, cuts each shard into the same number of batches on
every rank, and orders the languages from the shared seed and epoch only:
round robin, or a random order in which each language appears in proportion
to its number of batches. Pass it as the loader's ``batch_sampler``; a Brain
with :class:`~speechbrain_sparse.pathway_training.PathwayTrainingMixin` keeps
SpeechBrain from wrapping it in a ``DistributedSamplerWrapper`` (which would
hand consecutive batches, of different languages, to different ranks).

Example
-------
>>> sampler = LanguageBatchSampler(["fr", "nl", "fr", "nl", "fr"], batch_size=2,
...                                shuffle=False)
>>> list(sampler)
[[0, 2], [1, 3], [4]]

Authors
 * speechbrain_sparse contributors 2026
"""

import random

import torch

from speechbrain_sparse.errors import UserInputError

ORDERS = ("round_robin", "proportional")


class LanguageBatchSampler(torch.utils.data.Sampler):
    """Batches of dataset indices, each of one language; DDP-synchronous.

    Arguments
    ---------
    languages : sequence of str
        The language of each dataset item (the manifests' ``language`` column).
    batch_size : int, optional
        Items per batch (the last batch of a language may be smaller).
    max_batch_length : float, optional
        Instead of ``batch_size``: the largest sum of ``durations`` in a batch
        (items are sorted by duration within a language, then packed).
    durations : sequence of float, optional
        Each item's length (seconds); needed with ``max_batch_length``.
    seed : int
        Shared by all ranks: the shuffles and the language order come from it.
    order : str
        ``"round_robin"`` (languages take turns; one that runs out drops out)
        or ``"proportional"`` (a random order, each language's batches spread
        over the epoch).
    shuffle : bool
        Shuffle items (and batch order) every epoch (:meth:`set_epoch`).
    num_replicas, rank : int, optional
        DDP world size and rank (default: from ``torch.distributed``).

    Example
    -------
    >>> languages = ["a"] * 4 + ["b"] * 2
    >>> sampler = LanguageBatchSampler(languages, batch_size=2, seed=3)
    >>> [{languages[i] for i in batch} for batch in sampler]
    [{'a'}, {'b'}, {'a'}]
    """

    def __init__(self, languages, batch_size=None, max_batch_length=None,
                 durations=None, seed=0, order="round_robin", shuffle=True,
                 num_replicas=None, rank=None):
        self.languages = [str(x) for x in languages]
        if not self.languages:
            raise UserInputError("LanguageBatchSampler: no items")
        if (batch_size is None) == (max_batch_length is None):
            raise UserInputError("LanguageBatchSampler: give exactly one of "
                                 "batch_size and max_batch_length")
        if batch_size is not None and int(batch_size) < 1:
            raise UserInputError(f"batch_size must be >= 1, got {batch_size!r}")
        if max_batch_length is not None:
            if durations is None or len(durations) != len(self.languages):
                raise UserInputError("max_batch_length needs one duration per item")
            if float(max_batch_length) <= 0:
                raise UserInputError(f"max_batch_length must be > 0, "
                                     f"got {max_batch_length!r}")
        if order not in ORDERS:
            raise UserInputError(f"order must be one of {ORDERS}, got {order!r}")
        self.batch_size = None if batch_size is None else int(batch_size)
        self.max_batch_length = max_batch_length
        self.durations = None if durations is None else [float(d) for d in durations]
        self.seed, self.order, self.shuffle = int(seed), order, bool(shuffle)
        self._replicas, self._rank = num_replicas, rank
        self.epoch = 0
        self.by_language = {}
        for index, language in enumerate(self.languages):
            self.by_language.setdefault(language, []).append(index)
        self.by_language = dict(sorted(self.by_language.items()))

    def set_epoch(self, epoch):
        """Sets the epoch: the shuffles and the order change with it."""
        self.epoch = int(epoch)

    def _world(self):
        replicas, rank = self._replicas, self._rank
        distributed = torch.distributed
        initialized = distributed.is_available() and distributed.is_initialized()
        if replicas is None:
            replicas = torch.distributed.get_world_size() if initialized else 1
        if rank is None:
            rank = torch.distributed.get_rank() if initialized else 0
        if not 0 <= rank < replicas:
            raise UserInputError(f"rank {rank} not in [0, {replicas})")
        return replicas, rank

    def plan(self):
        """Returns ``[(language, batch)]`` of this rank for the current epoch.

        Every rank computes every rank's batches from the shared seed, so the
        languages and the number of batches agree across ranks.
        """
        replicas, rank = self._world()
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        batches = {}
        for language, items in self.by_language.items():
            items = list(items)
            if self.shuffle:
                rng.shuffle(items)
            items += items[: (-len(items)) % replicas]  # pad to equal shards
            shards = [items[r::replicas] for r in range(replicas)]
            cut = [self._cut(shard) for shard in shards]
            count = max(len(c) for c in cut)
            cut = [_split_to(c, count) for c in cut]
            order = list(range(count))
            if self.shuffle and self.max_batch_length is not None:
                rng.shuffle(order)  # duration-sorted batches in random order
            batches[language] = [cut[rank][i] for i in order]
        return [(language, batches[language][i])
                for language, i in self._language_order(batches, rng)]

    def _cut(self, shard):
        if self.batch_size is not None:
            size = self.batch_size
            return [shard[i:i + size] for i in range(0, len(shard), size)]
        out, current, total = [], [], 0.0
        for index in sorted(shard, key=lambda i: self.durations[i]):
            length = self.durations[index]
            if current and total + length > self.max_batch_length:
                out.append(current)
                current, total = [], 0.0
            current.append(index)
            total += length
        return out + ([current] if current else [])

    def _language_order(self, batches, rng):
        counts = {language: len(b) for language, b in batches.items()}
        if self.order == "proportional":
            sequence = [x for x, n in counts.items() for _ in range(n)]
            rng.shuffle(sequence)
        else:
            sequence = [x for i in range(max(counts.values()))
                        for x, n in counts.items() if i < n]
        taken = dict.fromkeys(counts, 0)
        for language in sequence:
            yield language, taken[language]
            taken[language] += 1

    def __iter__(self):
        return iter([batch for _, batch in self.plan()])

    def __len__(self):
        return len(self.plan())


def _split_to(batches, count):
    """Splits the largest batches in two until there are ``count`` of them."""
    batches = [list(b) for b in batches]
    while len(batches) < count:
        largest = max(range(len(batches)), key=lambda i: len(batches[i]))
        batch = batches[largest]
        if len(batch) < 2:
            raise RuntimeError("cannot split batches further")  # shards are equal
        half = len(batch) // 2
        batches[largest:largest + 1] = [batch[:half], batch[half:]]
    return batches
