"""Strategist: a Decision Transformer (Chen et al. 2021) conditioned on a target return.

**Offline trajectories** (:func:`trajectories`), built from one split (the train split for
training): along every segment (one symbol, consecutive bars) several behaviour policies act every
bar — the dataset's hindsight action (``action``), the same with 25 % and 50 % of the bars replaced
by a uniformly random action, and a uniformly random policy (seeded) — so returns span bad to good.
A bar's reward is the dataset's: ``position × fwd_ret_{h0} − fee`` for long/short (fee = the round
trip, ``fee_bps`` × 2), 0 for flat (the dataset's ``reward`` column for the hindsight action).
**Return-to-go** at bar ``t`` is the *mean* reward of the policy over bars ``t … t+K−1`` (``K`` =
``rtg_steps``, cut at the segment end): a per-trade return, the unit of the engine's
``target_return`` (0.002 = 20 bp per trade).

**The graph** sees what the engine feeds — the window of states and one scalar target — so:

- the context is the window's ``W`` bars as (return-to-go, state) token pairs, ``2W`` tokens,
  with learned timestep embeddings;
- the return-to-go token carries the **same** conditioning return at every step (the target at
  inference; the decision bar's realized return-to-go in training, so training and inference match);
- **past actions are not tokens**: the engine cannot feed them, and a token the graph always fills
  with the same constant carries nothing. The action of each (return-to-go, state, action) triple is
  what the model *predicts*, from the newest state token, through a causal GPT (pre-LN blocks,
  additive float causal mask — tract runs it as an Add, not an ``Iff``);
- loss: cross-entropy of the decision bar's behaviour action.

At inference, ``target_return`` conditions the policy: a high target asks for the actions that
earned high returns in similar windows.
"""

from __future__ import annotations

from typing import Dict, List

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import ACTION_POSITION, Split

# (name, probability of replacing the hindsight action by a random one)
POLICIES = (("hindsight", 0.0), ("noisy25", 0.25), ("noisy50", 0.5), ("random", 1.0))


def trajectories(split: Split, fee: float, rtg_steps: int, seed: int) -> Dict[str, np.ndarray]:
    """Samples over all (window end, policy) pairs: ``end`` (row), ``action`` (class), ``rtg``."""
    rng = np.random.default_rng(seed)
    fwd0 = split.fwd[:, 0]
    ends, actions, rtgs = [], [], []
    for _, p_random in POLICIES:
        a = split.action.copy()
        swap = rng.random(split.n) < p_random
        a[swap] = rng.integers(0, 3, size=int(swap.sum()))
        pos = ACTION_POSITION[a]
        r = pos * fwd0 - fee * np.abs(pos)
        # Mean of r over [t, min(t+K, segment end + 1)) through per-segment cumulative sums.
        c = np.concatenate([[0.0], np.cumsum(r)])
        stop = np.minimum(np.arange(split.n) + rtg_steps, split.seg_end + 1)
        rtg = (c[stop] - c[np.arange(split.n)]) / (stop - np.arange(split.n))
        ends.append(split.ends)
        actions.append(a[split.ends])
        rtgs.append(rtg[split.ends])
    return {
        "end": np.concatenate(ends),
        "action": np.concatenate(actions).astype(np.int64),
        "rtg": np.concatenate(rtgs).astype(np.float32),
    }


class Block(nn.Module):
    """Pre-LN transformer block with an additive causal mask."""

    def __init__(self, d: int, heads: int, dropout: float):
        super().__init__()
        self.heads, self.dk = heads, d // heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, self.dk).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-1, -2) / self.dk ** 0.5 + mask, -1)
        y = (self.drop(att) @ v).transpose(1, 2).reshape(b, t, d)
        x = x + self.drop(self.proj(y))
        return x + self.drop(self.mlp(self.ln2(x)))


class Strategist(nn.Module):
    """The network; :meth:`forward` is the exported graph
    (window ``[B, W, F]``, target_return ``[B, 1]`` → action_logits ``[B, 3]``)."""

    def __init__(self, n_features: int, window: int, d_model: int = 32, layers: int = 2,
                 heads: int = 2, dropout: float = 0.1):
        super().__init__()
        if d_model % heads:
            raise ValueError(f"d_model {d_model} is not a multiple of heads {heads}")
        self.window = window
        self.embed_state = nn.Linear(n_features, d_model)
        self.embed_rtg = nn.Linear(1, d_model)
        self.embed_time = nn.Parameter(torch.zeros(1, window, d_model))
        self.ln_in = nn.LayerNorm(d_model)
        self.blocks = nn.ModuleList(Block(d_model, heads, dropout) for _ in range(layers))
        self.ln_out = nn.LayerNorm(d_model)
        self.action_head = nn.Linear(d_model, 3)
        n = 2 * window
        mask = torch.triu(torch.full((n, n), -1e9), diagonal=1)
        self.register_buffer("mask", mask, persistent=False)
        # Returns-to-go are fractions (1e-3); the embedding reads them in train-std units.
        self.register_buffer("rtg_scale", torch.ones(()))
        nn.init.normal_(self.embed_time, std=0.02)

    def forward(self, window: torch.Tensor, target_return: torch.Tensor) -> torch.Tensor:
        b, w, _ = window.shape
        s = self.embed_state(window) + self.embed_time
        r = self.embed_rtg((target_return / self.rtg_scale).view(b, 1, 1)) + self.embed_time
        # Interleave (rtg_1, s_1, rtg_2, s_2, …): the state token of each step sees its rtg.
        x = self.ln_in(torch.stack([r, s], dim=2).reshape(b, 2 * w, -1))
        for block in self.blocks:
            x = block(x, self.mask)
        return self.action_head(self.ln_out(x[:, -1]))


class StrategistModule(L.LightningModule):
    def __init__(self, features: List[str], window: int, d_model: int = 32, layers: int = 2,
                 heads: int = 2, dropout: float = 0.1, lr: float = 1e-3, rtg_steps: int = 8,
                 rtg_scale: float = 1.0):
        super().__init__()
        self.save_hyperparameters()
        self.net = Strategist(len(features), window, d_model, layers, heads, dropout)
        self.net.rtg_scale.fill_(rtg_scale)

    def loss(self, batch) -> torch.Tensor:
        logits = self.net(batch["window"], batch["rtg"])
        return F.cross_entropy(logits, batch["action"])

    def training_step(self, batch, _):
        loss = self.loss(batch)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, _):
        self.log("val_loss", self.loss(batch), prog_bar=True, sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=1e-4)


class StrategistBatches:
    def __init__(self, split: Split, samples: Dict[str, np.ndarray]):
        self.split, self.samples = split, samples

    def __call__(self, idx: List[int]) -> Dict[str, torch.Tensor]:
        i = np.asarray(idx)
        return {
            "window": torch.from_numpy(self.split.windows(self.samples["end"][i])),
            "rtg": torch.from_numpy(self.samples["rtg"][i]).view(-1, 1),
            "action": torch.from_numpy(self.samples["action"][i]),
        }
