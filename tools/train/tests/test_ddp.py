"""Several devices through Lightning's DDP: two CPU processes (gloo) train the guardian, whose heads
stay out of the DDP-trained parameters; rank 0 alone fits the regimes and exports."""

import json
import subprocess
import sys
from pathlib import Path

from conftest import train_args

TRAIN_DIR = Path(__file__).resolve().parents[1]


def test_ddp_two_cpu_processes(dataset, tmp_path):
    # A subprocess: Lightning's DDP launcher re-runs the command line for the other rank.
    args = train_args("guardian", dataset, tmp_path, "--epochs", "1", "--devices", "2")
    r = subprocess.run([sys.executable, "-m", "qalpha_train", *args], cwd=TRAIN_DIR,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    report = json.loads(r.stdout[r.stdout.index("{"):])
    assert report["regimes"]["names"] == ["trend", "range", "shock"]
    assert (tmp_path / "models" / "guardian.onnx").exists()
    # Each rank sees half the windows: half the steps of one process.
    single = train_args("guardian", dataset, tmp_path / "one", "--epochs", "1", "--no-export")
    from qalpha_train import cli

    assert cli.main(single) == 0
    import torch

    one = torch.load(str(tmp_path / "one" / "guardian" / "last.ckpt"), map_location="cpu", weights_only=False)
    assert report["global_step"] < one["global_step"]
