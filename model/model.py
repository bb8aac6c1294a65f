r"""The rules of the mini-program race, in the order they run each weekly step.

A step ``t`` is one week (``model/calendar.py`` says why). Notation: :math:`\sigma` is
the logistic function, :math:`N` the number of user agents, :math:`p` a platform
(WeChat or Alipay), :math:`s` a merchant sector. Parameter names are those of
``model/params.py``.

1. **App users** (input). User *i* uses app *p* from step ``app_from[p][i]``, drawn so
   that the expected share of people using *p* follows the curve fitted to the app
   figures of the calibration's data (``calibration/app_bases.py``),
   :math:`K_p (1 + g_p \max(0, y - 2018)) / (1 + e^{-(y - m_p)/w_p})` over the
   population (``app_curve``; only WeChat's ceiling grows, by *g* =
   ``apps.wechat_growth_per_year``). Alipay users pay with Alipay; Alipay's monthly app
   users are its users times ``apps.alipay_monthly_share``.

2. **WeChat Pay and red envelopes.** A WeChat user without WeChat Pay, with
   :math:`k_i` friends who have it, binds a card this week with probability

   .. math:: 1 - (1 - h)\,(1 - q\,a)^{k_i}

   if the user would ever pay by phone (a uniform rank :math:`\chi_i` drawn once below
   ``wechat_pay.max_share``; no other WeChat user ever binds a card), where *h* =
   ``wechat_pay.organic_weekly``, *a* = ``red_envelope.activation_prob``
   and the per-tie sending probability *q* is ``send_prob * strength`` in Spring
   Festival week and ``send_prob * strength * everyday_factor`` in other weeks (from
   ``red_envelope.first_year``). Participants in festival week, sender or receiver:
   :math:`[\chi_i < x]\,(1 - (1 - [\text{pay}_i](1 - (1-q)^{f_i}))\,(1-q)^{k_i})` with
   :math:`f_i` WeChat friends and *x* = ``red_envelope.max_share``: the share of WeChat
   users who take part at all.

3. **Traffic sharing.** From ``traffic_sharing.start`` the listed Alibaba apps open one
   after another over ``ramp_weeks``. Users of an opened app can reach Alipay mini
   programs without the Alipay app; merchants count them as reach.

4. **Merchants choose** (cross-side effect on merchants). Each merchant reviews its
   platforms with probability ``merchants.review_weekly``; a reviewing merchant of
   sector *s* has a mini program on *p* with probability

   .. math:: \sigma\big(\beta\,\phi_{s,p}\,R_p - c_s (1 - \delta\,[\text{on other}])
             + [p = \text{Alipay}](\alpha\,[\text{accepts Alipay}] - \kappa)\big)

   where :math:`R_p` is last week's reach (monthly mini-program users plus
   ``potential_reach_weight`` times the other users who can reach *p*, as a share of
   the population, users reached only through Alibaba apps counting
   ``traffic_sharing.reach_weight`` each; 0 before *p* opens to users), :math:`\beta` = ``reach_sensitivity``, :math:`\phi` the sector's
   fit, :math:`c_s` its build cost, :math:`\delta` = ``multihoming_discount`` and
   :math:`\alpha` = ``alipay_merchant_advantage`` and :math:`\kappa` =
   ``alipay_extra_cost``. WeChat opens to merchants at its launch; Alipay at its beta,
   to the share ``alipay.beta_access`` of merchants, and to all at its launch. From
   Alipay's launch every Alipay sector but games is at least ``first_party_catalog``
   covered: Alipay's and Alibaba's own mini programs.

5. **Mini programs built and retired.** A merchant on *p* has its first mini program
   and :math:`x_{j,p}` extra ones (with the developers who build for it), which follow

   .. math:: \dot x = b_p R_p - r x

   solved exactly over each step, *b* = ``programs.extra_per_year_<p>``, *r* =
   ``programs.retire_per_year``, :math:`R_p` last week's reach (rule 8); a merchant off *p*
   has none there. The count of *p*'s mini programs is :math:`\sum_j [\text{on}_{j,p}]
   (1 + x_{j,p})`. On Alipay, the reach includes the users of the opened Alibaba apps
   ("develop once, operate on multiple terminals").

6. **Users discover mini programs** (cross-side effect on users). The catalogue value
   of *p* is :math:`V_p = \sum_s n_s c_{p,s}^\gamma`, with :math:`n_s` the sector's
   need weight, :math:`c_{p,s}` the share of the sector's merchants on *p* and
   :math:`\gamma` = ``users.catalog_concavity``. A user who can
   reach *p* and has never used its mini programs tries one this week with probability
   :math:`1 - e^{-\lambda_i}`,

   .. math:: \lambda_i = \big(d_p V_p (1 + l\,[\text{pays on } p])\,[\text{uses app } p]
             + e\,o_i + w_i\big)\,\theta_i

   with *d* = ``discovery_weekly_<p>``, *l* = ``pay_discovery_lift``, *e* =
   ``traffic_sharing.exposure_weekly``, :math:`o_i` the number of opened Alibaba apps
   *i* uses (Alipay only: a user who reaches Alipay only through Alibaba apps discovers
   only through them), :math:`w_i = -\ln(1 - \text{wufu.discovery\_rate}) / n_W` for
   Alipay users in each of the :math:`n_W` Wufu weeks of a year from
   ``wufu.first_year`` (the weeks that a campaign of ``wufu.campaign_days`` days ending
   on New Year's Eve overlaps), and
   :math:`\theta_i` the user's openness to trying mini programs: Gamma-distributed with
   mean 1 and variance ``users.discovery_spread``, drawn once (the quantile
   :math:`\Phi(z_i)` of a standard normal :math:`z_i`). With a large variance many users
   are hardly open at all, so the number who have ever used mini programs levels off.
   On Alipay's launch day a share ``first_party_coverage`` of Alipay users become
   mini-program users at once (*covered*: Alipay's own functions became mini programs,
   so nothing was new to them).

7. **Users lapse and come back.** A user of *p*'s mini programs who has not lapsed
   lapses this week with probability ``users.lapse_weekly_<p>``; a lapsed user comes
   back with probability :math:`\rho` = ``users.return_weekly``. Lapsed users use none
   of *p*'s mini programs, so monthly users fall below the people who have ever used
   them; the share not lapsed tends to :math:`\rho / (l_p + \rho)`.

8. **Users use mini programs.** A mini-program user of *p* who has not lapsed uses one
   on a typical day of the week with probability

   .. math:: u_{i,p} = O_p\,\sigma(b + g V_p + \ell\,[\text{pays on } p] + \pi_i
             + h \min(\tau_{i,p}, T) + \nu e^{-\tau_{i,p}/\lambda} + F\,[\text{festival}]
             + D\,[t \ge t_D])

   the chance :math:`O_p` = ``apps.<p>_daily_open`` that the user opens the app that
   day (in Wufu weeks Alipay's is
   :math:`\sigma(\operatorname{logit} O + W)`, *W* = ``wufu.activity_lift``) times the
   chance of using a mini program in it (*b* = ``engagement_base``, the same on both
   platforms, *g* = ``engagement_catalog``, :math:`\ell` = ``pay_lift``,
   :math:`\pi_i` the personal propensity, *h* = ``habit_per_year`` and
   :math:`\tau_{i,p}` the years since *i* first used *p*'s mini programs, capped at
   *T* = ``habit_cap_years`` in the habit term; :math:`\nu` = ``novelty_lift`` and
   :math:`\lambda` = ``novelty_years``: a newcomer's extra use, which wears off (none
   for the users covered on Alipay's launch day, rule 6);
   *F* = ``spring_festival_lift``; *D* = ``necessities.use_lift`` from
   ``necessities.start``, :math:`t_D`: mini programs as daily necessities in 2020),
   and in the last 30 days with probability
   :math:`1 - \prod_{k=0}^{3} (1 - u_{i,p,t-k})^{7.5}`, the four weeks' daily
   probabilities; one uniform draw per user makes daily users a subset of monthly
   users. How often a daily user opens mini programs that day (the usage
   frequency of the reports) is a separate intensity,

   .. math:: n_{i,p} = 1 + e^{k + k_h \min(\tau_{i,p}, T)}\,V_p

   (*k* = ``uses_extra_log``, :math:`k_h` = ``uses_habit_per_year``): the first use of
   the day plus extra uses that grow with the catalogue and with habit. The output is
   its mean over the day's users.

9. **Record** the outputs of the step, in millions of people (agents times
   ``people_per_agent``) or millions of mini programs, into one row of a numpy array
   (``results()`` returns them as a frame). A model-level record costs nothing next to
   the rules; mesa's ``DataCollector`` would add about a tenth to a small run.

Example::

    from model import simulate
    frame = simulate({"red_envelope.strength": 0.0}, agents=20_000, seed=1)
    frame["wechat.pay_users"].iloc[-1]
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import mesa
import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import expit, gammaincinv, ndtr

from . import calendar
from .agents import MerchantPopulation, UserPopulation
from .params import (ALIBABA_APPS, PLATFORMS, SECTORS, check_run_setting, check_seed, resolve,
                     run_defaults)

#: Every output the model records each step: (column, unit, meaning).
OUTPUTS: tuple[tuple[str, str, str], ...] = (
    *[row for p in PLATFORMS for row in (
        (f"{p}.app_users", "million people", f"people using the {p} app"),
        (f"{p}.pay_users", "million people", f"people paying with {p}"),
        (f"{p}.miniprogram_users_cumulative", "million people",
         f"people who have ever used a {p} mini program"),
        (f"{p}.miniprogram_mau", "million people", f"{p} mini-program users this month"),
        (f"{p}.miniprogram_dau", "million people",
         f"{p} mini-program users on a typical day of the week"),
        (f"{p}.miniprogram_stickiness", "ratio", f"{p} mini-program daily / monthly users"),
        (f"{p}.miniprogram_uses_per_dau", "uses per day",
         f"mean {p} mini-program uses on a day of use, per daily user (usage frequency)"),
        (f"{p}.miniprogram_dau_share", "share",
         f"{p}'s share of all mini-program daily users"),
        (f"{p}.mini_programs_count", "million mini programs",
         f"{p} mini programs published: each merchant's first and its extra ones"),
    )],
    ("wechat.app_mau", "million people",
     "people using WeChat in the month (the WeChat app users: the curve is of monthly users)"),
    ("alipay.app_mau", "million people", "people opening the Alipay app in the month"),
    ("wechat.red_envelope_participants", "million people",
     "people sending or receiving WeChat red envelopes in Spring Festival week (blank "
     "in other weeks)"),
    ("all.users_multihoming_share", "share",
     "share of monthly mini-program users who use both platforms' mini programs"),
    ("all.merchants_multihoming_share", "share",
     "share of merchants with a mini program who are on both platforms"),
    ("all.spring_festival", "flag", "1 in the week holding New Year's Eve"),
)
OUTPUT_NAMES = tuple(name for name, _, _ in OUTPUTS)


#: Year from which the WeChat curve's ceiling may grow (apps.wechat_growth_per_year).
CEILING_GROWTH_FROM = 2018.0


def app_curve(years, ceiling: float, midpoint: float, scale: float, growth: float = 0.0):
    """App users in decimal year ``years``: a logistic whose ceiling grows by ``growth``
    a year after ``CEILING_GROWTH_FROM`` (rule 1; ``calibration/app_bases.py`` fits it)."""
    years = np.asarray(years, dtype=float)
    grown = ceiling * (1.0 + growth * np.maximum(0.0, years - CEILING_GROWTH_FROM))
    return grown / (1.0 + np.exp(-(years - midpoint) / scale))


def _logistic_share(dates, ceiling_people: float, midpoint: float, scale: float,
                    population: float, growth: float = 0.0) -> np.ndarray:
    years = np.array([calendar.decimal_year(d) for d in dates])
    share = app_curve(years, ceiling_people, midpoint, scale, growth) / population
    return np.clip(share, 0.0, 1.0)


class MiniProgramModel(mesa.Model):
    """Users and merchants choosing WeChat, Alipay or both for mini programs.

    Args:
        params: parameter overrides by dotted name (``model/params.py``); the rest
            take their defaults.
        agents: number of user agents.
        merchant_agents: number of merchant agents.
        start, end: first and last simulated day (weekly steps).
        seed: anything ``numpy.random.default_rng`` takes (an int or a
            ``SeedSequence``); the model's only random stream is ``self.rng``.
    """

    def __init__(self, params: dict[str, Any] | None = None, *, agents: int | None = None,
                 merchant_agents: int | None = None, start: dt.date | None = None,
                 end: dt.date | None = None, seed=None):
        super().__init__(rng=np.random.default_rng(check_seed(seed)))
        run = run_defaults()
        for key, value in (("agents", agents), ("merchant_agents", merchant_agents),
                           ("start", start), ("end", end)):
            if value is not None:
                run[key] = check_run_setting(key, value)
        self.p = p = resolve(params)
        self.dates = calendar.week_starts(run["start"], run["end"])
        self.n_steps = len(self.dates)
        self.years_per_step = calendar.STEP_DAYS / 365.25
        self.festival_year = calendar.festival_years(self.dates)
        self.wufu_year = calendar.campaign_years(self.dates, p["wufu.campaign_days"])
        self.wufu_year[self.wufu_year < p["wufu.first_year"]] = 0
        # weeks per campaign from the calendar, not from the run: a run that ends (or
        # starts) inside a campaign gives its weeks the same share as a longer run
        days = p["wufu.campaign_days"]
        self.wufu_weeks = {int(y): calendar.campaign_weeks(self.dates[0], days, int(y))
                           for y in np.unique(self.wufu_year[self.wufu_year > 0])}
        population = p["population.people_millions"]
        self.people_per_agent = population / run["agents"]  # million people per user agent
        self.programs_per_agent = p["merchants.population_millions"] / run["merchant_agents"]

        curves = {
            "wechat": _logistic_share(
                self.dates, p["apps.wechat_ceiling_accounts_millions"]
                / p["apps.wechat_accounts_per_person"],
                p["apps.wechat_midpoint_year"], p["apps.wechat_scale_years"], population,
                p["apps.wechat_growth_per_year"]),
            "alipay": _logistic_share(
                self.dates, p["apps.alipay_ceiling_millions"], p["apps.alipay_midpoint_year"],
                p["apps.alipay_scale_years"], population),
        }
        self.users = UserPopulation(
            self, run["agents"], curves,
            {app: p[f"traffic_sharing.{app}_audience"] for app in ALIBABA_APPS},
            p["apps.adoption_correlation"], p["users.engagement_sd"],
            p["network.mean_degree"], p["network.rewire_prob"])
        self.merchants = MerchantPopulation(
            self, run["merchant_agents"], self._normalised("merchant_share"),
            p["merchants.alipay_payment_share"], p["alipay.beta_access"])
        self.need = self._normalised("need")
        self.fit = {pl: np.array([p[f"sector.{s}.{pl}_fit"] for s in SECTORS]) for pl in PLATFORMS}
        self.build_cost = np.array([p[f"sector.{s}.build_cost"] for s in SECTORS])
        # Alipay's and Alibaba's own mini programs: every sector but games (rule 4).
        self._first_party = np.array([0.0 if s == "games" else p["alipay.first_party_catalog"]
                                      for s in SECTORS])
        self._sector_sizes = np.maximum(np.bincount(self.merchants.sector, minlength=len(SECTORS)), 1)

        self.open_step = {  # step from which each side may use each platform
            ("merchants", "wechat"): self._step_of(p["wechat.launch"]),
            ("users", "wechat"): self._step_of(p["wechat.launch"]),
            ("merchants", "alipay"): self._step_of(p["alipay.beta"]),
            ("users", "alipay"): self._step_of(p["alipay.launch"]),
        }
        self.app_open_step = self._traffic_sharing_schedule()
        self.necessities_from = (self._step_of(p["necessities.start"])
                                 if p["necessities.enabled"] else self.n_steps)
        self.open_apps = np.zeros(run["agents"], dtype=np.int8)  # opened Alibaba apps per user
        self._openness = self._discovery_spread()
        self._pay_friends = np.zeros(run["agents"], dtype=np.int32)  # see _paying_friends
        self._counted = np.zeros(run["agents"], dtype=bool)
        self.catalog = {pl: np.zeros(len(SECTORS)) for pl in PLATFORMS}
        self.reach = {pl: 0.0 for pl in PLATFORMS}
        self.uses_per_dau = {pl: np.nan for pl in PLATFORMS}
        self.current: dict[str, float] = {}
        self._recorded = np.full((self.n_steps, len(OUTPUT_NAMES)), np.nan)
        self.t = 0
        self.running = self.n_steps > 0

    # --- helpers ------------------------------------------------------------------
    def _step_of(self, day: dt.date) -> int:
        """Step from which a dated event applies (past the horizon if after the end)."""
        if day > self.dates[-1] + dt.timedelta(days=calendar.STEP_DAYS - 1):
            return self.n_steps
        return max(0, (day - self.dates[0]).days // calendar.STEP_DAYS)

    def _normalised(self, field: str) -> np.ndarray:
        raw = np.array([self.p[f"sector.{s}.{field}"] for s in SECTORS], dtype=float)
        if raw.sum() <= 0:
            from .errors import ParameterError
            raise ParameterError(f"parameters: sector.*.{field} are all 0; at least one must be > 0")
        return raw / raw.sum()

    def _traffic_sharing_schedule(self) -> dict[str, int]:
        p = self.p
        if not p["traffic_sharing.enabled"]:
            return {}
        apps = p["traffic_sharing.apps"]
        first = self._step_of(p["traffic_sharing.start"])
        gap = p["traffic_sharing.ramp_weeks"] / max(1, len(apps))
        return {app: first + int(round(i * gap)) for i, app in enumerate(apps)}

    def _discovery_spread(self) -> np.ndarray | None:
        """Each user's discovery multiplier :math:`\\theta_i` (rule 6): Gamma-distributed
        with mean 1 and variance ``users.discovery_spread``, read from the user's
        ``openness`` by its quantile; None when the variance is 0."""
        variance = self.p["users.discovery_spread"]
        if not variance:
            return None
        shape = 1.0 / variance
        quantile = ndtr(self.users.openness.astype(np.float64))  # float32 would round to 1
        return (gammaincinv(shape, quantile) / shape).astype(np.float32)

    def festival(self, t: int) -> int:
        """Year whose New Year's Eve falls in step ``t``, or 0."""
        return int(self.festival_year[t])

    def wufu(self, t: int) -> int:
        """Year of the Wufu campaign step ``t`` overlaps (from ``wufu.first_year``), or 0."""
        return int(self.wufu_year[t])

    def catalog_value(self, platform: str) -> float:
        return float(self.need @ self.catalog[platform] ** self.p["users.catalog_concavity"])

    def can_reach(self, platform: str) -> np.ndarray:
        """Users who can reach the platform's mini programs."""
        if platform == "wechat":
            return self.users.app["wechat"]
        return self.users.app["alipay"] | (self.open_apps > 0)

    # --- the step -----------------------------------------------------------------
    def step(self) -> None:
        t = self.t
        self.update_app_users(t)
        self.spread_wechat_pay(t)
        self.open_alibaba_apps(t)
        self.merchants_choose(t)
        self.build_programs(t)
        self.users_discover(t)
        self.users_lapse(t)
        self.users_use(t)
        self.record(t)
        self.t += 1
        self.running = self.t < self.n_steps

    def update_app_users(self, t: int) -> None:
        """Rule 1: app users follow the input curves; Alipay users pay with Alipay."""
        users = self.users
        for pl in PLATFORMS:
            users.app[pl] = users.app_from[pl] <= t
        users.pay["alipay"] = users.app["alipay"]

    def spread_wechat_pay(self, t: int) -> None:
        """Rule 2: organic WeChat Pay adoption and red envelopes along friendship ties."""
        users, p, rng = self.users, self.p, self.rng
        wechat, pay = users.app["wechat"], users.pay["wechat"]
        can_pay = users.cash < np.float32(p["wechat_pay.max_share"])
        if t == 0:
            pay |= wechat & can_pay & (rng.random(users.n, dtype=np.float32)
                                       < p["wechat_pay.initial_share"])
        q = self._send_prob(t)
        senders = (wechat & pay).astype(np.float32)
        draw = self._uniform_per_user()
        candidates = np.flatnonzero(wechat & ~pay & can_pay)
        if candidates.size:
            keep = 1.0 - p["wechat_pay.organic_weekly"]
            if q > 0:
                pay_friends = self._paying_friends(senders)[candidates]
                keep = keep * np.power(1.0 - q * p["red_envelope.activation_prob"],
                                       pay_friends.astype(np.float32))
            new = candidates[draw[candidates] >= keep]
        else:
            new = candidates
        if self.festival(t):
            self._participants = self._festival_participants(q, senders, wechat)
        else:
            self._participants = np.nan
        pay[new] = True

    def _uniform_per_user(self) -> np.ndarray:
        """One float32 uniform draw per user, whoever is eligible.

        Every weekly draw takes the same amount of the random stream whatever the state,
        and each user keeps their own draw. So with the same seed, a small change of a
        parameter changes only the choices of users near a threshold, not every draw
        after the first user who chose differently: the common random numbers of a
        calibration then give a loss that changes smoothly with the parameters.
        """
        return self.rng.random(self.users.n, dtype=np.float32)

    def _paying_friends(self, senders: np.ndarray) -> np.ndarray:
        """Each user's number of friends with WeChat Pay (``friends @ senders``), int32.

        Senders only ever grow (neither WeChat use nor WeChat Pay is lost), so the
        counts are kept from one call to the next and only the new senders' ties are
        added: the ties are symmetric, so a new sender's row lists the users whose count
        goes up by one. Work in proportion to new senders times their degree, instead of
        every tie every week. (Should a sender ever be lost, say a user's state set by
        hand, the counts start again from zero.)
        """
        sending = senders > 0
        if (self._counted & ~sending).any():
            self._pay_friends[:] = 0
            self._counted[:] = False
        new = np.flatnonzero(sending & ~self._counted)
        if new.size:
            ties = _row_columns(self.users.friends, new)
            self._pay_friends += np.bincount(ties, minlength=self.users.n).astype(np.int32)
            self._counted[new] = True
        return self._pay_friends

    def _send_prob(self, t: int) -> float:
        """Per-tie red-envelope sending probability in step ``t``."""
        p = self.p
        q = p["red_envelope.send_prob"] * p["red_envelope.strength"]
        first = p["red_envelope.first_year"]
        if self.festival(t) >= first:
            return min(q, 1.0)
        eve = calendar.NEW_YEARS_EVE.get(first)
        if eve is not None and self.dates[t] >= eve:
            return min(q * p["red_envelope.everyday_factor"], 1.0)
        return 0.0

    def _festival_participants(self, q: float, senders: np.ndarray, wechat: np.ndarray) -> float:
        """Expected people sending or receiving a red envelope in festival week."""
        if q <= 0:
            return 0.0
        friends = self.users.friends
        pay_friends = self._paying_friends(senders).astype(np.float32)
        wechat_friends = friends @ wechat.astype(np.float32)
        no_envelope = np.power(np.float32(1.0 - q), pay_friends)
        sends = senders * (1.0 - np.power(np.float32(1.0 - q), wechat_friends))
        takes_part = self.users.cash < np.float32(self.p["red_envelope.max_share"])
        participate = (wechat & takes_part) * (1.0 - (1.0 - sends) * no_envelope)
        return float(participate.sum()) * self.people_per_agent

    def open_alibaba_apps(self, t: int) -> None:
        """Rule 3: Alibaba apps open to Alipay mini programs on their schedule."""
        for app, step in self.app_open_step.items():
            if step == t:
                self.open_apps += self.users.audience[app]

    def merchants_choose(self, t: int) -> None:
        """Rule 4: reviewing merchants build where reachable users are worth the cost."""
        m, p, rng = self.merchants, self.p, self.rng
        reviewing = np.flatnonzero(rng.random(m.n, dtype=np.float32) < p["merchants.review_weekly"])
        # one choice draw per merchant and platform, whoever reviews (see _uniform_per_user)
        draws = {pl: rng.random(m.n)[reviewing] for pl in PLATFORMS}
        sector = m.sector[reviewing]
        was_on = {pl: m.on[pl][reviewing] for pl in PLATFORMS}
        for pl, other in (("wechat", "alipay"), ("alipay", "wechat")):
            if t < self.open_step[("merchants", pl)]:
                continue
            cost = self.build_cost[sector] * (1.0 - p["merchants.multihoming_discount"] * was_on[other])
            utility = p["merchants.reach_sensitivity"] * self.fit[pl][sector] * self.reach[pl] - cost
            build = draws[pl]
            if pl == "alipay":
                utility += (p["merchants.alipay_merchant_advantage"] * m.accepts_alipay[reviewing]
                            - p["merchants.alipay_extra_cost"])
                if t < self.open_step[("users", "alipay")]:  # beta: admitted merchants only
                    utility = np.where(m.beta_admitted[reviewing], utility, -np.inf)
            m.on[pl][reviewing] = build < expit(utility)
            counts = np.bincount(m.sector, weights=m.on[pl], minlength=len(SECTORS))
            self.catalog[pl] = counts / self._sector_sizes
        if t >= self.open_step[("users", "alipay")]:
            np.maximum(self.catalog["alipay"], self._first_party, out=self.catalog["alipay"])

    def build_programs(self, t: int) -> None:
        r"""Rule 5: merchants on a platform publish extra mini programs and retire them.

        Over a step of length :math:`\Delta` years, a merchant's extra programs on *p*
        follow :math:`\dot x = b_p R_p - r x` exactly:
        :math:`x \leftarrow x e^{-r\Delta} + (b_p R_p / r)(1 - e^{-r\Delta})`, with
        :math:`R_p` last week's reach (rule 8). A merchant off *p* has none there.
        """
        m, p = self.merchants, self.p
        retire = p["programs.retire_per_year"]
        span = self.years_per_step
        decay = np.float32(np.exp(-retire * span))
        grow = span if retire == 0 else -np.expm1(-retire * span) / retire
        for pl in PLATFORMS:
            extra, on = m.extra_programs[pl], m.on[pl]
            added = np.float32(p[f"programs.extra_per_year_{pl}"] * self.reach[pl] * grow)
            extra *= decay
            extra += added
            extra[~on] = 0.0

    def users_discover(self, t: int) -> None:
        """Rule 6: users first try mini programs, faster where the catalogue is fuller."""
        users, p, rng = self.users, self.p, self.rng
        wufu = self.wufu(t)
        for pl in PLATFORMS:
            if t < self.open_step[("users", pl)]:
                continue
            ever, first = users.ever_used[pl], users.first_use[pl]
            if pl == "alipay" and t == self.open_step[("users", "alipay")]:
                users.covered |= users.app["alipay"] & ~ever & (
                    rng.random(users.n, dtype=np.float32) < p["alipay.first_party_coverage"])
                ever |= users.covered
                first[ever] = t
            draw = self._uniform_per_user()
            who = np.flatnonzero(self.can_reach(pl) & ~ever)
            if not who.size:
                continue
            app = users.app[pl][who]
            rate = (p[f"users.discovery_weekly_{pl}"] * self.catalog_value(pl)
                    * (1.0 + p["users.pay_discovery_lift"] * users.pay[pl][who]) * app)
            if pl == "alipay":
                rate = rate + p["traffic_sharing.exposure_weekly"] * self.open_apps[who]
                if wufu:  # the campaign's rate, spread evenly over its weeks
                    rate = rate - (np.log1p(-min(p["wufu.discovery_rate"], 1 - 1e-9))
                                   / self.wufu_weeks[wufu]) * app
            if self._openness is not None:
                rate = rate * self._openness[who]
            new = who[draw[who] < -np.expm1(-rate)]
            ever[new] = True
            first[new] = t

    def users_lapse(self, t: int) -> None:
        r"""Rule 7: mini-program users lapse, and lapsed users come back.

        A user of *p*'s mini programs who has not lapsed lapses this week with
        probability ``users.lapse_weekly_<p>``; a lapsed user comes back with
        probability ``users.return_weekly``. One uniform draw per user serves both
        (the two groups are disjoint). The share of ever-users not lapsed tends to
        :math:`\rho / (l_p + \rho)`.
        """
        users, p = self.users, self.p
        for pl in PLATFORMS:
            if t < self.open_step[("users", pl)]:
                continue
            draw = self._uniform_per_user()
            lapsed = users.lapsed[pl]
            leaving = users.ever_used[pl] & ~lapsed & (draw < p[f"users.lapse_weekly_{pl}"])
            back = lapsed & (draw < p["users.return_weekly"])
            lapsed |= leaving
            lapsed &= ~back

    def users_use(self, t: int) -> None:
        """Rule 8: daily and monthly use; then the reach merchants will see next week."""
        users, p = self.users, self.p
        year = self.festival(t)
        for pl in PLATFORMS:
            reach = self.can_reach(pl)
            today, month = users.active_today[pl], users.active_month[pl]
            today[:] = False
            month[:] = False
            if t < self.open_step[("users", pl)]:
                self.reach[pl] = 0.0  # no user can use the platform's mini programs yet
                self.uses_per_dau[pl] = np.nan
                continue
            uniform = self._uniform_per_user()
            who = np.flatnonzero(users.ever_used[pl] & reach & ~users.lapsed[pl])
            draw = uniform[who]
            shift = p["users.engagement_base"] + p["users.engagement_catalog"] * self.catalog_value(pl)
            if year:
                shift += p["users.spring_festival_lift"]
            if self.necessities_from <= t:
                shift += p["necessities.use_lift"]
            logit = users.propensity[who] + np.float32(shift)
            logit += np.float32(p["users.pay_lift"]) * users.pay[pl][who]
            tenure = self._tenure_years(pl, who, t)
            if p["users.habit_per_year"]:
                logit += np.float32(p["users.habit_per_year"]) * np.minimum(
                    tenure, np.float32(p["users.habit_cap_years"]))
            if p["users.novelty_lift"]:
                novelty = np.float32(p["users.novelty_lift"]) * np.exp(
                    tenure * np.float32(-1.0 / p["users.novelty_years"]))
                if pl == "alipay":  # launch-day coverage: nothing was new to them
                    novelty[users.covered[who]] = 0.0
                logit += novelty
            odds = np.exp(np.minimum(logit, np.float32(30.0)))  # sigma(logit) = odds/(1+odds)
            opens = np.float32(self.daily_open(pl, self.wufu(t)))
            # u = opens * odds / (1 + odds); active today: draw < u
            today[who] = draw * (1.0 + odds) < opens * odds
            # active in the last 30 days: draw < 1 - prod_k (1 - u_k)^7.5 over this week and
            # the three before, with 1 - u = (1 + (1 - opens) odds) / (1 + odds)
            ring = users.month_log_stay[pl]
            ring[t % 4] = 0.0
            ring[t % 4, who] = 7.5 * (np.log1p((1.0 - opens) * odds) - np.log1p(odds))
            month[:] = np.log1p(-uniform) > ring.sum(axis=0)
            self.uses_per_dau[pl] = self._uses_per_daily_user(pl, tenure[today[who]])
            self.reach[pl] = (self._reach_share(pl, month)
                              + p["merchants.potential_reach_weight"]
                              * self._reach_share(pl, reach & ~month))

    def daily_open(self, platform: str, wufu: int) -> float:
        """Probability that a user opens the platform's app on a given day (rule 8):
        ``apps.<p>_daily_open``; in a Wufu week (``wufu`` the campaign's year, else 0),
        Alipay's is raised by ``wufu.activity_lift`` on the log-odds scale."""
        o = self.p[f"apps.{platform}_daily_open"]
        if platform == "alipay" and wufu and 0.0 < o < 1.0:
            o = float(expit(np.log(o / (1.0 - o)) + self.p["wufu.activity_lift"]))
        return o

    def _uses_per_daily_user(self, platform: str, tenure: np.ndarray) -> float:
        """Mean uses on a day of use over the day's users, given their years of use
        ``tenure`` (rule 8, frequency); habit counts up to ``users.habit_cap_years``."""
        if not tenure.size:
            return np.nan
        p = self.p
        habit_years = np.minimum(tenure, np.float32(p["users.habit_cap_years"]))
        extra = np.exp(np.float32(p["users.uses_extra_log"])
                       + np.float32(p["users.uses_habit_per_year"]) * habit_years)
        return 1.0 + float(extra.mean()) * self.catalog_value(platform)

    def _tenure_years(self, platform: str, who: np.ndarray, t: int) -> np.ndarray:
        """Years since each of ``who`` first used the platform's mini programs (float32)."""
        return ((t - self.users.first_use[platform][who]) * self.years_per_step).astype(np.float32)

    def _reach_share(self, platform: str, who: np.ndarray) -> float:
        """Share of the population in ``who``; on Alipay, users reached only through an
        opened Alibaba app count with ``traffic_sharing.reach_weight``."""
        n = self.users.n
        if platform == "wechat":
            return float(np.count_nonzero(who)) / n
        own = who & self.users.app["alipay"]
        shared = who & ~self.users.app["alipay"]
        weight = self.p["traffic_sharing.reach_weight"]
        return (np.count_nonzero(own) + weight * np.count_nonzero(shared)) / n

    def record(self, t: int) -> None:
        """Rule 9: the step's outputs, in millions of people or of mini programs."""
        users, m, out = self.users, self.merchants, self.current
        count = np.count_nonzero
        scale = self.people_per_agent
        dau = {pl: count(users.active_today[pl]) for pl in PLATFORMS}
        total_dau = sum(dau.values())
        for pl in PLATFORMS:
            mau = count(users.active_month[pl])
            out[f"{pl}.app_users"] = count(users.app[pl]) * scale
            out[f"{pl}.pay_users"] = count(users.pay[pl]) * scale
            out[f"{pl}.miniprogram_users_cumulative"] = count(users.ever_used[pl]) * scale
            out[f"{pl}.miniprogram_mau"] = mau * scale
            out[f"{pl}.miniprogram_dau"] = dau[pl] * scale
            out[f"{pl}.miniprogram_stickiness"] = dau[pl] / mau if mau else np.nan
            out[f"{pl}.miniprogram_uses_per_dau"] = self.uses_per_dau[pl]
            out[f"{pl}.miniprogram_dau_share"] = dau[pl] / total_dau if total_dau else np.nan
            out[f"{pl}.mini_programs_count"] = (
                count(m.on[pl]) + float(m.extra_programs[pl].sum(dtype=np.float64))
            ) * self.programs_per_agent
        out["wechat.app_mau"] = out["wechat.app_users"]
        out["alipay.app_mau"] = out["alipay.app_users"] * self.p["apps.alipay_monthly_share"]
        out["wechat.red_envelope_participants"] = self._participants
        month = users.active_month
        either = count(month["wechat"] | month["alipay"])
        out["all.users_multihoming_share"] = (
            count(month["wechat"] & month["alipay"]) / either if either else np.nan)
        m_either = count(m.on["wechat"] | m.on["alipay"])
        out["all.merchants_multihoming_share"] = (
            count(m.on["wechat"] & m.on["alipay"]) / m_either if m_either else np.nan)
        out["all.spring_festival"] = 1.0 if self.festival(t) else 0.0
        self._recorded[t] = [out[name] for name in OUTPUT_NAMES]

    def release(self) -> None:
        """Drop the agents and their arrays once the results are read.

        mesa 3.3 keeps every model it has seen as a key of ``Agent._ids`` (a
        per-model id counter), so a worker running thousands of models would hold all
        their arrays; after ``release`` only the small model object stays.
        """
        self.remove_all_agents()
        self.users = self.merchants = None
        self.open_apps = self._recorded = self._pay_friends = self._counted = None

    def results(self) -> pd.DataFrame:
        """Outputs of the steps run so far, one row per step, indexed by week start."""
        index = pd.DatetimeIndex(self.dates[: self.t], name="date")
        return pd.DataFrame(self._recorded[: self.t].copy(), index=index,
                            columns=list(OUTPUT_NAMES))


def _row_columns(matrix: sp.csr_matrix, rows: np.ndarray) -> np.ndarray:
    """Column indices of the stored entries of ``rows`` of a CSR matrix, concatenated.

    The same as ``matrix[rows].indices`` without building a sparse matrix, whose fixed
    cost dominates at the calibration's 10,000 agents.
    """
    starts = matrix.indptr[rows]
    lengths = matrix.indptr[rows + 1] - starts
    offsets = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
    return matrix.indices[np.arange(offsets.size) + offsets]


def simulate(params: dict[str, Any] | None = None, *, agents: int | None = None,
             merchant_agents: int | None = None, start: dt.date | None = None,
             end: dt.date | None = None, seed=None) -> pd.DataFrame:
    """Run one replicate to the end and return its outputs (one row per week).

    The simulator contract used by runs and calibration: parameters, size, horizon
    and seed in; a frame of every output in ``OUTPUTS`` out.
    """
    model = MiniProgramModel(params, agents=agents, merchant_agents=merchant_agents,
                             start=start, end=end, seed=seed)
    model.run_model()
    frame = model.results()
    model.release()
    return frame
