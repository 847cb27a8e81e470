"""Form versions: publishing per scope, pinning at start, a hazard keeping its versions for life."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import time_machine
from sqlalchemy import delete
from sqlalchemy import event
from sqlalchemy import select

from engine import definitions
from engine import form_versions
from engine import runtime
from engine.errors import DefinitionInvalid
from engine.errors import InvalidInput
from engine.errors import NotFound
from engine.forms import load_shipped_forms
from engine.models import FormVersion
from engine.models import ProcessInstance
from engine.models import TaskSubmission
from engine.models import WorkItem
from tests.driver import Driver
from tests.factories import plan_form

START = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)
DUE = dt.date(2026, 12, 10)
EXTRA = {"name": "risk_assessment", "label": "风险评估结论", "type": "text", "required": True}


@pytest.fixture
def driver(sessions, ctx, world) -> Iterator[Driver]:
    with time_machine.travel(START, tick=False):
        yield Driver(sessions, ctx, world, round_trip=False)


def plan_with_extra_field() -> dict:
    """The shipped 整改方案 with one more (required) field."""
    document = load_shipped_forms()["rectification_plan"].to_dict()
    document["title"] = "整改方案（五落实 + 风险评估）"
    document["fields"] = [*document["fields"], EXTRA]  # type: ignore[misc]
    return document


def publish(driver: Driver, document: dict, sector_code: str | None = "hazchem") -> FormVersion:
    version, created = driver.step(
        lambda s: form_versions.publish_form_version(
            s, form_key=document["key"], sector_code=sector_code, document=document, note="test"
        )
    )
    assert created
    return version


def plan_item(driver: Driver, hazard_id: int) -> WorkItem:
    return driver.item(hazard_id, "assign_plan")


def test_the_shipped_forms_are_the_national_version_1(sessions, ctx):
    shipped = load_shipped_forms()
    with sessions() as session:
        rows = session.scalars(select(FormVersion).where(FormVersion.scope == "*")).all()
        assert {r.form_key: r.version for r in rows} == dict.fromkeys(shipped, 1)
        # seeding again creates nothing
        assert form_versions.seed_shipped_forms(session, ctx.settings.processes_dir / "forms") == 0
        row = next(r for r in rows if r.form_key == "rectification_plan")
        assert (
            form_versions.form_definition(session, row.id).to_dict()
            == shipped["rectification_plan"].to_dict()
        )
        assert row.content_hash == form_versions.canonical_hash(shipped["rectification_plan"].to_dict())


def test_versions_count_per_scope_and_unchanged_content_publishes_nothing(driver):
    document = plan_with_extra_field()
    first = publish(driver, document)
    assert (first.scope, first.sector_code, first.version, first.title) == (
        "hazchem",
        "hazchem",
        1,
        "整改方案（五落实 + 风险评估）",
    )
    assert first.content["version"] == 1
    with driver.sessions.begin() as session:
        # the same content again (whatever version number the document claims): nothing new
        again, created = form_versions.publish_form_version(
            session,
            form_key="rectification_plan",
            sector_code="hazchem",
            document={**document, "version": 7},
        )
        assert (again.id, created) == (first.id, False)
        changed = {**document, "description": "另加风险评估"}
        second, created = form_versions.publish_form_version(
            session, form_key="rectification_plan", sector_code="hazchem", document=changed
        )
        assert created and second.version == 2 and second.content["version"] == 2
        assert form_versions.latest_form_version(session, "rectification_plan", "hazchem").id == second.id
        national = form_versions.latest_form_version(session, "rectification_plan", "fire")
        assert (national.scope, national.version) == ("*", 1)
        assert form_versions.latest_form_version(session, "no_such_form", "hazchem") is None
        pins = form_versions.form_pins_for(
            session, ["rectification_plan", "verify", "no_such_form"], "hazchem"
        )
        assert pins == {"rectification_plan": second.id, "verify": pins["verify"]}
        assert session.get_one(FormVersion, pins["verify"]).scope == "*"


def test_an_invalid_form_is_refused_naming_the_field(sessions):
    document = plan_with_extra_field()
    with sessions.begin() as session:
        with pytest.raises(DefinitionInvalid) as refused:
            form_versions.publish_form_version(
                session,
                form_key="rectification_plan",
                sector_code="hazchem",
                document={**document, "fields": [*document["fields"], {**EXTRA, "type": "colour"}]},
            )
        assert refused.value.element_id == "rectification_plan.risk_assessment"
        with pytest.raises(DefinitionInvalid, match="rectification_plan"):
            form_versions.publish_form_version(
                session,
                form_key="rectification_plan",
                sector_code=None,
                document={**document, "key": "verify"},
            )
        with pytest.raises(NotFound):
            form_versions.publish_form_version(
                session, form_key="rectification_plan", sector_code="no_sector", document=document
            )


def test_a_hazard_keeps_the_form_version_it_started_with(driver):
    before = driver.register()
    sector_version = publish(driver, plan_with_extra_field())
    after = driver.register(location="2号储罐区")
    other_sector = driver.register(
        "li_mall", enterprise_id=driver.world.enterprises["mall"].id, location="商场三楼"
    )

    old_item, new_item, other_item = (plan_item(driver, h) for h in (before, after, other_sector))
    assert new_item.form_version_id == sector_version.id
    with driver.sessions() as session:
        national = form_versions.latest_form_version(session, "rectification_plan", None)
        assert old_item.form_version_id == other_item.form_version_id == national.id
        assert (
            form_versions.form_for_item(session, driver.ctx, new_item).title
            == "整改方案（五落实 + 风险评估）"
        )
        assert form_versions.form_for_item(session, driver.ctx, old_item).title == "整改方案（五落实）"
        pins = session.scalars(
            select(ProcessInstance.form_pins).where(ProcessInstance.hazard_id == after)
        ).one()
        assert pins["rectification_plan"] == sector_version.id
        assert set(form_versions.ACTION_FORM_KEYS) <= set(pins)
        assert set(
            definitions.form_keys_of(
                session.get_one(ProcessInstance, new_item.instance_id).definition_version
            )
        ) <= set(pins)

    # started before: the extra field is unknown to its form; started after: it is required
    with pytest.raises(InvalidInput) as unknown:
        driver.complete(before, "assign_plan", "chen_safety", plan_form(DUE, risk_assessment="低风险"))
    assert "risk_assessment" in unknown.value.messages
    driver.complete(before, "assign_plan", "chen_safety", plan_form(DUE))
    with pytest.raises(InvalidInput) as required:
        driver.complete(after, "assign_plan", "chen_safety", plan_form(DUE))
    assert "risk_assessment" in required.value.messages
    driver.complete(after, "assign_plan", "chen_safety", plan_form(DUE, risk_assessment="低风险"))
    driver.complete(other_sector, "assign_plan", "li_mall", plan_form(DUE))
    assert (
        driver.open_keys(before) == driver.open_keys(after) == driver.open_keys(other_sector) == ["rectify"]
    )


def test_pins_survive_a_restart(driver, ctx):
    hid = driver.register()
    publish(driver, plan_with_extra_field())
    # a new process: no cached forms, specs or workflows
    form_versions.clear_cache()
    definitions._spec_cache.clear()
    runtime._WORKFLOWS.clear()
    driver.ctx = runtime.EngineContext(settings=ctx.settings)
    with pytest.raises(InvalidInput):
        driver.complete(hid, "assign_plan", "chen_safety", plan_form(DUE, risk_assessment="低风险"))
    driver.complete(hid, "assign_plan", "chen_safety", plan_form(DUE))
    assert driver.open_keys(hid) == ["rectify"]


def test_side_action_forms_are_pinned_too(driver):
    hid = driver.register()
    driver.complete(hid, "assign_plan", "chen_safety", plan_form(DUE))
    progress = load_shipped_forms()["progress_update"].to_dict()
    progress["fields"] = [*progress["fields"], EXTRA]  # type: ignore[misc]
    publish(driver, progress)
    later = driver.register(location="2号储罐区")
    driver.complete(later, "assign_plan", "chen_safety", plan_form(DUE))
    rectifier = driver.actor("zhang_rectifier")

    def update(hazard_id: int, **extra: str) -> None:
        driver.step(
            lambda s: runtime.update_progress(
                s,
                driver.ctx,
                hazard_id=hazard_id,
                actor=rectifier,
                form={"progress_percent": 50, "note": "已完成一半", **extra},
            )
        )

    update(hid)
    with pytest.raises(InvalidInput) as required:
        update(later)
    assert "risk_assessment" in required.value.messages
    update(later, risk_assessment="低风险")
    with driver.sessions() as session:
        assert (
            "risk_assessment"
            not in form_versions.form_for_hazard(session, driver.ctx, hid, "progress_update").field_names
        )
        assert (
            "risk_assessment"
            in form_versions.form_for_hazard(session, driver.ctx, later, "progress_update").field_names
        )


def test_without_published_versions_the_shipped_files_apply(driver):
    driver.step(lambda s: s.execute(delete(FormVersion)))
    hid = driver.register()
    item = plan_item(driver, hid)
    assert item.form_version_id is None
    with driver.sessions() as session:
        assert (
            session.scalars(select(ProcessInstance.form_pins).where(ProcessInstance.hazard_id == hid)).one()
            is None
        )
        assert form_versions.form_for_item(session, driver.ctx, item) is driver.ctx.form("rectification_plan")
    driver.complete(hid, "assign_plan", "chen_safety", plan_form(DUE))
    assert driver.open_keys(hid) == ["rectify"]


def test_submissions_show_the_form_they_were_made_on(driver):
    hid = driver.register()
    publish(driver, plan_with_extra_field())
    later = driver.register(location="2号储罐区")
    driver.complete(hid, "assign_plan", "chen_safety", plan_form(DUE))
    driver.complete(later, "assign_plan", "chen_safety", plan_form(DUE, risk_assessment="低风险"))
    with driver.sessions() as session:
        subs = session.scalars(select(TaskSubmission).where(TaskSubmission.hazard_id.in_([hid, later]))).all()
        forms = form_versions.submission_forms(session, driver.ctx, subs)
        titles = {s.hazard_id: forms[s.id].title for s in subs}
        assert titles == {hid: "整改方案（五落实）", later: "整改方案（五落实 + 风险评估）"}


def test_reading_an_uncached_version_in_a_step_keeps_it_one_write(driver, engine):
    """The definition of a pinned version is read inside the step (under the instance lock): the
    read must not flush half the step (one compare-and-set per step), and the start reads the pins
    in one query."""
    statements: list[str] = []

    def record(conn, cursor, statement, params, context, executemany):
        statements.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        hid = driver.register()
        pin_reads = [s for s in statements if "FROM form_version" in s]
        assert len(pin_reads) == 1, pin_reads
        form_versions.clear_cache()
        statements.clear()
        driver.complete(hid, "assign_plan", "chen_safety", plan_form(DUE))
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert sum(1 for s in statements if s.startswith("UPDATE process_instance")) == 1, statements
    assert sum(1 for s in statements if "FROM form_version" in s) == 1, statements
