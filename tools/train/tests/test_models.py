"""Shapes and losses of the three models."""

import numpy as np
import pytest
import torch

from qalpha_train.data import ACTIONS, Dataset
from qalpha_train.guardian import Guardian, GuardianModule, elbo_terms, fit_regimes, info_nce, kmeans, regime_names
from qalpha_train.oracle import Oracle, pinball_loss, quantile_label
from qalpha_train.strategist import POLICIES, Strategist, trajectories

B, W, F = 5, 16, 8


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


def test_guardian_outputs():
    net = Guardian(F, W, d_model=16, latent=4, regimes=4).eval()
    probs, change = net(torch.randn(B, W, F))
    assert probs.shape == (B, 4) and change.shape == (B, 1)
    assert torch.allclose(probs.sum(-1), torch.ones(B))
    # Strictly inside (0, 1) even where a bare sigmoid rounds to 0 or 1.
    with torch.no_grad():
        net.change_head[-1].bias.fill_(1e4)
    _, change = net(torch.randn(B, W, F))
    assert (change > 0).all() and (change < 1).all()


def test_oracle_quantiles_shape_and_monotone():
    net = Oracle(F, W, horizons=3, d_model=16).eval()
    with torch.no_grad():
        net.head.weight.mul_(50)  # wild raw outputs: monotone must hold by construction
        net.target_scale.copy_(torch.tensor([0.001, 0.002, 0.004]))
    q = net(torch.randn(64, W, F) * 5)
    assert q.shape == (64, 3, 3)
    assert (q[..., 1:] >= q[..., :-1]).all()
    net_grn = Oracle(F, W, horizons=2, d_model=16, heads=4, var_grn=True).eval()
    assert net_grn(torch.randn(B, W, F)).shape == (B, 2, 3)


def test_strategist_logits_and_conditioning():
    net = Strategist(F, W, d_model=16, layers=2, heads=2).eval()
    x = torch.randn(B, W, F)
    lo = net(x, torch.full((B, 1), -0.01))
    hi = net(x, torch.full((B, 1), 0.01))
    assert lo.shape == (B, 3)
    assert not torch.allclose(lo, hi)  # the target return reaches the logits
    # Causal: the logits read the newest token; changing only the newest bar changes them.
    y = x.clone()
    y[:, -1] += 1
    zero = torch.zeros(B, 1)
    assert not torch.allclose(net(y, zero), net(x, zero))


def test_pinball_loss_hand_computed():
    pred = torch.tensor([[0.0, 1.0, 2.0]])
    target = torch.tensor([1.5])
    # errors y − ŷ = 1.5, 0.5, −0.5; q = .1 .5 .9 → .15, .25, max(−.45, .05) = .05
    got = pinball_loss(pred, target, (0.1, 0.5, 0.9))
    assert got.item() == pytest.approx((0.15 + 0.25 + 0.05) / 3)


def test_info_nce_identical_views_beat_shuffled():
    z = torch.randn(32, 8)
    same = info_nce(z, z, tau=0.2)
    shuffled = info_nce(z, z[torch.randperm(32)], tau=0.2)
    assert same < shuffled
    assert same < np.log(32)  # better than chance


def test_elbo_terms_finite_and_kl_zero_at_prior():
    module = GuardianModule(features=[f"f{i}" for i in range(F)], window=W, d_model=16, latent=4)
    module.train()
    terms = module.losses(torch.randn(B, W, F))
    assert all(torch.isfinite(v) for v in terms.values())
    assert set(terms) == {"recon", "kl", "nce", "loss"}
    terms["loss"].backward()
    x = torch.randn(B, W, F)
    zero = elbo_terms(x, x, torch.zeros(B, 4), torch.zeros(B, 4))
    assert zero["recon"] == 0 and zero["kl"] == 0


def test_kmeans_finds_separated_clusters():
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    x = np.concatenate([c + rng.normal(0, 0.1, (50, 2)) for c in centers])
    c, labels = kmeans(x, 3, seed=1)
    for j in range(3):
        assert len(set(labels[j * 50:(j + 1) * 50])) == 1
    assert sorted(np.round(c).tolist()) == sorted(centers.tolist())


def test_regime_names():
    assert regime_names(2) == ["range", "shock"]
    assert regime_names(3) == ["trend", "range", "shock"]
    assert regime_names(5) == ["trend", "trend_2", "range", "range_2", "shock"]


def test_fit_regimes_names_shock_by_volatility(dataset):
    data = Dataset(dataset, W)
    train = data.split("train")
    net = Guardian(F, W, d_model=16, latent=4, regimes=3)
    summary = fit_regimes(net, train, seed=0, steps=50)
    assert summary["names"] == ["trend", "range", "shock"]
    assert summary["rvol"][-1] == max(summary["rvol"])
    assert summary["absret"][0] >= summary["absret"][1]
    assert bool(net.regimes_fitted)
    assert sum(summary["counts"]) == len(train)


def test_quantile_labels():
    assert [quantile_label(q) for q in (0.1, 0.5, 0.9, 0.05, 0.975)] == ["q10", "q50", "q90", "q05", "q975"]


def test_trajectories_span_returns(dataset):
    data = Dataset(dataset, W)
    train = data.split("train")
    t = trajectories(train, data.meta.fee, rtg_steps=4, seed=0)
    n = len(train)
    assert len(t["end"]) == n * len(POLICIES)
    assert set(np.unique(t["action"])) <= {0, 1, 2} and len(ACTIONS) == 3
    hindsight, random = t["rtg"][:n], t["rtg"][-n:]
    assert hindsight.mean() > random.mean()
    # The hindsight policy's 1-step return is the dataset's reward.
    one = trajectories(train, data.meta.fee, rtg_steps=1, seed=0)
    np.testing.assert_allclose(one["rtg"][:n], train.reward[train.ends], atol=1e-6)
