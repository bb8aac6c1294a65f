"""Every parameter of the model: meaning, unit, default, allowed range and source.

One parameter per entry. ``source`` says where the default comes from:

* ``reported:`` a figure in ``calibration/data/reported_figures.csv`` (or the seed
  documents it quotes);
* ``fit:`` a curve fitted to reported figures by ``calibration/app_bases.py``;
* ``calibrated:`` set by a calibration run (its id is named);
* ``assumption:`` a stated modelling assumption, to be varied in scenarios.

Parameters are addressed by dotted names (``red_envelope.strength``); a scenario file
writes them as TOML tables (``[red_envelope] strength = 2.0``).
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Alibaba apps whose audiences traffic sharing can open to Alipay mini programs.
ALIBABA_APPS = ("taobao", "tmall", "amap", "koubei", "eleme")
#: Merchant sectors, which differ in what they need from a platform.
SECTORS = ("retail", "food_delivery", "citizen_services", "games", "other")
PLATFORMS = ("wechat", "alipay")


@dataclass(frozen=True)
class Param:
    """One model parameter.

    ``kind`` is ``float``, ``int``, ``bool``, ``"date"`` or ``"apps"`` (a list of
    Alibaba app names). Numbers must lie in ``[low, high]``.
    """

    name: str
    default: Any
    unit: str
    meaning: str
    source: str
    low: float | None = None
    high: float | None = None
    kind: Any = float
    choices: tuple[str, ...] = field(default=())

    def describe_allowed(self) -> str:
        if self.kind == "date":
            return "a date YYYY-MM-DD between 2013-01-01 and 2035-12-31"
        if self.kind == "apps":
            return f"a list drawn from {list(ALIBABA_APPS)}"
        if self.kind is bool:
            return "true or false"
        kind = "an integer" if self.kind is int else "a number"
        return f"{kind} in [{self.low}, {self.high}]"


def _p(*args, **kwargs) -> Param:
    return Param(*args, **kwargs)


_SECTOR_DEFAULTS = {
    # sector: (merchant_share, need, wechat_fit, alipay_fit, build_cost)
    "retail": (0.40, 0.30, 1.0, 1.0, 3.0),
    "food_delivery": (0.20, 0.20, 1.0, 1.1, 3.0),
    "citizen_services": (0.05, 0.20, 0.7, 1.6, 2.5),
    "games": (0.10, 0.15, 1.6, 0.4, 3.5),
    "other": (0.25, 0.15, 1.0, 0.9, 3.0),
}
_SECTOR_WHY = {
    "retail": "shops and e-commerce",
    "food_delivery": "restaurants, ordering and delivery",
    "citizen_services": "water, electricity and other bills, government services",
    "games": "mini games, which spread through friends",
    "other": "travel, tools and every other service",
}


def _sector_params() -> list[Param]:
    out = []
    for sector, (share, need, wfit, afit, cost) in _SECTOR_DEFAULTS.items():
        why = _SECTOR_WHY[sector]
        out += [
            _p(f"sector.{sector}.merchant_share", share, "share of merchant agents",
               f"Share of potential mini-program builders in {sector} ({why}).",
               "assumption: rough split of Chinese small businesses; shares are renormalised to sum to 1",
               0.0, 1.0),
            _p(f"sector.{sector}.need", need, "weight",
               f"Weight of {sector} in what users look for in mini programs.",
               "assumption; weights are renormalised to sum to 1", 0.0, 1.0),
            _p(f"sector.{sector}.wechat_fit", wfit, "multiplier",
               f"How much a {sector} merchant values a WeChat user it can reach.",
               "assumption: WeChat's social graph suits games and sharing (seed 000: "
               "'WeChat's mini-programs are mostly real mini-programs')", 0.0, 5.0),
            _p(f"sector.{sector}.alipay_fit", afit, "multiplier",
               f"How much a {sector} merchant values an Alipay user it can reach.",
               "assumption: Alipay suits payment-heavy services (seed 002: Alipay "
               "'more focused on ... citizen services such as water and electricity')", 0.0, 5.0),
            _p(f"sector.{sector}.build_cost", cost, "log-odds",
               f"Cost of building and running a {sector} mini program on one platform.",
               "assumption", 0.0, 10.0),
        ]
    return out


PARAMS: tuple[Param, ...] = (
    # --- population and app bases (inputs) ---------------------------------------
    _p("population.people_millions", 1250.0, "million people",
       "People represented: China's mobile-phone population at saturation. Every "
       "output is scaled from agents to people with people_millions / user agents.",
       "assumption: above WeChat's 1,200 million accounts of March 2020 (about 1,090 "
       "million people at 1.1 accounts each) and Alipay's 1,000 million annual users of "
       "June 2020, leaving room for people who use neither; the app curves are capped "
       "at it", 100.0, 3000.0),
    _p("apps.wechat_ceiling_accounts_millions", 1244.1, "million accounts",
       "Ceiling of the logistic curve of WeChat monthly active accounts (input).",
       "fit: calibration/app_bases.py to the app figures of calibration/data/targets.csv "
       "(python -m calibration.app_bases); mpsim calibrate refits it to its data",
       100.0, 3000.0),
    _p("apps.wechat_midpoint_year", 2015.557, "decimal year",
       "Midpoint of the WeChat account curve.",
       "fit: calibration/app_bases.py", 2010.0, 2025.0),
    _p("apps.wechat_scale_years", 1.660, "years",
       "Time scale of the WeChat account curve (1/slope of the logistic).",
       "fit: calibration/app_bases.py", 0.1, 10.0),
    _p("apps.wechat_accounts_per_person", 1.10, "accounts per person",
       "WeChat accounts per person (overseas and second accounts); converts reported "
       "accounts into people.",
       "reported: 1,098 million accounts at end-2018 against 'about 1 billion users' (seed 000)",
       1.0, 2.0),
    _p("apps.alipay_ceiling_millions", 1250.0, "million people",
       "Ceiling of the logistic curve of Alipay users in China (input).",
       "fit: calibration/app_bases.py to the Alipay app figures to June 2020 (it reaches "
       "the cap, population.people_millions, as 1,000 million annual users by June 2020 "
       "require); with too few figures to pin a ceiling, the fit keeps this value as an "
       "assumption", 100.0, 3000.0),
    _p("apps.alipay_midpoint_year", 2018.194, "decimal year",
       "Midpoint of the Alipay user curve.",
       "fit: calibration/app_bases.py", 2010.0, 2025.0),
    _p("apps.alipay_scale_years", 1.727, "years",
       "Time scale of the Alipay user curve.",
       "fit: calibration/app_bases.py", 0.1, 10.0),
    _p("apps.wechat_growth_per_year", 0.0, "share per year",
       "Growth of the WeChat account curve's ceiling per year after 2018 (second and "
       "overseas accounts, new users at the margins): the curve is "
       "K (1 + g max(0, y - 2018)) / (1 + exp(-(y - m) / w)), so a series that keeps "
       "rising after its S-curve is followed rather than flattened.",
       "fit: calibration/app_bases.py, to the app figures of the calibration's data",
       0.0, 0.2),
    _p("apps.alipay_monthly_share", 0.719, "share of Alipay users",
       "Share of the people using Alipay (annual users, alipay.app_users) who open it "
       "in a given month (the output alipay.app_mau).",
       "reported: 711 million monthly against 1,000 million annual active users, June "
       "2020 (Ant Group prospectus via the Financial Times, tier A); refitted by "
       "calibration/app_bases.py to the calibration's data", 0.0, 1.0),
    _p("apps.adoption_correlation", 0.5, "correlation",
       "Correlation of the latent propensities that order who adopts WeChat, Alipay "
       "and the Alibaba apps first (a Gaussian copula).",
       "assumption: early adopters of one app tend to be early adopters of the others",
       0.0, 0.99),
    _p("apps.wechat_daily_open", 0.92, "probability per day",
       "Probability that a WeChat user opens WeChat on a given day: a mini program is "
       "used only on a day its app is opened.",
       "reported: 902 million daily logins against 980 million monthly accounts in "
       "2017-09 (0.92), 1,000 million against 1,083 million in 2018 (0.92)", 0.0, 1.0),
    _p("apps.alipay_daily_open", 0.5, "probability per day",
       "Probability that a user who can reach Alipay mini programs opens Alipay (or the "
       "Alibaba app that shows them) on a given day.",
       "assumption: below WeChat's (seed 000: 'many people like to use WeChat Pay and "
       "don't like to open Alipay', and Wufu exists because few would open Alipay at "
       "the Spring Festival without it); the calibration fits it", 0.0, 1.0),
    # --- friendship network --------------------------------------------------------
    _p("network.mean_degree", 10, "ties per user",
       "Mean number of friendship ties per user agent (small-world ring lattice).",
       "assumption: the close contacts who exchange red envelopes, not the full "
       "contact list", 2, 50, int),
    _p("network.rewire_prob", 0.1, "probability",
       "Share of ties rewired to random users (Watts-Strogatz), giving short paths.",
       "assumption", 0.0, 1.0),
    # --- launch dates ---------------------------------------------------------------
    _p("wechat.launch", dt.date(2017, 1, 9), "date",
       "WeChat mini programs open to users and merchants.",
       "reported: launched 9 January 2017 (seed 002: 'launched in early 2017'; "
       "WeChat Open Class)", kind="date"),
    _p("alipay.beta", dt.date(2017, 9, 1), "date",
       "Alipay mini-program public beta: merchants may start building.",
       "reported: public beta September 2017 (TechNode 2018-07-30: 'after year-long "
       "public testing'; Medium 2017-10-09: about 60 mini programs)", kind="date"),
    _p("alipay.launch", dt.date(2018, 9, 1), "date",
       "Alipay mini programs open to users (official launch).",
       "reported: launch of the mini-program unit September 2018 with 120 million "
       "daily users (Financial IT 2019-01-29); seed 002 says 'mid-2018'", kind="date"),
    _p("alipay.beta_access", 0.27, "share of merchants",
       "Share of merchants admitted to build during Alipay's beta, before the launch to "
       "users; the rest may build from the launch.",
       "calibrated: 0.27 in calibration 20261202T040247Z, which it hardly moved; held "
       "fixed since as an assumption (about 60 mini programs in October 2017, Medium, and "
       "20,000 at launch, Global Times, tier B)", 0.0, 1.0),
    _p("alipay.first_party_coverage", 0.45, "share of Alipay users",
       "Share of Alipay users counted as mini-program users on launch day because "
       "Alipay turned its own functions into mini programs.",
       "reported: 300 million covered users at launch (iter01 2019-02-01) over about "
       "650 million Alipay users then; seed 000: 'Alipay has made some commonly used "
       "functions into mini-programs'", 0.0, 1.0),
    _p("alipay.first_party_catalog", 0.5, "share of sector",
       "Coverage of each sector's catalogue but games by Alipay's and Alibaba's own "
       "mini programs from Alipay's launch (bills and utilities, Ele.me, Tmall, Koubei, "
       "travel), on top of merchants' mini programs.",
       "assumption: seed 000, 'the number of users of Alipay is mainly because Alipay has "
       "made some commonly used functions into mini-programs'", 0.0, 1.0),
    # --- payments and red envelopes -----------------------------------------------
    _p("wechat_pay.initial_share", 0.015, "share of WeChat users",
       "Share of WeChat users with WeChat Pay on 1 January 2014.",
       "reported: about 8 million WeChat Pay users by February 2014 (tier C) among "
       "roughly 400 million accounts", 0.0, 1.0),
    _p("wechat_pay.max_share", 0.85, "share of WeChat users",
       "Share of WeChat users who would ever bind a card to WeChat Pay; the rest (no "
       "bank card, no wish to pay by phone, second accounts) never do, so WeChat Pay "
       "saturates below the WeChat user base.",
       "calibrated: to the reported 800 million WeChat Pay users (2018-12, 2019-12) "
       "against about 1,000 million WeChat users (seed 000)", 0.0, 1.0),
    _p("wechat_pay.organic_weekly", 0.0035, "probability per week",
       "Weekly probability that a WeChat user without WeChat Pay binds a card for "
       "reasons other than red envelopes (shops, transfers, bills).",
       "calibrated: hand-tuned to reported pay_users (100M 2015-02, 600M 2017-06, "
       "800M 2018-12)", 0.0, 0.2),
    _p("red_envelope.strength", 1.0, "multiplier",
       "Scenario lever: multiplies the probability of sending a red envelope along "
       "each tie. 0 switches red envelopes off.",
       "assumption: 1 is history as it happened", 0.0, 10.0),
    _p("red_envelope.first_year", 2014, "year",
       "First Spring Festival with WeChat red envelopes.",
       "reported: first WeChat red envelopes at the 2014 Spring Festival (16-20 "
       "million sent on New Year's Eve 2014)", 2013, 2035, int),
    _p("red_envelope.send_prob", 0.15, "probability per tie",
       "Probability that a WeChat Pay user sends at least one red envelope to a given "
       "WeChat friend in Spring Festival week.",
       "calibrated: hand-tuned so participants approach the reported 420 million "
       "(2016) and 688 million (2018) on New Year's Eve", 0.0, 1.0),
    _p("red_envelope.activation_prob", 0.5, "probability per envelope",
       "Probability that a red envelope makes a recipient without WeChat Pay bind a "
       "card to claim it.",
       "calibrated: hand-tuned to reported pay_users; seed 000: red envelopes made "
       "WeChat Pay 'popular overnight'", 0.0, 1.0),
    _p("red_envelope.max_share", 0.75, "share of WeChat users",
       "Share of WeChat users who take part in Spring Festival red envelopes at all "
       "(sending or receiving); the others do not, whatever their friends do.",
       "calibrated: to the reported 688 million participants on New Year's Eve 2018 "
       "(TechNode, tier A) against about 1,000 million WeChat users", 0.0, 1.0),
    _p("red_envelope.everyday_factor", 0.03, "ratio",
       "Red-envelope sending in an ordinary week relative to Spring Festival week.",
       "assumption: festival volume is tens of times an ordinary week's (8.1 billion "
       "envelopes on New Year's Eve 2016 alone)", 0.0, 1.0),
    # --- mini-program use by users ------------------------------------------------
    _p("users.discovery_weekly_wechat", 0.02, "rate per week",
       "Weekly rate at which a WeChat user first tries a mini program when the "
       "catalogue is complete (scaled by catalogue value).",
       "calibrated: hand-tuned to over 600 million WeChat mini-program users at "
       "end-2018 (seed 000)", 0.0, 1.0),
    _p("users.discovery_weekly_alipay", 0.06, "rate per week",
       "Weekly rate at which an Alipay user first tries a mini program when the "
       "catalogue is complete.",
       "calibrated: hand-tuned to over 500 million Alipay mini-program users in early "
       "2019 (seed 000)", 0.0, 1.0),
    _p("users.engagement_base", -2.8, "log-odds",
       "Baseline log-odds that a mini-program user who opens the app that day uses a "
       "mini program in it; the same on both platforms (the platforms differ in how "
       "often their app is opened, apps.<p>_daily_open, and in their catalogues).",
       "calibrated: hand-tuned to 210 million WeChat daily users at end-2018 (seed 000)",
       -10.0, 5.0),
    _p("users.engagement_catalog", 2.0, "log-odds per unit catalogue value",
       "How much a fuller catalogue raises daily use (cross-side effect on users).",
       "assumption", 0.0, 10.0),
    _p("users.engagement_sd", 1.0, "log-odds",
       "Spread of users' personal daily-use propensity.",
       "assumption", 0.0, 5.0),
    _p("users.discovery_spread", 0.0, "variance",
       "Spread of users' openness to trying mini programs: each user's discovery rate is "
       "multiplied by a Gamma-distributed factor with mean 1 and this variance, drawn "
       "once. With a large variance many users are hardly open at all and the open try "
       "mini programs within weeks, so the number who have ever used them levels off.",
       "assumption: heterogeneous adoption rates (gamma frailty, as in survival "
       "analysis); 0 gives every user the same rate", 0.0, 20.0),
    _p("users.lapse_weekly_wechat", 0.0, "probability per week",
       "Weekly probability that a WeChat mini-program user stops using them (lapses); "
       "a lapsed user uses none until they come back (users.return_weekly).",
       "calibrated: to the reported monthly users (QuestMobile 681 million, April 2019) "
       "against the people who have ever used them", 0.0, 0.2),
    _p("users.lapse_weekly_alipay", 0.0, "probability per week",
       "Weekly probability that an Alipay mini-program user lapses.",
       "calibrated: to the reported 401 million monthly users (QuestMobile, April 2019) "
       "against 640 million who have ever used them (March 2019)", 0.0, 0.2),
    _p("users.return_weekly", 0.02, "probability per week",
       "Weekly probability that a lapsed mini-program user comes back (either platform).",
       "calibrated: together with the lapse rates; the share of ever-users still active "
       "tends to return / (lapse + return)", 0.0, 1.0),
    _p("users.catalog_concavity", 0.5, "exponent",
       "Exponent gamma of the catalogue value sum_s need_s * coverage_s^gamma: below 1, "
       "the first mini programs of a sector matter most (diminishing returns).",
       "assumption", 0.05, 1.0),
    _p("users.habit_per_year", 0.5, "log-odds per year",
       "Habit: daily use rises with the years since a user first used the platform's "
       "mini programs (learning), up to habit_cap_years.",
       "assumption", 0.0, 5.0),
    _p("users.novelty_lift", 0.0, "log-odds",
       "Novelty: a newcomer to a platform's mini programs uses them more at first; the "
       "lift decays as exp(-years since first use / novelty_years).",
       "assumption: the reported WeChat daily users rose only from 170 to 210 million in "
       "2018 while the first users' enthusiasm (the Jump Jump craze of January 2018) "
       "faded; 0 switches novelty off", 0.0, 10.0),
    _p("users.novelty_years", 0.25, "years",
       "Time scale over which a newcomer's extra use wears off (novelty_lift).",
       "assumption", 0.02, 5.0),
    _p("users.uses_extra_log", 0.0, "log uses per day",
       "Log of the extra mini-program uses, beyond the first, of a daily user on a day "
       "of use with the full catalogue and no habit yet (0: one extra use).",
       "assumption: the level does not matter to any target, only its growth does",
       -5.0, 5.0),
    _p("users.uses_habit_per_year", 0.5, "log per year",
       "Growth of a daily user's extra uses per day with the years since first use, up "
       "to habit_cap_years (usage frequency).",
       "assumption; calibrated against the reported 54% rise in average daily usage "
       "frequency in 2018 (seed 000)", 0.0, 5.0),
    _p("users.habit_cap_years", 4.6, "years",
       "Years of use after which habit stops growing (in daily use and in uses per day).",
       "calibrated: 4.6 years in calibration 20261202T040247Z (fitted to the figures to "
       "February 2019), where it changed no fitted figure; held fixed since as an "
       "assumption", 0.0, 20.0),
    _p("users.pay_lift", 0.5, "log-odds",
       "Lift in daily mini-program use for users who pay on that platform: payment "
       "closes the loop from display to order to payment (seed 000).",
       "assumption", 0.0, 5.0),
    _p("users.pay_discovery_lift", 1.0, "multiplier",
       "Extra discovery rate for users who pay on that platform (rate x (1 + lift)).",
       "assumption", 0.0, 10.0),
    _p("users.spring_festival_lift", 0.3, "log-odds",
       "Lift in daily use of both platforms' mini programs in Spring Festival week.",
       "assumption: the 2018 WeChat peak of 280 million (Aldwx, tier B) against about "
       "200 million ordinary days", 0.0, 5.0),
    # --- daily necessities, 2020 ------------------------------------------------
    _p("necessities.enabled", True, "switch",
       "Scenario lever: whether mini programs become daily necessities in early 2020 "
       "(health codes, grocery and livelihood services under the epidemic).",
       "reported: 'Thanks to the needs of daily necessities purchase and livelihood "
       "services, the daily active accounts of mini-programs have exceeded 400 million' "
       "(Tencent 1Q2020 via People.cn, tier C)", kind=bool),
    _p("necessities.start", dt.date(2020, 1, 20), "date",
       "Date from which mini programs carry daily necessities.",
       "assumption: the week Wuhan's outbreak became national news (lockdown on 23 "
       "January 2020); health-code mini programs followed in February", kind="date"),
    _p("necessities.use_lift", 0.0, "log-odds",
       "Lift in daily mini-program use from necessities.start on both platforms; it "
       "stays (the services became habits).",
       "calibrated: to WeChat's reported daily users of 2019-12 and 2020-03", 0.0, 5.0),
    # --- Wufu ------------------------------------------------------------------
    _p("wufu.first_year", 2016, "year",
       "First Spring Festival with Alipay's Wufu (collect five blessings) campaign.",
       "reported: 0.79 million completers in 2016, 168 million in 2017", 2013, 2035, int),
    _p("wufu.campaign_days", 11, "days",
       "Days of each Wufu campaign, ending on New Year's Eve; the weeks it overlaps are "
       "Wufu weeks (rules 6 and 8).",
       "reported: 'the 11 days from January 25 to New Year's Eve' of 2019 (figures "
       "line 29); the same length in other years is an assumption", 1, 60, int),
    _p("wufu.activity_lift", 0.7, "log-odds",
       "Lift, on the log-odds scale, in the probability of opening Alipay on a day of "
       "a Wufu week (apps.alipay_daily_open).",
       "calibrated: hand-tuned to the 280 million Spring Festival peak of 2019 "
       "(seed 000)", 0.0, 10.0),
    _p("wufu.discovery_rate", 0.05, "probability",
       "Probability that an Alipay user who has not used a mini program tries one "
       "through a Wufu campaign (after Alipay's launch), spread evenly over its weeks.",
       "assumption", 0.0, 1.0),
    # --- traffic sharing --------------------------------------------------------
    _p("traffic_sharing.enabled", True, "switch",
       "Whether Alibaba apps surface Alipay mini programs at all.",
       "reported: seed 000, 'gradually open up the numerous APP ports ... in the entire "
       "Alibaba system'", kind=bool),
    _p("traffic_sharing.start", dt.date(2019, 1, 1), "date",
       "Date the first Alibaba app surfaces Alipay mini programs.",
       "reported: seed 000 (early 2019) calls opening the app ports 'the first thing "
       "they did this year'", kind="date"),
    _p("traffic_sharing.ramp_weeks", 52, "weeks",
       "Weeks over which the listed apps open one after another ('gradually').",
       "assumption", 0, 520, int),
    _p("traffic_sharing.apps", list(ALIBABA_APPS), "apps",
       "Alibaba apps that open to Alipay mini programs, in opening order.",
       "reported: seed 000 names Amap, Koubei and Ele.me; seed 002 Taobao and Tmall",
       kind="apps"),
    _p("traffic_sharing.exposure_weekly", 0.01, "probability per week",
       "Weekly probability that a user of an opened Alibaba app, not yet an Alipay "
       "mini-program user, tries one there.",
       "assumption", 0.0, 1.0),
    _p("traffic_sharing.reach_weight", 1.0, "weight",
       "How much merchants count the audiences of opened apps as reach ('develop "
       "once, run on many terminals').",
       "assumption: 1 counts them like Alipay's own users", 0.0, 5.0),
    *[
        _p(f"traffic_sharing.{app}_audience", share, "share of population",
           f"Share of the population using {app} at any time in the horizon.",
           source, 0.0, 1.0)
        for app, share, source in [
            ("taobao", 0.55, "reported: 346 million Taobao MAU in 2016-03 (QuestMobile), "
                             "assumed to grow to about 600 million"),
            ("tmall", 0.35, "assumption"),
            ("amap", 0.45, "assumption"),
            ("koubei", 0.10, "assumption"),
            ("eleme", 0.15, "assumption"),
        ]
    ],
    # --- merchants ---------------------------------------------------------------
    _p("merchants.population_millions", 3.0, "million merchants",
       "Potential mini-program builders represented by the merchant agents.",
       "assumption: above the 2.3 million WeChat mini programs reported for January "
       "2019 (Aladdin, tier B)", 0.01, 100.0),
    _p("merchants.review_weekly", 0.02, "probability per week",
       "Weekly probability that a merchant reconsiders where it has mini programs.",
       "assumption: about once a year", 0.0, 1.0),
    _p("merchants.reach_sensitivity", 6.0, "log-odds per unit reach",
       "How strongly merchants go where the reachable users are (cross-side effect "
       "on merchants).",
       "calibrated: hand-tuned to 0.58 million WeChat mini programs at January 2018 "
       "and about 1 million mid-2018", 0.0, 50.0),
    _p("merchants.potential_reach_weight", 0.3, "weight",
       "Weight merchants give to app users who do not yet use mini programs, against "
       "monthly mini-program users (weight 1).",
       "assumption", 0.0, 1.0),
    _p("merchants.multihoming_discount", 0.5, "share of cost",
       "Cost saved on a second platform by a merchant already on the other.",
       "assumption: most code and content carry over", 0.0, 1.0),
    _p("programs.extra_per_year_wechat", 0.0, "mini programs per merchant per year",
       "Mini programs beyond its first that a merchant on WeChat (with the third-party "
       "developers building for it) publishes per year when every person is reachable; "
       "the rate scales with the platform's reach.",
       "calibrated: to the reported WeChat mini-program counts (0.58 million 2018-01 to "
       "2.3 million 2019-04 and 3.0 million 2019-09) against its merchants; several "
       "programs per merchant: WeChat had 2,300 third-party development companies by "
       "January 2018 (WeChat Open Class, tier A)", 0.0, 20.0),
    _p("programs.extra_per_year_alipay", 0.0, "mini programs per merchant per year",
       "Mini programs beyond its first that a merchant on Alipay publishes per year at "
       "full reach; reach includes the users of the Alibaba apps opened by traffic "
       "sharing ('develop once, operate on multiple terminals').",
       "calibrated: to the reported Alipay counts (0.12 million 2019-01, 0.16 million "
       "2019-03, 1.7 million 2020-03)", 0.0, 20.0),
    _p("programs.retire_per_year", 0.3, "share per year",
       "Share of the extra mini programs retired each year (abandoned campaigns, "
       "unmaintained tools); a merchant leaving a platform retires all of its programs "
       "there.",
       "assumption: a third a year; the calibration may move it", 0.0, 3.0),
    _p("merchants.alipay_payment_share", 0.6, "share of merchants",
       "Share of merchants that already accept Alipay payment at the start.",
       "assumption: Alipay's strength is its merchants (seed 000); 40 million stores "
       "enabled mobile payment in 2017 (Xinhua, tier C)", 0.0, 1.0),
    _p("merchants.alipay_merchant_advantage", 0.3, "log-odds",
       "Advantage on Alipay for a merchant already accepting Alipay payment.",
       "assumption", 0.0, 10.0),
    _p("merchants.alipay_extra_cost", 1.5, "log-odds",
       "Extra cost of building on Alipay rather than WeChat: tools, documentation and "
       "third-party developers were scarcer.",
       "assumption: WeChat had 2,300 third-party mini-program platform companies by "
       "January 2018 (WeChat Open Class, tier A); Alipay had 20,000 mini programs at "
       "launch against WeChat's million", 0.0, 10.0),
    *_sector_params(),
)



CALIBRATED_FILE = __import__("pathlib").Path(__file__).with_name("calibrated.toml")


def _apply_calibration(params: tuple[Param, ...], path=CALIBRATED_FILE) -> tuple[Param, ...]:
    """Defaults replaced by the adopted calibration in ``model/calibrated.toml``, if any.

    ``scripts/adopt_calibration.py`` writes that file from a calibration's results; each
    parameter it sets then says "calibrated" and names the calibration in its source.
    """
    import tomllib
    from dataclasses import replace

    if not path.is_file():
        return params
    from .errors import ParameterError

    by_name = {p.name: p for p in params}
    for stage in tomllib.loads(path.read_text()).get("stage", []):
        for name, value in stage.get("values", {}).items():
            p = by_name.get(name)
            if p is None:
                raise ParameterError(f"{path}: unknown parameter {name!r}")
            if not (p.low <= value <= p.high):
                raise ParameterError(f"{path}: {name}: value {value!r} is not allowed; "
                                     f"expected {p.describe_allowed()}")
            first = p.source.split("; before it, ")[-1] if p.source.startswith("calibrated: ") \
                else p.source
            by_name[name] = replace(p, default=int(value) if p.kind is int else float(value),
                                    source=f"calibrated: calibration {stage['calibration_id']} "
                                           f"({stage['results']}); before it, {first}")
    return tuple(by_name[p.name] for p in params)


#: The defaults as set by hand, before any adopted calibration: where a fit must not
#: start from values fitted to figures it is meant not to know (the backtest).
UNCALIBRATED = {p.name: p.default for p in PARAMS}
PARAMS = _apply_calibration(PARAMS)
BY_NAME: dict[str, Param] = {p.name: p for p in PARAMS}


def defaults() -> dict[str, Any]:
    """A fresh dict of every parameter's default value."""
    return {p.name: (list(p.default) if isinstance(p.default, list) else p.default) for p in PARAMS}


#: Run settings a scenario's ``[run]`` table may set, with (kind, low, high, default, meaning).
RUN_SETTINGS: dict[str, tuple[type, float, float, Any, str]] = {
    "agents": (int, 100, 50_000_000, 100_000, "user agents"),
    "merchant_agents": (int, 100, 5_000_000, 20_000, "merchant agents"),
    "replicates": (int, 1, 10_000, 2, "replicate runs with different seeds, per draw"),
    "draws": (int, 1, 10_000, 20, "parameter sets drawn from the posterior ensemble; a "
                                  "run is draws x replicates model runs"),
    "seed": (int, 0, 2**63 - 1, 20190109, "root seed of the replicate seeds"),
    "start": ("date", 0, 0, dt.date(2014, 1, 1), "first simulated day"),
    "end": ("date", 0, 0, dt.date(2025, 12, 31), "last simulated day"),
}


def run_defaults() -> dict[str, Any]:
    return {k: v[3] for k, v in RUN_SETTINGS.items()}


def _closest(name: str, valid) -> str:
    import difflib

    close = difflib.get_close_matches(name, list(valid), n=3, cutoff=0.5)
    return f"did you mean {', '.join(close)}?" if close else f"valid names: {', '.join(sorted(valid))}"


def parse_date(value: Any) -> dt.date | None:
    """A ``datetime.date`` from a TOML date or a ``YYYY-MM-DD`` string, else None."""
    if isinstance(value, dt.datetime):
        return None
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def coerce(spec_kind, low, high, value: Any, where: str, allowed: str) -> Any:
    """Check one value against a kind and range; return it in canonical form.

    ``where`` names the place (file and key) for the error message.
    """
    from .errors import ParameterError

    given = value

    def bad():
        return ParameterError(f"{where}: value {given!r} is not allowed; expected {allowed}")

    if spec_kind == "date":
        day = parse_date(value)
        if day is None or not (dt.date(2013, 1, 1) <= day <= dt.date(2035, 12, 31)):
            raise bad()
        return day
    if spec_kind == "apps":
        if not isinstance(value, (list, tuple)) \
                or any(not isinstance(v, str) or v not in ALIBABA_APPS for v in value) \
                or len(set(value)) != len(value):
            raise bad()
        return [str(v) for v in value]
    if spec_kind is bool:
        if isinstance(value, np.bool_):  # numpy's booleans, as an API caller may pass
            value = bool(value)
        if not isinstance(value, bool):
            raise bad()
        return value
    # numbers.Integral and numbers.Real take numpy's int64, float32 and the rest too
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise bad()
    if spec_kind is int:
        if not isinstance(value, numbers.Integral):
            if not math.isfinite(value) or not float(value).is_integer():
                raise bad()
        value = int(value)
    else:
        value = float(value)
    if value != value or (low is not None and value < low) or (high is not None and value > high):
        raise bad()
    return value


def check_param(name: str, value: Any, where: str = "parameters") -> Any:
    """Validate one parameter value by its spec; raise ParameterError naming ``where``."""
    from .errors import ParameterError

    spec = BY_NAME.get(name) if isinstance(name, str) else None
    if spec is None:
        raise ParameterError(f"{where}: unknown parameter {name!r}; "
                             f"{_closest(str(name), BY_NAME)}")
    return coerce(spec.kind, spec.low, spec.high, value, f"{where}: {name}", spec.describe_allowed())


def check_run_setting(name: str, value: Any, where: str = "run settings") -> Any:
    from .errors import ParameterError

    if not isinstance(name, str) or name not in RUN_SETTINGS:
        raise ParameterError(f"{where}: unknown run setting {name!r}; "
                             f"{_closest(str(name), RUN_SETTINGS)}")
    kind, low, high, _, _ = RUN_SETTINGS[name]
    allowed = ("a date YYYY-MM-DD between 2013-01-01 and 2035-12-31" if kind == "date"
               else f"an integer in [{low}, {high}]")
    return coerce(kind, low if kind != "date" else None, high if kind != "date" else None,
                  value, f"{where}: run.{name}", allowed)


def resolve(overrides: Mapping[str, Any] | None = None,
            where: str = "parameters") -> dict[str, Any]:
    """Defaults with ``overrides`` applied, every value checked, and the checks
    between parameters (:func:`check_together`)."""
    from .errors import ParameterError

    if overrides is not None and not isinstance(overrides, Mapping):
        raise ParameterError(f"{where}: value {_short(overrides)} is not allowed; expected "
                             "a dict of parameter values by dotted name, e.g. "
                             "{'red_envelope.strength': 0.5}")
    out = defaults()
    for name, value in (overrides or {}).items():
        out[name] = check_param(name, value, where)
    check_together(out, where)
    return out


def check_together(params: Mapping[str, Any], where: str = "parameters") -> None:
    """Refuse parameter values that are each allowed but contradict one another,
    naming both keys: Alipay's launch to users before its beta for merchants; sector
    weights that are all zero (the model renormalises them to sum to 1)."""
    from .errors import ParameterError

    beta, launch = params["alipay.beta"], params["alipay.launch"]
    if launch < beta:
        raise ParameterError(f"{where}: alipay.launch {launch} is before alipay.beta {beta}; "
                             "expected alipay.launch on or after alipay.beta (merchants "
                             "build in the beta, users arrive at the launch)")
    for field_name, what in (("merchant_share", "merchants' sector shares"),
                             ("need", "users' sector needs")):
        keys = [f"sector.{s}.{field_name}" for s in SECTORS]
        if sum(params[k] for k in keys) <= 0:
            raise ParameterError(f"{where}: {', '.join(keys)} are all 0; expected at least "
                                 f"one above 0 ({what} are renormalised to sum to 1)")


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def check_seed(seed: Any, where: str = "seed") -> Any:
    """A seed ``numpy.random.default_rng`` takes (None, an integer >= 0, a sequence of
    them, a ``SeedSequence``, ``BitGenerator`` or ``Generator``), else ParameterError."""
    from .errors import ParameterError

    if seed is None or isinstance(seed, (np.random.SeedSequence, np.random.BitGenerator,
                                         np.random.Generator)):
        return seed
    items = seed if isinstance(seed, (list, tuple)) and seed else [seed]
    if all(isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) and v >= 0
           for v in items):
        return seed
    raise ParameterError(f"{where}: value {_short(seed)} is not allowed; expected an integer "
                         ">= 0 (or a numpy SeedSequence)")
