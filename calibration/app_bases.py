"""Logistic curves of the app user bases, fitted to the reported figures.

    python -m calibration.app_bases

The model takes WeChat's and Alipay's app users as inputs (``model/params.py``,
``apps.*``). This script fits :math:`K / (1 + e^{-(y - m)/w})` (``y`` in decimal years)
with ``scipy.optimize.curve_fit`` and prints the values the defaults carry:

* WeChat: every reported ``app_mau`` row (monthly active accounts, 2013-2018) not
  marked as a conflict or lower bound; ``K``, ``m`` and ``w`` all fitted.
* Alipay: every reported ``app_users`` row not marked as a conflict. Four points from
  2016-2018 cannot pin a ceiling, so ``K`` is fixed at ``apps.alipay_ceiling_millions``
  (an assumption) and only ``m`` and ``w`` are fitted.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
from pathlib import Path

import numpy as np
from scipy.optimize import curve_fit

from model.calendar import decimal_year
from model.params import BY_NAME

from .data import parse_date

FIGURES = Path(__file__).resolve().parent / "data" / "reported_figures.csv"


def _rows(platform: str, series: str) -> tuple[np.ndarray, np.ndarray]:
    years, values = [], []
    with FIGURES.open(newline="") as handle:
        for row in csv.DictReader(handle):
            note = row["note"].lower()
            if (row["platform"], row["series"]) != (platform, series):
                continue
            if "conflict" in note or "lower bound" in note:
                continue
            years.append(decimal_year(parse_date(row["date"])))
            values.append(float(row["value"]))
    return np.array(years), np.array(values)


def logistic(year, ceiling, midpoint, scale):
    return ceiling / (1.0 + np.exp(-(year - midpoint) / scale))


def fit() -> dict[str, float]:
    """The fitted curve parameters, by parameter name."""
    years, values = _rows("wechat", "app_mau")
    (ceiling, midpoint, scale), _ = curve_fit(logistic, years, values, p0=(1100, 2015, 1),
                                              maxfev=20_000)
    out = {"apps.wechat_ceiling_accounts_millions": ceiling, "apps.wechat_midpoint_year": midpoint,
           "apps.wechat_scale_years": scale}
    years, values = _rows("alipay", "app_users")
    alipay_ceiling = BY_NAME["apps.alipay_ceiling_millions"].default
    (midpoint, scale), _ = curve_fit(lambda y, m, w: logistic(y, alipay_ceiling, m, w),
                                     years, values, p0=(2016, 2), maxfev=20_000)
    out.update({"apps.alipay_midpoint_year": midpoint, "apps.alipay_scale_years": scale})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description="Fit the app user curves to the reported figures.")
    parser.parse_args()
    for name, value in fit().items():
        default = BY_NAME[name].default
        print(f"{name:40s} fitted {value:10.4f}   default {default}")


if __name__ == "__main__":
    main()
