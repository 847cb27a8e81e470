"""engine.design_diff: what changed between two versions of a task form or a policy profile."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from engine.design_diff import AttributeChange
from engine.design_diff import diff_forms
from engine.design_diff import diff_policies
from engine.forms import parse_form_definition

FORM: dict[str, Any] = {
    "key": "verify",
    "title": "整改验收",
    "version": 1,
    "fields": [
        {
            "name": "decision",
            "label": "验收结论",
            "type": "choice",
            "required": True,
            "options": [{"value": "pass", "label": "通过"}, {"value": "reject", "label": "不通过"}],
        },
        {"name": "opinion", "label": "验收意见", "type": "text", "required": True, "max_length": 2000},
        {"name": "funds", "label": "整改资金", "type": "money", "min": 0},
        {"name": "photos", "label": "验收照片", "type": "photo", "phase": "after", "max_count": 9},
        {
            "name": "part",
            "label": "隐患部位",
            "type": "choice",
            "options": [{"value": "tank", "label": "储罐区"}],
        },
    ],
    "routing": {"decision": "decision"},
}


def edited(**changes: Any) -> dict[str, Any]:
    document = copy.deepcopy(FORM)
    document.update(changes)
    return document


def field(document: dict[str, Any], name: str) -> dict[str, Any]:
    return next(f for f in document["fields"] if f["name"] == name)


# --- forms --------------------------------------------------------------------------------------------


def test_identical_forms_give_an_empty_diff() -> None:
    result = diff_forms(FORM, copy.deepcopy(FORM))
    assert result.empty and not result.added and not result.removed and result.order is None


def test_a_parsed_definition_and_its_document_are_the_same_form() -> None:
    document = edited(version=7)
    field(document, "funds")["required"] = False  # the default, spelled out
    assert diff_forms(parse_form_definition(FORM), document).empty


def test_added_and_removed_fields() -> None:
    new = edited()
    new["fields"].append({"name": "signature", "label": "验收人签字", "type": "signature", "required": True})
    new["fields"] = [f for f in new["fields"] if f["name"] != "funds"]
    result = diff_forms(FORM, new)
    assert [(e.key, e.label) for e in result.added] == [("signature", "验收人签字")]
    assert result.added[0].spec["type"] == "signature"
    assert [(e.key, e.label) for e in result.removed] == [("funds", "整改资金")]
    assert not result.changed and result.order is None and not result.empty


@pytest.mark.parametrize(
    ("name", "attribute", "new_value", "old_value"),
    [
        ("opinion", "label", "复核意见", "验收意见"),
        ("funds", "type", "number", "money"),
        ("opinion", "required", False, True),
        ("opinion", "help", "写明复核情况", None),
        ("opinion", "max_length", 500, 2000),
        ("opinion", "multiline", True, False),
        ("funds", "min", 100, "0.00"),
        ("funds", "max", 1000000, None),
        ("photos", "phase", "before", "after"),
        ("photos", "max_count", 3, 9),
        ("photos", "min_count", 1, None),
        (
            "decision",
            "options",
            [{"value": "pass", "label": "合格"}, {"value": "reject", "label": "不通过"}],
            [{"value": "pass", "label": "通过"}, {"value": "reject", "label": "不通过"}],
        ),
        ("part", "multiple", True, False),
    ],
)
def test_each_changed_attribute_is_reported(
    name: str, attribute: str, new_value: Any, old_value: Any
) -> None:
    new = edited()
    field(new, name)[attribute] = new_value
    result = diff_forms(FORM, new)
    assert not result.added and not result.removed
    [changed] = result.changed
    assert changed.key == name and changed.change("nothing") is None
    if (name, attribute) == ("funds", "type"):  # a number's minimum is a number, a sum's "0.00"
        assert changed.changes == (
            AttributeChange("type", "money", "number"),
            AttributeChange("min", "0.00", 0),
        )
    elif (name, attribute) == ("funds", "max"):
        assert changed.changes == (AttributeChange("max", None, "1000000.00"),)
    elif (name, attribute) == ("funds", "min"):
        assert changed.changes == (AttributeChange("min", "0.00", "100.00"),)
    else:
        assert changed.changes == (AttributeChange(attribute, old_value, new_value),)


def test_a_changed_label_names_the_field_by_its_new_label() -> None:
    new = edited()
    field(new, "opinion")["label"] = "复核意见"
    field(new, "opinion")["max_length"] = 500
    [changed] = diff_forms(FORM, new).changed
    assert changed.label == "复核意见"
    assert [c.name for c in changed.changes] == ["label", "max_length"]


def test_checklist_items_and_their_flag() -> None:
    old = edited()
    old["fields"].append(
        {"name": "checks", "label": "检查项", "type": "checklist", "items": [{"value": "a", "label": "甲"}]}
    )
    new = copy.deepcopy(old)
    field(new, "checks").update(
        items=[{"value": "a", "label": "甲"}, {"value": "b", "label": "乙"}], all_required=True
    )
    [changed] = diff_forms(old, new).changed
    assert [c.name for c in changed.changes] == ["items", "all_required"]


def test_order_changes() -> None:
    new = edited()
    new["fields"] = [new["fields"][1], new["fields"][0], *new["fields"][2:]]
    result = diff_forms(FORM, new)
    assert not result.changed and not result.added and not result.empty
    assert result.order == (
        ("decision", "opinion", "funds", "photos", "part"),
        ("opinion", "decision", "funds", "photos", "part"),
    )


def test_an_added_field_alone_is_no_order_change() -> None:
    new = edited()
    new["fields"].insert(0, {"name": "note", "label": "备注", "type": "text"})
    assert diff_forms(FORM, new).order is None


def test_title_description_and_routing() -> None:
    new = edited(title="整改复核", description="复核人不得为整改人", routing={})
    result = diff_forms(FORM, new)
    assert result.form == (
        AttributeChange("title", "整改验收", "整改复核"),
        AttributeChange("description", None, "复核人不得为整改人"),
        AttributeChange("routing", {"decision": "decision"}, {}),
    )
    assert not result.changed and not result.empty


# --- policies -----------------------------------------------------------------------------------------

POLICY: dict[str, Any] = {
    "title": "危化行业策略配置",
    "extends": {"key": "national", "version": 1},
    "overrides": ["circular_after"],
    "values": {
        "circular_after": {
            "value": 10,
            "unit": "working_days",
            "source": "市安委办通知",
            "label": "逾期后通报",
        },
        "letter_after": {"value": 5, "unit": "working_days", "source": "团队默认值", "label": "逾期后函告"},
        "notice_response": {"value": 5, "unit": "working_days", "source": "团队默认值", "label": "回复期限"},
        "max_failed": {"value": 3, "unit": "count", "source": "团队默认值", "label": "验收不通过次数"},
    },
    "ladder": {
        "rungs": {
            "letter": {
                "level": 1,
                "kind": "letter",
                "label": "逾期未整改，函告",
                "offset": "letter_after",
                "issuer": "lead_department",
                "issuer_level": None,
                "recipients": ["enterprise"],
                "response": "notice_response",
                "template": "letter",
                "place": None,
            },
            "circular": {
                "level": 2,
                "kind": "circular",
                "label": "逾期未整改，予以通报",
                "offset": "circular_after",
                "issuer": "office",
                "issuer_level": "county",
                "recipients": ["enterprise", "member_units"],
                "response": "notice_response",
                "template": "circular",
                "place": None,
            },
        },
        "triggers": {"refusal": "circular"},
    },
}


def changed_policy() -> dict[str, Any]:
    return copy.deepcopy(POLICY)


def test_identical_policies_give_an_empty_diff() -> None:
    assert diff_policies(POLICY, changed_policy()).empty


def test_a_rung_without_template_uses_its_kind() -> None:
    new = changed_policy()
    del new["ladder"]["rungs"]["circular"]["template"]
    assert diff_policies(POLICY, new).empty


@pytest.mark.parametrize(
    ("attribute", "new_value"),
    [
        ("value", 3),
        ("unit", "calendar_days"),
        ("source", "县安委办通知"),
        ("label", "通报"),
        ("note", "试行"),
    ],
)
def test_each_changed_value_attribute_is_reported(attribute: str, new_value: Any) -> None:
    new = changed_policy()
    new["values"]["letter_after"][attribute] = new_value
    result = diff_policies(POLICY, new)
    [value] = result.values_changed
    assert value.key == "letter_after"
    assert value.change(attribute) == AttributeChange(
        attribute, POLICY["values"]["letter_after"].get(attribute), new_value
    )
    assert not result.values_added and not result.values_removed


def test_a_changed_offset_shows_on_the_value_and_on_its_rung() -> None:
    new = changed_policy()
    new["values"]["circular_after"]["value"] = 5
    result = diff_policies(POLICY, new)
    [value] = result.values_changed
    assert value.key == "circular_after" and value.changes == (AttributeChange("value", 10, 5),)
    [rung] = result.rungs_changed
    assert rung.key == "circular" and rung.label == "逾期未整改，予以通报"
    assert rung.changes == (
        AttributeChange(
            "offset_value", {"value": 10, "unit": "working_days"}, {"value": 5, "unit": "working_days"}
        ),
    )


def test_the_shared_response_period_shows_on_every_rung_that_names_it() -> None:
    new = changed_policy()
    new["values"]["notice_response"]["unit"] = "calendar_days"
    result = diff_policies(POLICY, new)
    assert [r.key for r in result.rungs_changed] == ["letter", "circular"]
    assert all([c.name for c in r.changes] == ["response_value"] for r in result.rungs_changed)


def test_values_added_and_removed() -> None:
    new = changed_policy()
    new["values"]["tank_check"] = {
        "value": 1,
        "unit": "months",
        "source": "本地规定",
        "label": "储罐区检查周期",
    }
    del new["values"]["max_failed"]
    result = diff_policies(POLICY, new)
    assert [(e.key, e.label) for e in result.values_added] == [("tank_check", "储罐区检查周期")]
    assert result.values_added[0].spec["unit"] == "months"
    assert [e.key for e in result.values_removed] == ["max_failed"]
    assert not result.values_changed and not result.rungs_changed


@pytest.mark.parametrize(
    ("attribute", "new_value"),
    [
        ("level", 3),
        ("kind", "interview"),
        ("label", "予以通报"),
        ("offset", "letter_after"),
        ("issuer", "committee"),
        ("issuer_level", "city"),
        ("recipients", ["enterprise", "public"]),
        ("response", None),
        ("template", "circular_city"),
        ("place", "县应急管理局三楼会议室"),
    ],
)
def test_each_changed_rung_attribute_is_reported(attribute: str, new_value: Any) -> None:
    new = changed_policy()
    new["ladder"]["rungs"]["circular"][attribute] = new_value
    [rung] = diff_policies(POLICY, new).rungs_changed
    assert rung.key == "circular"
    assert rung.change(attribute) == AttributeChange(
        attribute, POLICY["ladder"]["rungs"]["circular"][attribute], new_value
    )


def test_a_rung_moved_to_another_value_shows_both_the_name_and_the_amount() -> None:
    new = changed_policy()
    new["ladder"]["rungs"]["circular"]["offset"] = "letter_after"
    [rung] = diff_policies(POLICY, new).rungs_changed
    assert [c.name for c in rung.changes] == ["offset", "offset_value"]
    assert rung.change("offset_value") == AttributeChange(
        "offset_value", {"value": 10, "unit": "working_days"}, {"value": 5, "unit": "working_days"}
    )


def test_rungs_added_and_removed() -> None:
    new = changed_policy()
    new["ladder"]["rungs"]["interview"] = {
        "level": 3,
        "kind": "interview",
        "label": "约谈",
        "offset": None,
        "issuer": "committee",
        "issuer_level": "county",
        "recipients": ["principal"],
        "response": None,
        "template": "interview",
        "place": "县政府",
    }
    del new["ladder"]["rungs"]["letter"]
    result = diff_policies(POLICY, new)
    assert [(e.key, e.label) for e in result.rungs_added] == [("interview", "约谈")]
    assert [e.key for e in result.rungs_removed] == ["letter"]
    assert result.rungs_removed[0].spec["offset_value"] == {"value": 5, "unit": "working_days"}


def test_triggers() -> None:
    new = changed_policy()
    new["ladder"]["triggers"] = {"failed_verifications": "circular"}
    result = diff_policies(POLICY, new)
    assert result.triggers == (
        AttributeChange("failed_verifications", None, "circular"),
        AttributeChange("refusal", "circular", None),
    )


def test_title_base_and_overrides() -> None:
    new = changed_policy()
    new.update(
        title="危化行业（试行）",
        extends={"key": "national", "version": 2},
        overrides=["circular_after", "letter_after"],
    )
    result = diff_policies(POLICY, new)
    assert [c.name for c in result.profile] == ["title", "extends", "overrides"]
    assert result.profile[1].new == {"key": "national", "version": 2}
    assert not result.empty


def test_an_editor_document_of_overrides_only() -> None:
    old = {"key": "hazchem", "extends": "national", "values": {}, "ladder": {"rungs": {}, "triggers": {}}}
    new = copy.deepcopy(old)
    new["values"]["circular_after"] = POLICY["values"]["circular_after"]
    result = diff_policies(old, new)
    assert [e.key for e in result.values_added] == ["circular_after"] and not result.rungs_changed
