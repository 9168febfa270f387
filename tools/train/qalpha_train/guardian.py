"""Guardian: a contrastive VAE over feature windows, regimes from its latent space, a change score.

Training (Lightning, :class:`GuardianModule`) learns the representation only:

- encoder: Conv1d(F→d, k3) · GELU · Conv1d(d→d, k3) · GELU over time, then mean pooling → ``μ``,
  ``log σ²`` (``latent`` dims); a decoder MLP ``z → W·F`` reconstructs the window;
- loss = −ELBO per window element (½·MSE + KL / (W·F), Gaussian decoder with unit variance)
  + ``nce_weight`` × InfoNCE (NT-Xent, temperature ``tau``) between the projections of ``μ`` of two
  augmented views of each window (Gaussian jitter, per-feature scaling, a masked span of bars).

Regimes (:func:`fit_regimes`, after training, on the train split; plain torch, deterministic):

- k-means (k-means++, seeded, numpy) on the clean windows' ``μ``;
- clusters are **named by what their windows did**, measured on the close (not a model input):
  the cluster with the highest mean realized volatility (std of 1-bar log returns over the window)
  is ``shock``; the others are sorted by mean |log return| over the window, the larger half named
  ``trend`` (``trend_2``, …) and the rest ``range`` (``range_2``, …) — :func:`regime_names`. Output
  order is ``trend…, range…, shock``;
- the **regime head** (MLP on ``μ``) is fitted to the k-means labels (cross-entropy) → ``regime_probs``;
- the **change score** is P(the regime of this window differs from the regime of the window
  ``W/2`` bars earlier): a head on ``μ`` and on the difference of the latents of the window's newer
  and older halves, fitted with BCE on those k-means labels, squashed into ``(0.001, 0.999)`` so it is
  strictly inside (0, 1) even in f32.
"""

from __future__ import annotations

import math
from typing import Dict, List, Tuple

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import Split


def regime_names(n: int) -> List[str]:
    """Labels of ``n`` regimes in output order: ``trend…``, ``range…``, then ``shock``."""
    if n < 2:
        raise ValueError("the guardian needs at least 2 regimes (one is `shock`)")
    rest = n - 1
    n_trend = rest // 2
    n_range = rest - n_trend

    def numbered(base: str, k: int) -> List[str]:
        return [base if i == 0 else f"{base}_{i + 1}" for i in range(k)]

    return numbered("trend", n_trend) + numbered("range", n_range) + ["shock"]


def kmeans(x: np.ndarray, k: int, seed: int, iters: int = 100) -> Tuple[np.ndarray, np.ndarray]:
    """k-means with k-means++ seeding; returns (centroids [k, D], labels [N]). An emptied cluster is
    reseeded at the point farthest from its centroid."""
    rng = np.random.default_rng(seed)
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n < k:
        raise ValueError(f"k-means: {n} points for {k} clusters")
    c = [x[rng.integers(n)]]
    d2 = ((x - c[0]) ** 2).sum(1)
    for _ in range(1, k):
        p = d2 / d2.sum() if d2.sum() > 0 else np.full(n, 1.0 / n)
        c.append(x[rng.choice(n, p=p)])
        d2 = np.minimum(d2, ((x - c[-1]) ** 2).sum(1))
    c = np.stack(c)
    labels = np.zeros(n, dtype=np.int64)
    for it in range(iters):
        dist = ((x[:, None, :] - c[None, :, :]) ** 2).sum(-1)
        new = dist.argmin(1)
        for j in range(k):
            members = new == j
            if members.any():
                c[j] = x[members].mean(0)
            else:
                far = dist[np.arange(n), new].argmax()
                c[j] = x[far]
                new[far] = j
        if it > 0 and np.array_equal(new, labels):
            break
        labels = new
    return c, labels


class Guardian(nn.Module):
    """The network; :meth:`forward` is the exported graph (window → regime_probs, change_score)."""

    def __init__(self, n_features: int, window: int, d_model: int = 32, latent: int = 8,
                 regimes: int = 3, proj: int = 32):
        super().__init__()
        if window < 4:
            raise ValueError("the guardian needs a window of at least 4 bars")
        self.n_features, self.window, self.latent, self.regimes = n_features, window, latent, regimes
        self.conv1 = nn.Conv1d(n_features, d_model, 3, padding=1)
        self.conv2 = nn.Conv1d(d_model, d_model, 3, padding=1)
        self.mu = nn.Linear(d_model, latent)
        self.logvar = nn.Linear(d_model, latent)
        self.decoder = nn.Sequential(
            nn.Linear(latent, 2 * d_model), nn.GELU(), nn.Linear(2 * d_model, window * n_features)
        )
        self.projector = nn.Sequential(nn.Linear(latent, proj), nn.GELU(), nn.Linear(proj, proj))
        self.regime_head = nn.Sequential(nn.Linear(latent, d_model), nn.GELU(), nn.Linear(d_model, regimes))
        self.change_head = nn.Sequential(nn.Linear(2 * latent, d_model), nn.GELU(), nn.Linear(d_model, 1))
        # Set by `fit_regimes`; export refuses a guardian whose regimes were never fitted.
        self.register_buffer("regimes_fitted", torch.zeros((), dtype=torch.bool))
        self.register_buffer("centroids", torch.zeros(regimes, latent))

    def features(self, window: torch.Tensor) -> torch.Tensor:
        """Per-bar encoder features ``[B, d, W]``."""
        h = F.gelu(self.conv1(window.transpose(1, 2)))
        return F.gelu(self.conv2(h))

    def encode(self, window: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        h = self.features(window).mean(-1)
        return self.mu(h), self.logvar(h)

    def latents(self, window: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``μ`` of the whole window, and ``μ(newer half) − μ(older half)``."""
        h = self.features(window)
        half = self.window // 2
        mu = self.mu(h.mean(-1))
        shift = self.mu(h[..., half:].mean(-1)) - self.mu(h[..., :half].mean(-1))
        return mu, shift

    def heads(self, mu: torch.Tensor, shift: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """(regime logits, change logit)."""
        return self.regime_head(mu), self.change_head(torch.cat([mu, shift], -1))

    def forward(self, window: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        mu, shift = self.latents(window)
        logits, change = self.heads(mu, shift)
        # Strictly inside (0, 1): a bare sigmoid rounds to 1.0 in f32 for large logits.
        return torch.softmax(logits, -1), 0.001 + 0.998 * torch.sigmoid(change)


def augment(x: torch.Tensor, jitter: float = 0.1, scale: float = 0.1, mask_frac: float = 0.1) -> torch.Tensor:
    """One random view: Gaussian jitter, per-feature scaling, one zeroed span of bars."""
    b, w, f = x.shape
    v = x * (1.0 + scale * torch.randn(b, 1, f, device=x.device)) + jitter * torch.randn_like(x)
    span = max(1, int(round(mask_frac * w)))
    start = torch.randint(0, w - span + 1, (b, 1), device=x.device)
    t = torch.arange(w, device=x.device)[None, :]
    keep = ~((t >= start) & (t < start + span))
    return v * keep[..., None]


def info_nce(a: torch.Tensor, b: torch.Tensor, tau: float) -> torch.Tensor:
    """Symmetric NT-Xent: each row of ``a`` must pick its own row of ``b`` among the batch (and back)."""
    a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    logits = a @ b.T / tau
    target = torch.arange(len(a), device=a.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def elbo_terms(x: torch.Tensor, recon: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> Dict[str, torch.Tensor]:
    """−ELBO per window element: ``recon`` = ½·mean squared error, ``kl`` = KL(q‖N(0,I)) / (W·F)."""
    elements = x.shape[1] * x.shape[2]
    recon_loss = 0.5 * F.mse_loss(recon, x)
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp()).sum(-1).mean() / elements
    return {"recon": recon_loss, "kl": kl}


class GuardianModule(L.LightningModule):
    def __init__(self, features: List[str], window: int, d_model: int = 32, latent: int = 8,
                 regimes: int = 3, lr: float = 1e-3, tau: float = 0.2, nce_weight: float = 1.0,
                 beta: float = 1.0):
        super().__init__()
        self.save_hyperparameters()
        self.net = Guardian(len(features), window, d_model, latent, regimes)
        # The heads are fitted after training (`fit_regimes`); frozen here so DDP sees no unused
        # trainable parameters.
        for head in (self.net.regime_head, self.net.change_head):
            head.requires_grad_(False)

    def losses(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        mu, logvar = self.net.encode(x)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu
        recon = self.net.decoder(z).view_as(x)
        terms = elbo_terms(x, recon, mu, logvar)
        v1, _ = self.net.encode(augment(x))
        v2, _ = self.net.encode(augment(x))
        terms["nce"] = info_nce(self.net.projector(v1), self.net.projector(v2), self.hparams.tau)
        terms["loss"] = terms["recon"] + self.hparams.beta * terms["kl"] + self.hparams.nce_weight * terms["nce"]
        return terms

    def training_step(self, batch, _):
        t = self.losses(batch["window"])
        self.log_dict({f"train_{k}": v for k, v in t.items() if k != "loss"})
        self.log("train_loss", t["loss"], prog_bar=True)
        return t["loss"]

    def validation_step(self, batch, _):
        t = self.losses(batch["window"])
        self.log_dict({f"val_{k}": v for k, v in t.items() if k != "loss"}, sync_dist=True)
        self.log("val_loss", t["loss"], prog_bar=True, sync_dist=True)

    def configure_optimizers(self):
        trainable = [p for p in self.parameters() if p.requires_grad]
        return torch.optim.AdamW(trainable, lr=self.hparams.lr, weight_decay=1e-4)


class GuardianBatches:
    """Collate: sample indices → ``{"window": [B, W, F]}``."""

    def __init__(self, split: Split):
        self.split = split

    def __call__(self, idx: List[int]) -> Dict[str, torch.Tensor]:
        ends = self.split.ends[np.asarray(idx)]
        return {"window": torch.from_numpy(self.split.windows(ends))}


@torch.no_grad()
def _encode_all(net: Guardian, split: Split, batch: int = 4096) -> Tuple[torch.Tensor, torch.Tensor]:
    mus, shifts = [], []
    for i in range(0, len(split.ends), batch):
        mu, shift = net.latents(torch.from_numpy(split.windows(split.ends[i:i + batch])))
        mus.append(mu)
        shifts.append(shift)
    return torch.cat(mus), torch.cat(shifts)


def fit_regimes(net: Guardian, train: Split, seed: int = 0, steps: int = 300,
                max_points: int = 200_000) -> Dict[str, object]:
    """Fits k-means on the train latents, names and orders the clusters (see the module docs), then
    fits the regime and change heads. Deterministic for a given ``seed``. Returns a summary."""
    was_training = net.training
    net.eval()
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    mu, shift = _encode_all(net, train)
    n = len(mu)
    pick = np.sort(rng.choice(n, size=min(n, max_points), replace=False))
    k = net.regimes
    centroids, _ = kmeans(mu[pick].numpy(), k, seed)
    labels = ((mu.numpy()[:, None, :].astype(np.float64) - centroids[None]) ** 2).sum(-1).argmin(1)

    # Name clusters by realized volatility and |return| of their member windows.
    stats = train.window_stats(train.ends)
    rvol = np.array([stats["rvol"][labels == j].mean() if (labels == j).any() else -np.inf for j in range(k)])
    absret = np.array([stats["absret"][labels == j].mean() if (labels == j).any() else -np.inf for j in range(k)])
    shock = int(np.argmax(rvol))
    rest = sorted((j for j in range(k) if j != shock), key=lambda j: -absret[j])
    order = rest + [shock]  # output position i ← cluster order[i]
    remap = np.empty(k, dtype=np.int64)
    remap[order] = np.arange(k)
    labels = remap[labels]
    centroids = centroids[order]

    # Change target: the regime of the window W/2 bars earlier in the same segment, when there is one.
    lag = net.window // 2
    ends = train.ends
    row_to_window = np.full(train.n, -1, dtype=np.int64)
    row_to_window[ends] = np.arange(len(ends))
    prev_rows = ends - lag
    prev = np.where(
        (prev_rows >= 0) & (prev_rows - train.seg_start[ends] >= net.window - 1),
        row_to_window[np.clip(prev_rows, 0, None)], -1,
    )
    has_prev = prev >= 0
    changed = torch.from_numpy((labels != labels[np.where(has_prev, prev, 0)]).astype(np.float32))
    has_prev_t = torch.from_numpy(has_prev)

    y = torch.from_numpy(labels)
    params = list(net.regime_head.parameters()) + list(net.change_head.parameters())
    grad_before = [p.requires_grad for p in params]
    for p in params:  # fresh heads: refitting after more training starts from scratch
        if p.dim() > 1:
            nn.init.xavier_uniform_(p, generator=gen)
        else:
            nn.init.zeros_(p)
        p.requires_grad_(True)
    opt = torch.optim.Adam(params, lr=1e-2)
    batch = min(n, 8192)
    with torch.enable_grad():
        for _ in range(steps):
            i = torch.randint(0, n, (batch,), generator=gen)
            logits, change = net.heads(mu[i], shift[i])
            loss = F.cross_entropy(logits, y[i])
            m = has_prev_t[i]
            if m.any():
                loss = loss + F.binary_cross_entropy_with_logits(change[m, 0], changed[i][m])
            opt.zero_grad()
            loss.backward()
            opt.step()
    for p, g in zip(params, grad_before):
        p.requires_grad_(g)
    with torch.no_grad():
        logits, _ = net.heads(mu, shift)
        acc = float((logits.argmax(-1) == y).float().mean())
        net.centroids.copy_(torch.from_numpy(centroids).float())
        net.regimes_fitted.fill_(True)
    net.train(was_training)
    names = regime_names(k)
    return {
        "names": names,
        "counts": [int((labels == j).sum()) for j in range(k)],
        "rvol": [float(rvol[o]) for o in order],
        "absret": [float(absret[o]) for o in order],
        "head_accuracy": acc,
        "change_rate": float(changed[has_prev_t].mean()) if has_prev.any() else math.nan,
    }
