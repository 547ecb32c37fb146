"""Fixtures for the ledger: accounts and funding through the services only.

The ledger knows organisations and owners as plain ids, so these tests need no org or member rows.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from meiye.ledger.models import Account, Journal
from meiye.ledger.services import account_get_or_create, journal_post
from tests.ledger.support import ORG


@pytest.fixture
def make_account() -> Callable[..., Account]:
    """A new member account (a fresh owner id each call) unless owner_id is given."""
    owner_ids = itertools.count(1001)

    def make(
        *,
        kind: str = "wallet_principal",
        asset: str = "CNY",
        may_go_negative: bool = False,
        organisation_id: int = ORG,
        owner_type: str = "member",
        owner_id: int | None = None,
    ) -> Account:
        return account_get_or_create(
            organisation_id=organisation_id,
            owner_type=owner_type,
            owner_id=owner_id if owner_id is not None else next(owner_ids),
            asset=asset,
            kind=kind,
            may_go_negative=may_go_negative,
        )

    return make


@pytest.fixture
def tender(make_account: Callable[..., Account]) -> Callable[..., Account]:
    """The organisation's counter-account for an asset (money comes in from / goes out to it)."""

    def get(asset: str = "CNY", organisation_id: int = ORG) -> Account:
        return make_account(
            owner_type="organisation",
            owner_id=organisation_id,
            asset=asset,
            kind="tender",
            may_go_negative=True,
            organisation_id=organisation_id,
        )

    return get


@pytest.fixture
def fund(tender: Callable[..., Account]) -> Callable[[Account, int], Journal]:
    """Put ``amount`` into an account, from its organisation's tender account."""

    def put(account: Account, amount: int) -> Journal:
        source = tender(account.asset, account.organisation_id)
        return journal_post(
            organisation_id=account.organisation_id,
            code="test.fund",
            entries=[(account, amount), (source, -amount)],
        )

    return put
