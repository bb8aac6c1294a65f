r"""Bare-numpy reference of rule 6 (users' daily use) for one platform: the floor.

The same rule as ``MiniProgramModel.users_use`` in ``model/model.py``, without mesa
and without the merchants' reach that the model also computes there. A user *i*
who has used the platform's mini programs and can still reach them uses one on a
typical day of the week with probability

.. math:: u_i = \sigma(\text{shift} + \pi_i + \ell\,[\text{pays}_i])

and in the month with probability :math:`1 - (1 - u_i)^{30}`. One uniform draw
:math:`r_i` per eligible user decides both, so daily users are a subset of monthly
users: active today if :math:`r_i < u_i`, active this month if
:math:`r_i < 1 - (1 - u_i)^{30}`. Everyone else is inactive.

Arrays are float32 and the draws ``rng.random(k, dtype=float32)`` in user order, as in
the model, so from the same generator state this reference and the model decide
the same users the same way (up to rounding at the thresholds).

Example::

    rng = np.random.default_rng(1)
    today, month = daily_use(propensity, pays, ever_used, can_reach,
                             shift=-1.5, pay_lift=0.5, rng=rng)
"""

from __future__ import annotations

import numpy as np

DAYS_IN_MONTH = 30


def daily_use(propensity: np.ndarray, pays: np.ndarray, ever_used: np.ndarray,
              can_reach: np.ndarray, shift: float, pay_lift: float,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Who uses the platform's mini programs today and this month.

    Args:
        propensity: float32 personal log-odds of daily use, one per user.
        pays: bool, pays with the platform.
        ever_used: bool, has used the platform's mini programs.
        can_reach: bool, can reach them now (has the app, or an opened Alibaba app).
        shift: log-odds shared by every user this week (base, catalogue, festival).
        pay_lift: extra log-odds for users who pay with the platform.
        rng: the run's random stream; one float32 draw per eligible user.

    Returns:
        ``(active_today, active_month)``, bool arrays the size of ``propensity``.
    """
    n = propensity.size
    who = np.flatnonzero(ever_used & can_reach)
    # Working on the eligible users only: gathering them is cheaper than evaluating
    # the logistic for everyone (measured; boolean-mask indexing is slower still).
    logit = propensity[who] + np.float32(shift)
    logit += np.float32(pay_lift) * pays[who]
    daily = 1.0 / (1.0 + np.exp(-logit))
    draw = rng.random(who.size, dtype=np.float32)
    active_today = np.zeros(n, dtype=bool)
    active_month = np.zeros(n, dtype=bool)
    active_today[who] = draw < daily
    active_month[who] = draw < 1.0 - (1.0 - daily) ** DAYS_IN_MONTH
    return active_today, active_month
