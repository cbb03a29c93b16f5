"""Tests for exporter.schema: validating YAML mappings against a declarative table of keys."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from exporter.schema import (
    Choice,
    Duration,
    Integer,
    Key,
    ListOf,
    Mapping,
    Node,
    Number,
    Text,
    markdown_table,
    replace_between,
    validate,
)


@dataclass(frozen=True)
class Limits:
    rows: int
    every: float


@dataclass(frozen=True)
class Section:
    name: str
    mode: str
    limits: Limits


LIMITS = (
    Key("rows", Integer(1), "how many", default=10),
    Key("every", Duration(), "how often", default="5s"),
)
SECTION = (
    Key("name", Text(), "what it is called", required=True),
    Key("mode", Choice(("fast", "slow")), "how it runs", default="fast"),
    Key("share", Number("number in (0, 1]", lambda x: 0 < x <= 1), "a share", default=0.5),
    Key("limits", Mapping(LIMITS, into=Limits), "bounds", default={}),
    Key("items", ListOf((Key("id", Text(), "an id", required=True),)), "things"),
)


def check(data: object) -> tuple[Node | None, list[str]]:
    """Validate `data` against SECTION under the path `s`."""
    problems: list[str] = []
    return validate(SECTION, data, "s", problems), problems


class TestValidate:
    def test_defaults_are_converted_like_given_values(self) -> None:
        node, problems = check({"name": "a"})
        assert problems == []
        assert node is not None
        assert (node["mode"], node["share"], node["items"]) == ("fast", 0.5, None)
        assert node["limits"].values == {"rows": 10, "every": 5.0}

    def test_every_problem_is_reported_with_its_path(self) -> None:
        data = {"nmae": "a", "mode": "medium", "limits": {"rows": 0}, "items": [{}, 3]}
        _, problems = check(data)
        assert problems == [
            "s.nmae: unknown key (did you mean 'name'?)",
            "s.name: required key is missing",
            "s.mode: expected 'fast' or 'slow', got 'medium'",
            "s.limits.rows: expected an integer >= 1, got 0",
            "s.items[0].id: required key is missing",
            "s.items[1]: expected a mapping with keys id, got 3",
        ]

    def test_an_invalid_value_is_replaced_by_its_default_and_remembered(self) -> None:
        node, _ = check({"name": "a", "mode": 1, "share": True})
        assert node is not None
        assert (node["mode"], node["share"]) == ("fast", 0.5)
        assert node.invalid == {"mode", "share"}
        assert node.given("mode")
        assert not node.given("limits")

    def test_null_counts_as_absent(self) -> None:
        node, problems = check({"name": "a", "mode": None})
        assert problems == []
        assert node is not None
        assert node["mode"] == "fast"

    def test_a_check_adds_a_problem_to_a_well_typed_value(self) -> None:
        keys = (Key("name", Text(), "", check=lambda v: None if v.islower() else "lower case"),)
        problems: list[str] = []
        node = validate(keys, {"name": "A"}, "", problems)
        assert problems == ["name: lower case"]
        assert node is not None
        assert node["name"] is None

    def test_a_non_mapping_is_reported_at_the_top_level(self) -> None:
        problems: list[str] = []
        assert validate(LIMITS, [1], "", problems) is None
        assert problems == ["(top level): expected a mapping with keys rows, every, got a list"]


class TestBuild:
    def test_a_section_builds_its_dataclass_by_field_name_with_nested_sections(self) -> None:
        node, _ = check({"name": "a", "limits": {"rows": 3}})
        assert node is not None
        assert node.build(Section) == Section("a", "fast", Limits(3, 5.0))

    def test_overrides_win_over_the_values(self) -> None:
        node, _ = check({"name": "a"})
        assert node is not None
        assert node.build(Section, mode="slow").mode == "slow"

    @pytest.mark.parametrize(
        ("data", "error"),
        [
            ({"name": "a", "items": [{"id": "x"}]}, r"s\.items\[0\]: a list of sections"),
            ({"name": "a", "inner": {}}, r"s\.inner: a section without `into`"),
        ],
    )
    def test_a_section_without_a_dataclass_must_be_built_by_hand(
        self, data: dict[str, object], error: str
    ) -> None:
        @dataclass(frozen=True)
        class Outer:
            items: object = None
            inner: object = None

        keys = (*SECTION, Key("inner", Mapping(LIMITS), ""))
        node = validate(keys, data, "s", [])
        assert node is not None
        with pytest.raises(TypeError, match=error):
            node.build(Outer)
        assert node.build(Outer, items=(), inner=None) == Outer((), None)


class TestMarkdown:
    def test_each_key_and_subkey_is_a_row_with_type_default_and_meaning(self) -> None:
        assert markdown_table(SECTION).splitlines() == [
            "| key | type | default | meaning |",
            "| --- | --- | --- | --- |",
            "| `name` | string | required | what it is called |",
            "| `mode` | `fast` or `slow` | `fast` | how it runs |",
            "| `share` | number in (0, 1] | `0.5` | a share |",
            "| `limits` | mapping | its keys' defaults | bounds |",
            "| `limits.rows` | integer >= 1 | `10` | how many |",
            "| `limits.every` | duration > 0 | `5s` | how often |",
            "| `items` | non-empty list of mappings | none | things |",
            "| `items[].id` | string | required | an id |",
        ]

    def test_replace_between_keeps_the_markers_and_what_surrounds_them(self) -> None:
        text = "a\n<!-- s -->\nold\n<!-- e -->\nb\n"
        assert replace_between(text, "<!-- s -->", "<!-- e -->", "new\n") == (
            "a\n<!-- s -->\nnew\n<!-- e -->\nb\n"
        )

    def test_replace_between_refuses_text_without_the_markers(self) -> None:
        with pytest.raises(ValueError, match="not found"):
            replace_between("no markers\n", "<!-- s -->", "<!-- e -->", "new\n")
