"""DDP stays green: the diff stage on two gloo ranks (CPU) of the micro corpus.

Both ranks must select the same mask, and the frozen entries of the model on
every rank must stay bit-identical to the pretrained weights.
"""

import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

from tests.conftest import REPO, SYNTHETIC_RECIPE
from tests.integration.test_synthetic_recipe import MICRO_MODEL, run_stage

# Runs the recipe's train.py on one rank and saves what the rank ended with.
RANK_SCRIPT = textwrap.dedent("""
    import os, sys
    import torch
    sys.path.insert(0, {recipe!r})
    from speechbrain_sparse.training import MaskedTrainingMixin

    brains = []
    attach_mask = MaskedTrainingMixin.attach_mask

    def recording(self, *args, **kwargs):
        brains.append(self)
        return attach_mask(self, *args, **kwargs)

    MaskedTrainingMixin.attach_mask = recording
    import train

    train.main(sys.argv[1:])
    brain = brains[-1]
    torch.save({{"mask": brain.mask_enforcer.masks(),
                 "model": brain.hparams.model.state_dict()}},
               os.path.join({out!r}, "rank" + os.environ["RANK"] + ".pt"))
""")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow  # ~30 s on 2 cores: pretrain, vanilla, then diff on two ranks
def test_diff_on_two_gloo_ranks_selects_one_mask_and_keeps_frozen_entries(
    micro_corpus, tmp_path
):
    pretrained, vanilla, diff = (tmp_path / name for name in
                                 ("pretrain", "vanilla", "diff"))
    run_stage("pretrain_tiny.yaml", pretrained, micro_corpus, "--number_of_epochs=1")
    run_stage("vanilla_tiny.yaml", vanilla, micro_corpus,
              f"--pretrained_dir={pretrained / 'model'}", "--dialect=en-029",
              "--number_of_epochs=1", "--eval_splits=[test]")

    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT.format(recipe=str(SYNTHETIC_RECIPE),
                                          out=str(tmp_path)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
        "--master_addr=127.0.0.1", f"--master_port={free_port()}", str(script),
        str(SYNTHETIC_RECIPE / "hparams" / "diff_tiny.yaml"),
        f"--output_folder={diff}", f"--data_folder={micro_corpus}",
        "--corpus_preset=micro", *MICRO_MODEL, "--num_workers=0", "--device=cpu",
        "--distributed_backend=gloo", f"--pretrained_dir={pretrained / 'model'}",
        f"--finetuned_dir={vanilla / 'model'}", "--dialect=en-029",
        "--density=0.2", "--number_of_epochs=1", "--eval_splits=[test]",
    ]
    done = subprocess.run(command, cwd=SYNTHETIC_RECIPE, env=env, timeout=900,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]

    ranks = [torch.load(tmp_path / f"rank{rank}.pt") for rank in (0, 1)]
    before = torch.load(pretrained / "model" / "model.ckpt")
    assert ranks[0]["mask"].keys() == ranks[1]["mask"].keys()
    changed = 0
    for name, trainable in ranks[0]["mask"].items():
        assert torch.equal(ranks[1]["mask"][name], trainable), name
        for rank in ranks:
            after = rank["model"][name]
            assert torch.equal(after[~trainable], before[name][~trainable]), name
        changed += int((ranks[0]["model"][name] != before[name]).sum())
    assert changed > 0
    for name, value in ranks[0]["model"].items():  # DDP keeps the ranks equal
        assert torch.equal(ranks[1]["model"][name], value), name
