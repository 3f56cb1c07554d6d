"""Tests of the parameter mask: algebra, statistics, coverage and the file format."""

import os

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from speechbrain_sparse.masks import (
    Coverage,
    ParameterMask,
    canonical_named_parameters,
    canonical_parameter_name,
    layer_of,
)

SHAPES = {
    "encoder.layers.0.att.weight": (3, 4),
    "encoder.layers.1.ffn.bias": (5,),
    "ctc_lin.w.weight": (2, 3),
}
TOTAL = sum(torch.Size(s).numel() for s in SHAPES.values())


def make_mask(bits, **metadata):
    """Builds a mask over SHAPES from a flat list of booleans."""
    flat = torch.tensor(bits, dtype=torch.bool)
    sizes = [torch.Size(s).numel() for s in SHAPES.values()]
    tensors = {
        name: part.view(shape)
        for (name, shape), part in zip(SHAPES.items(), flat.split(sizes))
    }
    return ParameterMask(tensors, **metadata)


masks = st.lists(st.booleans(), min_size=TOTAL, max_size=TOTAL).map(make_mask)
FAST = settings(max_examples=40, deadline=None)


@FAST
@given(masks, masks)
def test_de_morgan(a, b):
    assert ~(a | b) == (~a & ~b)
    assert ~(a & b) == (~a | ~b)


@FAST
@given(masks, masks, masks)
def test_union_intersection_commutative_associative(a, b, c):
    assert a | b == b | a
    assert a & b == b & a
    assert (a | b) | c == a | (b | c)
    assert (a & b) & c == a & (b & c)
    assert a - b == a & ~b


@FAST
@given(masks, masks)
def test_densities_and_jaccard(a, b):
    assert (~a).density() == pytest.approx(1.0 - a.density())
    assert 0.0 <= a.jaccard(b) <= 1.0
    assert a.jaccard(a) == 1.0
    assert a.jaccard(b) == b.jaccard(a)
    per_layer = a.jaccard_per_layer(b)
    assert set(per_layer) == {"encoder.layers.0", "encoder.layers.1", "ctc_lin"}
    assert all(0.0 <= v <= 1.0 for v in per_layer.values())
    assert sum(row["selected"] for row in a.layer_table()) == a.num_selected()


def test_mapping_protocol_and_canonical_names():
    mask = make_mask([True] * TOTAL)
    assert len(mask) == 3 and list(mask) == list(SHAPES)
    assert mask["module.ctc_lin.w.weight"].shape == (2, 3)
    assert dict(mask.items()).keys() == SHAPES.keys()
    assert canonical_parameter_name("module._orig_mod.a.module.b") == "a.b"
    assert layer_of("0.encoder.layers.11.ffn.weight") == "0.encoder.layers.11"


def test_canonical_named_parameters_unwraps_wrappers():
    class Wrapper(torch.nn.Module):
        def __init__(self, name, inner):
            super().__init__()
            setattr(self, name, inner)

    model = Wrapper("module", Wrapper("_orig_mod", torch.nn.Linear(2, 2)))
    assert list(canonical_named_parameters(model)) == ["weight", "bias"]


def test_coverage_patterns_and_full():
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.LayerNorm(3))
    coverage = Coverage(include=["0.*", "1.weight"], exclude=["*.bias"])
    mask = ParameterMask.full(model, coverage)
    assert list(mask) == ["0.weight", "1.weight"]
    assert Coverage().covers("anything.at.all")
    assert (~mask).num_selected() == 0


def test_incompatible_masks_name_the_parameter():
    a = make_mask([True] * TOTAL)
    b = ParameterMask(
        {"encoder.layers.0.att.weight": torch.ones(4, 3, dtype=torch.bool)}
    )
    with pytest.raises(ValueError, match="encoder.layers.0.att.weight"):
        a | b


def test_file_round_trip(tmp_path):
    bits = [i % 3 == 0 for i in range(TOTAL)]
    mask = make_mask(bits, method="diff", options={"density": 0.3}, target_density=0.3)
    path = tmp_path / "mask.pt"
    mask.save(path)
    loaded = ParameterMask.load(path)
    assert loaded == mask
    assert loaded.method == "diff" and loaded.options == {"density": 0.3}
    assert loaded.target_density == 0.3
    assert loaded.coverage == Coverage()
    record = torch.load(path, weights_only=True)
    assert record["format_version"] == 1 and len(record["fingerprint"]) == 64
    assert record["parameters"][0] == {
        "name": "encoder.layers.0.att.weight",
        "shape": [3, 4],
        "selected": 4,
    }
    assert record["achieved_density"] == pytest.approx(mask.density())


def test_file_is_packed(tmp_path):
    mask = ParameterMask({"w": torch.rand(400, 1000) > 0.5})
    mask.save(tmp_path / "m.pt")
    assert os.path.getsize(tmp_path / "m.pt") < 400 * 1000 / 8 + 4096


def test_load_against_model_names_mismatching_parameter(tmp_path):
    mask = ParameterMask.full(torch.nn.Sequential(torch.nn.Linear(2, 3)))
    mask.save(tmp_path / "m.pt")
    ParameterMask.load(
        tmp_path / "m.pt", model=torch.nn.Sequential(torch.nn.Linear(2, 3))
    )
    with pytest.raises(ValueError, match=r"m\.pt.*'0\.weight'"):
        ParameterMask.load(
            tmp_path / "m.pt", torch.nn.Sequential(torch.nn.Linear(2, 4))
        )


def test_truncated_and_corrupted_files_are_detected(tmp_path):
    path = tmp_path / "m.pt"
    make_mask([True, False] * (TOTAL // 2) + [True]).save(path)
    data = path.read_bytes()
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated.pt"):
        ParameterMask.load(truncated)
    record = torch.load(path, weights_only=True)
    record["payload"][0] ^= 0xFF
    torch.save(record, tmp_path / "flipped.pt")
    with pytest.raises(ValueError, match="flipped.pt.*checksum"):
        ParameterMask.load(tmp_path / "flipped.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a mask")
    with pytest.raises(ValueError, match="junk.pt"):
        ParameterMask.load(tmp_path / "junk.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        ParameterMask.load(tmp_path / "missing.pt")


def test_atomic_write_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "m.pt"
    mask = make_mask([True] * TOTAL)
    mask.save(path)
    assert os.listdir(tmp_path) == ["m.pt"]

    def failing_save(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError):
        (~mask).save(path)
    assert os.listdir(tmp_path) == ["m.pt"]
    monkeypatch.undo()
    assert ParameterMask.load(path) == mask  # the old file is intact
