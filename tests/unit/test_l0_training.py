"""L0PruningMixin: a few steps on tiny gated models, resume, bad inputs."""

import copy

import numpy as np
import pytest
import speechbrain as sb
import torch
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.nnet.schedulers import NoamScheduler

from speechbrain_sparse.checkpoints import ResumableCheckpointer
from speechbrain_sparse.errors import UserInputError
from speechbrain_sparse.pruning.distillation import LayerDistillation
from speechbrain_sparse.pruning.l0_training import L0Config, L0PruningMixin
from speechbrain_sparse.pruning.structured_l0 import LagrangianController
from speechbrain_sparse.pruning.unit_masks import UnitMask
from tests.unit.pruning_models import tiny_hf_model, tiny_transformer_asr

FAHP = ["head_qk_dim", "head_vo_dim", "mha", "ffn_unit", "ffn"]


class Stage(L0PruningMixin, sb.Brain):
    pass


class Crash(Exception):
    pass


def audio(n=4, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [{"id": f"u{i}", "sig": torch.randn(1600 - 80 * i, generator=generator)}
            for i in range(n)]


KEEP = {"ffn_unit": 0.6, "head_qk_dim": 0.6, "head_vo_dim": 0.6}


def make_brain(model, folder, levels=FAHP, target=0.5, layers=(1, 2), ckpt=None,
               init_keep=KEEP, warmup=4, **config):
    torch.manual_seed(0)
    np.random.seed(0)  # HF wav2vec2 draws its time masks from numpy
    l0 = L0Config(levels, LayerDistillation(32, 32, list(layers)),
                  LagrangianController(target, warmup_steps=warmup, lr_lambda=0.05),
                  init_keep=init_keep, reg_lr=0.1, **config)
    checkpointer = None if ckpt is None else ResumableCheckpointer(ckpt)
    return Stage({"student": model}, lambda p: torch.optim.AdamW(p, 1e-3),
                 hparams={"l0": l0, "output_folder": str(folder)},
                 run_opts={"device": "cpu", **({"ckpt_interval_steps": 2}
                                               if ckpt else {})},
                 checkpointer=checkpointer)


LOADER = {"batch_size": 2, "collate_fn": PaddedBatch}


@pytest.fixture(scope="module")
def w2v2(tmp_path_factory):
    return tiny_hf_model("wav2vec2", tmp_path_factory.mktemp("hf"), ctc=False)[0]


def test_steps_reduce_expected_params_and_keep_the_teacher(w2v2, tmp_path):
    brain = make_brain(copy.deepcopy(w2v2).train(), tmp_path, log_every=1,
                       init_keep=None, warmup=0)
    brain.attach_l0()
    teacher = {k: v.clone() for k, v in brain.teacher.state_dict().items()}
    before = brain.l0_stats()
    brain.fit(range(3), audio(), train_loader_kwargs=LOADER, progressbar=False)
    after = brain.l0_stats()
    assert after["expected"] > before["expected"] + 0.005  # fewer params expected
    assert after["lambda_1"] != 0.0 and after["lambda_2"] > 0
    frozen = brain.teacher.state_dict()
    assert all(torch.equal(v, teacher[k]) for k, v in frozen.items())
    assert not brain.teacher.training
    assert all(not p.requires_grad for p in brain.teacher.parameters())
    rows = (tmp_path / "l0_gates.csv").read_text().splitlines()
    assert len(rows) == 1 + 6 and "mean_z_ffn" in rows[0]
    result = brain.finish_l0(tmp_path / "mask.pt")
    assert result["target"] == 0.5 and 0 <= result["achieved"] < 1
    loaded = UnitMask.load(tmp_path / "mask.pt", brain.structure)
    assert set(loaded) == set(brain.structure.groups(FAHP))


def test_gates_get_gradients_and_scheduler_leaves_lambda(w2v2, tmp_path):
    brain = make_brain(copy.deepcopy(w2v2).train(), tmp_path, log_every=0)
    brain.on_fit_start()
    batch = PaddedBatch(audio(2))
    loss = brain.compute_objectives(brain.compute_forward(batch, sb.Stage.TRAIN),
                                    batch, sb.Stage.TRAIN)
    loss.backward()
    silent = [g for g, gate in brain.gates.items()
              if gate.log_alpha.grad is None or not gate.log_alpha.grad.ne(0).any()]
    assert not silent
    # Clipping touches the main parameters only.
    brain.hparams.l0.max_grad_norm = 1e-6
    gate_grads = [p.grad.clone() for p in brain.gates.parameters()]
    seen = {}
    main_step, gate_step = brain.optimizer.step, brain.gate_optimizer.step
    brain.optimizer.step = lambda: seen.update(main=torch.cat(
        [p.grad.flatten() for p in brain.modules.student.parameters()
         if p.grad is not None]).norm().item())
    brain.gate_optimizer.step = lambda: seen.update(
        gates=[p.grad.clone() for p in brain.gates.parameters()])
    brain.optimizers_step()
    assert seen["main"] <= 1.01e-6
    assert all(torch.equal(a, b) for a, b in zip(seen["gates"], gate_grads))
    brain.optimizer.step, brain.gate_optimizer.step = main_step, gate_step
    NoamScheduler(lr_initial=7e-4, n_warmup_steps=1)(brain.optimizer)
    assert brain.optimizer.param_groups[0]["lr"] == pytest.approx(7e-4)
    assert brain.controller.optimizer.param_groups[0]["lr"] == 0.05
    assert brain.gate_optimizer.param_groups[0]["lr"] == 0.1


def state(brain):
    gates = {k: v.clone() for k, v in brain.gates.state_dict().items()}
    return gates, brain.controller.state_dict(), brain.optimizer.state_dict(), \
        brain.gate_optimizer.state_dict()


def assert_same(a, b):
    if isinstance(a, torch.Tensor):
        assert torch.allclose(a.float(), b.float(), atol=1e-6, rtol=0), (a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    else:
        assert a == b


def test_resume_after_a_crash_mid_epoch_is_identical(w2v2, tmp_path):
    data = audio(8)
    reference = make_brain(copy.deepcopy(w2v2).train(), tmp_path / "a",
                           ckpt=tmp_path / "ca")
    reference.fit(range(1), data, train_loader_kwargs=LOADER, progressbar=False)
    crashed = make_brain(copy.deepcopy(w2v2).train(), tmp_path / "b",
                         ckpt=tmp_path / "cb")
    fit_batch = crashed.fit_batch

    def crash_at_three(batch):
        if crashed.step == 3:
            raise Crash
        return fit_batch(batch)

    crashed.fit_batch = crash_at_three
    with pytest.raises(Crash):
        crashed.fit(range(1), data, train_loader_kwargs=LOADER, progressbar=False)
    resumed = make_brain(copy.deepcopy(w2v2).train(), tmp_path / "b",
                         ckpt=tmp_path / "cb")
    resumed.fit(range(1), data, train_loader_kwargs=LOADER, progressbar=False)
    assert resumed.optimizer_step == reference.optimizer_step == 4
    assert_same(state(resumed), state(reference))


def test_transformer_asr_student(tmp_path):
    hparams = tiny_transformer_asr()
    model = hparams["model"].train()

    class AsrStage(Stage):
        def encoder_states(self, module, batch):
            wavs, lengths = batch.sig
            feats = hparams["normalize"](hparams["compute_features"](wavs), lengths)
            layers, states = module[1].encoder.layers, []
            hooks = [layers[0].register_forward_pre_hook(
                lambda m, args, kwargs: states.append(kwargs.get("src", args[0]
                                                                 if args else None)),
                with_kwargs=True)]
            hooks += [layer.register_forward_hook(
                lambda m, i, o: states.append(o[0] if isinstance(o, tuple) else o))
                for layer in layers]
            try:
                module[1].encode(module[0](feats), lengths)
            finally:
                for hook in hooks:
                    hook.remove()
            return states, lengths

    width = hparams["model"][1].encoder.layers[0].pos_ffn.ffn[0].in_features
    torch.manual_seed(0)
    l0 = L0Config(["head", "mha", "ffn_unit", "ffn"],
                  LayerDistillation(width, width, [1, 2]),
                  LagrangianController(0.5, warmup_steps=0, lr_lambda=0.05),
                  reg_lr=0.1)
    brain = AsrStage({"student": model}, lambda p: torch.optim.AdamW(p, 1e-3),
                     hparams={"l0": l0, "output_folder": str(tmp_path)},
                     run_opts={"device": "cpu"})
    brain.attach_l0()
    before = brain.l0_stats()
    brain.fit(range(3), audio(4), train_loader_kwargs=LOADER, progressbar=False)
    assert brain.l0_stats()["expected"] > before["expected"] + 0.005
    assert brain.controller.lambda_1.item() != 0


@pytest.mark.parametrize("levels, layers, match", [
    (["head", "nope"], (1,), "nope"),
    (["conv_channel"], (1,), "conv"),
    (FAHP, (1, 3), "layer 3"),
])
def test_bad_inputs_are_named(levels, layers, match, tmp_path):
    hparams = tiny_transformer_asr()
    with pytest.raises(UserInputError, match=match):
        l0 = L0Config(levels, LayerDistillation(32, 32, list(layers)),
                      LagrangianController(0.5))
        brain = Stage({"student": hparams["model"]},
                      lambda p: torch.optim.AdamW(p, 1e-3),
                      hparams={"l0": l0, "output_folder": str(tmp_path)},
                      run_opts={"device": "cpu"})
        brain.attach_l0()
    with pytest.raises(UserInputError, match="target"):
        LagrangianController(1.0)


def _average_on_rank(rank, folder):
    import os

    from speechbrain_sparse.pruning.l0_training import average_gradients

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=os.environ["L0_PORT"])
    torch.distributed.init_process_group("gloo", rank=rank, world_size=2)
    try:
        torch.manual_seed(0)
        parameter = torch.nn.Parameter(torch.zeros(3))
        parameter.grad = torch.full((3,), float(rank + 1))  # ranks disagree
        optimizer = torch.optim.SGD([parameter], lr=0.1)  # Adam would hide it
        average_gradients([parameter])
        optimizer.step()
        torch.save(parameter.detach(), f"{folder}/rank{rank}.pt")
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_gate_gradients_are_averaged_over_ddp_ranks(tmp_path, monkeypatch):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        monkeypatch.setenv("L0_PORT", str(sock.getsockname()[1]))
    torch.multiprocessing.spawn(_average_on_rank, args=(str(tmp_path),), nprocs=2)
    first, second = (torch.load(tmp_path / f"rank{r}.pt") for r in (0, 1))
    assert torch.equal(first, second)
    assert torch.allclose(first, torch.full((3,), -0.15))  # mean of 1 and 2
