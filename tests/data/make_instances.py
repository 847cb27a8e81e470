"""One-off generator of the stored serialized instances in ``tests/data/instances/`` (NOT run by the suite).

Each instance is created through ``engine.runtime`` on a throwaway SQLite database, exactly as the
product stores it, and written as ``<name>.json``::

    {"definition": "bpmn/<process>-<hash12>.bpmn",   # snapshot of the deployed diagram, beside it
     "process_key": ..., "content_hash": <sha256 of that file>,
     "serializer_version": ..., "state_b64": <base64 of the stored zlib-compressed state>,
     "saved_at": <the clock when it was saved>,
     "expected": {"ready": [...], "waiting_timers": {key: due}, "completed": bool, "data": {...}},
     "next": {"task": key, "variables": {...}, "then_ready": [...], "then_waiting": [...]} | null}

``next`` is the step the test replays on the loaded state (computed here by the code that wrote it).
One instance is created by a separate ``python -c`` process, so a fixture exists that shares no
interpreter state (caches, spec objects, ids) with the others.

Run from the project root when the serializer changes (and keep the old files: they are the point):

    .venv/bin/python tests/data/make_instances.py [name ...]
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
OUT = HERE / "instances"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import time_machine  # noqa: E402
from sqlalchemy import select  # noqa: E402

from engine import bpmn  # noqa: E402
from engine import db as dbmod  # noqa: E402
from engine import definitions  # noqa: E402
from engine import runtime  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.demo import deploy_bundled  # noqa: E402
from engine.demo import open_item  # noqa: E402
from engine.demo import seed_organisations  # noqa: E402
from engine.models import Hazard  # noqa: E402
from engine.models import ProcessInstance  # noqa: E402
from engine.models import TimerJob  # noqa: E402
from engine.models import WorkItem  # noqa: E402

START = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)  # Monday 09:00 in Shanghai
ROUTING = ("grade", "handling", "max_rejects", "failed_verifications", "deadline_at", "decision", "verified")

PLAN = {
    "responsible_person": "张强",
    "measures": "更换报警器探头并联动测试",
    "funds": "12000.00",
    "due_date": "2026-12-10",
    "contingency_plan": "储罐区泄漏现场处置方案",
    "interim_measures": "每两小时便携式检测仪巡检",
}
VERIFY_PASS = {"decision": "pass", "opinion": "整改到位", "verifier_signature": "陈静"}
VERIFY_REJECT = {"decision": "reject", "opinion": "探头未更换", "verifier_signature": "陈静"}
REVIEW_PASS = {"decision": "pass", "opinion": "同意销号", "reviewer_signature": "吴刚"}
GOVERNANCE_PLAN = {
    "objectives": "恢复储罐区可燃气体检测报警功能并实现联锁",
    "methods": "更换全部探头，新增SIS联锁",
    "funds": "380000.00",
    "materials": "探头 24 套，控制柜 1 台",
    "responsible_org": "设备部",
    "responsible_person": "张强",
    "due_date": "2026-12-31",
    "requirements": "施工期间动火作业按特殊作业管理",
    "safety_measures": "施工区域隔离，专人监护",
    "contingency_plan": "储罐区泄漏专项应急预案",
    "interim_measures": "每小时便携式检测仪巡检，储罐区停止装卸",
    "stop_production": "partial",
}


class World:
    """A throwaway SQLite database with the demo organisations and the shipped processes."""

    def __init__(self, workdir: Path) -> None:
        url = f"sqlite:///{workdir / 'instances.sqlite'}"
        settings = replace(
            Settings(),
            env="test",
            database_url=url,
            var_dir=workdir / "var",
            audit_key="stored-instances-generator",
            max_rejects=3,
        )
        dbmod.upgrade(url)
        self.engine = dbmod.make_engine(url)
        self.sessions = dbmod.make_sessionmaker(self.engine)
        self.ctx = runtime.EngineContext(settings=settings)
        with self.sessions.begin() as session:
            self.world = seed_organisations(session)
            deploy_bundled(session, settings.processes_dir, self.ctx.forms)

    def actor(self, username: str) -> Any:
        with self.sessions() as session:
            return self.world.actor(session, username)

    def register(self, **overrides: Any) -> int:
        data = {
            "title": "储罐区可燃气体报警器失效",
            "description": "1号储罐区两台可燃气体检测报警器不能正常报警",
            "location": "1号储罐区",
            "enterprise_id": self.world.enterprises["chem"].id,
            "source": "self_check",
            "grade": "general",
            "handling_type": "deadline",
            "discovered_at": dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC),
            **overrides,
        }
        actor = self.actor("chen_safety")
        with self.sessions.begin() as session:
            return runtime.register_hazard(session, self.ctx, actor=actor, data=data).id

    def upload(self, hazard_id: int, username: str, phase: str, content: bytes) -> int:
        actor = self.actor(username)
        with self.sessions.begin() as session:
            return runtime.add_attachment(
                session,
                self.ctx,
                hazard_id=hazard_id,
                actor=actor,
                filename=f"{phase}.jpg",
                mime_type="image/jpeg",
                content=content,
                phase=phase,
            ).id

    def complete(self, hazard_id: int, task_key: str, username: str, form: dict[str, Any]) -> None:
        actor = self.actor(username)
        with self.sessions.begin() as session:
            item = open_item(session, session.get_one(Hazard, hazard_id), task_key)
            runtime.complete(session, self.ctx, work_item_id=item.id, actor=actor, form=form)

    def rectify(self, hazard_id: int, content: bytes, key: str = "rectify") -> None:
        photo = self.upload(hazard_id, "zhang_rectifier", "after", content)
        form = {"summary": "已完成整改", "after_photos": [photo], "completed_on": "2026-11-25"}
        self.complete(hazard_id, key, "zhang_rectifier", form)


# --- scenarios: each drives one hazard to the state to be stored ----------------------------------


def general_rectify(w: World) -> int:
    """一般 loop at 限期整改, with the remind and overdue timers waiting."""
    hid = w.register()
    w.complete(hid, "assign_plan", "chen_safety", PLAN)
    return hid


def general_verify_after_reject(w: World) -> int:
    """一般 loop back at 整改验收 after one rejected verification (failed_verifications = 1)."""
    hid = general_rectify(w)
    w.rectify(hid, b"after-1")
    w.complete(hid, "verify", "chen_safety", VERIFY_REJECT)
    w.rectify(hid, b"after-2")
    return hid


def general_closure_review(w: World) -> int:
    """一般 loop at 销号审核, its due time computed by the compute_deadline service task."""
    hid = general_rectify(w)
    w.rectify(hid, b"after-1")
    w.complete(hid, "verify", "chen_safety", VERIFY_PASS)
    return hid


def general_closed(w: World) -> int:
    """一般 loop closed (instance completed)."""
    hid = general_closure_review(w)
    w.complete(hid, "closure_review", "wu_reviewer", REVIEW_PASS)
    return hid


def major_govern(w: World) -> int:
    """重大 loop at 隐患治理 after the parallel reports and the signed plan, timers waiting."""
    hid = w.register(grade="major")
    w.complete(
        hid,
        "report_regulator",
        "chen_safety",
        {
            "reported_on": "2026-11-23",
            "receipt_no": "郎应急〔2026〕收 17 号",
            "report_summary": "已判定为重大隐患",
        },
    )
    w.complete(
        hid,
        "report_congress",
        "chen_safety",
        {"reported_on": "2026-11-23", "meeting": "第三届职代会第二次会议", "summary": "通报隐患及治理安排"},
    )
    w.complete(hid, "governance_plan", "chen_safety", GOVERNANCE_PLAN)
    w.complete(
        hid,
        "principal_signoff",
        "wang_principal",
        {"decision": "pass", "opinion": "同意实施", "principal_signature": "王建国"},
    )
    return hid


#: name -> (scenario, the next step to replay on the stored state: (task key, workflow variables))
SCENARIOS: dict[str, tuple[Callable[[World], int], tuple[str, dict[str, Any]] | None]] = {
    "general_rectify": (general_rectify, ("rectify", {})),
    "general_verify_after_reject": (general_verify_after_reject, ("verify", {"decision": "pass"})),
    "general_closure_review_subprocess": (general_closure_review, ("closure_review", {"decision": "pass"})),
    "general_closed": (general_closed, None),
    "major_govern": (major_govern, ("govern", {})),
}
#: created by a separate ``python -c`` process
IN_SUBPROCESS = {"general_closure_review_subprocess"}


def _timers(workflow: Any) -> dict[str, str]:
    return {t.key: t.due_at.isoformat() for t in sorted(bpmn.waiting_timers(workflow), key=lambda t: t.key)}


def _routing_data(workflow: Any) -> dict[str, Any]:
    ready = bpmn.ready_user_tasks(workflow)
    data = ready[0].data if ready else workflow.data
    return {k: data[k] for k in ROUTING if k in data}


def capture(
    w: World, name: str, hazard_id: int, next_step: tuple[str, dict[str, Any]] | None
) -> dict[str, Any]:
    """Read the stored row and projections; cross-check them against the loaded workflow."""
    with w.sessions() as session:
        instance = session.scalars(
            select(ProcessInstance)
            .where(ProcessInstance.hazard_id == hazard_id)
            .order_by(ProcessInstance.id.desc())
        ).first()
        assert instance is not None
        version = instance.definition_version
        ready = sorted(
            session.scalars(
                select(WorkItem.task_key).where(WorkItem.instance_id == instance.id, WorkItem.state == "open")
            )
        )
        waiting = {
            j.timer_key: j.due_at.isoformat()
            for j in session.scalars(
                select(TimerJob)
                .where(TimerJob.instance_id == instance.id, TimerJob.state == "waiting")
                .order_by(TimerJob.timer_key)
            )
        }
        state, serializer_version = bytes(instance.state), instance.serializer_version
        completed = instance.status == "completed"
        bpmn_xml, content_hash = version.bpmn_xml.encode("utf-8"), version.content_hash
        process_key = version.process_key

    assert hashlib.sha256(bpmn_xml).hexdigest() == content_hash
    snapshot = OUT / "bpmn" / f"{process_key}-{content_hash[:12]}.bpmn"
    snapshot.parent.mkdir(parents=True, exist_ok=True)
    if not snapshot.exists():
        snapshot.write_bytes(bpmn_xml)

    # the same state, loaded onto a freshly parsed spec, must agree with the projections
    [process] = [p for p in bpmn.parse_bpmn(bpmn_xml, snapshot.name) if p.process_key == process_key]
    workflow = bpmn.load_state(state, serializer_version, process.spec, process.subprocess_specs)
    assert sorted(t.key for t in bpmn.ready_user_tasks(workflow)) == ready, name
    assert _timers(workflow) == waiting, name
    assert bpmn.workflow_completed(workflow) == completed, name
    expected = {
        "ready": ready,
        "waiting_timers": waiting,
        "completed": completed,
        "data": _routing_data(workflow),
    }

    following = None
    if next_step is not None:
        key, variables = next_step
        [task] = [t for t in bpmn.ready_user_tasks(workflow) if t.key == key]
        bpmn.complete_task(workflow, bpmn.find_ready_task(workflow, task.id), variables)
        following = {
            "task": key,
            "variables": variables,
            "then_ready": sorted(t.key for t in bpmn.ready_user_tasks(workflow)),
            "then_waiting": sorted(_timers(workflow)),
            "then_completed": bpmn.workflow_completed(workflow),
        }
    return {
        "name": name,
        "description": (SCENARIOS[name][0].__doc__ or "").strip(),
        "definition": snapshot.relative_to(OUT).as_posix(),
        "source": f"processes/{version.source_filename}",
        "process_key": process_key,
        "content_hash": content_hash,
        "serializer_version": serializer_version,
        "state_b64": base64.b64encode(state).decode("ascii"),
        "state_bytes": len(state),
        "saved_at": START.isoformat(),
        "created_in_subprocess": name in IN_SUBPROCESS and _in_subprocess,
        "expected": expected,
        "next": following,
    }


_in_subprocess = False


def generate(names: list[str], *, in_subprocess: bool = False) -> list[Path]:
    """Create the named instances (each on its own throwaway database) and write their JSON."""
    global _in_subprocess
    _in_subprocess = in_subprocess
    written = []
    for name in names:
        scenario, next_step = SCENARIOS[name]
        definitions._spec_cache.clear()
        with (
            tempfile.TemporaryDirectory(prefix="hl-instances-") as tmp,
            time_machine.travel(START, tick=False),
        ):
            w = World(Path(tmp))
            try:
                hazard_id = scenario(w)
                document = capture(w, name, hazard_id, next_step)
            finally:
                w.engine.dispose()
        path = OUT / f"{name}.json"
        path.write_text(json.dumps(document, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str]) -> int:
    names = argv or list(SCENARIOS)
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"unknown instance(s): {sorted(unknown)}; known: {sorted(SCENARIOS)}")
    OUT.mkdir(parents=True, exist_ok=True)
    for path in generate([n for n in names if n not in IN_SUBPROCESS]):
        print(f"wrote {path.relative_to(ROOT)}")  # noqa: T201
    for name in [n for n in names if n in IN_SUBPROCESS]:
        code = (
            f"import sys; sys.path.insert(0, {str(HERE)!r}); import make_instances; "
            f"make_instances.generate([{name!r}], in_subprocess=True)"
        )
        subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
        print(f"wrote {(OUT / (name + '.json')).relative_to(ROOT)} (in a subprocess)")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
