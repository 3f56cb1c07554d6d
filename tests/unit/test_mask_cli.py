"""The ``sb-sparse mask | combine | inspect`` commands on tiny checkpoints."""

import pytest
import torch

from speechbrain_sparse.cli import main
from speechbrain_sparse.masks import ParameterMask


@pytest.fixture
def checkpoints(tmp_path):
    """A pretrained state-dict file and a SpeechBrain-style fine-tuned folder."""
    generator = torch.Generator().manual_seed(0)
    pretrained = {
        "encoder.layers.0.self_att.att.in_proj_weight": torch.randn(
            12, 4, generator=generator
        ),
        "encoder.layers.0.norm1.norm.weight": torch.ones(4),
        "encoder.layers.1.pos_ffn.ffn.0.weight": torch.randn(8, 4, generator=generator),
        "ctc_lin.w.weight": torch.randn(5, 4, generator=generator),
        "positional_encoding.pe": torch.zeros(1, 10, 4),  # a buffer: not covered
    }
    finetuned = {
        n: t + 0.1 * torch.randn(t.shape, generator=generator)
        for n, t in pretrained.items()
    }
    torch.save(pretrained, tmp_path / "pretrained.pt")
    folder = tmp_path / "CKPT+2024-01-01+00-00-00+00"
    folder.mkdir()
    torch.save(finetuned, folder / "model.ckpt")
    torch.save({"step": 3}, folder / "brain.ckpt")
    return tmp_path, folder


TOTAL = 48 + 4 + 32 + 20


def run_mask(tmp_path, *extra, out="m.pt"):
    return main(
        [
            "mask",
            "--pretrained",
            str(tmp_path / "pretrained.pt"),
            "--out",
            str(tmp_path / out),
            *extra,
        ]
    )


@pytest.mark.parametrize("strategy", ["diff", "topk", "random"])
def test_mask_strategies(checkpoints, strategy, capsys):
    tmp_path, folder = checkpoints
    extra = ["--finetuned", str(folder)] if strategy == "diff" else []
    assert run_mask(tmp_path, "--strategy", strategy, "--density", "0.25", *extra) == 0
    mask = ParameterMask.load(tmp_path / "m.pt")
    assert mask.num_selected() == int(0.25 * TOTAL + 0.5)
    assert mask.method == strategy and "positional_encoding.pe" not in mask
    assert mask.options["pretrained_checkpoint"].endswith("pretrained.pt")
    assert "wrote" in capsys.readouterr().out


def test_mask_coverage_and_per_tensor(checkpoints):
    tmp_path, _ = checkpoints
    assert (
        run_mask(
            tmp_path,
            "--strategy",
            "topk",
            "--density",
            "0.5",
            "--include",
            "encoder.*",
            "--exclude",
            "*norm*",
            "--per-tensor",
        )
        == 0
    )
    mask = ParameterMask.load(tmp_path / "m.pt")
    assert sorted(mask) == [
        "encoder.layers.0.self_att.att.in_proj_weight",
        "encoder.layers.1.pos_ffn.ffn.0.weight",
    ]
    assert [int(t.sum()) for t in mask.values()] == [24, 16]


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--strategy", "topk", "--density", "0"], "density must be in (0, 1]"),
        (["--strategy", "topk", "--density", "1.5"], "density must be in (0, 1]"),
        (["--strategy", "diff", "--density", "0.1"], "needs --finetuned"),
        (["--strategy", "fisher", "--density", "0.1"], "computed by the recipe"),
        (
            ["--strategy", "topk", "--density", "0.1", "--include", "nothing*"],
            "no parameter matches Coverage",
        ),
        (
            ["--strategy", "diff", "--density", "0.1", "--finetuned", "/no/such"],
            "not found",
        ),
    ],
)
def test_mask_errors(checkpoints, extra, message, capsys):
    tmp_path, _ = checkpoints
    assert run_mask(tmp_path, *extra) == 2
    error = capsys.readouterr().err
    assert error.startswith("sb-sparse mask: error:") and message in error


def test_unknown_strategy_and_help(checkpoints, capsys):
    tmp_path, _ = checkpoints
    with pytest.raises(SystemExit) as exit_info:
        run_mask(tmp_path, "--strategy", "magic", "--density", "0.1")
    assert exit_info.value.code == 2 and "invalid choice" in capsys.readouterr().err
    for command in ("mask", "combine", "inspect"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert f"sb-sparse {command}" in capsys.readouterr().out


def test_combine_and_inspect(checkpoints, capsys):
    tmp_path, folder = checkpoints
    run_mask(
        tmp_path,
        "--strategy",
        "diff",
        "--density",
        "0.3",
        "--finetuned",
        str(folder / "model.ckpt"),
        out="diff.pt",
    )
    run_mask(tmp_path, "--strategy", "topk", "--density", "0.1", out="topk.pt")
    for op in ("union", "intersection"):
        assert (
            main(
                [
                    "combine",
                    "--op",
                    op,
                    str(tmp_path / "diff.pt"),
                    str(tmp_path / "topk.pt"),
                    "--out",
                    str(tmp_path / f"{op}.pt"),
                ]
            )
            == 0
        )
    diff, topk = (ParameterMask.load(tmp_path / f"{n}.pt") for n in ("diff", "topk"))
    assert ParameterMask.load(tmp_path / "union.pt") == diff | topk
    assert ParameterMask.load(tmp_path / "intersection.pt") == diff & topk
    capsys.readouterr()
    heatmap = tmp_path / "plots" / "heat.png"
    assert (
        main(
            [
                "inspect",
                str(tmp_path / "diff.pt"),
                "--against",
                str(tmp_path / "topk.pt"),
                "--heatmap",
                str(heatmap),
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert f"jaccard vs {tmp_path / 'topk.pt'}: {diff.jaccard(topk):.6f}" in out
    assert "encoder.layers.1" in out and "ctc_lin" in out
    assert heatmap.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_combine_mismatch_names_both_files(checkpoints, capsys):
    tmp_path, _ = checkpoints
    run_mask(tmp_path, "--strategy", "topk", "--density", "0.1", out="all.pt")
    run_mask(
        tmp_path,
        "--strategy",
        "topk",
        "--density",
        "0.1",
        "--include",
        "encoder.*",
        out="enc.pt",
    )
    a, b = str(tmp_path / "all.pt"), str(tmp_path / "enc.pt")
    assert (
        main(["combine", "--op", "union", a, b, "--out", str(tmp_path / "c.pt")]) == 2
    )
    error = capsys.readouterr().err
    assert a in error and b in error and "ctc_lin.w.weight" in error
    assert main(["inspect", a, "--against", b]) == 2
    assert main(["inspect", str(tmp_path / "missing.pt")]) == 2


def test_a_library_bug_keeps_its_traceback(checkpoints, monkeypatch, capsys):
    """A ``ValueError`` raised inside a library call is not a user error: the
    command does not turn it into one line, it propagates with its traceback."""
    tmp_path, _ = checkpoints

    def broken_save(*args, **kwargs):
        raise ValueError("raised inside torch.save")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(ValueError, match="raised inside torch.save") as error:
        run_mask(tmp_path, "--strategy", "topk", "--density", "0.25")
    assert error.traceback[-1].name == "broken_save"
    assert capsys.readouterr().err == ""


def test_a_user_error_is_one_line(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "missing.pt")]) == 2
    error = capsys.readouterr().err
    missing = tmp_path / "missing.pt"
    assert error == f"sb-sparse inspect: error: mask file not found: {missing}\n"
