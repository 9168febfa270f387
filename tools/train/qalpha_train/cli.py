"""``qalpha-train`` (``python -m qalpha_train``): train one model, export it.

::

    qalpha-train train --model guardian|oracle|strategist --data DIR --out DIR [--epochs N]
        [--window W] [--seed S] [--devices N] [--num-nodes N] [--accelerator cpu|gpu|auto] [--resume]
    qalpha-train export --model guardian|oracle|strategist --ckpt CKPT --data DIR --out DIR

``train`` writes ``OUT/<model>/best_model.ckpt`` (lowest ``val_loss``), ``OUT/<model>/last.ckpt``
(every epoch; ``--resume`` continues from it, ``--epochs`` counting the epochs already done),
TensorBoard logs under ``OUT/<model>/tb``, then exports the best model to
``OUT/models/<model>.onnx`` + ``.json``. Several GPUs or nodes go through Lightning's DDP
(``--devices 4 --num-nodes 2``); the three models train in parallel as three processes, one GPU each
(``--devices 0,`` / ``1,`` / ``2,`` — the trailing comma makes it a GPU index — or
``CUDA_VISIBLE_DEVICES``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional, Sequence

MODELS = ("guardian", "oracle", "strategist")


def _devices(text: str):
    return int(text) if text.isdigit() else text


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="qalpha-train", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train one model, then export it")
    t.add_argument("--model", choices=MODELS, required=True)
    t.add_argument("--data", type=Path, required=True, help="the `qalpha dataset` directory")
    t.add_argument("--out", type=Path, required=True)
    t.add_argument("--epochs", type=int, default=20, help="total epochs (with --resume: including those done)")
    t.add_argument("--window", type=int, default=32, help="bars per input window")
    t.add_argument("--features", default="", help="comma-separated subset of the dataset's features (default: all)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--batch-size", type=int, default=256)
    t.add_argument("--lr", type=float, default=1e-3)
    t.add_argument("--d-model", type=int, default=32)
    t.add_argument("--heads", type=int, default=2, help="attention heads (oracle, strategist)")
    t.add_argument("--layers", type=int, default=None,
                   help="transformer blocks (strategist, default 2) or LSTM layers (oracle, default 1)")
    t.add_argument("--dropout", type=float, default=0.1)
    t.add_argument("--latent", type=int, default=8, help="guardian latent dims")
    t.add_argument("--regimes", type=int, default=3, help="guardian regimes (one is `shock`)")
    t.add_argument("--var-grn", action="store_true", help="oracle: TFT's per-variable GRN (slower)")
    t.add_argument("--rtg-steps", type=int, default=8, help="strategist: bars in a return-to-go")
    t.add_argument("--accelerator", choices=("cpu", "gpu", "auto"), default="auto")
    t.add_argument("--devices", type=_devices, default=1, help="count, or GPU indices like `1,` / `0,2`")
    t.add_argument("--num-nodes", type=int, default=1)
    t.add_argument("--workers", type=int, default=0, help="DataLoader worker processes")
    t.add_argument("--resume", action="store_true", help="continue from OUT/<model>/last.ckpt")
    t.add_argument("--version", default=None, help="the exported metadata's `version`")
    t.add_argument("--no-export", action="store_true")
    t.add_argument("--progress", action="store_true", help="show Lightning's progress bar")
    t.add_argument("--report-json", type=Path, default=None,
                   help="also write the run's report (best val loss, the loss per epoch, files) here")

    e = sub.add_parser("export", help="export a checkpoint to ONNX + metadata JSON")
    e.add_argument("--model", choices=MODELS, required=True)
    e.add_argument("--ckpt", type=Path, required=True)
    e.add_argument("--data", type=Path, required=True)
    e.add_argument("--out", type=Path, required=True, help="directory for <model>.onnx and <model>.json")
    e.add_argument("--seed", type=int, default=0, help="guardian: k-means seed if its regimes need fitting")
    e.add_argument("--version", default=None)
    return p


def module_class(model: str):
    if model == "guardian":
        from .guardian import GuardianModule
        return GuardianModule
    if model == "oracle":
        from .oracle import OracleModule
        return OracleModule
    from .strategist import StrategistModule
    return StrategistModule


def build(args, data):
    """(LightningModule, train loader, val loader) for ``args.model``."""
    from .data import loader

    train, val = data.split("train"), data.split("val")
    features = list(data.meta.features)
    common = dict(features=features, window=args.window, d_model=args.d_model, lr=args.lr)
    if args.model == "guardian":
        from .guardian import GuardianBatches, GuardianModule

        module = GuardianModule(latent=args.latent, regimes=args.regimes, **common)
        collate_train, collate_val = GuardianBatches(train), GuardianBatches(val)
        n_train, n_val = len(train), len(val)
    elif args.model == "oracle":
        from .oracle import OracleBatches, OracleModule, target_scale

        module = OracleModule(
            horizons=data.meta.horizons, heads=args.heads, lstm_layers=args.layers or 1,
            dropout=args.dropout, var_grn=args.var_grn, target_scale=target_scale(train), **common,
        )
        collate_train, collate_val = OracleBatches(train), OracleBatches(val)
        n_train, n_val = len(train), len(val)
    else:
        from .strategist import StrategistBatches, StrategistModule, trajectories

        fee = data.meta.fee
        tr = trajectories(train, fee, args.rtg_steps, args.seed)
        va = trajectories(val, fee, args.rtg_steps, args.seed + 1)
        scale = float(tr["rtg"].std()) or 1.0
        module = StrategistModule(
            layers=args.layers or 2, heads=args.heads, dropout=args.dropout,
            rtg_steps=args.rtg_steps, rtg_scale=scale, **common,
        )
        collate_train, collate_val = StrategistBatches(train, tr), StrategistBatches(val, va)
        n_train, n_val = len(tr["end"]), len(va["end"])
    return (
        module,
        loader(n_train, collate_train, args.batch_size, True, args.workers, args.seed),
        loader(n_val, collate_val, args.batch_size, False, args.workers, args.seed),
    )


def load_module(model: str, ckpt: Path):
    return module_class(model).load_from_checkpoint(str(ckpt), map_location="cpu")


def fit_guardian_regimes(ckpt: Path, data, seed: int) -> dict:
    """Fits the guardian's regimes and heads (:func:`qalpha_train.guardian.fit_regimes`) on the
    checkpoint's model and writes them back into the checkpoint."""
    import torch

    from .guardian import fit_regimes

    module = load_module("guardian", ckpt)
    summary = fit_regimes(module.net, data.split("train"), seed=seed)
    state = torch.load(str(ckpt), map_location="cpu", weights_only=False)
    state["state_dict"] = module.state_dict()
    state["guardian_regimes"] = summary
    torch.save(state, str(ckpt))
    return summary


def train(args) -> int:
    import lightning as L
    from lightning.pytorch.callbacks import ModelCheckpoint
    from lightning.pytorch.loggers import TensorBoardLogger

    from .data import Dataset

    run_dir = args.out / args.model
    last = run_dir / "last.ckpt"
    if args.resume and not last.exists():
        print(f"error: --resume: {last} not found (train without --resume first)", file=sys.stderr)
        return 2
    if not args.resume and last.exists():
        print(f"error: {last} exists: pass --resume to continue that run, or remove {run_dir}", file=sys.stderr)
        return 2

    L.seed_everything(args.seed, workers=True, verbose=False)
    features = [f for f in args.features.split(",") if f]
    data = Dataset(args.data, args.window, features or None)
    module, train_loader, val_loader = build(args, data)

    checkpoint = ModelCheckpoint(
        dirpath=run_dir, filename="best_model", monitor="val_loss", mode="min",
        save_top_k=1, save_last=True, enable_version_counter=False,
    )
    multi = args.num_nodes > 1 or (isinstance(args.devices, int) and args.devices > 1) or (
        isinstance(args.devices, str) and len([d for d in args.devices.split(",") if d.strip()]) > 1
    )
    curve = _ValLossCurve()
    trainer = L.Trainer(
        max_epochs=args.epochs,
        accelerator=args.accelerator,
        devices=args.devices,
        num_nodes=args.num_nodes,
        strategy="ddp" if multi else "auto",
        callbacks=[checkpoint, curve],
        logger=TensorBoardLogger(save_dir=str(run_dir), name="tb", version=""),
        log_every_n_steps=min(50, max(1, len(train_loader))),
        enable_progress_bar=args.progress,
        enable_model_summary=args.progress,
        deterministic=False,
    )
    trainer.fit(module, train_loader, val_loader, ckpt_path=str(last) if args.resume else None)
    if not trainer.is_global_zero:
        return 0
    best = Path(checkpoint.best_model_path or last)
    if best != run_dir / "best_model.ckpt":
        # No validation metric was logged (empty val split): the last weights are the best we have.
        import shutil

        shutil.copyfile(last, run_dir / "best_model.ckpt")
        best = run_dir / "best_model.ckpt"
    report = {"model": args.model, "best": str(best), "best_val_loss": _float(checkpoint.best_model_score),
              "global_step": trainer.global_step, "epochs": trainer.current_epoch,
              "val_loss_by_epoch": curve.values,
              "params": sum(p.numel() for p in module.parameters())}
    if args.model == "guardian":
        report["regimes"] = fit_guardian_regimes(best, data, args.seed)
    if not args.no_export:
        from .export import export

        module = load_module(args.model, best)
        kwargs = {"version": args.version} if args.version else {}
        onnx_path, meta_path = export(args.model, module.net, data, args.out / "models", **kwargs)
        report["onnx"], report["meta"] = str(onnx_path), str(meta_path)
    print(json.dumps(report, indent=1))
    if args.report_json is not None:
        args.report_json.write_text(json.dumps(report, indent=1) + "\n")
    return 0


class _ValLossCurve:
    """Collects the validation loss after each validation epoch (the report's training curve)."""

    def __new__(cls):
        from lightning.pytorch.callbacks import Callback

        class Curve(Callback):
            def __init__(self):
                self.values = []

            def on_validation_epoch_end(self, trainer, pl_module):
                if trainer.sanity_checking:
                    return
                v = trainer.callback_metrics.get("val_loss")
                if v is not None:
                    self.values.append(float(v))

        return Curve()


def _float(v) -> Optional[float]:
    return None if v is None else float(v)


def export_cmd(args) -> int:
    from .data import Dataset
    from .export import export

    module = load_module(args.model, args.ckpt)
    hp = module.hparams
    data = Dataset(args.data, int(hp["window"]), list(hp["features"]))
    if args.model == "guardian" and not bool(module.net.regimes_fitted):
        from .guardian import fit_regimes

        print(f"{args.ckpt}: regimes not fitted yet; fitting them on {args.data}/train.parquet", file=sys.stderr)
        fit_regimes(module.net, data.split("train"), seed=args.seed)
    kwargs = {"version": args.version} if args.version else {}
    onnx_path, meta_path = export(args.model, module.net, data, args.out, **kwargs)
    print(json.dumps({"onnx": str(onnx_path), "meta": str(meta_path)}))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    from .data import DatasetError

    args = parser().parse_args(argv)
    try:
        if args.command == "train":
            if args.model == "guardian" and args.window < 4:
                print("error: --window must be at least 4 for the guardian", file=sys.stderr)
                return 2
            return train(args)
        return export_cmd(args)
    except DatasetError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
