"""Sparse checkpoint export: exact round trip, size, and errors on bad files."""

import os
import struct
import zipfile

import pytest
import torch

from speechbrain_sparse.masks import ParameterMask
from speechbrain_sparse.pruning.obs import magnitude_prune_matrix
from speechbrain_sparse.pruning.sparse_export import (
    load_sparse_checkpoint,
    save_sparse_checkpoint,
)


def pruned_model(sparsity=0.8, width=256):
    """A small network whose Linear weights are magnitude-pruned to ``sparsity``."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(width, width), torch.nn.LayerNorm(width),
        torch.nn.Linear(width, 2 * width), torch.nn.ReLU(),
        torch.nn.Linear(2 * width, width), torch.nn.BatchNorm1d(width),
    )
    masks = {}
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("weight") and param.dim() == 2:
                result = magnitude_prune_matrix(param, sparsity)
                param.copy_(result.weight)
                masks[name] = result.mask
    return model.eval(), masks


def file_size(path):
    return os.path.getsize(path)


def test_round_trip_is_exact_and_outputs_match(tmp_path):
    model, masks = pruned_model()
    state = model.state_dict()
    path = tmp_path / "sparse.ckpt"
    save_sparse_checkpoint(state, path, masks=masks)
    loaded = load_sparse_checkpoint(path)
    assert list(loaded) == list(state)
    for name, tensor in state.items():
        assert loaded[name].dtype == tensor.dtype
        assert torch.equal(loaded[name], tensor), name
    copy, _ = pruned_model()
    with torch.no_grad():
        for param in copy.parameters():
            param.add_(1.0)  # make sure loading, not the seed, restores it
    copy.load_state_dict(loaded)
    inputs = torch.randn(8, 256)
    assert torch.equal(copy(inputs), model(inputs))
    assert [p.name for p in tmp_path.iterdir()] == ["sparse.ckpt"]  # no temp file


def test_file_is_at_most_a_quarter_of_the_dense_checkpoint_at_80_percent(tmp_path):
    model, masks = pruned_model(sparsity=0.8)
    state = model.state_dict()
    torch.save(state, tmp_path / "dense.ckpt")
    save_sparse_checkpoint(state, tmp_path / "sparse.ckpt", masks=masks)
    ratio = file_size(tmp_path / "sparse.ckpt") / file_size(tmp_path / "dense.ckpt")
    assert ratio <= 0.25
    # Without masks the nonzero pattern is used; the ratio is the same.
    save_sparse_checkpoint(state, tmp_path / "auto.ckpt")
    assert file_size(tmp_path / "auto.ckpt") <= file_size(tmp_path / "sparse.ckpt")


def test_other_dtypes_and_names(tmp_path):
    weight = torch.randn(16, 16).masked_fill(torch.rand(16, 16) < 0.7, 0.0)
    state = {
        "module.enc.w": weight.to(torch.bfloat16),
        "module.enc.h": weight.half(),
        "steps": torch.tensor(3),
        "flags": torch.tensor([True, False]),
        "ids": torch.arange(5),
        "scalar": torch.tensor(0.0),
        "empty": torch.zeros(0, 4),
    }
    mask = ParameterMask({"enc.w": weight != 0})  # canonical name, as masks keep them
    path = tmp_path / "mixed.ckpt"
    save_sparse_checkpoint(state, path, masks=mask)
    loaded = load_sparse_checkpoint(path)
    for name, tensor in state.items():
        assert loaded[name].dtype == tensor.dtype and torch.equal(loaded[name], tensor)


def test_min_sparsity_chooses_the_layout(tmp_path):
    weight = torch.ones(64, 64)
    weight[:, :8] = 0.0  # 12.5 % sparse
    dense_path, sparse_path = tmp_path / "d.ckpt", tmp_path / "s.ckpt"
    save_sparse_checkpoint({"w": weight}, dense_path, min_sparsity=0.5)
    save_sparse_checkpoint({"w": weight}, sparse_path, min_sparsity=0.1)
    record = torch.load(dense_path, weights_only=True)
    assert [t["layout"] for t in record["tensors"]] == ["dense"]
    record = torch.load(sparse_path, weights_only=True)
    assert [t["layout"] for t in record["tensors"]] == ["bitmask"]
    for path in (dense_path, sparse_path):
        assert torch.equal(load_sparse_checkpoint(path)["w"], weight)


def test_save_errors_write_nothing(tmp_path):
    path = tmp_path / "bad.ckpt"
    weight = torch.ones(2, 2)
    with pytest.raises(ValueError, match="nonzero entries outside its mask"):
        save_sparse_checkpoint({"w": weight}, path,
                               masks={"w": torch.eye(2, dtype=torch.bool)})
    with pytest.raises(ValueError, match="bool tensor of shape"):
        save_sparse_checkpoint({"w": weight}, path, masks={"w": torch.ones(3) > 0})
    with pytest.raises(TypeError, match="'epoch'"):
        save_sparse_checkpoint({"w": weight, "epoch": 3}, path)
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def saved(tmp_path):
    model, masks = pruned_model(width=64)
    path = tmp_path / "model.ckpt"
    save_sparse_checkpoint(model.state_dict(), path, masks=masks)
    return path


def test_truncated_file_is_reported_with_its_name(saved):
    data = saved.read_bytes()
    saved.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=str(saved)):
        load_sparse_checkpoint(saved)


@pytest.mark.parametrize("record", ["data.pkl", "largest tensor"])
def test_corrupted_bytes_are_reported_with_the_name(saved, record):
    with zipfile.ZipFile(saved) as archive:
        entries = archive.infolist()
    if record == "data.pkl":
        entry = next(e for e in entries if e.filename.endswith("data.pkl"))
    else:
        entry = max(entries, key=lambda e: e.file_size)
    data = bytearray(saved.read_bytes())
    # The record's bytes follow its local header: 30 bytes, the name, the extra
    # field (torch pads it for alignment); the two lengths are at bytes 26-29.
    header = entry.header_offset
    name_length, extra_length = struct.unpack("<HH", data[header + 26 : header + 30])
    start = header + 30 + name_length + extra_length
    position = start + entry.file_size // 2
    data[position : position + 4] = bytes(255 - b for b in data[position:position + 4])
    saved.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=str(saved)):
        load_sparse_checkpoint(saved)


def test_foreign_and_missing_files(tmp_path):
    foreign = tmp_path / "plain.ckpt"
    torch.save({"w": torch.ones(2)}, foreign)
    with pytest.raises(ValueError, match="not a speechbrain_sparse.SparseCheckpoint"):
        load_sparse_checkpoint(foreign)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(ValueError, match=str(text)):
        load_sparse_checkpoint(text)
    with pytest.raises(FileNotFoundError, match="missing.ckpt"):
        load_sparse_checkpoint(tmp_path / "missing.ckpt")
