"""``run_on_main_or_raise``: a failure of the main process reaches every rank."""

import datetime
import os
import pickle

import pytest
import torch
import torch.distributed
import torch.multiprocessing

from speechbrain_sparse import distributed
from speechbrain_sparse.distributed import run_on_main_or_raise
from speechbrain_sparse.errors import UserInputError


class Unpicklable(Exception):
    """An exception that cannot cross process boundaries."""

    def __reduce__(self):
        raise TypeError("not picklable")


def bad_corpus():
    raise UserInputError("corpus/transcript.txt:13: no utterance id")


@pytest.fixture
def simulated_ranks(monkeypatch):
    """Replaces SpeechBrain's ``run_on_main`` by the two halves of a 2-rank run.

    ``main`` runs the function and "broadcasts" (pickles) its result;
    ``other`` does not run it and receives the broadcast value.
    """
    broadcast = {}

    def main(func, args=None, kwargs=None):
        result = func(*(args or []), **(kwargs or {}))
        broadcast["value"] = pickle.dumps(result)
        return result

    def other(func, args=None, kwargs=None):
        return pickle.loads(broadcast["value"])

    def use(rank):
        monkeypatch.setattr(distributed, "run_on_main", main if rank == 0 else other)

    return use


def test_result_reaches_every_rank(simulated_ranks):
    simulated_ranks(0)
    assert run_on_main_or_raise(sorted, args=[[2, 1]]) == [1, 2]
    simulated_ranks(1)
    assert run_on_main_or_raise(sorted, args=[[2, 1]]) == [1, 2]


def test_failure_of_the_main_process_is_raised_on_every_rank(simulated_ranks):
    simulated_ranks(0)
    with pytest.raises(UserInputError, match="no utterance id") as on_main:
        run_on_main_or_raise(bad_corpus)
    assert on_main.traceback[-1].name == "bad_corpus"  # the original traceback
    simulated_ranks(1)
    with pytest.raises(UserInputError, match="transcript.txt:13: no utterance id"):
        run_on_main_or_raise(bad_corpus)


def test_unpicklable_failure_reaches_other_ranks_as_runtime_error(simulated_ranks):
    def fail():
        raise Unpicklable("odd")

    simulated_ranks(0)
    with pytest.raises(Unpicklable):
        run_on_main_or_raise(fail)
    simulated_ranks(1)
    with pytest.raises(RuntimeError, match="main process failed: Unpicklable: odd"):
        run_on_main_or_raise(fail)


def _rank_outcome(rank, world_size, port, folder):
    """One rank of a real gloo group: records what ``run_on_main_or_raise`` did."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank))
    torch.distributed.init_process_group(
        "gloo", rank=rank, world_size=world_size,
        timeout=datetime.timedelta(seconds=60),  # a hang fails the test instead
    )
    try:
        run_on_main_or_raise(bad_corpus)
        outcome = "no error"
    except UserInputError as error:
        outcome = f"{type(error).__name__}: {error}"
    finally:
        torch.distributed.destroy_process_group()
    with open(os.path.join(folder, f"rank{rank}.txt"), "w", encoding="utf-8") as handle:
        handle.write(outcome)


def _free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_gloo_ranks_both_raise_the_main_process_error(tmp_path):
    torch.multiprocessing.spawn(
        _rank_outcome, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True
    )
    expected = "UserInputError: corpus/transcript.txt:13: no utterance id"
    for rank in (0, 1):
        assert (tmp_path / f"rank{rank}.txt").read_text() == expected
