"""Form definitions as data: parsing, validation, JSON Schema, routing (no database)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from engine.errors import DefinitionInvalid
from engine.errors import InvalidInput
from engine.forms import FIELD_TYPES
from engine.forms import FORMS_DIR
from engine.forms import RESERVED_VARIABLES
from engine.forms import FormDefinition
from engine.forms import load_form_directory
from engine.forms import load_shipped_forms
from engine.forms import parse_form_definition

SHIPPED_KEYS = {
    "fix_on_spot",
    "rectification_plan",
    "rectify",
    "verify",
    "closure_review",
    "report_regulator",
    "report_congress",
    "governance_plan",
    "principal_signoff",
    "govern",
    "evaluation",
    "closure_application",
    "regulator_review",
    "progress_update",
    "extension_request",
    "extension_decision",
    # the 挂牌督办 track (processes/supervision.bpmn)
    "listing_decision",
    "listing_filing",
    "listing_announcement",
    "delisting_application",
    "onsite_acceptance",
    "delisting",
    # the sector variants (processes/sectors/)
    "acceptance_evaluation",
    "fire_listing",
    "fire_case_closure",
    "mines_five_plan",
    "mines_investigation",
    "hazchem_determination",
    "construction_plan",
    "construction_stop_work",
    "construction_resume",
    "road_interview",
    "gas_stop_supply",
    "gas_restore_supply",
}

#: A valid complete submission for every shipped form.
GOOD_SUBMISSIONS: dict[str, dict[str, object]] = {
    "fix_on_spot": {"description": "已将松动的防护栏重新紧固", "after_photos": [11]},
    "rectification_plan": {
        "responsible_person": "张伟",
        "measures": "更换腐蚀的输送带托辊，加装防护罩",
        "funds": 12000,
        "due_date": "2025-03-31",
        "contingency_plan": "执行《输送系统事故应急预案》",
        "interim_measures": "设置警戒区，专人监护",
    },
    "rectify": {"summary": "托辊已更换", "after_photos": [21, 22], "completed_on": "2025-03-20"},
    "verify": {"decision": "pass", "opinion": "整改到位", "verifier_signature": "李娜"},
    "closure_review": {"decision": "pass", "opinion": "同意销号", "reviewer_signature": "王强"},
    "report_regulator": {"reported_on": "2025-03-01", "report_summary": "发现重大事故隐患一处"},
    "report_congress": {
        "reported_on": "2025-03-05",
        "meeting": "第三届第二次职代会",
        "summary": "通报治理情况",
    },
    "governance_plan": {
        "objectives": "消除尾矿库排洪系统重大事故隐患",
        "methods": "新建排洪井，封堵旧排洪管",
        "funds": "350000.00",
        "materials": "钢筋、混凝土、土工布",
        "responsible_org": "安全环保部",
        "responsible_person": "刘洋",
        "due_date": "2025-06-30",
        "requirements": "汛期前完工",
        "safety_measures": "施工区域封闭管理",
        "contingency_plan": "尾矿库溃坝应急预案",
        "interim_measures": "降低库水位，加密巡查",
        "stop_production": "partial",
    },
    "principal_signoff": {"decision": "pass", "opinion": "同意", "principal_signature": "赵总"},
    "govern": {"summary": "排洪井已建成", "after_photos": [31], "completed_on": "2025-06-20"},
    "evaluation": {
        "evaluator_type": "agency",
        "evaluator_name": "某安全评价有限公司",
        "conclusion": "pass",
        "report": [41],
    },
    "closure_application": {"application": "申请核销并恢复生产", "applied_on": "2025-06-25"},
    "regulator_review": {
        "decision": "pass",
        "reviewed_on": "2025-07-01",
        "opinion": "治理到位",
        "reviewer_signature": "陈科长",
        "document_no": "应急核〔2025〕12号",
    },
    "progress_update": {"progress_percent": 60, "note": "主体完工"},
    "extension_request": {"requested_due_date": "2025-04-30", "reason": "设备供货延迟"},
    "extension_decision": {"decision": "approve", "opinion": "同意延期一个月"},
    "listing_decision": {"decision": "approve", "opinion": "久拖不改，予以挂牌督办"},
    "listing_filing": {
        "filed_with": "宣城市安委办",
        "filing_number": "宣安备〔2026〕8号",
        "filed_on": "2026-11-24",
    },
    "listing_announcement": {"channel": "县人民政府网站", "published_on": "2026-11-25"},
    "delisting_application": {"summary": "已按治理方案完成整改", "principal_signature": "王建国"},
    "onsite_acceptance": {"decision": "pass", "opinion": "验收合格", "verifier_signature": "吴刚"},
    "delisting": {"channel": "县人民政府网站", "opinion": "同意摘牌"},
    "acceptance_evaluation": {
        "evaluator_type": "own_experts",
        "evaluator_name": "本单位技术负责人及外聘专家",
        "conclusion": "reject",
        "report": [42],
    },
    "fire_listing": {
        "fire_report_no": "郎消〔2026〕报5号",
        "listed_on": "2026-11-23",
        "supervising_leader": "分管副县长",
        "requirements": "限期整改，落实整改期间安全管控措施",
    },
    "fire_case_closure": {
        "decision": "pass",
        "reviewed_on": "2026-12-01",
        "opinion": "复查合格，同意销案",
        "reviewer_signature": "郑华",
    },
    "mines_five_plan": {
        "responsible_org": "采矿车间",
        "responsible_person": "孙强",
        "measures": "采空区充填",
        "funds": "860000.00",
        "due_date": "2026-12-31",
        "contingency_plan": "冒顶片帮专项应急预案",
        "interim_measures": "停止周边作业，设置警戒",
        "stop_production": "partial",
    },
    "mines_investigation": {
        "team_leader": "周敏",
        "team_members": "县应急局、矿山安全专家",
        "cause": "采空区未及时充填",
        "responsibility": "主要负责人未落实排查治理责任",
        "accountability": "约谈主要负责人",
        "recurrence": "no",
        "report": [51],
        "leader_signature": "周敏",
    },
    "hazchem_determination": {
        "standard_clause": "判定标准第十条",
        "nature": "dynamic",
        "major_hazard_source": "no",
        "opinion": "判定为动态重大事故隐患",
        "determiner_signature": "周敏",
    },
    "construction_plan": {"responsible_person": "张伟", "due_date": "2026-12-10", "measures": "补设临边防护"},
    "construction_stop_work": {
        "supervising_company": "宣城建设监理有限公司",
        "supervising_engineer": "冯总监",
        "order_no": "监停〔2026〕07号",
        "ordered_on": "2026-11-23",
        "scope": "3号楼高支模区域",
        "safety_measures": "人员撤离，设置警戒区",
        "owner_notified": "yes",
        "order": [61],
    },
    "construction_resume": {
        "supervising_engineer": "冯总监",
        "resumed_on": "2026-12-05",
        "conditions": "验收合格",
        "order": [62],
        "project_signature": "钱勇",
    },
    "road_interview": {
        "interviewed_on": "2026-11-23",
        "place": "企业调度室",
        "attendees": "主要负责人",
        "vehicles": "皖P·12345 逾期未检验",
        "requirements": "10日内消除隐患",
        "interviewer_signature": "交警甲",
    },
    "gas_stop_supply": {
        "scope": "3号调压箱下游管网",
        "stopped_on": "2026-11-23",
        "users_notified": "短信告知420户",
        "safety_measures": "关阀放散，现场警戒",
        "operator_signature": "周安全",
    },
    "gas_restore_supply": {
        "inspection": "气密性试验合格",
        "restored_on": "2026-12-05",
        "operator_signature": "周安全",
    },
}


@pytest.fixture(scope="module")
def forms() -> dict[str, FormDefinition]:
    return load_shipped_forms()


def _field(name: str, type_: str, **extra: object) -> dict[str, object]:
    return {"name": name, "label": f"{name} 标签", "type": type_, **extra}


def _form(
    *fields: dict[str, object], routing: dict[str, object] | None = None, **extra: object
) -> FormDefinition:
    data: dict[str, object] = {"key": "sample", "title": "示例表单", "version": 1, "fields": list(fields)}
    if routing is not None:
        data["routing"] = routing
    data.update(extra)
    return parse_form_definition(data)


def _messages(form: FormDefinition, data: object, *, partial: bool = False) -> dict[str, Any]:
    with pytest.raises(InvalidInput) as info:
        if partial:
            form.validate_partial(data)  # type: ignore[arg-type]
        else:
            form.validate(data)  # type: ignore[arg-type]
    return info.value.messages


# --------------------------------------------------------------------------------------------
# Shipped forms


def test_every_shipped_file_loads(forms: dict[str, FormDefinition]) -> None:
    assert set(forms) == SHIPPED_KEYS
    assert {p.stem for p in FORMS_DIR.glob("*.json")} == SHIPPED_KEYS
    for key, form in forms.items():
        assert form.key == key
        assert form.version >= 1
        assert form.title
        assert all(f.label for f in form.fields)


def test_shipped_files_round_trip(forms: dict[str, FormDefinition]) -> None:
    for key, form in forms.items():
        raw = json.loads((FORMS_DIR / f"{key}.json").read_text(encoding="utf-8"))
        assert [f["name"] for f in form.to_dict()["fields"]] == [f["name"] for f in raw["fields"]]
        again = parse_form_definition(json.loads(json.dumps(form.to_dict())))
        assert again == form
        assert again.content_hash == form.content_hash


@pytest.mark.parametrize("key", sorted(SHIPPED_KEYS))
def test_good_submission_validates(forms: dict[str, FormDefinition], key: str) -> None:
    form = forms[key]
    result = form.validate(GOOD_SUBMISSIONS[key])
    json.dumps(result)  # plain data only
    assert set(result) == set(GOOD_SUBMISSIONS[key])


@pytest.mark.parametrize("key", sorted(SHIPPED_KEYS))
@pytest.mark.parametrize("smuggled", ["deadline", "grade", "deadline_at", "handling", "failed_verifications"])
def test_engine_variables_are_unknown_keys(forms: dict[str, FormDefinition], key: str, smuggled: str) -> None:
    data = {**GOOD_SUBMISSIONS[key], smuggled: "2099-01-01"}
    messages = _messages(forms[key], data)
    assert list(messages) == [smuggled]
    assert messages[smuggled] == ["未知字段，表单中没有此项"]
    # Drafts refuse them too.
    assert smuggled in _messages(forms[key], {smuggled: "x"}, partial=True)


@pytest.mark.parametrize("key", sorted(SHIPPED_KEYS))
def test_missing_required_fields_are_named(forms: dict[str, FormDefinition], key: str) -> None:
    form = forms[key]
    messages = _messages(form, {})
    assert set(messages) == {f.name for f in form.fields if f.required}
    assert all(m == ["此项为必填项"] for m in messages.values())


def test_no_shipped_form_routes_to_reserved_variables(forms: dict[str, FormDefinition]) -> None:
    for form in forms.values():
        assert set(form.routing.values()) <= {"decision", "verified"}
        assert not set(form.field_names) & RESERVED_VARIABLES


def test_shipped_deadline_fields(forms: dict[str, FormDefinition]) -> None:
    deadlines = {key: form.deadline_field for key, form in forms.items() if form.deadline_field}
    assert deadlines == {
        "rectification_plan": "due_date",
        "governance_plan": "due_date",
        "mines_five_plan": "due_date",
        "construction_plan": "due_date",
    }
    # An extension request proposes a date; only an approved extension moves the deadline.
    assert forms["extension_request"].deadline_field is None
    plan = forms["rectification_plan"]
    validated = plan.validate(GOOD_SUBMISSIONS["rectification_plan"])
    assert str(plan.deadline_value(validated)) == "2025-03-31"


def test_five_implementations_are_required(forms: dict[str, FormDefinition]) -> None:
    plan = forms["rectification_plan"]
    required = {f.name for f in plan.fields if f.required}
    assert required == {"responsible_person", "measures", "funds", "due_date", "contingency_plan"}
    assert not plan.get_field("interim_measures").required
    governance = forms["governance_plan"]
    assert all(f.required for f in governance.fields)
    assert governance.get_field("interim_measures").required
    assert [o.value for o in governance.get_field("stop_production").options] == ["full", "partial", "none"]


def test_photo_phases(forms: dict[str, FormDefinition]) -> None:
    for key in ("fix_on_spot", "rectify", "govern"):
        photos = forms[key].get_field("after_photos")
        assert (photos.type, photos.phase, photos.min_count) == ("photo", "after", 1)


# --------------------------------------------------------------------------------------------
# Field types: good and bad data


def test_text_field() -> None:
    form = _form(_field("note", "text", required=True, max_length=5, min_length=2))
    assert form.validate({"note": "整改完成"}) == {"note": "整改完成"}
    assert _messages(form, {"note": 12}) == {"note": ["应为文本"]}
    assert _messages(form, {"note": "太长了太长了"}) == {"note": ["不能超过 5 个字符"]}
    assert _messages(form, {"note": "短"}) == {"note": ["至少 2 个字符"]}
    assert _messages(form, {"note": "   "}) == {"note": ["此项不能为空白"]}
    assert _messages(form, {"note": None}) == {"note": ["此项不能为空（可选项请直接省略）"]}


def test_optional_text_may_be_empty_or_omitted() -> None:
    form = _form(_field("note", "text"))
    assert form.validate({}) == {}
    assert form.validate({"note": ""}) == {"note": ""}


def test_number_field() -> None:
    form = _form(
        _field("percent", "number", required=True, integer=True, min=0, max=100),
        _field("ratio", "number", min=0.5),
    )
    assert form.validate({"percent": 60, "ratio": 0.75}) == {"percent": 60, "ratio": 0.75}
    assert form.validate({"percent": "60", "ratio": "1"}) == {"percent": 60, "ratio": 1}
    assert form.validate({"percent": 60.0}) == {"percent": 60}
    assert _messages(form, {"percent": 60.5}) == {"percent": ["应为整数"]}
    assert _messages(form, {"percent": 101}) == {"percent": ["不能大于 100"]}
    assert _messages(form, {"percent": -1}) == {"percent": ["不能小于 0"]}
    assert _messages(form, {"percent": True}) == {"percent": ["应为数字"]}
    assert _messages(form, {"percent": "六十"}) == {"percent": ["应为数字"]}
    assert _messages(form, {"percent": 1, "ratio": 0.1}) == {"ratio": ["不能小于 0.5"]}
    assert _messages(form, {"percent": 1, "ratio": float("nan")}) == {"ratio": ["应为数字"]}


def test_money_field() -> None:
    form = _form(_field("funds", "money", required=True, max="100000"), _field("extra", "money"))
    assert form.validate({"funds": 12000}) == {"funds": "12000.00"}
    assert form.validate({"funds": "12000.5"}) == {"funds": "12000.50"}
    assert form.validate({"funds": 0.1, "extra": "0"}) == {"funds": "0.10", "extra": "0.00"}
    assert _messages(form, {"funds": -1}) == {"funds": ["不能小于 0.00"]}
    assert _messages(form, {"funds": 1, "extra": "-0.01"}) == {"extra": ["不能小于 0.00"]}
    assert _messages(form, {"funds": "100000.01"}) == {"funds": ["不能大于 100000.00"]}
    assert _messages(form, {"funds": "1.005"}) == {"funds": ["金额最多保留两位小数"]}
    assert _messages(form, {"funds": "一万"}) == {"funds": ["应为金额数字，例如 12000.00"]}
    assert _messages(form, {"funds": "1e3"}) == {"funds": ["应为金额数字，例如 12000.00"]}
    assert _messages(form, {"funds": False}) == {"funds": ["应为金额数字"]}
    assert "funds" in _messages(form, {"funds": float("inf")})


def test_money_may_be_negative_only_when_the_definition_says_so() -> None:
    form = _form(_field("adjustment", "money", min=-500))
    assert form.validate({"adjustment": "-120.5"}) == {"adjustment": "-120.50"}
    assert _messages(form, {"adjustment": -501}) == {"adjustment": ["不能小于 -500.00"]}


def test_date_field() -> None:
    form = _form(_field("due_date", "date", required=True, role="deadline"))
    assert form.validate({"due_date": "2025-03-31"}) == {"due_date": "2025-03-31"}
    assert form.deadline_field == "due_date"
    assert _messages(form, {"due_date": "2025-02-30"}) == {"due_date": ["日期不存在：2025-02-30"]}
    for bad in ("20250331", "2025/03/31", "2025-03-31T08:00:00", "下周一", 20250331):
        assert _messages(form, {"due_date": bad}) == {"due_date": ["应为 YYYY-MM-DD 格式的日期"]}


def test_choice_field() -> None:
    options = [{"value": "pass", "label": "通过"}, {"value": "reject", "label": "不通过"}]
    form = _form(_field("decision", "choice", required=True, options=options))
    assert form.validate({"decision": "reject"}) == {"decision": "reject"}
    assert _messages(form, {"decision": "通过"}) == {"decision": ["不是有效选项，可选值：pass、reject"]}
    assert _messages(form, {"decision": ["pass"]}) == {"decision": ["应为文本"]}


def test_multiple_choice_field() -> None:
    options = [{"value": "a", "label": "甲"}, {"value": "b", "label": "乙"}]
    form = _form(_field("tags", "choice", required=True, multiple=True, options=options))
    assert form.validate({"tags": ["a", "b"]}) == {"tags": ["a", "b"]}
    assert _messages(form, {"tags": []}) == {"tags": ["至少需要 1 项"]}
    assert _messages(form, {"tags": ["a", "a"]}) == {"tags": ["不能有重复项"]}
    assert _messages(form, {"tags": ["c"]}) == {"tags": {0: ["不是有效选项，可选值：a、b"]}}
    assert _messages(form, {"tags": "a"}) == {"tags": ["应为列表"]}


def test_person_and_signature_fields() -> None:
    form = _form(_field("who", "person", required=True), _field("sign", "signature"))
    assert form.validate({"who": "张伟", "sign": "张伟（已确认）"}) == {
        "who": "张伟",
        "sign": "张伟（已确认）",
    }
    assert _messages(form, {"who": ""}) == {"who": ["此项不能为空白"]}
    assert _messages(form, {"who": "张" * 101}) == {"who": ["不能超过 100 个字符"]}
    assert _messages(form, {"who": "张伟", "sign": " "}) == {"sign": ["此项不能为空白"]}
    assert _messages(form, {"who": 7}) == {"who": ["应为文本"]}


def test_photo_field() -> None:
    form = _form(_field("after_photos", "photo", required=True, phase="after", min_count=2, max_count=3))
    assert form.validate({"after_photos": [1, 2]}) == {"after_photos": [1, 2]}
    assert _messages(form, {"after_photos": [1]}) == {"after_photos": ["至少需要 2 项"]}
    assert _messages(form, {"after_photos": [1, 2, 3, 4]}) == {"after_photos": ["最多 3 项"]}
    assert _messages(form, {"after_photos": [1, 1]}) == {"after_photos": ["不能有重复项"]}
    assert _messages(form, {"after_photos": ["1", 2, True, 0]}) == {
        "after_photos": {0: ["附件编号应为正整数"], 2: ["附件编号应为正整数"], 3: ["附件编号应为正整数"]}
    }
    assert _messages(form, {"after_photos": 5}) == {"after_photos": ["应为列表"]}


def test_required_attachments_need_at_least_one() -> None:
    form = _form(_field("report", "file", required=True), _field("extra", "file"))
    assert _messages(form, {"report": []}) == {"report": ["至少需要 1 项"]}
    assert form.validate({"report": [9], "extra": []}) == {"report": [9], "extra": []}


def test_checklist_field() -> None:
    items = [{"value": "power_off", "label": "已断电"}, {"value": "locked", "label": "已挂牌上锁"}]
    form = _form(_field("checks", "checklist", required=True, items=items, all_required=True))
    assert form.validate({"checks": ["locked", "power_off"]}) == {"checks": ["locked", "power_off"]}
    assert _messages(form, {"checks": ["power_off"]}) == {"checks": ["以下检查项必须全部勾选：已挂牌上锁"]}
    assert _messages(form, {"checks": ["other"]}) == {
        "checks": {0: ["不是有效选项，可选值：power_off、locked"]}
    }
    assert form.validate_partial({"checks": ["power_off"]}) == {"checks": ["power_off"]}


def test_non_mapping_input() -> None:
    form = _form(_field("note", "text"))
    for bad in (["note"], "note", None, 3):
        assert _messages(form, bad) == {"_schema": ["表单数据必须是 JSON 对象"]}
        assert _messages(form, bad, partial=True) == {"_schema": ["表单数据必须是 JSON 对象"]}


def test_invalid_input_carries_every_error(forms: dict[str, FormDefinition]) -> None:
    messages = _messages(
        forms["rectification_plan"],
        {
            "responsible_person": "张伟",
            "measures": "x",
            "funds": -5,
            "due_date": "2025-13-01",
            "contingency_plan": "y",
            "owner": "z",
        },
    )
    assert set(messages) == {"funds", "due_date", "owner"}


def test_validate_partial_for_drafts(forms: dict[str, FormDefinition]) -> None:
    plan = forms["rectification_plan"]
    assert plan.validate_partial({}) == {}
    assert plan.validate_partial({"funds": "800", "measures": ""}) == {"funds": "800.00", "measures": ""}
    assert _messages(plan, {"funds": "abc"}, partial=True) == {"funds": ["应为金额数字，例如 12000.00"]}
    assert _messages(plan, {"due_date": "明天"}, partial=True) == {"due_date": ["应为 YYYY-MM-DD 格式的日期"]}
    rectify = forms["rectify"]
    assert rectify.validate_partial({"after_photos": []}) == {"after_photos": []}
    assert _messages(rectify, {"after_photos": [1] * 2}, partial=True) == {"after_photos": ["不能有重复项"]}


def test_compiled_schema_is_cached(forms: dict[str, FormDefinition]) -> None:
    plan = forms["rectification_plan"]
    assert plan.marshmallow_schema() is plan.marshmallow_schema()
    assert plan.marshmallow_schema(draft=True) is not plan.marshmallow_schema()
    field = plan.marshmallow_schema().fields["funds"]
    assert field.metadata == {"label": "整改资金（元）", "field_type": "money"}


# --------------------------------------------------------------------------------------------
# JSON Schema and routing


def test_json_schema_of_rectification_plan(forms: dict[str, FormDefinition]) -> None:
    schema = forms["rectification_plan"].json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "整改方案（五落实）"
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["responsible_person", "measures", "funds", "due_date", "contingency_plan"]
    props = schema["properties"]
    assert list(props) == [
        "responsible_person",
        "measures",
        "funds",
        "due_date",
        "contingency_plan",
        "interim_measures",
    ]
    assert props["responsible_person"]["title"] == "整改责任人"
    assert props["responsible_person"]["x-field-type"] == "person"
    assert props["measures"] == {
        "title": "整改措施",
        "type": "string",
        "maxLength": 4000,
        "minLength": 1,
        "pattern": r"\S",
        "x-multiline": True,
        "x-field-type": "text",
    }
    assert props["funds"]["x-field-type"] == "money"
    assert props["funds"]["minimum"] == 0
    assert props["due_date"]["format"] == "date"
    assert props["due_date"]["x-role"] == "deadline"
    assert props["interim_measures"]["title"] == "整改期间防范措施"
    assert "minLength" not in props["interim_measures"]
    json.dumps(schema, ensure_ascii=False)


def test_json_schema_of_choices_and_photos(forms: dict[str, FormDefinition]) -> None:
    schema = forms["verify"].json_schema()
    decision = schema["properties"]["decision"]
    assert decision["type"] == "string"
    assert decision["enum"] == ["pass", "reject"]
    assert decision["x-options"] == [
        {"value": "pass", "label": "通过"},
        {"value": "reject", "label": "不通过"},
    ]
    assert schema["x-routing"] == {"decision": "decision"}
    photos = forms["rectify"].json_schema()["properties"]["after_photos"]
    assert photos["type"] == "array"
    assert photos["items"] == {"type": "integer", "minimum": 1}
    assert photos["minItems"] == 1
    assert photos["x-phase"] == "after"
    assert photos["x-field-type"] == "photo"
    progress = forms["progress_update"].json_schema()["properties"]["progress_percent"]
    assert (progress["type"], progress["minimum"], progress["maximum"]) == ("integer", 0, 100)


def test_json_schema_covers_every_type() -> None:
    options = [{"value": "a", "label": "甲"}]
    form = _form(
        *[
            _field(
                f"f_{t}",
                t,
                **({"options": options} if t == "choice" else {"items": options} if t == "checklist" else {}),
            )
            for t in FIELD_TYPES
        ]
    )
    props = form.json_schema()["properties"]
    assert [p["x-field-type"] for p in props.values()] == list(FIELD_TYPES)


def test_routing_values_for_verify(forms: dict[str, FormDefinition]) -> None:
    verify = forms["verify"]
    validated = verify.validate({**GOOD_SUBMISSIONS["verify"], "decision": "reject", "photos": [5]})
    assert verify.routing_values(validated) == {"decision": "reject"}
    assert forms["rectification_plan"].routing_values(GOOD_SUBMISSIONS["rectification_plan"]) == {}
    evaluation = forms["evaluation"]
    assert evaluation.routing_values(evaluation.validate(GOOD_SUBMISSIONS["evaluation"])) == {
        "verified": "pass"
    }


def test_routing_values_refuses_missing_or_foreign_values(forms: dict[str, FormDefinition]) -> None:
    verify = forms["verify"]
    with pytest.raises(InvalidInput) as info:
        verify.routing_values({"opinion": "x"})
    assert info.value.messages == {"decision": ["此项为必填项"]}
    with pytest.raises(InvalidInput) as info:
        verify.routing_values({"decision": "maybe"})
    assert list(info.value.messages) == ["decision"]


# --------------------------------------------------------------------------------------------
# Invalid definitions

_GOOD_DEFINITION: dict[str, Any] = {
    "key": "sample",
    "title": "示例表单",
    "version": 1,
    "fields": [
        {
            "name": "decision",
            "label": "结论",
            "type": "choice",
            "required": True,
            "options": [{"value": "pass", "label": "通过"}, {"value": "reject", "label": "不通过"}],
        },
        {"name": "note", "label": "说明", "type": "text"},
        {"name": "due_date", "label": "期限", "type": "date", "required": True},
    ],
    "routing": {"decision": "decision"},
}


def _broken(change: Any) -> dict[str, Any]:
    data = copy.deepcopy(_GOOD_DEFINITION)
    change(data)
    return data


def _set(path: tuple[Any, ...], value: object) -> Any:
    def change(data: dict[str, Any]) -> None:
        target: Any = data
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value

    return change


def test_good_definition_parses() -> None:
    form = parse_form_definition(_GOOD_DEFINITION)
    assert form.routing == {"decision": "decision"}
    assert form.deadline_field is None


INVALID_DEFINITIONS: list[tuple[str, Any, str | None, str]] = [
    ("bad form key", _set(("key",), "Sample-1"), "Sample-1", "表单标识"),
    ("missing title", _set(("title",), ""), "sample", "表单标题"),
    ("version zero", _set(("version",), 0), "sample", "version"),
    ("version bool", _set(("version",), True), "sample", "version"),
    ("unknown form attribute", _set(("owner",), "x"), "sample", "未知属性：owner"),
    ("no fields", _set(("fields",), []), "sample", "至少包含一个字段"),
    ("field not object", _set(("fields", 1), "note"), "sample.fields[1]", "JSON 对象"),
    ("bad field name", _set(("fields", 1, "name"), "Note"), "sample.fields[1]", "字段名"),
    ("name starting with digit", _set(("fields", 1, "name"), "1note"), "sample.fields[1]", "字段名"),
    ("name with trailing newline", _set(("fields", 1, "name"), "note\n"), "sample.fields[1]", "字段名"),
    ("reserved field name", _set(("fields", 1, "name"), "grade"), "sample.grade", "保留"),
    ("duplicate name", _set(("fields", 2, "name"), "note"), "sample.note", "重复"),
    ("unknown type", _set(("fields", 1, "type"), "html"), "sample.note", "未知的字段类型"),
    ("attribute of another type", _set(("fields", 1, "options"), []), "sample.note", "不支持属性：options"),
    ("typo in attribute", _set(("fields", 1, "maxlength"), 10), "sample.note", "maxlength"),
    ("missing label", _set(("fields", 1, "label"), "  "), "sample.note", "label"),
    ("required not bool", _set(("fields", 1, "required"), "yes"), "sample.note", "required"),
    (
        "min_length above max_length",
        _set(("fields", 1), {**_field("note", "text"), "min_length": 9, "max_length": 3}),
        "sample.note",
        "min_length",
    ),
    ("choice without options", _set(("fields", 0, "options"), []), "sample.decision", "选项"),
    (
        "choice option without label",
        _set(("fields", 0, "options", 1), {"value": "reject"}),
        "sample.decision",
        "label",
    ),
    ("duplicate option value", _set(("fields", 0, "options", 1, "value"), "pass"), "sample.decision", "重复"),
    (
        "number min above max",
        _set(("fields", 1), _field("note", "number", min=5, max=1)),
        "sample.note",
        "最小值",
    ),
    (
        "money with three places",
        _set(("fields", 1), _field("note", "money", min="0.001")),
        "sample.note",
        "两位小数",
    ),
    ("unknown role", _set(("fields", 2, "role"), "start"), "sample.due_date", "role"),
    (
        "optional deadline",
        _set(("fields", 2), _field("due_date", "date", role="deadline")),
        "sample.due_date",
        "必填",
    ),
    ("role on a text field", _set(("fields", 1, "role"), "deadline"), "sample.note", "不支持属性：role"),
    ("bad photo phase", _set(("fields", 1), _field("note", "photo", phase="during")), "sample.note", "phase"),
    (
        "min_count above max_count",
        _set(("fields", 1), _field("note", "file", min_count=3, max_count=2)),
        "sample.note",
        "min_count",
    ),
    (
        "negative min_count",
        _set(("fields", 1), _field("note", "photo", min_count=-1)),
        "sample.note",
        "min_count",
    ),
    ("checklist without items", _set(("fields", 1), _field("note", "checklist")), "sample.note", "检查项"),
    ("routing to deadline_at", _set(("routing",), {"decision": "deadline_at"}), "sample.decision", "保留"),
    ("routing to grade", _set(("routing",), {"decision": "grade"}), "sample.decision", "保留"),
    ("routing to deadline", _set(("routing",), {"due_date": "deadline"}), "sample.due_date", "保留"),
    ("routing to max_rejects", _set(("routing",), {"decision": "max_rejects"}), "sample.decision", "保留"),
    (
        "routing to unknown variable",
        _set(("routing",), {"decision": "approved"}),
        "sample.decision",
        "不是允许的流程变量",
    ),
    (
        "routing from unknown field",
        _set(("routing",), {"verdict": "decision"}),
        "sample.verdict",
        "不存在的字段",
    ),
    ("routing from a text field", _set(("routing",), {"note": "verified"}), "sample.note", "单选"),
    ("routing from optional choice", _set(("fields", 0, "required"), False), "sample.decision", "必填"),
    ("routing not an object", _set(("routing",), ["decision"]), "sample", "routing"),
    (
        "two deadlines",
        _set(
            ("fields",),
            [
                _field("a", "date", required=True, role="deadline"),
                _field("b", "date", required=True, role="deadline"),
            ],
        ),
        "sample.b",
        "只能有一个期限字段",
    ),
]


@pytest.mark.parametrize(
    ("change", "element_id", "reason_part"),
    [case[1:] for case in INVALID_DEFINITIONS],
    ids=[case[0] for case in INVALID_DEFINITIONS],
)
def test_invalid_definition_is_refused(change: Any, element_id: str | None, reason_part: str) -> None:
    with pytest.raises(DefinitionInvalid) as info:
        parse_form_definition(_broken(change))
    assert info.value.element_id == element_id
    assert reason_part in info.value.reason


def test_definition_must_be_an_object() -> None:
    with pytest.raises(DefinitionInvalid) as info:
        parse_form_definition([])  # type: ignore[arg-type]
    assert info.value.element_id is None


def test_definition_round_trips_through_to_dict() -> None:
    form = _form(
        _field("t", "text", required=True, max_length=50, min_length=1, multiline=True, help="帮助"),
        _field("n", "number", integer=True, min=0, max=10),
        _field("m", "money", min=0, max="99.5"),
        _field("d", "date", required=True, role="deadline"),
        _field("c", "choice", multiple=True, options=[{"value": "x", "label": "叉"}]),
        _field("p", "photo", phase="before", min_count=1, max_count=4),
        _field("c2", "checklist", items=[{"value": "y", "label": "是"}], all_required=True),
        description="说明",
    )
    again = parse_form_definition(json.loads(json.dumps(form.to_dict())))
    assert again == form
    assert again.content_hash == form.content_hash
    assert hash(again) == hash(form)
    assert form.get_field("m").to_dict()["max"] == "99.50"


def test_content_hash_changes_with_content() -> None:
    base = parse_form_definition(_GOOD_DEFINITION)
    relabelled = parse_form_definition(_broken(_set(("fields", 1, "label"), "备注")))
    assert len(base.content_hash) == 64
    assert base.content_hash != relabelled.content_hash


# --------------------------------------------------------------------------------------------
# Loading a directory


def _write(folder: Path, name: str, data: object) -> None:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    (folder / name).write_text(text, encoding="utf-8")


def test_load_form_directory(tmp_path: Path) -> None:
    _write(tmp_path, "sample.json", _GOOD_DEFINITION)
    (tmp_path / "notes.txt").write_text("ignored", encoding="utf-8")
    assert list(load_form_directory(tmp_path)) == ["sample"]


def test_key_must_equal_file_stem(tmp_path: Path) -> None:
    _write(tmp_path, "other.json", _GOOD_DEFINITION)
    with pytest.raises(DefinitionInvalid) as info:
        load_form_directory(tmp_path)
    assert info.value.element_id == "other"
    assert "文件名" in info.value.reason


def test_broken_json_names_the_file(tmp_path: Path) -> None:
    _write(tmp_path, "sample.json", '{"key": "sample",')
    with pytest.raises(DefinitionInvalid) as info:
        load_form_directory(tmp_path)
    assert info.value.element_id == "sample"
    assert "JSON" in info.value.reason


def test_duplicate_json_keys_are_refused(tmp_path: Path) -> None:
    _write(tmp_path, "sample.json", '{"key": "sample", "key": "sample"}')
    with pytest.raises(DefinitionInvalid) as info:
        load_form_directory(tmp_path)
    assert "重复" in info.value.reason


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DefinitionInvalid):
        load_form_directory(tmp_path / "absent")
