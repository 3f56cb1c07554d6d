"""One line for what the user can fix, a traceback for bugs; never a NaN written."""

import errno
import types

import pytest
import torch

from speechbrain_sparse.asr.model_folder import MODEL_FILES, export_model_folder
from speechbrain_sparse.asr.options import ConfigError, load_yaml
from speechbrain_sparse.errors import UserInputError, exit_on_user_error
from speechbrain_sparse.fileio import NonFiniteTensorError, check_writable
from speechbrain_sparse.pruning.pretrained import PretrainedModel
from speechbrain_sparse.pruning.sparse_export import save_sparse_checkpoint


def raising(error):
    def main(argv):
        raise error
    return main


@pytest.mark.parametrize("number, reason", [
    (errno.EACCES, "Permission denied"),
    (errno.ENOSPC, "No space left on device"),
    (errno.EROFS, "Read-only file system"),
])
def test_permission_and_disk_errors_are_one_line_naming_the_file(number, reason):
    error = OSError(number, reason, "/results/model/model.ckpt")
    with pytest.raises(SystemExit) as exit_info:
        exit_on_user_error(raising(error), [], "train.py")
    assert exit_info.value.code == (
        f"train.py: error: /results/model/model.ckpt: {reason}")


def test_bugs_keep_their_traceback():
    with pytest.raises(KeyError):
        exit_on_user_error(raising(KeyError("optimizer")), [], "train.py")
    with pytest.raises(FileNotFoundError):  # not a user's file: a bug
        exit_on_user_error(raising(FileNotFoundError(2, "gone", "x")), [], "t")


def test_cli_reports_a_full_disk_in_one_line(monkeypatch, capsys, tmp_path):
    from speechbrain_sparse import cli
    from speechbrain_sparse.masks import ParameterMask

    mask = tmp_path / "a.mask"
    ParameterMask.full({"w": (2, 2)}).save(mask)

    def full_disk(self, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(ParameterMask, "save", full_disk)
    status = cli.main(["combine", "--op", "union", str(mask), str(mask),
                       "--out", str(tmp_path / "c.mask")])
    assert status == 2
    assert capsys.readouterr().err == (
        f"sb-sparse combine: error: {tmp_path / 'c.mask'}: No space left on device\n")


def test_check_writable_creates_nothing(tmp_path):
    check_writable(tmp_path / "a" / "b" / "model", "output_folder")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "f").write_text("")
    with pytest.raises(UserInputError, match=r"^output_folder: cannot write .*f/x: "
                                             r".*f is a file, not a folder$"):
        check_writable(tmp_path / "f" / "x", "output_folder")


def test_override_of_no_key_suggests_the_nearest(tmp_path):
    path = tmp_path / "stage.yaml"
    path.write_text("number_of_epochs: 2\nlr: 0.1\n")
    with pytest.raises(ConfigError, match=r"stage.yaml: --number_of_epoch: no such "
                                          r"key in the file \(did you mean "
                                          r"--number_of_epochs\?\)"):
        load_yaml(path, "number_of_epoch: 3")
    with pytest.raises(ConfigError, match=r"stage.yaml: --xyz: no such key in the "
                                          r"file$"):
        load_yaml(path, {"xyz": 3})
    with pytest.raises(ConfigError, match=r"not valid YAML: .*in: lr: \[0.1$"):
        load_yaml(path, "lr: [0.1")


def nan_state():
    return {"weight": torch.tensor([[1.0, float("nan")]]), "bias": torch.zeros(1)}


def test_export_model_folder_refuses_a_nan_model(tmp_path):
    work = tmp_path / "ckpt"
    work.mkdir()
    torch.save(nan_state(), work / "model.ckpt")
    torch.save({"glob_mean": torch.zeros(3), "count": 5}, work / "normalizer.ckpt")
    (work / "tok.model").write_bytes(b"spm")
    checkpoint = types.SimpleNamespace(
        paramfiles={name.split(".")[0]: work / name for name in MODEL_FILES})
    with pytest.raises(NonFiniteTensorError, match=r"model.ckpt: tensor 'weight' "
                                                   r"has 1 non-finite entries"):
        export_model_folder(checkpoint, work / "tok.model", tmp_path / "model")
    assert not (tmp_path / "model").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]


def test_pretrained_save_and_sparse_export_refuse_a_nan_model(tmp_path):
    model = torch.nn.Linear(2, 1)
    with torch.no_grad():
        model.bias.fill_(float("inf"))
    pretrained = PretrainedModel("speechbrain", None, model, family=None)
    with pytest.raises(NonFiniteTensorError, match=r"tensor 'bias'"):
        pretrained.save(tmp_path / "pruned")
    with pytest.raises(NonFiniteTensorError, match=r"sparse.pt: tensor 'weight'"):
        save_sparse_checkpoint(nan_state(), tmp_path / "sparse.pt")
    assert list(tmp_path.iterdir()) == []
