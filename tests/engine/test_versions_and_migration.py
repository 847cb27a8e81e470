"""Versions, bindings by sector and region, and moving running instances between versions.

The versions are textual mutations of the shipped ``processes/hazard_general.bpmn`` published in
the test's own transaction: ``v2`` renames ``verify``, lengthens the 销号审核 period and changes a
review timer (all movable for a hazard in 限期整改); ``v3`` gives ``verify`` another id (a hazard
waiting there cannot move). Hazards are driven through ``engine.runtime`` (tests/driver.py).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import select

from engine import definitions
from engine import migration
from engine import runtime
from engine.errors import DefinitionInvalid
from engine.errors import Forbidden
from engine.errors import NotFound
from engine.events import verify_chain
from engine.models import DefinitionBinding
from engine.models import DefinitionBindingHistory
from engine.models import Event
from engine.models import Hazard
from engine.models import ProcessInstance
from engine.models import TimerJob
from engine.models import WorkItem
from tests.driver import Driver
from tests.factories import plan_form

ROOT = Path(__file__).resolve().parents[2]
GENERAL = (ROOT / "processes" / "hazard_general.bpmn").read_text(encoding="utf-8")
START = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)  # Monday 09:00 in Shanghai
DEADLINE = dt.date(2026, 12, 10)
VERIFY_PASS = {"decision": "pass", "opinion": "整改到位", "verifier_signature": "陈静"}
REVIEW_PASS = {"decision": "pass", "opinion": "同意销号", "reviewer_signature": "吴刚"}


def mutate(source: str, *changes: tuple[str, str]) -> str:
    for old, new in changes:
        assert old in source, f"mutation anchor not found: {old!r}"
        source = source.replace(old, new)
    return source


#: v2: verify renamed, the 销号审核 period 10 -> 15 days, the review reminder 2 -> 3 days ahead
V2 = mutate(
    GENERAL,
    ('<bpmn:userTask id="verify" name="整改验收">', '<bpmn:userTask id="verify" name="整改验收（复核）">'),
    (
        '<spiffworkflow:parameter id="days" type="int" value="10" />',
        '<spiffworkflow:parameter id="days" type="int" value="15" />',
    ),
    ("days_before(review_due_at, 2)", "days_before(review_due_at, 3)"),
)
#: v3: v2 with ``verify`` under another id (removed + added for the diff and for migration)
V3 = re.sub(r'(id|sourceRef|targetRef|bpmnElement)="verify"', r'\1="acceptance"', V2)
#: a timer a hazard in 限期整改 waits on, moved to another instant
MOVED_REMIND = mutate(
    GENERAL,
    (
        'ladder_time(ladder, "urge_before", deadline_at, escalation_not_before)',
        'ladder_time(ladder, "urge_due", deadline_at, escalation_not_before)',
    ),
)
#: a new non-interrupting boundary timer on rectify, one day before the deadline
EXTRA_TIMER = mutate(
    GENERAL,
    (
        '<bpmn:exclusiveGateway id="merge_verify"',
        '<bpmn:boundaryEvent id="rectify_eve" name="期限前一日" attachedToRef="rectify" '
        'cancelActivity="false">'
        "<bpmn:outgoing>flow_eve</bpmn:outgoing>"
        '<bpmn:timerEventDefinition id="rectify_eve_timer">'
        '<bpmn:timeDate xsi:type="bpmn:tFormalExpression">days_before(deadline_at, 1)</bpmn:timeDate>'
        "</bpmn:timerEventDefinition></bpmn:boundaryEvent>"
        '<bpmn:endEvent id="rectify_eve_end" name="已提示">'
        "<bpmn:incoming>flow_eve</bpmn:incoming></bpmn:endEvent>"
        '<bpmn:sequenceFlow id="flow_eve" sourceRef="rectify_eve" targetRef="rectify_eve_end" />'
        '<bpmn:exclusiveGateway id="merge_verify"',
    ),
)


def publish(driver: Driver, xml: str, note: str, username: str = "gao_modeler") -> int:
    """Publish ``xml`` as the next version of hazard_general; returns its version number."""
    actor = driver.actor(username)

    def run(session):
        result = definitions.deploy(
            session,
            bpmn_xml=xml.encode("utf-8"),
            filename="hazard_general.bpmn",
            forms=driver.ctx.forms,
            deployed_by_id=actor.user_id,
            note=note,
        )
        assert result.created
        return result.versions[0].version

    return driver.step(run)


def version_id(driver: Driver, number: int) -> int:
    with driver.sessions() as session:
        return definitions.get_version(session, "hazard_general", number).id


def current_version(driver: Driver) -> int:
    with driver.sessions() as session:
        latest = definitions.latest_version(session, "hazard_general")
        assert latest is not None
        return latest.version


def instance_of(driver: Driver, hazard_id: int) -> ProcessInstance:
    with driver.sessions() as session:
        return session.scalars(
            select(ProcessInstance).where(
                ProcessInstance.hazard_id == hazard_id, ProcessInstance.kind == "loop"
            )
        ).one()


def timers(driver: Driver, hazard_id: int) -> dict[str, tuple[int, dt.datetime]]:
    with driver.sessions() as session:
        jobs = session.scalars(
            select(TimerJob).where(TimerJob.hazard_id == hazard_id, TimerJob.state == "waiting")
        ).all()
        return {j.timer_key: (j.id, j.due_at) for j in jobs}


def open_items(driver: Driver, hazard_id: int) -> list[WorkItem]:
    with driver.sessions() as session:
        return list(
            session.scalars(select(WorkItem).where(WorkItem.hazard_id == hazard_id, WorkItem.state == "open"))
        )


def rectify_form(driver: Driver, hazard_id: int, content: bytes = b"after-photo") -> dict:
    photo = driver.upload(hazard_id, content, username="zhang_rectifier", phase="after")
    return {"summary": "已更换探头", "after_photos": [photo], "completed_on": "2026-11-25"}


def at_rectify(driver: Driver) -> int:
    hazard_id = driver.register()
    driver.complete(hazard_id, "assign_plan", "chen_safety", plan_form(DEADLINE))
    assert driver.open_keys(hazard_id) == ["rectify"]
    return hazard_id


def at_verify(driver: Driver) -> int:
    hazard_id = at_rectify(driver)
    driver.complete(hazard_id, "rectify", "zhang_rectifier", rectify_form(driver, hazard_id, b"v-after"))
    assert driver.open_keys(hazard_id) == ["verify"]
    return hazard_id


@pytest.fixture
def driver(sessions, ctx, world):
    with time_machine.travel(START, tick=False):
        yield Driver(sessions, ctx, world, round_trip=True)


# --------------------------------------------------------------------------------------------------
# Versions and their differences


def test_each_publication_is_the_next_version_with_author_note_and_hash(driver):
    base = current_version(driver)
    assert publish(driver, V2, "复核与15日审核期") == base + 1
    assert publish(driver, V3, "验收改名", username="wu_reviewer") == base + 2
    with driver.sessions() as session:
        listed = definitions.list_versions(session, "hazard_general")
    assert [v.version for v in listed[:3]] == [base + 2, base + 1, base]
    newest, second = listed[0], listed[1]
    assert (newest.deployed_by, newest.note) == ("wu_reviewer", "验收改名")
    assert (second.deployed_by, second.note) == ("gao_modeler", "复核与15日审核期")
    assert len(newest.content_hash) == 64 and newest.content_hash != second.content_hash
    # the default binding follows the latest version
    assert "general" in newest.bound_as


def test_diff_names_added_removed_and_changed_elements(driver):
    base = current_version(driver)
    publish(driver, V2, "v2")
    publish(driver, V3, "v3")
    with driver.sessions() as session:
        v1, v2, v3 = (definitions.get_version(session, "hazard_general", base + i) for i in range(3))
        first = definitions.diff_versions(v1, v2)
        second = definitions.diff_versions(v2, v3)
        same = definitions.diff_versions(v1, v1)
    assert first.added == [] and first.removed == []
    changed = {c.element_id: c for c in first.changed}
    assert set(changed) == {"verify", "set_review_due", "review_remind"}
    assert changed["verify"].fields == {"name": ("整改验收", "整改验收（复核）")}
    assert set(changed["set_review_due"].fields) == {"handler"}
    old_handler, new_handler = changed["set_review_due"].fields["handler"]
    assert (old_handler["params"]["days"]["value"], new_handler["params"]["days"]["value"]) == ("10", "15")
    assert changed["review_remind"].fields == {
        "timer": (
            ["timeDate", "days_before(review_due_at, 2)"],
            ["timeDate", "days_before(review_due_at, 3)"],
        )
    }
    assert [(e.element_id, e.type) for e in second.added] == [("acceptance", "userTask")]
    assert [(e.element_id, e.type) for e in second.removed] == [("verify", "userTask")]
    flows = {c.element_id: c.fields for c in second.changed}
    assert flows == {
        "flow_to_verify": {"target": ("verify", "acceptance")},
        "flow_verified": {"source": ("verify", "acceptance")},
    }
    assert same.empty


# --------------------------------------------------------------------------------------------------
# Bindings: running instances stay, new hazards follow; sector and region; history and rollback


def test_running_instances_stay_on_their_version_when_a_new_one_is_bound(driver):
    base = current_version(driver)
    wu = driver.actor("gao_modeler")
    driver.step(lambda s: definitions.bind(s, grade="general", process_key="hazard_general", version=base))
    first = driver.register()
    publish(driver, V2, "v2")
    second = driver.register()  # the binding is pinned: still the old version
    assert instance_of(driver, first).definition_version_id == version_id(driver, base)
    assert instance_of(driver, second).definition_version_id == version_id(driver, base)
    driver.step(
        lambda s: definitions.bind(
            s, grade="general", process_key="hazard_general", version=base + 1, changed_by_id=wu.user_id
        )
    )
    third = driver.register()
    assert instance_of(driver, third).definition_version_id == version_id(driver, base + 1)
    for hazard_id in (first, second):
        assert instance_of(driver, hazard_id).definition_version_id == version_id(driver, base)
    # the old instances keep running on the old diagram: its verify has the old name
    driver.complete(first, "assign_plan", "chen_safety", plan_form(DEADLINE))
    driver.complete(first, "rectify", "zhang_rectifier", rectify_form(driver, first))
    assert [i.title for i in open_items(driver, first)] == ["整改验收"]
    driver.complete(third, "assign_plan", "chen_safety", plan_form(DEADLINE))
    driver.complete(third, "rectify", "zhang_rectifier", rectify_form(driver, third, b"third"))
    assert [i.title for i in open_items(driver, third)] == ["整改验收（复核）"]


def test_the_most_specific_binding_wins(driver, world):
    base = current_version(driver)
    publish(driver, V2, "v2")
    publish(driver, V3, "v3")
    with driver.sessions() as session:
        county = definitions.find_region(session, "341821")
        town = definitions.find_region(session, "341821100")
        other = definitions.find_region(session, "341882")
    chem = driver.hazard(driver.register())
    assert chem.sector_code == "hazchem" and chem.region_path.startswith(town.path)

    def resolve(sector: str, path: str | None) -> int:
        with driver.sessions() as session:
            return definitions.resolve_definition(
                session, grade="general", sector_code=sector, region_path=path
            ).version

    latest = base + 2
    assert resolve("hazchem", chem.region_path) == latest  # only the default binding: latest
    bind = definitions.bind
    driver.step(
        lambda s: bind(s, grade="general", process_key="hazard_general", region_id=county.id, version=base)
    )
    assert resolve("hazchem", chem.region_path) == base  # region only
    assert resolve("hazchem", other.path) == latest  # another county: the default
    driver.step(
        lambda s: bind(
            s, grade="general", process_key="hazard_general", sector_code="hazchem", version=base + 1
        )
    )
    assert resolve("hazchem", chem.region_path) == base + 1  # sector beats region
    assert resolve("fire", chem.region_path) == base  # another sector: region only
    driver.step(
        lambda s: bind(
            s,
            grade="general",
            process_key="hazard_general",
            sector_code="hazchem",
            region_id=county.id,
            version=base,
        )
    )
    assert resolve("hazchem", chem.region_path) == base  # sector and region
    assert resolve("hazchem", other.path) == base + 1  # sector only elsewhere
    driver.step(
        lambda s: bind(
            s,
            grade="general",
            process_key="hazard_general",
            sector_code="hazchem",
            region_id=town.id,
            version=base + 2,
        )
    )
    assert resolve("hazchem", chem.region_path) == base + 2  # the nearest region up the path
    assert resolve("hazchem", county.path) == base  # the county itself: the county binding
    # the existing call (no region) still works: sector only, then the default
    with driver.sessions() as session:
        assert (
            definitions.resolve_definition(session, grade="general", sector_code="hazchem").version
            == base + 1
        )
        assert (
            definitions.resolve_definition(session, grade="prominent", sector_code="mines").version == latest
        )


def test_rebinding_is_recorded_and_rolled_back_step_by_step(driver):
    base = current_version(driver)
    publish(driver, V2, "v2")
    publish(driver, V3, "v3")
    gao = driver.actor("gao_modeler")
    wu = driver.actor("wu_reviewer")

    def bind(number, who):
        return driver.step(
            lambda s: (
                definitions.bind(
                    s,
                    grade="general",
                    process_key="hazard_general",
                    sector_code="hazchem",
                    version=number,
                    changed_by_id=who.user_id,
                    note=f"v{number}",
                ).id
            )
        )

    bind(base + 1, gao)
    bind(base + 1, gao)  # unchanged: nothing recorded
    bind(base + 2, wu)
    with driver.sessions() as session:
        history = definitions.binding_history(session, grade="general", sector_code="hazchem")
        assert [(h.action, h.changed_by_id, h.note) for h in history] == [
            ("bind", wu.user_id, f"v{base + 2}"),
            ("bind", gao.user_id, f"v{base + 1}"),
        ]
        assert history[0].previous_effective_version_id == version_id(driver, base + 1)
        assert history[0].changed_at == START
        assert history[1].previous_process_key is None  # created

    def current():
        with driver.sessions() as session:
            return definitions.resolve_definition(session, grade="general", sector_code="hazchem").version

    assert current() == base + 2
    restored = driver.step(
        lambda s: definitions.rollback_binding(
            s, grade="general", sector_code="hazchem", changed_by_id=gao.user_id
        )
    )
    assert restored is not None
    assert current() == base + 1
    # new hazards of the sector start on the restored version; running ones are untouched
    hazard_id = driver.register()
    assert instance_of(driver, hazard_id).definition_version_id == version_id(driver, base + 1)
    # a second rollback undoes the binding's creation: the sector falls back to the default
    assert (
        driver.step(lambda s: definitions.rollback_binding(s, grade="general", sector_code="hazchem")) is None
    )
    with driver.sessions() as session:
        assert definitions.find_binding(session, grade="general", sector_code="hazchem") is None
        actions = [
            h.action for h in definitions.binding_history(session, grade="general", sector_code="hazchem")
        ]
    assert actions == ["rollback", "rollback", "bind", "bind"]
    assert current() == base + 2  # the default follows the latest version
    with pytest.raises(NotFound, match="可回退的绑定变更"):
        driver.step(lambda s: definitions.rollback_binding(s, grade="general", sector_code="hazchem"))


def test_rollback_pins_the_version_that_ran_before(driver):
    base = current_version(driver)
    # the default binding follows the latest version; pinning it records the version it followed
    driver.step(lambda s: definitions.bind(s, grade="general", process_key="hazard_general", version=base))
    publish(driver, V2, "v2")
    driver.step(
        lambda s: definitions.bind(s, grade="general", process_key="hazard_general", version=base + 1)
    )
    driver.step(lambda s: definitions.rollback_binding(s, grade="general"))
    with driver.sessions() as session:
        binding = definitions.find_binding(session, grade="general")
        assert binding is not None
        assert binding.definition_version_id == version_id(driver, base)
        rollback = session.scalars(
            select(DefinitionBindingHistory).order_by(DefinitionBindingHistory.id.desc()).limit(1)
        ).one()
        assert (rollback.action, rollback.previous_definition_version_id) == (
            "rollback",
            version_id(driver, base + 1),
        )


def test_a_grade_is_bound_only_to_a_diagram_that_keeps_its_statutory_steps(driver):
    # hazard_general has no 双报告 and no 五落实 sign-off: it cannot run 重大 hazards
    with pytest.raises(DefinitionInvalid) as err:
        driver.step(
            lambda s: definitions.bind(s, grade="major", process_key="hazard_general", sector_code="fire")
        )
    assert err.value.element_id == "hazard_general"
    assert "双报告" in err.value.reason
    with driver.sessions() as session:
        assert definitions.find_binding(session, grade="major", sector_code="fire") is None


# --------------------------------------------------------------------------------------------------
# Migration


def test_preview_says_which_instances_can_move_and_why_not(driver):
    base = current_version(driver)
    rectifying = at_rectify(driver)
    verifying = at_verify(driver)
    publish(driver, V3, "verify renamed")
    with driver.sessions() as session:
        checks = migration.preview_migration(
            session, from_version_id=version_id(driver, base), to_version_id=version_id(driver, base + 1)
        )
    by_hazard = {c.hazard_id: c for c in checks}
    assert by_hazard[rectifying].movable and by_hazard[rectifying].reasons == ()
    assert by_hazard[rectifying].active == ("rectify",) and "rectify_overdue" in by_hazard[rectifying].waiting
    blocked = by_hazard[verifying]
    assert not blocked.movable and blocked.active == ("verify",)
    assert blocked.reasons == ("verify: 实例正停留在 verify（整改验收），而新版本中没有这个元素",)


def test_a_moved_timer_blocks_the_instances_waiting_on_it(driver):
    base = current_version(driver)
    hazard_id = at_rectify(driver)
    publish(driver, MOVED_REMIND, "urge later")
    with driver.sessions() as session:
        [check] = [
            c
            for c in migration.preview_migration(
                session, from_version_id=version_id(driver, base), to_version_id=version_id(driver, base + 1)
            )
            if c.hazard_id == hazard_id
        ]
    assert not check.movable
    [reason] = check.reasons
    assert reason.startswith("rectify_remind: 等待中的定时器 rectify_remind（期限临近） 的表达式已改变")
    assert "到期时间将从 2026-12-07T01:00:00+00:00 变为 2026-12-10T01:00:00+00:00" in reason


def test_migrated_instances_keep_deadlines_history_and_audit_chain(driver):
    base = current_version(driver)
    hazard_id = at_rectify(driver)
    before_timers = timers(driver, hazard_id)
    [before_item] = open_items(driver, hazard_id)
    assert before_item.due_at == dt.datetime(2026, 12, 10, 15, 59, 59, tzinfo=dt.UTC)
    before_actions = driver.actions(hazard_id)
    publish(driver, V2, "v2")
    old_id, new_id = version_id(driver, base), version_id(driver, base + 1)
    gao = driver.actor("gao_modeler")
    [result] = driver.step(
        lambda s: migration.migrate_instances(
            s,
            driver.ctx,
            from_version_id=old_id,
            to_version_id=new_id,
            instance_ids=[instance_of(driver, hazard_id).id],
            actor=gao,
        )
    )
    assert result.migrated and result.hazard_id == hazard_id
    instance = instance_of(driver, hazard_id)
    assert instance.definition_version_id == new_id
    # the deadlines are the absolute instants computed at the start, not restarted
    assert timers(driver, hazard_id) == before_timers
    [item] = open_items(driver, hazard_id)
    assert (item.id, item.due_at, item.spiff_task_id) == (
        before_item.id,
        before_item.due_at,
        before_item.spiff_task_id,
    )
    actions = driver.actions(hazard_id)
    assert actions[: len(before_actions)] == before_actions and actions[len(before_actions) :] == ["migrated"]
    with driver.sessions() as session:
        event = session.scalars(
            select(Event).where(Event.hazard_id == hazard_id, Event.action == "migrated")
        ).one()
        assert event.payload["from"] == f"hazard_general@{base}"
        assert event.payload["to"] == f"hazard_general@{base + 1}"
        assert event.actor_id == gao.user_id
        assert verify_chain(session, key=driver.ctx.audit_key, instance_id=instance.id) == []
    # the timers still fire at their instants, on the new version
    remind_id, remind_due = before_timers["rectify_remind"]
    with time_machine.travel(remind_due + dt.timedelta(minutes=1), tick=False):
        assert driver.step(lambda s: runtime.fire_timer(s, driver.ctx, timer_job_id=remind_id)) == "fired"
    # and the rest of the loop runs on v2: the renamed verify, the 15-day review period
    driver.complete(hazard_id, "rectify", "zhang_rectifier", rectify_form(driver, hazard_id))
    assert [i.title for i in open_items(driver, hazard_id)] == ["整改验收（复核）"]
    driver.complete(hazard_id, "verify", "chen_safety", VERIFY_PASS)
    [review] = open_items(driver, hazard_id)
    assert review.task_key == "closure_review"
    assert review.due_at == START + dt.timedelta(days=15)
    driver.complete(hazard_id, "closure_review", "wu_reviewer", REVIEW_PASS)
    assert driver.hazard(hazard_id).status == "closed"
    with driver.sessions() as session:
        assert verify_chain(session, key=driver.ctx.audit_key, instance_id=instance.id) == []


def test_an_instance_that_cannot_move_is_reported_untouched_and_completes_on_its_version(driver):
    base = current_version(driver)
    movable = at_rectify(driver)
    stuck = at_verify(driver)
    publish(driver, V3, "verify renamed")
    old_id, new_id = version_id(driver, base), version_id(driver, base + 1)
    stuck_before = instance_of(driver, stuck)
    stuck_actions = driver.actions(stuck)
    progress = []
    results = driver.step(
        lambda s: migration.migrate_instances(
            s,
            driver.ctx,
            from_version_id=old_id,
            to_version_id=new_id,
            instance_ids=[instance_of(driver, movable).id, stuck_before.id],
            actor=driver.actor("gao_modeler"),
            progress=lambda done, total, result: progress.append((done, total, result.migrated)),
        )
    )
    assert [(r.hazard_id, r.migrated) for r in results] == [(movable, True), (stuck, False)]
    assert results[1].reasons == ("verify: 实例正停留在 verify（整改验收），而新版本中没有这个元素",)
    assert progress == [(1, 2, True), (2, 2, False)]
    stuck_after = instance_of(driver, stuck)
    assert (stuck_after.definition_version_id, stuck_after.version, stuck_after.state) == (
        old_id,
        stuck_before.version,
        stuck_before.state,
    )
    assert driver.actions(stuck) == stuck_actions
    # it still completes on v1
    driver.complete(stuck, "verify", "chen_safety", VERIFY_PASS)
    [review] = open_items(driver, stuck)
    assert review.due_at == START + dt.timedelta(days=10)
    driver.complete(stuck, "closure_review", "wu_reviewer", REVIEW_PASS)
    assert driver.hazard(stuck).status == "closed"
    # the moved one continues on v3 (its verify is now ``acceptance``)
    driver.complete(movable, "rectify", "zhang_rectifier", rectify_form(driver, movable, b"moved"))
    assert driver.open_keys(movable) == ["acceptance"]
    with driver.sessions() as session:
        for hazard_id in (movable, stuck):
            assert (
                verify_chain(session, key=driver.ctx.audit_key, instance_id=instance_of(driver, hazard_id).id)
                == []
            )


def test_a_boundary_timer_the_new_version_adds_is_attached_to_the_running_task(driver):
    base = current_version(driver)
    hazard_id = at_rectify(driver)
    before = timers(driver, hazard_id)
    publish(driver, EXTRA_TIMER, "one more reminder")
    with driver.sessions() as session:
        [check] = [
            c
            for c in migration.preview_migration(
                session, from_version_id=version_id(driver, base), to_version_id=version_id(driver, base + 1)
            )
            if c.hazard_id == hazard_id
        ]
    assert check.movable
    assert check.notes == (
        "rectify_eve: 将为 rectify（限期整改） 增加新的边界事件 rectify_eve（期限前一日）",
    )
    [result] = driver.step(
        lambda s: migration.migrate_instances(
            s,
            driver.ctx,
            from_version_id=version_id(driver, base),
            to_version_id=version_id(driver, base + 1),
        )
    )
    assert result.migrated
    after = timers(driver, hazard_id)
    assert {k: v for k, v in after.items() if k != "rectify_eve"} == before
    assert after["rectify_eve"][1] == dt.datetime(2026, 12, 9, 15, 59, 59, tzinfo=dt.UTC)


def test_only_process_administrators_migrate_their_sectors(driver):
    base = current_version(driver)
    hazard_id = at_rectify(driver)  # hazchem in 郎溪县: led by 县应急局 (gao_modeler's department)
    publish(driver, V2, "v2")
    old_id, new_id = version_id(driver, base), version_id(driver, base + 1)
    with pytest.raises(Forbidden):
        driver.step(
            lambda s: migration.migrate_instances(
                s, driver.ctx, from_version_id=old_id, to_version_id=new_id, actor=driver.actor("wu_reviewer")
            )
        )
    with driver.sessions() as session:
        hazard = session.get(Hazard, hazard_id)
        assert migration.may_manage(driver.actor("gao_modeler"), hazard)
        hazard.sector_code = "fire"  # led by the fire brigade, not by gao's department
        assert not migration.may_manage(driver.actor("gao_modeler"), hazard)
        session.rollback()


def test_bindings_table_accepts_a_region_per_sector(sessions, world):
    # the unique key is (grade, sector, region): one binding per region for the same sector
    with sessions.begin() as session:
        county = definitions.find_region(session, "341821")
        other = definitions.find_region(session, "341882")
        for region in (county, other):
            definitions.bind(
                session,
                grade="general",
                process_key="hazard_general",
                sector_code="fire",
                region_id=region.id,
            )
        keys = session.execute(
            select(DefinitionBinding.sector_code, DefinitionBinding.region_id).where(
                DefinitionBinding.sector_code == "fire"
            )
        ).all()
        assert sorted(keys) == sorted([("fire", county.id), ("fire", other.id)])
