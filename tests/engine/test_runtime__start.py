"""Starting an instance: the definition bound to the hazard's region, the policy profile a diagram
names (its ``policy_profile`` process property)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import time_machine
from sqlalchemy import select

from engine import definitions
from engine import policy
from engine.errors import DefinitionInvalid
from engine.models import Event
from engine.models import ProcessInstance
from engine.models import TimerJob
from tests.driver import Driver
from tests.factories import plan_form

START = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)
GENERAL = Path(__file__).resolve().parents[2] / "processes" / "hazard_general.bpmn"
PROFILE_PROPERTY = (
    "<bpmn:extensionElements><spiffworkflow:properties>"
    '<spiffworkflow:property name="policy_profile" value="{profile}" />'
    "</spiffworkflow:properties></bpmn:extensionElements>"
)


@pytest.fixture
def driver(sessions, ctx, world) -> Iterator[Driver]:
    with time_machine.travel(START, tick=False):
        yield Driver(sessions, ctx, world, round_trip=False)


def variant(key: str, profile: str | None = None) -> bytes:
    """The shipped general loop as process ``key`` (and naming a policy profile)."""
    xml = GENERAL.read_text(encoding="utf-8").replace('"hazard_general"', f'"{key}"')
    if profile is not None:
        opening = f'<bpmn:process id="{key}" name="一般隐患排查治理闭环" isExecutable="true">'
        assert opening in xml
        xml = xml.replace(opening, opening + PROFILE_PROPERTY.format(profile=profile))
    return xml.encode("utf-8")


def deploy_and_bind(driver: Driver, key: str, region_code: str, profile: str | None = None) -> None:
    def run(session):
        definitions.deploy(
            session, bpmn_xml=variant(key, profile), filename=f"{key}.bpmn", forms=driver.ctx.forms
        )
        definitions.bind(
            session, grade="general", process_key=key, region_id=driver.world.regions[region_code].id
        )

    driver.step(run)


def process_of(driver: Driver, hazard_id: int) -> str:
    with driver.sessions() as session:
        instance = session.scalars(
            select(ProcessInstance).where(ProcessInstance.hazard_id == hazard_id)
        ).one()
        return instance.definition_version.process_key


def pinned_policy(driver: Driver, hazard_id: int) -> str:
    with driver.sessions() as session:
        return session.scalars(
            select(Event.payload).where(Event.hazard_id == hazard_id, Event.action == "registered")
        ).one()["policy"]


def test_a_hazard_starts_on_the_definition_bound_to_its_region(driver):
    deploy_and_bind(driver, "hazard_general_gd", "341882")  # 广德市
    in_guangde = driver.register("zhao_gd", enterprise_id=driver.world.enterprises["gd_chem"].id)
    in_langxi = driver.register()
    assert process_of(driver, in_guangde) == "hazard_general_gd"
    assert process_of(driver, in_langxi) == "hazard_general"


def test_a_diagram_chooses_its_policy_profile(driver):
    with driver.sessions() as session:
        fire = policy.get_profile(session, "fire")
        default = policy.resolve_policy(session, "hazchem", "/34/3418/341821/")
    assert default.key != "fire"
    deploy_and_bind(driver, "hazard_general_strict", "341821", profile="fire")
    chosen = driver.register()
    assert process_of(driver, chosen) == "hazard_general_strict"
    assert pinned_policy(driver, chosen) == f"fire@{fire.version}"
    with driver.sessions() as session:
        instance = session.scalars(select(ProcessInstance).where(ProcessInstance.hazard_id == chosen)).one()
        assert definitions.process_properties(instance.definition_version)["policy_profile"] == "fire"
    other = driver.register("zhao_gd", enterprise_id=driver.world.enterprises["gd_chem"].id)
    assert pinned_policy(driver, other) == f"{default.key}@{default.version}"


def test_an_unknown_policy_profile_is_refused_at_deploy(sessions, ctx):
    with sessions.begin() as session, pytest.raises(DefinitionInvalid) as refused:
        definitions.deploy(
            session,
            bpmn_xml=variant("hazard_general_nope", profile="no_such_profile"),
            filename="nope.bpmn",
            forms=ctx.forms,
        )
    assert refused.value.element_id == "hazard_general_nope"
    assert "no_such_profile" in refused.value.reason


def reading(key: str, name: str) -> bytes:
    """The general loop whose 通报 timer reads its offset from the policy value ``name``."""
    xml = variant(key).decode("utf-8")
    old = 'ladder_time(ladder, "circular", deadline_at, escalation_not_before)'
    assert xml.count(old) == 1
    new = f'ladder_time({{"circular": [policy_{name}, policy_{name}_unit]}}, "circular", deadline_at, None)'
    return xml.replace(old, new).encode("utf-8")


def test_a_diagram_reads_policy_values_the_profile_has(sessions, ctx):
    """policy_<name> in an expression must exist in the profile the hazards will pin: refused at
    deploy naming the element; with the sector known, the sector's own profile decides."""
    with sessions.begin() as session:
        # named at the boundary timer the diagram draws (where the modeler marks the problem)
        found = definitions.policy_names_in(definitions._parse_xml(reading("x", "no_such_value")))
        assert found == {"no_such_value": "rectify_circular"}
        with pytest.raises(DefinitionInvalid) as refused:
            definitions.check_policy_profiles(session, reading("hazard_general_x", "no_such_value"))
        assert "policy_no_such_value" in refused.value.reason
        assert refused.value.element_id == "rectify_circular"
        # a fire-only value: some profile has it, but not the one 危化 hazards pin
        fire_only = reading("hazard_general_x", "major_fire_unresolved_escalation")
        definitions.check_policy_profiles(session, fire_only)
        definitions.check_policy_profiles(session, fire_only, sector_code="fire")
        with pytest.raises(DefinitionInvalid) as other_sector:
            definitions.check_policy_profiles(session, fire_only, sector_code="hazchem")
        assert "national" in other_sector.value.reason


def test_the_values_a_diagram_reads_are_pinned_at_start(driver):
    """The loop exposes policy_<name> and policy_<name>_unit for what its expressions read."""
    key = "hazard_general_reads"

    def run(session):
        definitions.deploy(
            session,
            bpmn_xml=reading(key, "escalation_letter_after_overdue"),
            filename=f"{key}.bpmn",
            forms=driver.ctx.forms,
        )
        definitions.bind(
            session, grade="general", process_key=key, region_id=driver.world.regions["341821"].id
        )

    driver.step(run)
    hazard_id = driver.register()
    assert process_of(driver, hazard_id) == key
    with driver.sessions() as session:
        version = (
            session.scalars(select(ProcessInstance).where(ProcessInstance.hazard_id == hazard_id))
            .one()
            .definition_version
        )
        assert definitions.policy_names_of(version) == {"escalation_letter_after_overdue"}
    # the 通报 timer now falls 3 working days after the deadline (the letter's offset), not 10
    driver.complete(hazard_id, "assign_plan", "chen_safety", plan_form(dt.date(2026, 12, 10)))
    with driver.sessions() as session:
        due = session.scalars(
            select(TimerJob.due_at).where(
                TimerJob.hazard_id == hazard_id, TimerJob.timer_key == "rectify_circular"
            )
        ).one()
    # 10 December 2026 is a Thursday: 3 working days later is Tuesday the 15th, 09:00 Beijing time
    assert due == dt.datetime(2026, 12, 15, 1, 0, tzinfo=dt.UTC)
