"""LanguageBatchSampler: monolingual batches, deterministic, in step across ranks."""

import datetime
import json
import os
import socket

import pytest
import torch
import torch.distributed
import torch.multiprocessing

from speechbrain_sparse.data.language_sampler import LanguageBatchSampler
from speechbrain_sparse.errors import UserInputError

LANGUAGES = ["en"] * 23 + ["fr"] * 17 + ["it"] * 9 + ["nl"] * 30
DURATIONS = [1.0 + (7 * i % 11) / 2 for i in range(len(LANGUAGES))]


def languages_of(sampler):
    out = []
    for batch in sampler:
        found = {LANGUAGES[i] for i in batch}
        assert len(found) == 1, batch  # monolingual
        out.append(found.pop())
    return out


@pytest.mark.parametrize("order", ["round_robin", "proportional"])
@pytest.mark.parametrize("sizing", [{"batch_size": 4},
                                    {"max_batch_length": 9.0, "durations": DURATIONS}])
def test_every_batch_is_monolingual_and_every_item_is_seen_once(order, sizing):
    sampler = LanguageBatchSampler(LANGUAGES, seed=1, order=order, **sizing)
    batches = list(sampler)
    languages_of(sampler)
    assert sorted(i for b in batches for i in b) == list(range(len(LANGUAGES)))
    assert len(sampler) == len(batches)
    if "durations" in sizing:
        assert all(sum(DURATIONS[i] for i in b) <= 9.0 for b in batches)


def test_round_robin_takes_turns_until_a_language_runs_out():
    sampler = LanguageBatchSampler(LANGUAGES, batch_size=8, seed=0)
    # batches: en 3, fr 3, it 2, nl 4
    assert languages_of(sampler) == ["en", "fr", "it", "nl"] * 2 + ["en", "fr", "nl",
                                                                    "nl"]


def test_deterministic_per_seed_and_epoch():
    def plan(seed, epoch, order="proportional"):
        sampler = LanguageBatchSampler(LANGUAGES, batch_size=3, seed=seed, order=order)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert plan(7, 2) == plan(7, 2)
    assert plan(7, 2) != plan(7, 3)
    assert plan(7, 2) != plan(8, 2)
    assert plan(7, 2, "round_robin") == plan(7, 2, "round_robin")


def test_ranks_take_the_same_language_at_every_step():
    by_length = {"max_batch_length": 7.0, "durations": DURATIONS}
    for sizing in ({"batch_size": 3}, by_length):
        ranks = [LanguageBatchSampler(LANGUAGES, seed=4, order="proportional",
                                      num_replicas=3, rank=r, **sizing)
                 for r in range(3)]
        plans = [r.plan() for r in ranks]
        assert len({len(p) for p in plans}) == 1  # equal number of batches
        for step in zip(*plans):
            assert len({language for language, _ in step}) == 1
        seen = {i for p in plans for _, b in p for i in b}
        assert seen == set(range(len(LANGUAGES)))


def test_bad_inputs_are_named():
    with pytest.raises(UserInputError, match="exactly one of batch_size"):
        LanguageBatchSampler(LANGUAGES)
    with pytest.raises(UserInputError, match="one duration per item"):
        LanguageBatchSampler(LANGUAGES, max_batch_length=5.0, durations=[1.0])
    with pytest.raises(UserInputError, match="order must be one of"):
        LanguageBatchSampler(LANGUAGES, batch_size=2, order="random")
    with pytest.raises(UserInputError, match="rank 2 not in"):
        list(LanguageBatchSampler(LANGUAGES, batch_size=2, num_replicas=2, rank=2))


def _rank_languages(rank, world_size, port, folder):
    """One gloo rank: records its language per step and every rank's via all_gather."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.distributed.init_process_group(
        "gloo", rank=rank, world_size=world_size,
        timeout=datetime.timedelta(seconds=60))
    try:
        names = sorted(set(LANGUAGES))
        sampler = LanguageBatchSampler(LANGUAGES, max_batch_length=8.0,
                                       durations=DURATIONS, seed=11,
                                       order="proportional")
        sampler.set_epoch(1)
        steps = []
        for batch in sampler:
            mine = torch.tensor([names.index(LANGUAGES[batch[0]])])
            every = [torch.zeros(1, dtype=torch.long) for _ in range(world_size)]
            torch.distributed.all_gather(every, mine)
            steps.append({"batch": batch, "languages": [int(t) for t in every]})
    finally:
        torch.distributed.destroy_process_group()
    with open(os.path.join(folder, f"rank{rank}.json"), "w", encoding="utf-8") as f:
        json.dump(steps, f)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_gloo_ranks_take_the_same_language_at_every_step(tmp_path):
    torch.multiprocessing.spawn(_rank_languages, args=(2, _free_port(), str(tmp_path)),
                                nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) > 10
    for step in ranks[0]:
        assert step["languages"][0] == step["languages"][1]
    items = [i for rank in ranks for step in rank for i in step["batch"]]
    assert set(items) == set(range(len(LANGUAGES)))
