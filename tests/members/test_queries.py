"""Hot paths have a fixed number of queries, however many members there are."""

from __future__ import annotations

from meiye.members.selectors import member_find_by_phone, member_search, member_view


def test_member_lookup_by_phone_takes_at_most_three_queries(
    make_member, receptionist, actor_for, store1, django_assert_max_num_queries
):
    for _ in range(5):
        make_member(store1)
    target = make_member(store1, phone="13912340000")
    actor = actor_for(receptionist, store1)
    with django_assert_max_num_queries(3):
        found = member_find_by_phone(actor, "13912340000")
        assert found == target
        assert found.home_store.name == store1.name


def test_member_search_page_does_not_grow_with_results(
    make_member, receptionist, actor_for, store1, django_assert_num_queries
):
    for _ in range(12):
        make_member(store1, name="王芳")
    actor = actor_for(receptionist, store1)
    with django_assert_num_queries(2):
        rows = [(m.member_no, m.home_store.name) for m in member_search(actor, "王")]
    assert len(rows) == 12


def test_member_view_query_count_is_constant(make_member, receptionist, actor_for, store1, django_assert_num_queries):
    member = make_member(store1)
    actor = actor_for(receptionist, store1)
    with django_assert_num_queries(2):
        member_view(actor, member)
