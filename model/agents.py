"""The model's agents: user and merchant populations held as numpy arrays.

Each population is one mesa ``Agent`` whose attributes are arrays with one entry per
user (or merchant) agent, so every rule updates all of them at once (see
``docs/MODEL.md``, "Design concepts"). Inspect them the mesa way::

    users = model.agents_by_type[UserPopulation][0]
    users.pay["wechat"].mean()          # share of user agents with WeChat Pay
    users.record(42)                    # one user agent's state as a dict

The rules that change this state live in ``model/model.py``, in the order they run.
"""

from __future__ import annotations

import mesa
import numpy as np
import scipy.sparse as sp
from scipy.special import ndtr

from .params import ALIBABA_APPS, PLATFORMS, SECTORS


def small_world_network(n: int, mean_degree: int, rewire_prob: float,
                        rng: np.random.Generator) -> sp.csr_matrix:
    """Symmetric 0/1 adjacency of a Watts-Strogatz small world, built without loops.

    Users sit on a ring; each is tied to its ``mean_degree // 2`` nearest neighbours
    on each side, and each tie is rewired to a uniformly random user with probability
    ``rewire_prob``. Duplicate ties and self-ties are dropped.
    """
    half = max(1, mean_degree // 2)
    if n < 2:
        return sp.csr_matrix((n, n), dtype=np.float32)
    src = np.repeat(np.arange(n, dtype=np.int32), half)
    offsets = np.tile(np.arange(1, half + 1, dtype=np.int32), n)
    dst = (src + offsets) % n
    rewire = rng.random(src.size) < rewire_prob
    dst[rewire] = rng.integers(0, n, int(rewire.sum()), dtype=np.int32)
    keep = src != dst
    src, dst = src[keep], dst[keep]
    rows = np.concatenate([src, dst])
    cols = np.concatenate([dst, src])
    adj = sp.csr_matrix((np.ones(rows.size, dtype=np.float32), (rows, cols)), shape=(n, n))
    adj.data[:] = 1.0  # duplicates were summed on construction
    return adj


def _adoption_step(curve_share: np.ndarray, latent: np.ndarray) -> np.ndarray:
    """Step at which each agent adopts an app whose share of people follows ``curve_share``.

    An agent adopts once the curve's share exceeds its rank: agent i with uniform
    rank u_i adopts at the first step t with share(t) >= 1 - u_i, so the expected
    number of adopters follows the curve exactly. Agents never reached get a step
    past the horizon.
    """
    u = ndtr(latent)  # uniform ranks from the Gaussian copula
    need = 1.0 - u
    # curve_share is non-decreasing (a logistic); searchsorted finds the first step.
    mono = np.maximum.accumulate(curve_share)
    return np.searchsorted(mono, need, side="left").astype(np.int32)


class UserPopulation(mesa.Agent):
    """All user agents. Arrays are indexed by user agent.

    Attributes (each a dict by platform, "wechat" and "alipay", unless said):
        app_from: step at which the agent starts using the app (input curves).
        app: uses the app now.
        pay: pays with that platform (Alipay users are Alipay payers: it is a
            payment app first).
        ever_used: has ever used that platform's mini programs.
        first_use: step of first use (-1 if never), for habit.
        lapsed: has stopped using that platform's mini programs for now (rule 7).
        covered: (one array) counted an Alipay mini-program user on Alipay's launch day
            because Alipay's own functions became mini programs (rule 6); nothing was
            new to them, so they get no novelty (rule 8).
        active_month, active_today: used them in the last 30 days / on a typical day
            of this week.
        month_log_stay: the last four weeks' log-probability of not using that
            platform's mini programs on any day of the week (4 x n, a ring by step),
            from which monthly use is drawn.
        audience: dict by Alibaba app, the agent uses that app.
        propensity: personal daily-use propensity (log-odds), shared by platforms.
        openness: personal openness to trying mini programs (standard normal), shared
            by platforms; sets how fast the user discovers them.
        friends: sparse symmetric adjacency of friendship ties.
        cash: uniform rank of readiness to pay by phone, drawn once: a WeChat user
            may bind WeChat Pay only with ``cash < wechat_pay.max_share`` and takes
            part in red envelopes only with ``cash < red_envelope.max_share``.
    """

    def __init__(self, model, n: int, curves: dict[str, np.ndarray],
                 audience_shares: dict[str, float], adoption_correlation: float,
                 engagement_sd: float, mean_degree: int, rewire_prob: float):
        super().__init__(model)
        rng = model.rng
        self.n = n
        rho = adoption_correlation
        common = rng.standard_normal(n).astype(np.float32)

        def latent():
            own = rng.standard_normal(n).astype(np.float32)
            return np.sqrt(rho) * common + np.sqrt(1.0 - rho) * own

        self.app_from = {p: _adoption_step(curves[p], latent()) for p in PLATFORMS}
        self.audience = {app: ndtr(latent()) > 1.0 - audience_shares[app]
                         for app in ALIBABA_APPS}
        self.propensity = (engagement_sd * rng.standard_normal(n)).astype(np.float32)
        self.openness = rng.standard_normal(n).astype(np.float32)
        self.friends = small_world_network(n, mean_degree, rewire_prob, rng)
        self.cash = rng.random(n, dtype=np.float32)
        self.app = {p: np.zeros(n, dtype=bool) for p in PLATFORMS}
        self.pay = {p: np.zeros(n, dtype=bool) for p in PLATFORMS}
        self.ever_used = {p: np.zeros(n, dtype=bool) for p in PLATFORMS}
        self.first_use = {p: np.full(n, -1, dtype=np.int32) for p in PLATFORMS}
        self.lapsed = {p: np.zeros(n, dtype=bool) for p in PLATFORMS}
        self.covered = np.zeros(n, dtype=bool)
        self.active_month = {p: np.zeros(n, dtype=bool) for p in PLATFORMS}
        self.active_today = {p: np.zeros(n, dtype=bool) for p in PLATFORMS}
        self.month_log_stay = {p: np.zeros((4, n), dtype=np.float32) for p in PLATFORMS}

    def record(self, i: int) -> dict:
        """One user agent's current state, for a person to read."""
        out = {"propensity": float(self.propensity[i]), "openness": float(self.openness[i]),
               "friends": int(self.friends.indptr[i + 1] - self.friends.indptr[i])}
        for p in PLATFORMS:
            for attr in ("app", "pay", "ever_used", "lapsed", "active_month", "active_today"):
                out[f"{p}.{attr}"] = bool(getattr(self, attr)[p][i])
        out["alibaba_apps"] = [a for a in ALIBABA_APPS if self.audience[a][i]]
        return out


class MerchantPopulation(mesa.Agent):
    """All merchant agents. Arrays are indexed by merchant agent.

    Attributes:
        sector: index into ``SECTORS``.
        on: dict by platform, has a mini program there.
        extra_programs: dict by platform, the merchant's mini programs there beyond
            its first (an expected count, rule 5).
        accepts_alipay: already takes Alipay payment (Alipay's merchant strength).
        beta_admitted: may build on Alipay during its beta.
    """

    def __init__(self, model, n: int, sector_shares: np.ndarray, alipay_payment_share: float,
                 beta_access: float):
        super().__init__(model)
        rng = model.rng
        self.n = n
        self.sector = rng.choice(len(SECTORS), size=n, p=sector_shares).astype(np.int8)
        self.on = {p: np.zeros(n, dtype=bool) for p in PLATFORMS}
        self.extra_programs = {p: np.zeros(n, dtype=np.float32) for p in PLATFORMS}
        self.accepts_alipay = rng.random(n) < alipay_payment_share
        self.beta_admitted = rng.random(n) < beta_access

    def record(self, i: int) -> dict:
        return {"sector": SECTORS[self.sector[i]],
                "accepts_alipay": bool(self.accepts_alipay[i]),
                "beta_admitted": bool(self.beta_admitted[i]),
                **{f"{p}.on": bool(self.on[p][i]) for p in PLATFORMS}}
