"""``/api/v1/definitions/versions|diff|migration|migrate``: versions, differences and migration.

The app sees committed data only, so the fixture publishes two versions of a process of its own
(``hazard_general_apitest``, a copy of the shipped general loop) and binds 危化 hazards to its
first version; it removes them after the conftest ``committed`` fixture deleted the hazards.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlalchemy import delete
from sqlalchemy import or_
from sqlalchemy import select

from engine import db as dbmod
from engine import definitions
from engine.demo import DemoWorld
from engine.models import DefinitionBinding
from engine.models import DefinitionBindingHistory
from engine.models import DefinitionVersion
from engine.models import ProcessInstance
from engine.runtime import EngineContext
from tests.factories import make_hazard

from .test_api_auth import assert_error
from .test_api_auth import bearer

KEY = "hazard_general_apitest"


@pytest.fixture
def variant(engine: Engine, world: DemoWorld, ctx: EngineContext) -> Iterator[dict[str, Any]]:
    """Two committed versions of KEY, 危化 general hazards bound to version 1, one hazard on it.

    Request it before ``client``: its teardown then runs after ``committed`` deleted the hazard.
    """
    source = (ctx.settings.processes_dir / "hazard_general.bpmn").read_text(encoding="utf-8")
    v1 = source.replace('"hazard_general"', f'"{KEY}"')
    v2 = v1.replace(
        '<bpmn:userTask id="verify" name="整改验收">', '<bpmn:userTask id="verify" name="整改复核">'
    )
    assert v2 != v1
    factory = dbmod.make_sessionmaker(engine)
    with factory.begin() as session:
        gao = world.users["gao_modeler"].id
        for xml, note in ((v1, "首版"), (v2, "验收改称复核")):
            definitions.deploy(
                session,
                bpmn_xml=xml.encode(),
                filename=f"{KEY}.bpmn",
                forms=ctx.forms,
                deployed_by_id=gao,
                note=note,
            )
        definitions.bind(session, grade="general", process_key=KEY, sector_code="hazchem", version=1)
    with factory.begin() as session:
        actor = world.actor(session, "chen_safety")
        hazard = make_hazard(session, ctx, world, actor)
        instance_id = session.scalars(
            select(ProcessInstance.id).where(ProcessInstance.hazard_id == hazard.id)
        ).one()
    yield {"hazard_id": hazard.id, "instance_id": instance_id}
    with factory.begin() as session:
        session.execute(delete(DefinitionBinding).where(DefinitionBinding.process_key == KEY))
        session.execute(
            delete(DefinitionBindingHistory).where(
                or_(
                    DefinitionBindingHistory.process_key == KEY,
                    DefinitionBindingHistory.previous_process_key == KEY,
                )
            )
        )
        session.execute(delete(DefinitionVersion).where(DefinitionVersion.process_key == KEY))


def test_versions_list_author_note_and_running_instances(
    variant: dict[str, Any], client: FlaskClient, api_token: Callable[..., str]
) -> None:
    response = client.get(f"/api/v1/definitions/versions?key={KEY}", headers=bearer(api_token("chen_safety")))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["total"] == 2
    newest, first = body["items"]
    assert (newest["version"], newest["deployed_by"], newest["note"], newest["running"]) == (
        2,
        "gao_modeler",
        "验收改称复核",
        0,
    )
    assert (first["version"], first["running"], first["bound_as"]) == (1, 1, ["general/hazchem"])
    assert first["deployed_at"].endswith("+00:00") and len(first["hash"]) == 64
    assert_error(
        client.get("/api/v1/definitions/versions?key=nope", headers=bearer(api_token("chen_safety"))), 404
    )
    assert_error(client.get("/api/v1/definitions/versions", headers=bearer(api_token("chen_safety"))), 422)


def test_diff_between_versions(
    variant: dict[str, Any], client: FlaskClient, api_token: Callable[..., str]
) -> None:
    response = client.get(
        f"/api/v1/definitions/diff?key={KEY}&from=1&to=2", headers=bearer(api_token("gao_modeler"))
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "key": KEY,
        "from": 1,
        "to": 2,
        "added": [],
        "removed": [],
        "changed": [
            {
                "element_id": "verify",
                "type": "userTask",
                "name": "整改复核",
                "fields": {"name": {"old": "整改验收", "new": "整改复核"}},
            }
        ],
    }
    assert_error(
        client.get(
            f"/api/v1/definitions/diff?key={KEY}&from=1&to=7", headers=bearer(api_token("gao_modeler"))
        ),
        404,
    )


def test_preview_and_migrate_for_process_administrators_only(
    variant: dict[str, Any], client: FlaskClient, api_token: Callable[..., str]
) -> None:
    chen, gao = bearer(api_token("chen_safety")), bearer(api_token("gao_modeler"))
    url = f"/api/v1/definitions/migration?key={KEY}&from=1&to=2"
    assert_error(client.get(url, headers=chen), 403)
    preview = client.get(url, headers=gao)
    assert preview.status_code == 200, preview.get_json()
    body = preview.get_json()
    assert (body["from"], body["to"], body["movable"], body["blocked"]) == (1, 2, 1, 0)
    [item] = body["items"]
    assert (item["instance_id"], item["active"], item["movable"]) == (
        variant["instance_id"],
        ["assign_plan"],
        True,
    )
    request = {"key": KEY, "from": 1, "to": 2}
    assert_error(client.post("/api/v1/definitions/migrate", headers=chen, json=request), 403)
    assert_error(client.post("/api/v1/definitions/migrate", headers=gao, json={**request, "to": "2"}), 422)
    moved = client.post("/api/v1/definitions/migrate", headers=gao, json=request)
    assert moved.status_code == 200, moved.get_json()
    result = moved.get_json()
    assert (result["migrated"], result["failed"]) == (1, 0)
    assert result["items"][0]["instance_id"] == variant["instance_id"] and result["items"][0]["migrated"]
    again = client.get(url, headers=gao).get_json()
    assert again["items"] == []
    detail = client.get(f"/api/v1/hazards/{variant['hazard_id']}", headers=chen).get_json()
    assert [e["action"] for e in detail["timeline"]][-1] == "migrated"
