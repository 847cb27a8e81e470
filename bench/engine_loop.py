"""Benchmark of the 一般 loop: raw SpiffWorkflow vs. the persisted engine on SQLite and PostgreSQL.

One loop is register → assign_plan → rectify → verify → closure_review → closed.

* raw: the spec parsed once, driven in memory with the ``engine.bpmn`` helpers on the safe script
  engine (no database, no serialization) — what SpiffWorkflow alone costs;
* persisted: the same loop through ``engine.runtime`` (the per-instance protocol: lock, load,
  refresh, check, apply, project, events, CAS), one transaction per step, on an SQLite file in a
  temporary directory and on a fresh PostgreSQL database (created and dropped; skipped with a
  message when unreachable).

Photos are skipped: the bench runs on the shipped forms with photo fields made optional, so the
loop measures the engine, not file storage.

Prints loops/s, p50/p95 step latency, persisted ÷ raw ratios (goals: ≥ 0.35 SQLite, ≥ 0.25
PostgreSQL) and the stored state size per instance at rectify and when closed (goal ≤ 4 KB as
stored, i.e. compressed).

    .venv/bin/python bench/engine_loop.py            # ~30–60 s
    .venv/bin/python bench/engine_loop.py --smoke    # a few loops, < 20 s (CI)
    .venv/bin/python bench/engine_loop.py --profile sqlite   # cProfile the persisted path

PostgreSQL: ``--pg-url`` or ``HAZARDLOOP_BENCH_PG_URL`` / ``HAZARDLOOP_TEST_DATABASE_URL``
(default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``; only used to create a database).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import gc
import io
import json
import os
import pstats
import statistics
import sys
import tempfile
import time
import zlib
from collections import defaultdict
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from engine import bpmn  # noqa: E402
from engine import db as dbmod  # noqa: E402
from engine import runtime  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.demo import deploy_bundled  # noqa: E402
from engine.demo import seed_calendar_and_policies  # noqa: E402
from engine.demo import seed_organisations  # noqa: E402
from engine.form_versions import publish_form_version  # noqa: E402
from engine.forms import FormDefinition  # noqa: E402
from engine.forms import parse_form_definition  # noqa: E402
from engine.models import ProcessInstance  # noqa: E402
from engine.models import WorkItem  # noqa: E402

GENERAL_BPMN = ROOT / "processes" / "hazard_general.bpmn"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
STEPS = ("register", "assign_plan", "rectify", "verify", "closure_review")
GOALS = {"sqlite": 0.35, "postgresql": 0.25}
STATE_GOAL = 4096


@dataclass(frozen=True)
class Mode:
    raw_seconds: float
    raw_min_loops: int
    persisted_seconds: float
    persisted_min_loops: int
    warmup: int


SMOKE = Mode(raw_seconds=1.0, raw_min_loops=20, persisted_seconds=2.5, persisted_min_loops=8, warmup=2)
FULL = Mode(raw_seconds=8.0, raw_min_loops=200, persisted_seconds=14.0, persisted_min_loops=50, warmup=10)


@dataclass
class Result:
    name: str
    loops: int = 0
    seconds: float = 0.0
    steps: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    sizes: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def loops_per_second(self) -> float:
        return self.loops / self.seconds if self.seconds else 0.0

    def all_steps(self) -> list[float]:
        return [d for durations in self.steps.values() for d in durations]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def _due_date() -> str:
    return (dt.datetime.now(dt.UTC) + dt.timedelta(days=17)).date().isoformat()


def _run_for(mode_seconds: float, min_loops: int, loop: Callable[[], None]) -> tuple[int, float]:
    """Run ``loop`` until both the time and the loop-count floor are reached."""
    gc.collect()
    loops = 0
    start = time.perf_counter()
    while True:
        loop()
        loops += 1
        elapsed = time.perf_counter() - start
        if elapsed >= mode_seconds and loops >= min_loops:
            return loops, elapsed


# --- raw SpiffWorkflow -------------------------------------------------------------------------------


def _national_ladder() -> dict[str, list[Any]]:
    """The national profile's ladder as timer data, as ``engine.runtime`` pins it at start."""
    document = json.loads((GENERAL_BPMN.parent / "policies" / "national.json").read_text(encoding="utf-8"))
    values = document["values"]
    ladder: dict[str, list[Any]] = {}
    for key, rung in document["ladder"]["rungs"].items():
        if rung.get("offset"):
            value = values[rung["offset"]]
            ladder[key] = [-value["value"] if key == "urge_before" else value["value"], value["unit"]]
    return ladder


def bench_raw(mode: Mode) -> Result:
    [process] = bpmn.parse_bpmn(GENERAL_BPMN.read_bytes(), GENERAL_BPMN.name)
    deadline = f"{_due_date()}T15:59:59+00:00"
    result = Result("raw (in memory)")
    ladder = _national_ladder()

    def complete(workflow: Any, key: str, variables: dict[str, Any]) -> None:
        [task] = [t for t in bpmn.ready_user_tasks(workflow) if t.key == key]
        bpmn.complete_task(workflow, bpmn.find_ready_task(workflow, task.id), variables)

    def one_loop(record: bool = True) -> None:
        t0 = time.perf_counter()
        workflow = bpmn.new_workflow(process.spec, process.subprocess_specs)
        workflow.task_tree.data.update(
            {
                "grade": "general",
                "handling": "deadline",
                "max_rejects": 3,
                "failed_verifications": 0,
                "deadline_at": None,
                "decision": None,
                "verified": None,
                # what the runtime pins at start: the national ladder's offsets (timers read them)
                "ladder": ladder,
                "last_progress_at": dt.datetime.now(dt.UTC).isoformat(),
                "escalation_not_before": None,
            }
        )
        workflow.do_engine_steps()
        t1 = time.perf_counter()
        complete(workflow, "assign_plan", {"deadline_at": deadline})
        bpmn.waiting_timers(workflow)  # the projection reads these after every step
        t2 = time.perf_counter()
        complete(workflow, "rectify", {})
        t3 = time.perf_counter()
        complete(workflow, "verify", {"decision": "pass"})
        bpmn.waiting_timers(workflow)
        t4 = time.perf_counter()
        complete(workflow, "closure_review", {"decision": "pass"})
        t5 = time.perf_counter()
        assert bpmn.workflow_completed(workflow)
        if record:
            for name, a, b in zip(STEPS, (t0, t1, t2, t3, t4), (t1, t2, t3, t4, t5), strict=True):
                result.steps[name].append(b - a)

    for _ in range(mode.warmup):
        one_loop(record=False)
    result.loops, result.seconds = _run_for(mode.raw_seconds, mode.raw_min_loops, one_loop)
    return result


# --- persisted ----------------------------------------------------------------------------------------


def photo_free_forms(forms: dict[str, FormDefinition]) -> dict[str, FormDefinition]:
    """The shipped forms with photo/file fields optional (the bench does not store files)."""
    out = {}
    for key, form in forms.items():
        data = form.to_dict()
        for f in data["fields"]:  # type: ignore[union-attr]
            if f["type"] in ("photo", "file"):
                f["required"] = False
                f.pop("min_count", None)
        out[key] = parse_form_definition(data)
    return out


@contextmanager
def postgres_database(base_url: str) -> Iterator[str | None]:
    """A fresh PostgreSQL database (dropped afterwards), or None if the server is unreachable."""
    try:
        scratch = dbmod.scratch_database(base_url, prefix="hl_bench_")
        url = scratch.__enter__()
    except Exception as exc:  # unreachable, auth, …: skip with the reason
        print(f"PostgreSQL: skipped ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})")
        yield None
        return
    try:
        yield url
    finally:
        scratch.__exit__(None, None, None)


class PersistedLoop:
    """The loop through engine.runtime on one database."""

    FORMS = {
        "rectify": {"summary": "已更换探头并联动测试", "completed_on": None},
        "verify": {"decision": "pass", "opinion": "整改到位", "verifier_signature": "陈静"},
        "closure_review": {"decision": "pass", "opinion": "同意销号", "reviewer_signature": "吴刚"},
    }

    def __init__(self, url: str, workdir: Path) -> None:
        self.url = url
        dbmod.upgrade(url)
        self.engine = dbmod.make_engine(url)
        self.sessions = dbmod.make_sessionmaker(self.engine)
        settings = replace(
            Settings(),
            env="bench",
            database_url=url,
            var_dir=workdir / "var",
            audit_key="bench-audit-key-0123456789abcdef",
            max_rejects=3,
        )
        base = runtime.EngineContext(settings=settings)
        assert base.forms is not None
        self.ctx = runtime.EngineContext(settings=settings, forms=photo_free_forms(dict(base.forms)))
        with self.sessions.begin() as session:
            self.world = seed_organisations(session)
            deploy_bundled(session, settings.processes_dir, self.ctx.forms)
            # registration pins a policy profile and deadlines use the working-day calendar
            seed_calendar_and_policies(session, settings.processes_dir)
            # and the latest national form versions: the photo-free ones
            for key, form in self.ctx.forms.items():
                publish_form_version(
                    session, form_key=key, sector_code=None, document=form.to_dict(), note="bench"
                )
        # actors are loaded once, as a web process caches the logged-in user per request
        with self.sessions() as session:
            self.actors = {
                u: self.world.actor(session, u) for u in ("chen_safety", "zhang_rectifier", "wu_reviewer")
            }
        self.enterprise_id = self.world.enterprises["chem"].id
        self.plan = {
            "responsible_person": "张强",
            "measures": "更换报警器探头并联动测试",
            "funds": "12000.00",
            "due_date": _due_date(),
            "contingency_plan": "储罐区泄漏现场处置方案",
            "interim_measures": "每两小时便携式检测仪巡检",
        }
        self.forms = dict(self.FORMS)
        self.forms["rectify"] = {**self.FORMS["rectify"], "completed_on": dt.date.today().isoformat()}

    def close(self) -> None:
        self.engine.dispose()

    def _item(self, session: Any, hazard_id: int, key: str) -> int:
        item_id = session.scalar(
            select(WorkItem.id).where(
                WorkItem.hazard_id == hazard_id, WorkItem.task_key == key, WorkItem.state == "open"
            )
        )
        assert item_id is not None, (hazard_id, key)
        return int(item_id)

    def _complete(self, hazard_id: int, key: str, username: str, form: dict[str, Any]) -> None:
        with self.sessions.begin() as session:
            item_id = self._item(session, hazard_id, key)
            runtime.complete(session, self.ctx, work_item_id=item_id, actor=self.actors[username], form=form)

    def state_sizes(self, hazard_id: int) -> tuple[int, int]:
        with self.sessions() as session:
            state = session.scalar(
                select(ProcessInstance.state).where(ProcessInstance.hazard_id == hazard_id)
            )
        assert state is not None
        return len(state), len(zlib.decompress(state))

    def one_loop(self, result: Result | None, *, measure_sizes: bool = False) -> None:
        timings = []
        t = time.perf_counter()
        with self.sessions.begin() as session:
            hazard = runtime.register_hazard(
                session,
                self.ctx,
                actor=self.actors["chen_safety"],
                data={
                    "title": "储罐区可燃气体报警器失效",
                    "description": "1号储罐区两台可燃气体检测报警器不能正常报警",
                    "location": "1号储罐区",
                    "enterprise_id": self.enterprise_id,
                    "source": "self_check",
                    "grade": "general",
                    "handling_type": "deadline",
                    "discovered_at": dt.datetime.now(dt.UTC) - dt.timedelta(days=1),
                },
            )
            hazard_id = hazard.id
        timings.append(time.perf_counter() - t)
        for key, username, form in (
            ("assign_plan", "chen_safety", self.plan),
            ("rectify", "zhang_rectifier", self.forms["rectify"]),
            ("verify", "chen_safety", self.forms["verify"]),
            ("closure_review", "wu_reviewer", self.forms["closure_review"]),
        ):
            t = time.perf_counter()
            self._complete(hazard_id, key, username, form)
            timings.append(time.perf_counter() - t)
            if measure_sizes and key == "assign_plan" and result is not None:
                result.sizes["rectify"] = self.state_sizes(hazard_id)
        if measure_sizes and result is not None:
            result.sizes["closed"] = self.state_sizes(hazard_id)
        if result is not None:
            for name, duration in zip(STEPS, timings, strict=True):
                result.steps[name].append(duration)


def bench_persisted(name: str, url: str, workdir: Path, mode: Mode, profile: Path | None = None) -> Result:
    loop = PersistedLoop(url, workdir)
    result = Result(name)
    try:
        loop.one_loop(result, measure_sizes=True)
        result.steps.clear()
        for _ in range(mode.warmup):
            loop.one_loop(None)
        profiler = cProfile.Profile() if profile else None
        if profiler:
            profiler.enable()
        result.loops, result.seconds = _run_for(
            mode.persisted_seconds, mode.persisted_min_loops, lambda: loop.one_loop(result)
        )
        if profiler:
            profiler.disable()
            profiler.dump_stats(str(profile))
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(45)
            print(out.getvalue())
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
            print(out.getvalue())
    finally:
        loop.close()
    return result


# --- report ---------------------------------------------------------------------------------------------


def report(raw: Result, persisted: list[Result]) -> None:
    ms = 1000.0
    print()
    print(f"{'':28}{'loops':>7}{'loops/s':>10}{'p50 ms':>9}{'p95 ms':>9}{'ratio':>8}  goal")
    for res in (raw, *persisted):
        steps = res.all_steps()
        ratio = res.loops_per_second / raw.loops_per_second if res is not raw else 1.0
        kind = next((k for k in GOALS if res.name.startswith(k)), None)
        goal = ""
        if kind is not None:
            goal = f"≥ {GOALS[kind]:.2f} {'ok' if ratio >= GOALS[kind] else 'MISSED'}"
        print(
            f"{res.name:28}{res.loops:>7}{res.loops_per_second:>10.1f}"
            f"{statistics.median(steps) * ms:>9.2f}{percentile(steps, 0.95) * ms:>9.2f}"
            f"{ratio:>8.3f}  {goal}"
        )
    print()
    print("p95 per step (ms):")
    print(f"{'':28}" + "".join(f"{s:>16}" for s in STEPS))
    for res in (raw, *persisted):
        print(f"{res.name:28}" + "".join(f"{percentile(res.steps[s], 0.95) * ms:>16.2f}" for s in STEPS))
    print()
    print("stored state per instance (bytes: compressed as stored / uncompressed UTF-8 JSON):")
    for res in persisted:
        for at, (stored, plain) in res.sizes.items():
            verdict = "ok" if stored <= STATE_GOAL else "MISSED"
            print(
                f"  {res.name:26} at {at:8} {stored:>6} / {plain:>6}   goal ≤ {STATE_GOAL} stored: {verdict}"
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="a few loops (< 20 s), for CI")
    parser.add_argument(
        "--pg-url", default=None, help="PostgreSQL server URL used to create a bench database"
    )
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--profile", choices=("sqlite", "postgresql"), help="cProfile that persisted run")
    args = parser.parse_args(argv)
    mode = SMOKE if args.smoke else FULL
    pg_url = (
        args.pg_url
        or os.environ.get("HAZARDLOOP_BENCH_PG_URL")
        or (os.environ.get("HAZARDLOOP_TEST_DATABASE_URL") or "").strip()
        or DEFAULT_PG
    )
    started = time.perf_counter()
    kind = "smoke" if args.smoke else "full"
    print(f"hazardloop engine loop benchmark ({kind}), Python {sys.version.split()[0]}")
    raw = bench_raw(mode)
    print(f"raw: {raw.loops} loops in {raw.seconds:.1f} s")
    persisted = []
    with tempfile.TemporaryDirectory(prefix="hl-bench-") as tmp:
        workdir = Path(tmp)
        url = f"sqlite:///{workdir / 'bench.sqlite'}"
        profile = workdir / "sqlite.prof" if args.profile == "sqlite" else None
        persisted.append(bench_persisted("sqlite (file, WAL)", url, workdir, mode, profile))
        print(f"sqlite: {persisted[-1].loops} loops in {persisted[-1].seconds:.1f} s")
        if not args.no_postgres:
            with postgres_database(pg_url) as pg:
                if pg is not None:
                    profile = workdir / "pg.prof" if args.profile == "postgresql" else None
                    persisted.append(bench_persisted("postgresql", pg, workdir, mode, profile))
                    print(f"postgresql: {persisted[-1].loops} loops in {persisted[-1].seconds:.1f} s")
    report(raw, persisted)
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
