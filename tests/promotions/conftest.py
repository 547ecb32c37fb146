from tests.sales.conftest import *  # noqa: F403 - the checkout fixtures (cashier, hq, reference items, S-05 member…)
