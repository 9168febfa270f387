"""Oracle: a Temporal Fusion Transformer (Lim et al. 2019) for forward-return quantiles.

Shaped for the engine's per-bar inference (one window in, ``quantiles [1, H, Q]`` out); only past
observed inputs exist (no static covariates, no known future inputs), so TFT's static encoders and
decoder-side inputs are absent:

- **variable selection network**: each feature gets its own linear embedding (``1 → d``); selection
  weights = softmax(GRN(the bar's F raw values) → F) — the same function class as TFT's GRN over the
  concatenated embeddings, since those are linear in the values; the bar's input is the weighted sum
  of the embeddings (TFT's per-variable GRN on each embedding is ``var_grn=True``, off by default for
  latency);
- **LSTM encoder** over the window, gated skip connection (GLU, add & norm) to the selected inputs;
- **enrichment GRN**, then **interpretable multi-head attention** (heads share the value projection
  and are averaged), the newest bar querying all bars, gated add & norm;
- position-wise **GRN**, gated add & norm with the LSTM output, then the **quantile head**:
  per horizon, the lowest quantile plus softplus increments, summed with an upper-triangular matmul —
  monotone (q10 ≤ q50 ≤ q90) by construction;
- **pinball loss** on targets divided by each horizon's train std (``target_scale``, a buffer); the
  graph multiplies it back, so exported quantiles are simple returns.
"""

from __future__ import annotations

from typing import Dict, List, Sequence

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import Split

QUANTILES = (0.1, 0.5, 0.9)


def quantile_label(q: float) -> str:
    """0.1 → ``q10``, 0.5 → ``q50``, 0.975 → ``q975`` (the digits are the level's decimals)."""
    digits = f"{q:.6f}".split(".")[1].rstrip("0")
    return "q" + (digits if len(digits) >= 2 else digits.ljust(2, "0"))


def pinball_loss(pred: torch.Tensor, target: torch.Tensor, quantiles: Sequence[float]) -> torch.Tensor:
    """Mean pinball (quantile) loss. ``pred [..., Q]``, ``target [...]``:
    ``max(q·(y − ŷ), (q − 1)·(y − ŷ))``."""
    q = torch.as_tensor(quantiles, dtype=pred.dtype, device=pred.device)
    err = target.unsqueeze(-1) - pred
    return torch.maximum(q * err, (q - 1) * err).mean()


class GRN(nn.Module):
    """Gated residual network: LayerNorm(skip(x) + GLU(W₂·ELU(W₁·x)))."""

    def __init__(self, d_in: int, d_hidden: int, d_out: int, dropout: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(d_in, d_hidden)
        self.fc2 = nn.Linear(d_hidden, d_hidden)
        self.gate = nn.Linear(d_hidden, 2 * d_out)
        self.skip = nn.Linear(d_in, d_out) if d_in != d_out else nn.Identity()
        self.norm = nn.LayerNorm(d_out)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.drop(self.fc2(F.elu(self.fc1(x))))
        return self.norm(self.skip(x) + F.glu(self.gate(h), dim=-1))


class GateAddNorm(nn.Module):
    def __init__(self, d: int, dropout: float = 0.0):
        super().__init__()
        self.gate = nn.Linear(d, 2 * d)
        self.norm = nn.LayerNorm(d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.norm(skip + F.glu(self.gate(self.drop(x)), dim=-1))


class VariableSelection(nn.Module):
    def __init__(self, n_features: int, d: int, var_grn: bool, dropout: float):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_features, d) * 0.1)
        self.bias = nn.Parameter(torch.zeros(n_features, d))
        self.select = GRN(n_features, d, n_features, dropout)
        self.var_grn = GRN(d, d, d, dropout) if var_grn else None

    def forward(self, x: torch.Tensor):
        """``x [B, W, F]`` → (``[B, W, d]``, selection weights ``[B, W, F]``)."""
        w = torch.softmax(self.select(x), -1)
        if self.var_grn is None:
            # Σ_f w_f (x_f·E_f + b_f) without materializing [B, W, F, d].
            out = (w * x) @ self.weight + w @ self.bias
        else:
            emb = self.var_grn(x.unsqueeze(-1) * self.weight + self.bias)
            out = (w.unsqueeze(-1) * emb).sum(-2)
        return out, w


class InterpretableAttention(nn.Module):
    """TFT's multi-head attention: per-head query/key projections, one shared value projection,
    heads averaged. Only the newest bar queries (the forecast is made there)."""

    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        if d % heads:
            raise ValueError(f"d_model {d} is not a multiple of heads {heads}")
        self.heads, self.dk = heads, d // heads
        self.q = nn.Linear(d, d)
        self.k = nn.Linear(d, d)
        self.v = nn.Linear(d, self.dk)
        self.out = nn.Linear(self.dk, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, w, _ = x.shape
        q = self.q(x[:, -1:]).view(b, 1, self.heads, self.dk).transpose(1, 2)  # [B, h, 1, dk]
        k = self.k(x).view(b, w, self.heads, self.dk).transpose(1, 2)  # [B, h, W, dk]
        v = self.v(x).unsqueeze(1)  # [B, 1, W, dk]
        att = torch.softmax(q @ k.transpose(-1, -2) / self.dk ** 0.5, -1)
        return self.out(self.drop(att @ v).mean(1))  # [B, 1, d]


class Oracle(nn.Module):
    """The network; :meth:`forward` is the exported graph (window → quantiles ``[B, H, Q]``)."""

    def __init__(self, n_features: int, window: int, horizons: int, quantiles: Sequence[float] = QUANTILES,
                 d_model: int = 32, heads: int = 2, lstm_layers: int = 1, dropout: float = 0.1,
                 var_grn: bool = False):
        super().__init__()
        self.window, self.horizons, self.quantiles = window, horizons, tuple(quantiles)
        q = len(self.quantiles)
        self.vsn = VariableSelection(n_features, d_model, var_grn, dropout)
        self.lstm = nn.LSTM(d_model, d_model, num_layers=lstm_layers, batch_first=True)
        self.lstm_gate = GateAddNorm(d_model, dropout)
        self.enrich = GRN(d_model, d_model, d_model, dropout)
        self.attention = InterpretableAttention(d_model, heads, dropout)
        self.attention_gate = GateAddNorm(d_model, dropout)
        self.position_grn = GRN(d_model, d_model, d_model, dropout)
        self.output_gate = GateAddNorm(d_model, 0.0)
        self.head = nn.Linear(d_model, horizons * q)
        self.register_buffer("target_scale", torch.ones(horizons))
        # Column 0 as is, softplus of the others, then a cumulative sum as a matmul (tract-friendly).
        self.register_buffer("first", torch.tensor([1.0] + [0.0] * (q - 1)))
        self.register_buffer("cumsum", torch.triu(torch.ones(q, q)))

    def forward(self, window: torch.Tensor) -> torch.Tensor:
        x, _ = self.vsn(window)
        h, _ = self.lstm(x)
        h = self.lstm_gate(h, x)
        e = self.enrich(h)
        a = self.attention_gate(self.attention(e), e[:, -1:])
        p = self.output_gate(self.position_grn(a), h[:, -1:])[:, 0]  # [B, d]
        raw = self.head(p).view(-1, self.horizons, len(self.quantiles))
        steps = raw * self.first + F.softplus(raw) * (1 - self.first)
        return (steps @ self.cumsum) * self.target_scale.view(1, -1, 1)


class OracleModule(L.LightningModule):
    def __init__(self, features: List[str], window: int, horizons: List[int], d_model: int = 32,
                 heads: int = 2, lstm_layers: int = 1, dropout: float = 0.1, var_grn: bool = False,
                 lr: float = 1e-3, target_scale: List[float] | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.net = Oracle(len(features), window, len(horizons), QUANTILES, d_model, heads, lstm_layers,
                          dropout, var_grn)
        if target_scale is not None:
            self.net.target_scale.copy_(torch.tensor(target_scale, dtype=torch.float32))

    def loss(self, batch) -> torch.Tensor:
        scale = self.net.target_scale.view(1, -1, 1)
        pred = self.net(batch["window"]) / scale
        return pinball_loss(pred, batch["target"] / scale[..., 0], self.net.quantiles)

    def training_step(self, batch, _):
        loss = self.loss(batch)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, _):
        self.log("val_loss", self.loss(batch), prog_bar=True, sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=1e-4)


def target_scale(train: Split) -> List[float]:
    """Per-horizon std of the forward returns on the train windows (1 where it is 0)."""
    s = train.fwd[train.ends].std(axis=0)
    return [float(v) if v > 0 else 1.0 for v in s]


class OracleBatches:
    def __init__(self, split: Split):
        self.split = split

    def __call__(self, idx: List[int]) -> Dict[str, torch.Tensor]:
        ends = self.split.ends[np.asarray(idx)]
        return {
            "window": torch.from_numpy(self.split.windows(ends)),
            "target": torch.from_numpy(self.split.fwd[ends].astype(np.float32)),
        }
