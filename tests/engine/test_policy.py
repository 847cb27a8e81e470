"""engine.policy: deadline rules as versioned data with units and sources, resolved per sector and region."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import pytest

from engine import calendar
from engine import policy
from engine.config import PROJECT_ROOT
from engine.errors import InvalidInput
from engine.errors import NotFound
from engine.models import PolicyProfile

POLICIES = PROJECT_ROOT / "processes" / "policies"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def national_document() -> dict:
    return json.loads((POLICIES / "national.json").read_text(encoding="utf-8"))


def value(name: str = "closure_review", **overrides) -> dict:
    spec = {"value": 10, "unit": "working_days", "source": "测试 (DOMAIN §9.3)", "label": "测试值"}
    spec.update(overrides)
    return {name: spec}


def document(key: str, *, sector=None, region=None, extends=None, values=None) -> dict:
    return {
        "key": key,
        "title": f"测试配置 {key}",
        "sector": sector,
        "region": region,
        "extends": extends,
        "values": values if values is not None else value(),
    }


def test_the_bundled_profiles_carry_every_clock_with_its_unit_and_source(sessions):
    with sessions() as session:
        latest = {p.key: p for p in policy.latest_profiles(session)}
        national = policy.policy_values(latest["national"])
        fire = policy.policy_values(latest["fire"])
    assert set(latest) == {"national", "fire"}
    assert latest["national"].sector_code is None and latest["national"].region_id is None
    for values in (national, fire):
        for item in values.values():
            assert item.unit in policy.UNITS and isinstance(item.value, int)
            assert item.source.strip() and item.label.strip()
    # DOMAIN §9.3, each with its unit
    expected = {
        "closure_review": (10, "calendar_days"),
        "major_report_to_regulator": (3, "working_days"),
        "listing_filing": (3, "working_days"),
        "listing_announcement": (5, "working_days"),
        "delisting_announcement": (5, "working_days"),
        "listing_max_duration": (12, "months"),
        "extension_request_lead": (20, "working_days"),
        "extension_decision": (10, "working_days"),
        "tip_feedback": (10, "calendar_days"),
        "quarterly_statistics_report": (15, "calendar_days"),
        "annual_statistics_report": (31, "calendar_days"),
        "regulator_rollup_interval": (3, "months"),
        "campaign_progress_interval": (3, "months"),
        "campaign_summary_interval": (6, "months"),
    }
    assert {name: (national[name].value, national[name].unit) for name in expected} == expected
    assert "青岛" in national["listing_announcement"].source and "湖北" in national["closure_review"].source
    for grade in ("general", "prominent", "major"):
        assert national[f"rectification_period_{grade}"].unit == "calendar_days"
    # the fire profile extends the national one and adds 6 months → the next-higher government
    escalation = fire["major_fire_unresolved_escalation"]
    assert (escalation.value, escalation.unit, escalation.describe()) == (6, "months", "6 个月")
    assert "上一级人民政府" in escalation.label
    assert fire["closure_review"] == national["closure_review"]
    assert fire["principal_inspection_interval"].value == 1 != national["principal_inspection_interval"].value
    assert latest["fire"].content["extends"] == {"key": "national", "version": latest["national"].version}
    assert "principal_inspection_interval" in latest["fire"].content["overrides"]


def test_resolution_prefers_sector_and_nearest_region_then_sector_then_region_then_national(sessions):
    with sessions.begin() as session:
        policy.import_policy(session, document("fire_anhui", sector="fire", region="34"))
        policy.import_policy(session, document("fire_langxi", sector="fire", region="341821"))
        policy.import_policy(session, document("anhui", region="34"))
        policy.import_policy(session, document("xuancheng", region="3418"))

        def resolved(sector: str, path: str) -> str:
            return policy.resolve_policy(session, sector, path).key

        langxi_village = "/34/3418/341821/341821100/341821100001/"
        assert resolved("fire", langxi_village) == "fire_langxi"  # sector + nearest region
        assert resolved("fire", "/34/3418/341882/") == "fire_anhui"  # sector + the province
        assert resolved("fire", "/35/3501/") == "fire"  # sector only
        assert resolved("hazchem", langxi_village) == "xuancheng"  # region only, the nearer one
        assert resolved("hazchem", "/34/3401/") == "anhui"
        assert resolved("hazchem", "/35/3501/") == "national"
        assert resolved("hazchem", "") == "national"
        assert policy.resolve_for_region_code(session, "fire", "341821100").key == "fire_langxi"
        assert policy.resolve_for_region_code(session, None, None).key == "national"
        with pytest.raises(NotFound):
            policy.resolve_for_region_code(session, "fire", "999999")


def test_unchanged_content_keeps_its_version_and_a_change_makes_the_next_one(sessions):
    with sessions.begin() as session:
        same = policy.import_policy(session, national_document())
        assert (same.created, same.profile.key) == (False, "national")
        first = same.profile
        changed = national_document()
        changed["values"]["closure_review"]["value"] = 7
        result = policy.import_policy(session, changed, created_by_id=None)
        assert result.created and result.profile.version == first.version + 1
        assert result.stale_dependents == ["fire"]  # fire was merged over the old national
        assert policy.import_policy(session, changed).profile.id == result.profile.id  # idempotent
        # old versions stay, immutable, for the instances pinned to them
        old_version = policy.get_profile(session, "national", first.version)
        assert policy.policy_value(old_version, "closure_review").value == 10
        assert policy.policy_value(policy.get_profile(session, "national"), "closure_review").value == 7
        # re-importing the fire file picks the new national values up
        fire_doc = json.loads((POLICIES / "fire.json").read_text(encoding="utf-8"))
        fire = policy.import_policy(session, fire_doc).profile
        assert fire.version == 2 and fire.content["extends"]["version"] == result.profile.version
        assert policy.policy_value(fire, "closure_review").value == 7
        with pytest.raises(NotFound):
            policy.get_profile(session, "national", 99)
        with pytest.raises(NotFound):
            policy.policy_value(fire, "no_such_value")


@pytest.mark.parametrize(
    ("mutate", "key", "fragment"),
    [
        (
            lambda d: d["values"]["closure_review"].update(unit="weeks"),
            "values.closure_review",
            "unit 必须是",
        ),
        (lambda d: d["values"]["closure_review"].pop("unit"), "values.closure_review", "unit 必须是"),
        (lambda d: d["values"]["closure_review"].update(value=10.5), "values.closure_review", "整数"),
        (lambda d: d["values"]["closure_review"].update(value=True), "values.closure_review", "整数"),
        (lambda d: d["values"]["closure_review"].update(value=-1), "values.closure_review", "0 到"),
        (lambda d: d["values"]["closure_review"].update(value="10"), "values.closure_review", "整数"),
        (lambda d: d["values"]["closure_review"].pop("source"), "values.closure_review", "source 必填"),
        (lambda d: d["values"]["closure_review"].update(label=" "), "values.closure_review", "label 必填"),
        (lambda d: d["values"]["closure_review"].update(days=10), "values.closure_review", "未知字段 days"),
        (lambda d: d["values"].update({"Closure": d["values"]["closure_review"]}), "values.Closure", "小写"),
        (lambda d: d.update(values={}), "values", "非空"),
        (lambda d: d.update(sector="fire"), "key", "全国默认"),
        (lambda d: d.update(key="china"), "key", "只有全国默认配置"),
        (lambda d: d.update(colour="red"), "colour", "未知字段"),
        (lambda d: d.update(title=""), "title", "必填"),
    ],
)
def test_documents_are_validated_field_by_field(sessions, mutate, key, fragment):
    doc = copy.deepcopy(national_document())
    mutate(doc)
    with sessions.begin() as session:
        with pytest.raises(InvalidInput) as err:
            policy.import_policy(session, doc)
    assert any(fragment in message for message in err.value.messages[key]), err.value.messages


def test_references_to_sectors_regions_and_bases_must_exist_and_scopes_are_unique(sessions):
    with sessions.begin() as session:
        for doc, key in (
            (document("mining", sector="coal"), "sector"),
            (document("nowhere", region="999999"), "region"),
            (document("child", sector="gas", extends="missing"), "extends"),
            (document("fire_again", sector="fire"), "key"),  # the fire profile covers that scope
        ):
            with pytest.raises(InvalidInput) as err:
                policy.import_policy(session, doc)
            assert key in err.value.messages
        assert {p.key for p in policy.latest_profiles(session)} == {"national", "fire"}


def test_a_directory_is_imported_bases_first(sessions, tmp_path: Path):
    (tmp_path / "a_child.json").write_text(
        json.dumps(document("a_child", sector="gas", extends="z_base", values=value("x", value=2))),
        encoding="utf-8",
    )
    (tmp_path / "z_base.json").write_text(
        json.dumps(document("z_base", region="3418", values=value("y", value=1, unit="count"))),
        encoding="utf-8",
    )
    with sessions.begin() as session:
        results = policy.import_policy_directory(session, tmp_path)
        assert [r.profile.key for r in results] == ["z_base", "a_child"]
        child = policy.get_profile(session, "a_child")
        assert set(policy.policy_values(child)) == {"x", "y"}
        (tmp_path / "broken.json").write_text("{", encoding="utf-8")
        with pytest.raises(InvalidInput) as err:
            policy.import_policy_directory(session, tmp_path)
        assert "broken.json" in err.value.messages["file"][0]


def test_pinning_writes_the_version_and_exposed_values_into_start_data(sessions):
    with sessions.begin() as session:
        fire = policy.resolve_policy(session, "fire", "/34/3418/341821/")
        data: dict = {}
        policy.pin_policy(data, fire, expose=("closure_review", "major_fire_unresolved_escalation"))
        assert data == {
            "policy_profile_id": fire.id,
            "policy_key": "fire",
            "policy_version": fire.version,
            "policy_closure_review": 10,
            "policy_closure_review_unit": "calendar_days",
            "policy_major_fire_unresolved_escalation": 6,
            "policy_major_fire_unresolved_escalation_unit": "months",
        }
        # a later version does not change what the instance pinned
        changed = json.loads((POLICIES / "fire.json").read_text(encoding="utf-8"))
        changed["values"]["major_fire_unresolved_escalation"]["value"] = 3
        policy.import_policy(session, changed)
        pinned = policy.pinned_policy(session, data)
        assert isinstance(pinned, PolicyProfile) and pinned.id == fire.id
        assert policy.policy_value(pinned, "major_fire_unresolved_escalation").value == 6
        with pytest.raises(NotFound):
            policy.pinned_policy(session, {})
        with pytest.raises(NotFound):
            policy.pin_policy({}, fire, expose=("nope",))


def test_a_policy_value_sets_a_deadline_through_the_calendar(sessions):
    with sessions() as session:
        cal = calendar.build_calendar(session)
        national = policy.get_profile(session, "national")
    start = dt.datetime(2026, 2, 12, 9, 0, tzinfo=SHANGHAI)
    # 公告 within 5 working days of listing on Thursday 2026-02-12: 2/13, 2/14 (调休), 2/24, 2/25, 2/26
    announcement = policy.deadline_for(cal, policy.policy_value(national, "listing_announcement"), start)
    assert announcement.day == dt.date(2026, 2, 26) and announcement.provisional is False
    assert announcement.at == dt.datetime(2026, 2, 26, 15, 59, 59, tzinfo=dt.UTC)
    assert policy.deadline_for(
        cal, policy.policy_value(national, "listing_max_duration"), start
    ).day == dt.date(2027, 2, 12)
    assert policy.deadline_for(cal, policy.policy_value(national, "closure_review"), start).day == dt.date(
        2026, 2, 22
    )
    with pytest.raises(ValueError):
        policy.deadline_for(cal, policy.policy_value(national, "max_failed_verifications"), start)
