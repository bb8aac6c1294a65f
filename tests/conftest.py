import datetime as dt

import pytest

#: A small, short run used by many tests: fast, but big enough for the rules to act.
SMALL = dict(agents=3000, merchant_agents=600, end=dt.date(2019, 12, 31))


@pytest.fixture
def small():
    return dict(SMALL)
