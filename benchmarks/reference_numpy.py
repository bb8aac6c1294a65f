r"""Bare-numpy reference of rule 8 (users use mini programs) for one platform: the floor.

The same rule as ``MiniProgramModel.users_use`` in ``model/model.py``, without mesa
and without the usage frequency and the merchants' reach that the model also
computes there. A user *i* who has used the platform's mini programs, can still
reach them and has not lapsed (rule 7) uses one on a typical day of week *t* with
probability

.. math:: u_{i,t} = o\,\sigma(\text{shift} + \pi_i + \ell\,[\text{pays}_i]
          + h \min(\tau_i, T) + \nu e^{-\tau_i/\lambda})

with *o* the probability that the platform's app is opened that day
(``MiniProgramModel.daily_open``), ``shift`` the week's shared log-odds (base,
catalogue, Spring Festival lift, necessities lift), :math:`\tau_i` the years since
*i* first used the platform's mini programs, *h* = ``users.habit_per_year``, *T* =
``users.habit_cap_years``, :math:`\nu` = ``users.novelty_lift``, :math:`\lambda` =
``users.novelty_years``; every other user has :math:`u_{i,t} = 0`. One uniform draw
:math:`r_i` per user (drawn for every user) decides both outputs, so daily users are
a subset of monthly users: active today if :math:`r_i < u_{i,t}`, active in the last
30 days if

.. math:: r_i < 1 - \prod_{k=0}^{3} (1 - u_{i,t-k})^{30/4}

over this week and the three before. The four weeks are kept as
:math:`\frac{30}{4}\ln(1 - u)` in a ring ``ring`` (4 x n, row ``t % 4``), the model's
``users.month_log_stay[p]``: the call replaces row ``t % 4`` with this week's.
Lapsed users and users who cannot reach the platform this week get 0 there, but their
earlier weeks still count.

Arrays are float32 and the draws ``rng.random(n, dtype=float32)``, one per user, as in
the model, with the model's float32 arithmetic (:math:`1 - u = (1 + (1-o)e^x) / (1 + e^x)`
for log-odds *x*), so from the same generator state this reference and the model
decide every user the same way.

Example::

    rng = np.random.default_rng(1)
    ring = np.zeros((4, propensity.size), np.float32)
    today, month = daily_use(propensity, pays, ever_used, can_reach, lapsed,
                             shift=-1.5, pay_lift=0.5, rng=rng, opens=0.9, ring=ring, week=0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DAYS_IN_MONTH = 30
WEEKS_IN_MONTH = 4


@dataclass
class Habit:
    """The terms of years of use: ``per_year * min(years, cap_years)`` (habit) plus
    ``novelty_lift * exp(-years / novelty_years)`` (novelty), in log-odds.

    Attributes:
        first_use: int step at which each user first used the platform's mini programs.
        years_per_step: length of a step in years.
        per_year, cap_years: ``users.habit_per_year`` and ``users.habit_cap_years``.
        novelty_lift, novelty_years: ``users.novelty_lift`` and ``users.novelty_years``.
        no_novelty: optional bool per user: no novelty term (on Alipay, the users
            covered on its launch day, ``users.covered``).
    """

    first_use: np.ndarray
    years_per_step: float
    per_year: float
    cap_years: float
    novelty_lift: float = 0.0
    novelty_years: float = 1.0
    no_novelty: np.ndarray | None = None


def daily_use(propensity: np.ndarray, pays: np.ndarray, ever_used: np.ndarray,
              can_reach: np.ndarray, lapsed: np.ndarray, shift: float, pay_lift: float,
              rng: np.random.Generator, *, ring: np.ndarray, week: int,
              habit: Habit | None = None, opens: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Who uses the platform's mini programs today and in the last 30 days.

    Args:
        propensity: float32 personal log-odds of daily use, one per user.
        pays: bool, pays with the platform.
        ever_used: bool, has used the platform's mini programs.
        can_reach: bool, can reach them now (has the app, or an opened Alibaba app).
        lapsed: bool, has lapsed (rule 7): uses none of them this week.
        shift: log-odds shared by every user this week.
        pay_lift: extra log-odds for users who pay with the platform.
        rng: the run's random stream; one float32 draw per user.
        ring: float32 4 x n, the last four weeks' 7.5 ln(1 - u); row ``week % 4`` is
            replaced with this week's (in place).
        week: the step *t*.
        habit: the habit and novelty terms, or None when both are off.
        opens: probability that the app is opened on a given day (1: always).

    Returns:
        ``(active_today, active_month)``, bool arrays the size of ``propensity``.
    """
    n = propensity.size
    uniform = rng.random(n, dtype=np.float32)
    # Working on the eligible users only: gathering them is cheaper than evaluating
    # the logistic for everyone (measured; boolean-mask indexing is slower still).
    who = np.flatnonzero(ever_used & can_reach & ~lapsed)
    logit = propensity[who] + np.float32(shift)
    logit += np.float32(pay_lift) * pays[who]
    if habit is not None:
        years = ((week - habit.first_use[who]) * habit.years_per_step).astype(np.float32)
        if habit.per_year:
            logit += np.float32(habit.per_year) * np.minimum(years, np.float32(habit.cap_years))
        if habit.novelty_lift:
            novelty = np.float32(habit.novelty_lift) * np.exp(
                years * np.float32(-1.0 / habit.novelty_years))
            if habit.no_novelty is not None:
                novelty[habit.no_novelty[who]] = 0.0
            logit += novelty
    odds = np.exp(np.minimum(logit, np.float32(30.0)))
    o = np.float32(opens)
    active_today = np.zeros(n, dtype=bool)
    active_today[who] = uniform[who] * (1.0 + odds) < o * odds
    slot = week % WEEKS_IN_MONTH
    ring[slot] = 0.0
    ring[slot, who] = (DAYS_IN_MONTH / WEEKS_IN_MONTH) * (np.log1p((1.0 - o) * odds)
                                                         - np.log1p(odds))
    active_month = np.log1p(-uniform) > ring.sum(axis=0)
    return active_today, active_month
