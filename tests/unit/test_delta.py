"""Sparse deltas: bit-identical round trips, size, refusals (wrong base, bad files)."""

import collections
import os

import pytest
import torch

from speechbrain_sparse.cli import main
from speechbrain_sparse.delta import (
    FORMAT_NAME,
    FORMAT_VERSION,
    apply_delta,
    create_delta,
    describe_delta,
)
from speechbrain_sparse.errors import MissingInputError, UserInputError
from speechbrain_sparse.fileio import save_record


class Small(torch.nn.Module):
    """fp32 and bf16 parameters, a fp16 buffer and BatchNorm's running buffers."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(16, 16)
        self.half = torch.nn.Linear(8, 8).to(torch.bfloat16)
        self.norm = torch.nn.BatchNorm1d(16)
        self.register_buffer("scale", torch.randn(32).to(torch.float16))


def changed_copy(state, fraction=0.2, seed=1):
    """A copy of ``state`` with ``fraction`` of each float tensor's entries changed."""
    generator = torch.Generator().manual_seed(seed)
    out = collections.OrderedDict()
    for name, tensor in state.items():
        tensor = tensor.detach().clone()
        if tensor.is_floating_point():
            pick = torch.rand(tensor.shape, generator=generator) < fraction
            noise = torch.randn(tensor.shape, generator=generator).to(tensor.dtype)
            tensor[pick] += noise[pick]
        out[name] = tensor
    out._metadata = getattr(state, "_metadata", None)
    return out


def assert_same(rebuilt, expected):
    assert list(rebuilt) == list(expected)
    for name, tensor in expected.items():
        assert rebuilt[name].dtype == tensor.dtype, name
        assert torch.equal(rebuilt[name], tensor), name


@pytest.fixture
def pair():
    torch.manual_seed(0)
    base = Small().state_dict()
    finetuned = changed_copy(base)
    finetuned["norm.num_batches_tracked"] = torch.tensor(7)
    finetuned["linear.bias"][3] = -0.0 if base["linear.bias"][3] == 0 else 0.0
    return base, finetuned


def test_state_dict_round_trip_is_bit_identical(pair, tmp_path):
    base, finetuned = pair
    finetuned["linear.weight"][0, 0] = -0.0  # bits, not values, decide a change
    base["linear.weight"][0, 0] = 0.0
    finetuned["adapter.weight"] = torch.randn(4, 4)  # new: stored whole
    finetuned["half.weight"] = finetuned["half.weight"].float()  # dtype changed
    path = tmp_path / "d.delta"
    info = create_delta(base, finetuned, path)
    # new, dtype changed, and the 0-dim num_batches_tracked (whole is smaller)
    assert info["layouts"]["dense"] == 3 and info["layouts"]["delta"] >= 4
    rebuilt = apply_delta(base, path)
    assert_same(rebuilt, finetuned)
    assert rebuilt._metadata == finetuned._metadata
    assert [p.name for p in tmp_path.iterdir()] == ["d.delta"]  # no temp file


def test_model_is_rebuilt_in_place(pair, tmp_path):
    base, finetuned = pair
    path = tmp_path / "d.delta"
    create_delta(base, finetuned, path)
    model = Small()
    model.load_state_dict(base)
    weight = model.linear.weight
    assert apply_delta(model, path) is model
    assert model.linear.weight is weight  # the same Parameter, overwritten
    assert_same(model.state_dict(), finetuned)


def test_a_model_cannot_take_new_tensors_in_place(pair, tmp_path):
    base, finetuned = pair
    finetuned["extra"] = torch.ones(2)
    create_delta(base, finetuned, tmp_path / "d.delta")
    model = Small()
    model.load_state_dict(base)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(UserInputError, match="adds or reshapes tensor 'extra'"):
        apply_delta(model, tmp_path / "d.delta")
    assert_same(model.state_dict(), before)  # nothing changed


def test_wrong_base_is_refused_naming_both(pair, tmp_path):
    base, finetuned = pair
    path = tmp_path / "d.delta"
    create_delta(base, finetuned, path, base_name="pre/model.ckpt")
    other = changed_copy(base, fraction=0.01, seed=5)
    with pytest.raises(UserInputError) as error:
        apply_delta(other, path, base_name="other/model.ckpt")
    message = str(error.value)
    assert "pre/model.ckpt" in message and "other/model.ckpt" in message
    assert str(path) in message and "\n" not in message
    renamed = collections.OrderedDict((f"x.{k}", v) for k, v in base.items())
    with pytest.raises(UserInputError, match="lacks tensor 'scale'"):
        apply_delta(renamed, path)


def test_non_finite_values_are_refused_at_creation(pair, tmp_path):
    base, finetuned = pair
    finetuned["half.weight"][0, 0] = float("nan")
    with pytest.raises(UserInputError, match="'half.weight' has 1 non-finite"):
        create_delta(base, finetuned, tmp_path / "d.delta", finetuned_name="ft")
    assert not any(tmp_path.iterdir())


def test_damaged_files_are_refused_with_one_line(pair, tmp_path):
    base, finetuned = pair
    path = tmp_path / "d.delta"
    create_delta(base, finetuned, path)
    data = path.read_bytes()

    truncated = tmp_path / "truncated.delta"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserInputError, match="truncated.delta: cannot read"):
        apply_delta(base, truncated)

    record = torch.load(path, weights_only=True)
    record["payload"]["values"]["float32"][0] += 1.0
    save_record(tmp_path / "tampered.delta", FORMAT_NAME, FORMAT_VERSION,
                {k: v for k, v in record.items()
                 if k not in ("format", "format_version")})
    with pytest.raises(UserInputError, match="tampered.delta: corrupted sparse "
                                             "delta: payload checksum mismatch"):
        apply_delta(base, tmp_path / "tampered.delta")

    torch.save(dict(base), tmp_path / "model.ckpt")
    with pytest.raises(UserInputError, match="not a speechbrain_sparse.SparseDelta"):
        apply_delta(base, tmp_path / "model.ckpt")
    with pytest.raises(MissingInputError, match="sparse delta not found"):
        describe_delta(tmp_path / "none.delta")


def test_a_twenty_percent_change_costs_under_a_quarter(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(512, 1024), torch.nn.ReLU(),
                                torch.nn.Linear(1024, 512), torch.nn.LayerNorm(512))
    base = model.state_dict()
    finetuned = changed_copy(base, fraction=0.2)
    torch.save(finetuned, tmp_path / "model.ckpt")
    info = create_delta(base, finetuned, tmp_path / "d.delta")
    ratio = info["file_bytes"] / os.path.getsize(tmp_path / "model.ckpt")
    assert 0.2 < ratio <= 0.25, ratio
    assert abs(info["changed"] / info["entries"] - 0.2) < 0.01


@pytest.fixture
def folders(tmp_path):
    """A base and a fine-tuned model folder as the Transformer recipes write them."""
    torch.manual_seed(0)
    base = Small().state_dict()
    finetuned = changed_copy(base)
    for name, state, count in (("pre", base, 10), ("ft", finetuned, 12)):
        folder = tmp_path / name / "model"
        folder.mkdir(parents=True)
        torch.save(state, folder / "model.ckpt")
        torch.save({"count": count, "glob_mean": torch.ones(3) * count},
                   folder / "normalizer.ckpt")
        (folder / "tokenizer.model").write_bytes(b"sentencepiece")
        (folder / "model_info.json").write_text(f'{{"stage": "{name}"}}')
    return tmp_path / "pre" / "model", tmp_path / "ft" / "model"


def test_cli_rebuilds_a_model_folder_file_for_file(folders, tmp_path, capsys):
    pre, ft = folders
    delta = tmp_path / "utsang.delta"
    assert main(["delta", "create", "--base", str(pre), "--finetuned", str(ft),
                 "--out", str(delta)]) == 0
    line = capsys.readouterr().out
    assert "entries changed" in line and "x the dense" in line
    assert "files stored whole: model_info.json, normalizer.ckpt" in line
    out = tmp_path / "ft2"
    assert main(["delta", "apply", "--base", str(pre), "--delta", str(delta),
                 "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in ft.iterdir())
    for item in ft.iterdir():
        assert (out / item.name).read_bytes() == item.read_bytes(), item.name
    assert_same(torch.load(out / "model.ckpt", weights_only=True),
                torch.load(ft / "model.ckpt", weights_only=True))
    assert main(["delta", "inspect", str(delta)]) == 0
    assert "entries changed" in capsys.readouterr().out


def test_cli_refuses_another_base_in_one_line(folders, tmp_path, capsys):
    pre, ft = folders
    delta = tmp_path / "d.delta"
    main(["delta", "create", "--base", str(pre), "--finetuned", str(ft),
          "--out", str(delta)])
    capsys.readouterr()
    # a checkpoint file of other weights
    other = tmp_path / "other.ckpt"
    torch.save(changed_copy(torch.load(pre / "model.ckpt"), seed=9), other)
    assert main(["delta", "apply", "--base", str(other), "--delta", str(delta),
                 "--out", str(tmp_path / "x.ckpt")]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and str(other) in error
    assert "--base must be the base model folder" in error
    # the right weights but another tokenizer
    (pre / "tokenizer.model").write_bytes(b"another")
    assert main(["delta", "apply", "--base", str(pre), "--delta", str(delta),
                 "--out", str(tmp_path / "ft3")]) == 2
    error = capsys.readouterr().err.strip()
    assert "tokenizer.model differs" in error and error.count("\n") == 0
    assert not (tmp_path / "ft3").exists()


def test_cli_on_checkpoint_files(tmp_path, capsys):
    torch.manual_seed(0)
    base = Small().state_dict()
    torch.save(base, tmp_path / "pre.ckpt")
    torch.save(changed_copy(base), tmp_path / "ft.ckpt")
    args = ["--base", str(tmp_path / "pre.ckpt")]
    assert main(["delta", "create", *args, "--finetuned", str(tmp_path / "ft.ckpt"),
                 "--out", str(tmp_path / "d.delta")]) == 0
    assert main(["delta", "apply", *args, "--delta", str(tmp_path / "d.delta"),
                 "--out", str(tmp_path / "ft2.ckpt")]) == 0
    assert_same(torch.load(tmp_path / "ft2.ckpt", weights_only=True),
                torch.load(tmp_path / "ft.ckpt", weights_only=True))
    other = changed_copy(base, seed=3)
    torch.save(other, tmp_path / "other.ckpt")
    assert main(["delta", "apply", "--base", str(tmp_path / "other.ckpt"), "--delta",
                 str(tmp_path / "d.delta"), "--out", str(tmp_path / "x.ckpt")]) == 2
    error = capsys.readouterr().err.strip()
    assert f"made for base '{tmp_path / 'pre.ckpt'}'" in error
    assert f"not {tmp_path / 'other.ckpt'}" in error and "\n" not in error
