"""Pathway training under DDP (two gloo ranks): ranks stay equal, others untouched.

The masked copy of the weights replaces each tensor's data for the forward and
backward only; this checks that DDP's gradient all-reduce still works with it,
that both ranks end with the same weights, that the entries of a language no
step trained stay bit-identical, and that ranks on different languages raise.
"""

import datetime
import os
import socket

import pytest
import torch
import torch.multiprocessing

LANGUAGES = ["en", "fr", "fr", "en"]  # nl never trains


def _rank(rank, world_size, port, folder, disagree):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size))
    torch.distributed.init_process_group(
        "gloo", rank=rank, world_size=world_size,
        timeout=datetime.timedelta(seconds=60))
    from speechbrain_sparse.errors import UserInputError
    from tests.unit.test_pathways import batch, toy_brain

    try:
        brain, pathways = toy_brain()
        brain.distributed_backend = "gloo"
        brain.attach_pathways(pathways)
        brain.on_fit_start()
        brain.modules.train()
        start = {n: p.detach().clone() for n, p in brain.modules.named_parameters()}
        outcome = "ok"
        try:
            for step, language in enumerate(LANGUAGES):
                if disagree and rank == 1 and step == 2:
                    language = "en"
                brain.fit_batch(batch(language, seed=10 * step + rank))
        except UserInputError as error:
            outcome = str(error)
        end = {n: p.detach().clone() for n, p in brain.modules.named_parameters()}
    finally:
        torch.distributed.destroy_process_group()
    torch.save({"start": start, "end": end, "outcome": outcome,
                "pathways": {x: dict(pathways[x]) for x in pathways}},
               os.path.join(folder, f"rank{rank}.pt"))


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _spawn(tmp_path, disagree):
    torch.multiprocessing.spawn(_rank, args=(2, _free_port(), str(tmp_path), disagree),
                                nprocs=2, join=True)
    return [torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1)]


@pytest.mark.slow  # ~20 s on a shared 2-core machine: two spawned ranks
def test_two_gloo_ranks_train_pathways_in_step(tmp_path):
    ranks = _spawn(tmp_path, disagree=False)
    assert [r["outcome"] for r in ranks] == ["ok", "ok"]
    for name, value in ranks[0]["end"].items():
        assert torch.equal(ranks[1]["end"][name], value), name
    from speechbrain_sparse.masks import ParameterMask
    from speechbrain_sparse.pruning.pathways import PathwayMasks

    pathways = PathwayMasks({x: ParameterMask(m)
                             for x, m in ranks[0]["pathways"].items()})
    trained = pathways.union(["en", "fr"])
    for name, active in trained.items():
        key = "net.module." + name.split(".", 1)[1]
        start, end = ranks[0]["start"][key], ranks[0]["end"][key]
        assert torch.equal(end[~active], start[~active]), name
        assert (end[active] != start[active]).all(), name


@pytest.mark.slow
def test_ranks_on_different_languages_raise_on_both(tmp_path):
    ranks = _spawn(tmp_path, disagree=True)
    for rank in ranks:
        assert rank["outcome"].startswith("DDP ranks train different languages")
