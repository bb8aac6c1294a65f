r"""Idiomatic mesa reference of rule 8 (users use mini programs) for one platform.

One ``mesa.Agent`` per user, activated in random order each step with
``model.agents.shuffle_do("step")``, as in mesa's own examples. Each agent applies
the rule of ``MiniProgramModel.users_use`` (``model/model.py``) to itself, in plain
Python floats: if it has used the platform's mini programs, can still reach them and
has not lapsed (rule 7), its probability of using one on a typical day of the week is

.. math:: u = o\,\sigma(\text{shift} + \text{propensity} + \text{pay\_lift}\,[\text{pays}]
          + h \min(\tau, T) + \nu e^{-\tau/\lambda})

(*o*, ``opens``, the probability that the app is opened that day; :math:`\tau` the
years since its first use; the habit and novelty terms as in the model), otherwise
:math:`u = 0`. The agent keeps its last four weeks' *u* (``recent``); one uniform
draw ``r`` per agent and step makes it active today if ``r < u`` and active in the
last 30 days if ``r < 1 - prod over the four weeks of (1 - u_k)^(30/4)``. ``shift``,
``pay_lift`` and ``opens`` are model attributes, shared by every user.

Randomness: the model is built from one seed or generator, passed to mesa as
``rng``. The agents draw from ``model.rng`` (through ``model.uniform``); the
activation order is shuffled by mesa (in mesa 3.3 with ``model.random``, which mesa
seeds from that same ``rng``). To check the rule decision by decision against the
model, ``draws`` gives each user its draw instead: the agents are then stepped in
user order and take ``draws[i]``. Only the stable mesa 3 API is used:
``Agent.create_agents``, ``Model(rng=...)``, ``AgentSet.shuffle_do``, ``AgentSet.do``
and ``AgentSet.get``.

Example::

    model = DailyUseModel(propensity, pays, ever_used, can_reach, lapsed,
                          shift=-1.5, pay_lift=0.5, rng=1)
    model.step()
    today, month = model.activity()
"""

from __future__ import annotations

import math
from collections import deque

import mesa
import numpy as np

DAYS_IN_MONTH = 30
WEEKS_IN_MONTH = 4
_DAYS_PER_WEEK = DAYS_IN_MONTH / WEEKS_IN_MONTH


class DailyUser(mesa.Agent):
    """One user of one platform's mini programs.

    Attributes:
        propensity: personal log-odds of daily use.
        pays: pays with the platform.
        ever_used: has used the platform's mini programs.
        can_reach: can reach them now.
        lapsed: has lapsed (uses none of them for now).
        first_use: step at which it first used them (-1 if never).
        novel: gets the novelty term (False for Alipay's launch-day covered users).
        recent: its daily-use probabilities of the last four weeks, oldest first.
        active_today, active_month: used one on a typical day of this week / in the
            last 30 days.
    """

    def __init__(self, model: DailyUseModel, propensity: float, pays: bool,
                 ever_used: bool, can_reach: bool, lapsed: bool, first_use: int = -1,
                 recent=(0.0, 0.0, 0.0, 0.0), novel: bool = True):
        super().__init__(model)
        self.propensity = propensity
        self.pays = pays
        self.ever_used = ever_used
        self.can_reach = can_reach
        self.lapsed = lapsed
        self.first_use = first_use
        self.novel = novel
        self.recent = deque(recent, maxlen=WEEKS_IN_MONTH)
        self.active_today = False
        self.active_month = False

    def step(self) -> None:
        model = self.model
        draw = model.uniform()  # one draw per user, eligible or not, as in the model
        daily = 0.0
        if self.ever_used and self.can_reach and not self.lapsed:
            logit = model.shift + self.propensity + model.pay_lift * self.pays
            years = (model.week - self.first_use) * model.years_per_step
            if model.habit_per_year:
                logit += model.habit_per_year * min(years, model.habit_cap_years)
            if model.novelty_lift and self.novel:
                logit += model.novelty_lift * math.exp(-years / model.novelty_years)
            daily = model.opens / (1.0 + math.exp(min(-logit, 700.0)))
        self.recent.append(daily)
        self.active_today = draw < daily
        stay = 1.0
        for u in self.recent:
            stay *= 1.0 - u
        self.active_month = draw < 1.0 - stay ** _DAYS_PER_WEEK


class DailyUseModel(mesa.Model):
    """Users of one platform deciding each step whether they use its mini programs.

    Args:
        propensity, pays, ever_used, can_reach, lapsed: one entry per user.
        shift: log-odds shared by every user (base, catalogue, festival, necessities).
        pay_lift: extra log-odds for users who pay with the platform.
        opens: probability that the app is opened on a given day.
        rng: seed or ``numpy.random.Generator``; the model's only source of randomness.
        habit: optional ``reference_numpy.Habit`` (first use, step length, lift per
            year and cap, novelty); None for the rule without them.
        ring: optional 4 x n array of the last four weeks' 7.5 ln(1 - u) in the model's
            layout (``users.month_log_stay[p]``, row ``week % 4``); each agent's
            ``recent`` is read from it. None: no use in the weeks before.
        week: the step of the first ``step()``; each ``step()`` advances it by one.
        draws: optional one uniform per user, in user order, used instead of ``rng``
            (the agents are then stepped in user order, once).
    """

    def __init__(self, propensity, pays, ever_used, can_reach, lapsed, *, shift: float,
                 pay_lift: float, rng=None, habit=None, opens: float = 1.0, ring=None,
                 week: int = 0, draws=None):
        super().__init__(rng=rng)
        n = len(propensity)
        self.shift = float(shift)
        self.opens = float(opens)
        self.pay_lift = float(pay_lift)
        self.habit_per_year = float(habit.per_year) if habit is not None else 0.0
        self.habit_cap_years = float(habit.cap_years) if habit is not None else 0.0
        self.novelty_lift = float(habit.novelty_lift) if habit is not None else 0.0
        self.novelty_years = float(habit.novelty_years) if habit is not None else 1.0
        self.years_per_step = float(habit.years_per_step) if habit is not None else 0.0
        self.week = int(week)
        first_use = (np.asarray(habit.first_use, dtype=int).tolist() if habit is not None
                     else -1)
        novel = (True if habit is None or habit.no_novelty is None
                 else (~np.asarray(habit.no_novelty, dtype=bool)).tolist())
        if ring is None:
            recent = [(0.0,) * WEEKS_IN_MONTH] * n
        else:  # oldest week first: row week % 4 holds week - 4, the next one week - 3, ...
            rows = [(self.week + k) % WEEKS_IN_MONTH for k in range(WEEKS_IN_MONTH)]
            past = -np.expm1(np.asarray(ring, dtype=float)[rows] / _DAYS_PER_WEEK)
            recent = [tuple(column) for column in past.T.tolist()]
        self.ordered = draws is not None
        self.uniform = iter(np.asarray(draws, dtype=float).tolist()).__next__ if draws is not None \
            else self.rng.random
        # Plain Python values: numpy scalars would make every agent's arithmetic slower.
        self.users = DailyUser.create_agents(
            self, n, np.asarray(propensity, dtype=float).tolist(),
            np.asarray(pays, dtype=bool).tolist(), np.asarray(ever_used, dtype=bool).tolist(),
            np.asarray(can_reach, dtype=bool).tolist(), np.asarray(lapsed, dtype=bool).tolist(),
            first_use, recent, novel)

    def step(self) -> None:
        if self.ordered:
            self.users.do("step")
        else:
            self.agents.shuffle_do("step")
        self.week += 1

    def activity(self) -> tuple[np.ndarray, np.ndarray]:
        """``(active_today, active_month)`` as bool arrays, in the order users were given."""
        return (np.array(self.users.get("active_today"), dtype=bool),
                np.array(self.users.get("active_month"), dtype=bool))
