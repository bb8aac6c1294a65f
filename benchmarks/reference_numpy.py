r"""Bare-numpy reference of rule 6 (users' daily use) for one platform: the floor.

The same rule as ``MiniProgramModel.users_use`` in ``model/model.py``, without mesa
and without the merchants' reach that the model also computes there. A user *i*
who has used the platform's mini programs and can still reach them uses one on a
typical day of the week with probability

.. math:: u_i = o\,\sigma(\text{shift} + \pi_i + \ell\,[\text{pays}_i])

with *o* the probability that the platform's app is opened that day
(``MiniProgramModel.daily_open``)

and in the month with probability :math:`1 - (1 - u_i)^{30}`. With ``habit`` given
(the model's rule from its habit term on), the log-odds also gain
:math:`h \min(\tau_i, T) + \nu e^{-\tau_i/\lambda}`, :math:`\tau_i` the years since *i*
first used the platform's mini programs, *h* = ``users.habit_per_year``, *T* =
``users.habit_cap_years``, :math:`\nu` = ``users.novelty_lift``, :math:`\lambda` =
``users.novelty_years``. One uniform draw
:math:`r_i` per user (drawn for every user, used for the eligible) decides both, so daily users are a subset of monthly
users: active today if :math:`r_i < u_i`, active this month if
:math:`r_i < 1 - (1 - u_i)^{30}`. Everyone else is inactive.

Arrays are float32 and the draws ``rng.random(n, dtype=float32)``, one per user, as in
the model, so from the same generator state this reference and the model decide
the same users the same way (up to rounding at the thresholds).

Example::

    rng = np.random.default_rng(1)
    today, month = daily_use(propensity, pays, ever_used, can_reach,
                             shift=-1.5, pay_lift=0.5, rng=rng, opens=0.9)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DAYS_IN_MONTH = 30


@dataclass
class Habit:
    """The terms of years of use: ``per_year * min(years, cap_years)`` (habit) plus
    ``novelty_lift * exp(-years / novelty_years)`` (novelty), in log-odds.

    Attributes:
        first_use: int step at which each user first used the platform's mini programs.
        step: the current step.
        years_per_step: length of a step in years.
        per_year, cap_years: ``users.habit_per_year`` and ``users.habit_cap_years``.
        novelty_lift, novelty_years: ``users.novelty_lift`` and ``users.novelty_years``.
    """

    first_use: np.ndarray
    step: int
    years_per_step: float
    per_year: float
    cap_years: float
    novelty_lift: float = 0.0
    novelty_years: float = 1.0


def daily_use(propensity: np.ndarray, pays: np.ndarray, ever_used: np.ndarray,
              can_reach: np.ndarray, shift: float, pay_lift: float,
              rng: np.random.Generator, habit: Habit | None = None,
              opens: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Who uses the platform's mini programs today and this month.

    Args:
        propensity: float32 personal log-odds of daily use, one per user.
        pays: bool, pays with the platform.
        ever_used: bool, has used the platform's mini programs.
        can_reach: bool, can reach them now (has the app, or an opened Alibaba app).
        shift: log-odds shared by every user this week (base, catalogue, festival).
        pay_lift: extra log-odds for users who pay with the platform.
        rng: the run's random stream; one float32 draw per user.
        habit: the habit term, or None for a rule without it.
        opens: probability that the app is opened on a given day (1: always).

    Returns:
        ``(active_today, active_month)``, bool arrays the size of ``propensity``.
    """
    n = propensity.size
    who = np.flatnonzero(ever_used & can_reach)
    # Working on the eligible users only: gathering them is cheaper than evaluating
    # the logistic for everyone (measured; boolean-mask indexing is slower still).
    logit = propensity[who] + np.float32(shift)
    logit += np.float32(pay_lift) * pays[who]
    if habit is not None:
        years = ((habit.step - habit.first_use[who]) * habit.years_per_step).astype(np.float32)
        if habit.per_year:
            logit += np.float32(habit.per_year) * np.minimum(years, np.float32(habit.cap_years))
        if habit.novelty_lift:
            logit += np.float32(habit.novelty_lift) * np.exp(
                years * np.float32(-1.0 / habit.novelty_years))
    daily = np.float32(opens) / (1.0 + np.exp(-logit))
    draw = rng.random(n, dtype=np.float32)[who]
    active_today = np.zeros(n, dtype=bool)
    active_month = np.zeros(n, dtype=bool)
    active_today[who] = draw < daily
    active_month[who] = draw < 1.0 - (1.0 - daily) ** DAYS_IN_MONTH
    return active_today, active_month
