r"""Idiomatic mesa reference of rule 6 (users' daily use) for one platform.

One ``mesa.Agent`` per user, activated in random order each step with
``model.agents.shuffle_do("step")``, as in mesa's own examples. Each agent applies
the rule of ``MiniProgramModel.users_use`` (``model/model.py``) to itself: if it
has used the platform's mini programs and can still reach them, its daily
probability is

.. math:: u = o\,\sigma(\text{shift} + \text{propensity} + \text{pay\_lift}\,[\text{pays}])

(*o*, ``opens``, the probability that the app is opened that day)
and one uniform draw ``r`` from the model's ``rng`` makes it active today if
``r < u`` and active this month if ``r < 1 - (1 - u)^30``; otherwise it is
inactive. ``shift``, ``pay_lift`` and ``opens`` are model attributes, shared by every user.
With a habit term (the model's rule from its ``users.habit_per_year`` on), the
log-odds also gain ``habit_per_year * min(years since first use, habit_cap_years)``
and ``novelty_lift * exp(-years since first use / novelty_years)``.

Randomness: the model is built from one seed or generator, passed to mesa as
``rng``. The agents draw from ``model.rng``; the activation order is shuffled by
mesa (in mesa 3.3 with ``model.random``, which mesa seeds from that same ``rng``).
Only the stable mesa 3 API is used: ``Agent.create_agents``, ``Model(rng=...)``,
``AgentSet.shuffle_do`` and ``AgentSet.get``.

Example::

    model = DailyUseModel(propensity, pays, ever_used, can_reach,
                          shift=-1.5, pay_lift=0.5, rng=1)
    model.step()
    today, month = model.activity()
"""

from __future__ import annotations

import math

import mesa
import numpy as np

DAYS_IN_MONTH = 30


class DailyUser(mesa.Agent):
    """One user of one platform's mini programs.

    Attributes:
        propensity: personal log-odds of daily use.
        pays: pays with the platform.
        ever_used: has used the platform's mini programs.
        can_reach: can reach them now.
        first_use: step at which it first used them (-1 if never).
        active_today, active_month: used one on a typical day of this week / this month.
    """

    def __init__(self, model: DailyUseModel, propensity: float, pays: bool,
                 ever_used: bool, can_reach: bool, first_use: int = -1):
        super().__init__(model)
        self.propensity = propensity
        self.pays = pays
        self.ever_used = ever_used
        self.can_reach = can_reach
        self.first_use = first_use
        self.active_today = False
        self.active_month = False

    def step(self) -> None:
        self.active_today = False
        self.active_month = False
        if not (self.ever_used and self.can_reach):
            return
        model = self.model
        logit = model.shift + self.propensity + model.pay_lift * self.pays
        years = (model.week - self.first_use) * model.years_per_step
        if model.habit_per_year:
            logit += model.habit_per_year * min(years, model.habit_cap_years)
        if model.novelty_lift:
            logit += model.novelty_lift * math.exp(-years / model.novelty_years)
        daily = model.opens / (1.0 + math.exp(-logit))
        draw = model.rng.random()
        self.active_today = draw < daily
        self.active_month = draw < 1.0 - (1.0 - daily) ** DAYS_IN_MONTH


class DailyUseModel(mesa.Model):
    """Users of one platform deciding each step whether they use its mini programs.

    Args:
        propensity, pays, ever_used, can_reach: one entry per user (arrays or lists).
        shift: log-odds shared by every user (base, catalogue and festival terms).
        pay_lift: extra log-odds for users who pay with the platform.
        opens: probability that the app is opened on a given day.
        rng: seed or ``numpy.random.Generator``; the model's only source of randomness.
        habit: optional ``reference_numpy.Habit`` (first use, current step, step length,
            lift per year and cap); None for the rule without habit.
    """

    def __init__(self, propensity, pays, ever_used, can_reach, *, shift: float,
                 pay_lift: float, rng=None, habit=None, opens: float = 1.0):
        super().__init__(rng=rng)
        self.shift = float(shift)
        self.opens = float(opens)
        self.pay_lift = float(pay_lift)
        self.habit_per_year = float(habit.per_year) if habit is not None else 0.0
        self.habit_cap_years = float(habit.cap_years) if habit is not None else 0.0
        self.novelty_lift = float(habit.novelty_lift) if habit is not None else 0.0
        self.novelty_years = float(habit.novelty_years) if habit is not None else 1.0
        self.years_per_step = float(habit.years_per_step) if habit is not None else 0.0
        self.week = int(habit.step) if habit is not None else 0
        first_use = (np.asarray(habit.first_use, dtype=int).tolist() if habit is not None
                     else -1)
        # Plain Python values: numpy scalars would make every agent's arithmetic slower.
        self.users = DailyUser.create_agents(
            self, len(propensity), np.asarray(propensity, dtype=float).tolist(),
            np.asarray(pays, dtype=bool).tolist(), np.asarray(ever_used, dtype=bool).tolist(),
            np.asarray(can_reach, dtype=bool).tolist(), first_use)

    def step(self) -> None:
        self.agents.shuffle_do("step")

    def activity(self) -> tuple[np.ndarray, np.ndarray]:
        """``(active_today, active_month)`` as bool arrays, in the order users were given."""
        return (np.array(self.users.get("active_today"), dtype=bool),
                np.array(self.users.get("active_month"), dtype=bool))
