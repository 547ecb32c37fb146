"""factory_boy factories for plain entities. Ledger state is made only through services."""

from __future__ import annotations

import factory

from meiye.org.models import Organisation, Staff, Store
from meiye.org.roles import Position


class OrganisationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organisation
        django_get_or_create = ("code",)

    name = "丽颜美业"
    code = "liyan"


class StoreFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Store

    organisation = factory.SubFactory(OrganisationFactory)
    code = factory.Sequence(lambda n: f"s{n + 1}")
    name = factory.Sequence(lambda n: f"门店{n + 1}")
    time_zone = "Asia/Shanghai"


class StaffFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Staff
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"staff{n + 1}")
    display_name = factory.Sequence(lambda n: f"员工{n + 1}")
    organisation = factory.SubFactory(OrganisationFactory)
    position = Position.RECEPTIONIST
    password = factory.django.Password("demo-pass-123")

    @factory.post_generation
    def stores(self, create: bool, extracted: list[Store] | None, **kwargs: object) -> None:
        if create and extracted:
            self.stores.set(extracted)
