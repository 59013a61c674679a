"""Query shapes: one per structure, whatever the values; every plannable command yields its queries."""

from __future__ import annotations

from adapters.mongo.query_analyzer import PlanEntry, QueryPlanAnalyzer, queries_of, shape_of


def test_values_vanish_but_fields_operators_and_sort_directions_stay() -> None:
    assert shape_of({"brand_key": "ray-ban", "price": {"$gte": 10, "$lte": 20}}) == {
        "brand_key": "?",
        "price": {"$gte": "?", "$lte": "?"},
    }
    assert shape_of({"skus": {"$in": ["A", "B", "C"]}}) == {"skus": {"$in": "?"}}
    assert shape_of([{"$match": {"a": 1}}, {"$sort": {"name_key": -1, "_id": -1}}, {"$limit": 21}]) == [
        {"$match": {"a": "?"}},
        {"$sort": {"name_key": -1, "_id": -1}},
        {"$limit": "?"},
    ]


def test_every_plannable_command_gives_its_queries() -> None:
    updates = {"update": "products", "updates": [{"q": {"_id": "a", "version": 1}}, {"q": {"_id": "b"}}]}
    assert [q.filter for q in queries_of(updates)] == [{"_id": "a", "version": 1}, {"_id": "b"}]
    assert queries_of({"delete": "t", "deletes": [{"q": {"x": 1}}]})[0].filter == {"x": 1}
    modify = queries_of({"findAndModify": "t", "query": {"_id": "h", "used": False}, "sort": {"_id": 1}})[0]
    assert (modify.filter, modify.sort) == ({"_id": "h", "used": False}, {"_id": 1})
    assert queries_of({"count": "t", "query": {"a": 1}})[0].filter == {"a": 1}
    assert queries_of({"distinct": "t", "key": "a"})[0].filter == {}
    assert queries_of({"aggregate": "t", "pipeline": [{"$match": {}}], "cursor": {}})[0].pipeline == [{"$match": {}}]


def test_the_same_shape_is_explained_once() -> None:
    analyzer = QueryPlanAnalyzer()
    analyzer.record({"find": "products", "filter": {"_id": "a"}, "$db": "x"})
    analyzer.record({"find": "products", "filter": {"_id": "b"}, "$db": "x"})
    analyzer.record({"find": "products", "filter": {"skus": "S"}, "$db": "x"})
    analyzer.record({"find": "products", "filter": {"_id": "a"}, "sort": {"_id": -1}})
    assert [q.filter for q in analyzer.queries()] == [{"_id": "a"}, {"skus": "S"}, {"_id": "a"}]


def test_an_index_stage_without_a_collection_scan_is_index_use() -> None:
    assert PlanEntry("p", "find", "{}", ("FETCH", "IXSCAN")).uses_index
    assert PlanEntry("p", "find", "{}", ("IDHACK",)).uses_index
    assert not PlanEntry("p", "find", "{}", ("COLLSCAN",)).uses_index
    assert not PlanEntry("p", "find", "{}", ("SORT", "COLLSCAN")).uses_index
    assert not PlanEntry("p", "find", "{}", ("EOF",)).uses_index
    assert PlanEntry("p", "find", "{}", ("COLLSCAN",)).describe() == "p find {} -> COLLSCAN"
