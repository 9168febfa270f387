"""Resume after interruption: `--resume` continues from last.ckpt, global step and epoch carry on."""

import torch

from conftest import train_args
from qalpha_train import cli


def _state(path):
    ckpt = torch.load(str(path), map_location="cpu", weights_only=False)
    return ckpt["global_step"], ckpt["epoch"]


def test_resume_continues_from_last_checkpoint(dataset, tmp_path, capsys):
    args = train_args("oracle", dataset, tmp_path, "--no-export")
    assert cli.main(args + ["--epochs", "1"]) == 0
    step1, epoch1 = _state(tmp_path / "oracle" / "last.ckpt")
    assert step1 > 0 and epoch1 == 0

    # A fresh run must not silently overwrite the interrupted one.
    assert cli.main(args + ["--epochs", "2"]) == 2
    assert "--resume" in capsys.readouterr().err

    # Mark the interrupted run's state (a buffer training never changes; a restart would recompute
    # it from the data): the resumed run must carry the mark.
    last = tmp_path / "oracle" / "last.ckpt"
    ckpt = torch.load(str(last), map_location="cpu", weights_only=False)
    marked = ckpt["state_dict"]["net.target_scale"] * 3
    ckpt["state_dict"]["net.target_scale"] = marked
    torch.save(ckpt, str(last))

    assert cli.main(args + ["--epochs", "2", "--resume"]) == 0
    step2, epoch2 = _state(last)
    assert step2 == 2 * step1 and epoch2 > epoch1
    resumed = torch.load(str(last), map_location="cpu", weights_only=False)["state_dict"]
    assert torch.equal(resumed["net.target_scale"], marked)
    assert (tmp_path / "oracle" / "best_model.ckpt").exists()


def test_resume_without_a_checkpoint_is_refused(dataset, tmp_path, capsys):
    assert cli.main(train_args("strategist", dataset, tmp_path, "--resume")) == 2
    assert "last.ckpt" in capsys.readouterr().err
