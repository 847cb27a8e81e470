"""Benchmark of the timer scheduler: 10,000 due timers fired by 1 and by 2 ``hazardloop worker`` processes
on PostgreSQL.

For each worker count, on a fresh PostgreSQL database (created, dropped at the end):

1. migrate; the demo organisations, the bundled processes, calendar and policies;
2. one *template* hazard through ``engine.runtime``: a 一般 hazard at 限期整改 registered under
   time-machine five days in the past, with its deadline tomorrow — so its reminder timer
   (``rectify_remind``, three days before the deadline) is due in real time and its overdue timer
   is not. Its rows are read back and its own timer job is cancelled (it is only a template);
3. the workers start (``hazardloop worker --interval 0.2``, ``HAZARDLOOP_TIMER_BATCH`` 100) and
   idle; then one transaction inserts N faithful copies of the template (hazard, process instance
   with the same stored workflow state, open work item, timer jobs; no history) — at its commit N
   reminders are due at once;
4. the clock runs from that commit until every copy's reminder job is ``fired`` (polled), then
   the workers stop (SIGTERM) and the rows are checked: every job fired, exactly one
   ``timer_fired`` event per job, no incidents, and how many each worker fired (from its output).

Prints the seconds and timers/s for 1 and 2 workers and the 2-vs-1 speed-up; goals (for the
default 10,000): ≤ 20 s with 2 workers (≥ 500 timers/s) and a speed-up ≥ 1.3 — "met"/"missed".

    .venv/bin/python bench/scheduler.py                 # 10,000 timers, ~1–2 min
    .venv/bin/python bench/scheduler.py --timers 2000
    .venv/bin/python bench/scheduler.py --smoke         # 400 timers (CI)
    .venv/bin/python bench/scheduler.py --profile       # cProfile one in-process run_due instead

PostgreSQL: ``--pg-url`` or ``HAZARDLOOP_BENCH_PG_URL`` / ``HAZARDLOOP_TEST_DATABASE_URL``
(default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``; only used to create a database).
Unreachable: the bench says so and exits 0 (exit 1 with ``--require-postgres``).

The template and copy helpers are also used by tests/engine/test_scheduler_processes.py.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import os
import pstats
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import time_machine  # noqa: E402
from sqlalchemy import Engine  # noqa: E402
from sqlalchemy import func  # noqa: E402
from sqlalchemy import insert  # noqa: E402
from sqlalchemy import select  # noqa: E402
from sqlalchemy import update  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402
from sqlalchemy.orm import sessionmaker  # noqa: E402

from engine import db as dbmod  # noqa: E402
from engine import runtime  # noqa: E402
from engine import scheduler  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.demo import DemoWorld  # noqa: E402
from engine.demo import deploy_bundled  # noqa: E402
from engine.demo import seed_calendar_and_policies  # noqa: E402
from engine.demo import seed_organisations  # noqa: E402
from engine.models import Event  # noqa: E402
from engine.models import Hazard  # noqa: E402
from engine.models import HazardDepartment  # noqa: E402
from engine.models import Incident  # noqa: E402
from engine.models import ProcessInstance  # noqa: E402
from engine.models import TimerJob  # noqa: E402
from engine.models import WorkItem  # noqa: E402
from web import serve  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
DEFAULT_TIMERS = 10_000
SMOKE_TIMERS = 400
GOAL_SECONDS = 20.0  # for 10,000 timers with 2 workers
GOAL_RATE = DEFAULT_TIMERS / GOAL_SECONDS
GOAL_SPEEDUP = 1.3
DUE_KEY = "rectify_remind"
CHUNK = 1000
FIRED_RE = re.compile(r"已触发 (\d+)")


# --- the template and its copies (also used by the worker-process tests) ---------------------------


@dataclass(frozen=True)
class Template:
    """The rows of one hazard at 限期整改, read back as plain column dicts (ids left out)."""

    hazard: dict[str, Any]
    instance: dict[str, Any]
    work_items: list[dict[str, Any]]
    timer_jobs: list[dict[str, Any]]
    departments: list[dict[str, Any]]


def make_template(sessions: sessionmaker[Session], ctx: runtime.EngineContext, world: DemoWorld) -> int:
    """Register a 一般 hazard and assign its plan five days ago, deadline tomorrow (business time).

    Its reminder (three days before the deadline) is due now in real time, its overdue timer is
    not. Returns the hazard id.
    """
    now = dt.datetime.now(dt.UTC)
    tomorrow = now.astimezone(ctx.tz).date() + dt.timedelta(days=1)
    with time_machine.travel(now - dt.timedelta(days=5), tick=True):
        with sessions.begin() as session:
            actor = world.actor(session, "chen_safety")
            hazard = runtime.register_hazard(
                session,
                ctx,
                actor=actor,
                data={
                    "title": "储罐区可燃气体报警器失效",
                    "description": "1号储罐区两台可燃气体检测报警器不能正常报警",
                    "location": "1号储罐区",
                    "enterprise_id": world.enterprises["chem"].id,
                    "source": "self_check",
                    "grade": "general",
                    "handling_type": "deadline",
                    "discovered_at": now - dt.timedelta(days=6),
                },
            )
            hazard_id = hazard.id
        with sessions.begin() as session:
            item_id = session.scalars(
                select(WorkItem.id).where(WorkItem.hazard_id == hazard_id, WorkItem.state == "open")
            ).one()
            runtime.complete(
                session,
                ctx,
                work_item_id=item_id,
                actor=world.actor(session, "chen_safety"),
                form={
                    "responsible_person": "张强",
                    "measures": "更换报警器探头并联动测试",
                    "funds": "12000.00",
                    "due_date": tomorrow.isoformat(),
                    "contingency_plan": "储罐区泄漏现场处置方案",
                    "interim_measures": "每两小时便携式检测仪巡检",
                },
            )
    return hazard_id


def due_keys(template: Template) -> list[str]:
    """The timers of the template that are due now (real time): only DUE_KEY, if it was made right."""
    now = dt.datetime.now(dt.UTC)
    return sorted(j["timer_key"] for j in template.timer_jobs if j["due_at"] <= now)


def _row(mapping: Any, *drop: str) -> dict[str, Any]:
    return {k: v for k, v in dict(mapping).items() if k not in ("id", *drop)}


def load_template(session: Session, hazard_id: int) -> Template:
    """The template's rows (its latest instance, open work items, waiting timer jobs)."""
    hazard_t, instance_t = Hazard.__table__, ProcessInstance.__table__
    items_t, jobs_t, deps_t = WorkItem.__table__, TimerJob.__table__, HazardDepartment.__table__
    hazard = session.execute(select(hazard_t).where(hazard_t.c.id == hazard_id)).mappings().one()
    instance = (
        session.execute(
            select(instance_t).where(instance_t.c.hazard_id == hazard_id).order_by(instance_t.c.id.desc())
        )
        .mappings()
        .first()
    )
    assert instance is not None
    items = session.execute(
        select(items_t).where(items_t.c.instance_id == instance["id"], items_t.c.state == "open")
    ).mappings()
    jobs = session.execute(
        select(jobs_t).where(jobs_t.c.instance_id == instance["id"], jobs_t.c.state == "waiting")
    ).mappings()
    deps = session.execute(select(deps_t).where(deps_t.c.hazard_id == hazard_id)).mappings()
    return Template(
        hazard=_row(hazard),
        instance=_row(instance, "hazard_id"),
        work_items=[_row(i, "instance_id", "hazard_id") for i in items],
        timer_jobs=[_row(j, "instance_id", "hazard_id") for j in jobs],
        departments=[_row(d, "hazard_id") for d in deps],
    )


def insert_copies(
    session: Session,
    template: Template,
    count: int,
    *,
    label: str = "C",
    progress: Callable[[int, int], None] | None = None,
) -> list[int]:
    """Insert ``count`` copies of the template in the caller's transaction; returns the hazard ids.

    Each copy: a hazard (its own number), a process instance with the template's stored workflow
    state and an empty audit chain, its open work items and its waiting timer jobs (no lease, no
    attempts), and its co-responsible departments.
    """
    hazard_t, instance_t = Hazard.__table__, ProcessInstance.__table__
    items_t, jobs_t, deps_t = WorkItem.__table__, TimerJob.__table__, HazardDepartment.__table__
    number = template.hazard["number"]
    hazard_ids: list[int] = []
    for start in range(0, count, CHUNK):
        n = min(CHUNK, count - start)
        hazards = [{**template.hazard, "number": f"{number}-{label}{start + i:06d}"} for i in range(n)]
        new_hazards = list(
            session.execute(
                insert(hazard_t).returning(hazard_t.c.id, sort_by_parameter_order=True), hazards
            ).scalars()
        )
        instances = [
            {**template.instance, "hazard_id": h, "event_seq": 0, "last_event_hash": ""} for h in new_hazards
        ]
        new_instances = list(
            session.execute(
                insert(instance_t).returning(instance_t.c.id, sort_by_parameter_order=True), instances
            ).scalars()
        )
        pairs = list(zip(new_hazards, new_instances, strict=True))
        items = [{**i, "instance_id": p, "hazard_id": h} for h, p in pairs for i in template.work_items]
        jobs = [
            {
                **j,
                "instance_id": p,
                "hazard_id": h,
                "lock_owner": None,
                "lock_expires_at": None,
                "attempts": 0,
                "last_error": None,
                "available_at": None,
            }
            for h, p in pairs
            for j in template.timer_jobs
        ]
        deps = [{**d, "hazard_id": h} for h, _p in pairs for d in template.departments]
        for table, rows in ((items_t, items), (jobs_t, jobs), (deps_t, deps)):
            if rows:
                session.execute(insert(table), rows)
        hazard_ids.extend(new_hazards)
        if progress is not None:
            progress(start + n, count)
    return hazard_ids


# --- worker processes ------------------------------------------------------------------------------


def worker_environment(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of a ``hazardloop worker`` child on ``settings``' database and keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAZARDLOOP_", "DATABASE_URL"))}
    env.update(
        {
            "DATABASE_URL": settings.database_url,
            "HAZARDLOOP_ENV": "bench",
            "HAZARDLOOP_SECRET_KEY": secrets.token_hex(16),
            "HAZARDLOOP_VAR_DIR": str(settings.var_dir),
            "HAZARDLOOP_PROCESSES_DIR": str(settings.processes_dir),
            "HAZARDLOOP_AUDIT_KEY": settings.audit_key or "",
            "HAZARDLOOP_NOTIFY_CHANNELS": "inapp",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def fired(self) -> int:
        """Timers this worker reports it fired (the sum of its tick summaries)."""
        return sum(int(m) for m in FIRED_RE.findall(self.output()))


def start_worker(env: dict[str, str], log: Path, *, interval: float = 0.2) -> Worker:
    with log.open("wb") as out:
        process = subprocess.Popen(
            serve.hazardloop_argv("worker", "--interval", f"{interval:g}"),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
    return Worker(process, log)


def wait_started(workers: list[Worker], timeout: float = 60.0) -> None:
    """Until every worker printed its start line (its imports are done; the first tick follows)."""
    deadline = time.monotonic() + timeout
    while not all("worker 已启动" in w.output() for w in workers):
        dead = [w for w in workers if w.process.poll() is not None]
        if dead:
            raise RuntimeError(f"worker exited with {dead[0].process.returncode}:\n{dead[0].output()}")
        if time.monotonic() > deadline:
            raise RuntimeError("workers did not start in time")
        time.sleep(0.05)


def stop_worker(worker: Worker, timeout: float = 60.0) -> int:
    """SIGTERM (hand back leases, finish the current firing), then SIGKILL if it hangs."""
    if worker.process.poll() is None:
        worker.process.send_signal(signal.SIGTERM)
        try:
            worker.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            worker.process.kill()
            worker.process.wait()
    return int(worker.process.returncode)


def fired_count(session: Session, hazard_ids: list[int]) -> int:
    low, high = min(hazard_ids), max(hazard_ids)
    return (
        session.scalar(
            select(func.count(TimerJob.id)).where(
                TimerJob.hazard_id.between(low, high),
                TimerJob.timer_key == DUE_KEY,
                TimerJob.state == "fired",
            )
        )
        or 0
    )


def check_fired_once(session: Session, hazard_ids: list[int]) -> list[str]:
    """Problems found in the rows (empty: every copy's due job fired, with exactly one event)."""
    low, high = min(hazard_ids), max(hazard_ids)
    in_range = TimerJob.hazard_id.between(low, high)
    problems = []
    states = dict(
        session.execute(
            select(TimerJob.state, func.count(TimerJob.id))
            .where(in_range, TimerJob.timer_key == DUE_KEY)
            .group_by(TimerJob.state)
        ).all()
    )
    if states != {"fired": len(hazard_ids)}:
        problems.append(f"{DUE_KEY} jobs by state: {states} (expected all {len(hazard_ids)} fired)")
    events = dict(
        session.execute(
            select(Event.hazard_id, func.count(Event.id))
            .where(Event.hazard_id.between(low, high), Event.action == "timer_fired")
            .group_by(Event.hazard_id)
        ).all()
    )
    twice = sum(1 for n in events.values() if n > 1)
    missing = len(hazard_ids) - len(events)
    if twice or missing:
        problems.append(f"timer_fired events: {twice} hazards with more than one, {missing} with none")
    others = session.scalar(
        select(func.count(TimerJob.id)).where(
            in_range, TimerJob.timer_key != DUE_KEY, TimerJob.state != "waiting"
        )
    )
    if others:
        problems.append(f"{others} jobs that were not due changed state")
    incidents = session.scalar(select(func.count(Incident.id)).where(Incident.hazard_id.between(low, high)))
    if incidents:
        problems.append(f"{incidents} incidents")
    return problems


# --- the bench -------------------------------------------------------------------------------------


@dataclass
class Measurement:
    workers: int
    timers: int
    seconds: float
    per_worker: list[int]
    problems: list[str]

    @property
    def rate(self) -> float:
        return self.timers / self.seconds if self.seconds else 0.0


@contextmanager
def postgres_database(base_url: str) -> Iterator[str | None]:
    """A fresh PostgreSQL database (dropped afterwards), or None if the server is unreachable."""
    try:
        scratch = dbmod.scratch_database(base_url, prefix="hl_bench_sched_")
        url = scratch.__enter__()
    except Exception as exc:  # unreachable, auth, …: skip with the reason
        print(f"PostgreSQL: unreachable ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})")
        yield None
        return
    try:
        yield url
    finally:
        scratch.__exit__(None, None, None)


def prepare(url: str, workdir: Path) -> tuple[Engine, sessionmaker[Session], runtime.EngineContext, Template]:
    """Migrate and seed a database, and make the template (its own job cancelled)."""
    settings = replace(
        Settings(),
        env="bench",
        database_url=url,
        var_dir=workdir / "var",
        audit_key="bench-audit-key-0123456789abcdef",
    )
    dbmod.upgrade(url)
    engine = dbmod.make_engine(url)
    sessions = dbmod.make_sessionmaker(engine)
    ctx = runtime.EngineContext(settings=settings)
    with sessions.begin() as session:
        world = seed_organisations(session)
        deploy_bundled(session, settings.processes_dir, ctx.forms)
        seed_calendar_and_policies(session, settings.processes_dir)
    template_id = make_template(sessions, ctx, world)
    with sessions.begin() as session:
        template = load_template(session, template_id)
        session.execute(update(TimerJob).where(TimerJob.hazard_id == template_id).values(state="cancelled"))
    if due_keys(template) != [DUE_KEY]:
        raise RuntimeError(f"the template should have {DUE_KEY} due and no other timer: {due_keys(template)}")
    return engine, sessions, ctx, template


def progress_printer(label: str) -> Callable[[int, int], None]:
    """Progress on one line in a terminal; in a log, a line per fifth of the work."""
    tty = sys.stdout.isatty()
    shown = [0]

    def show(done: int, total: int) -> None:
        if tty:
            print(f"\r  {label}: {done:,}/{total:,}", end="\n" if done == total else "", flush=True)
        elif done == total or done - shown[0] >= total / 5:
            shown[0] = done
            print(f"  {label}: {done:,}/{total:,}", flush=True)

    return show


def measure(base_url: str, timers: int, workers: int, workdir: Path, *, timeout: float) -> Measurement:
    with postgres_database(base_url) as url:
        if url is None:
            raise RuntimeError("PostgreSQL unreachable")
        t = time.perf_counter()
        engine, sessions, ctx, template = prepare(url, workdir)
        print(f"  database seeded, template hazard made ({time.perf_counter() - t:.1f} s)")
        env = worker_environment(ctx.settings, HAZARDLOOP_TIMER_BATCH="100")
        procs = [start_worker(env, workdir / f"worker-{workers}-{n}.log") for n in range(workers)]
        try:
            wait_started(procs)
            with sessions.begin() as session:
                hazard_ids = insert_copies(
                    session, template, timers, progress=progress_printer(f"creating {timers:,} due timers")
                )
            started = time.perf_counter()  # committed: every copy's reminder is due from now
            with sessions() as session:
                while (done := fired_count(session, hazard_ids)) < timers:
                    if time.perf_counter() - started > timeout:
                        raise RuntimeError(f"only {done:,} of {timers:,} fired after {timeout:.0f} s")
                    if any(w.process.poll() is not None for w in procs):
                        raise RuntimeError("a worker exited:\n" + "\n".join(w.output() for w in procs))
                    time.sleep(0.05)
                    session.rollback()  # a fresh snapshot for the next count
            seconds = time.perf_counter() - started
        finally:
            codes = [stop_worker(w) for w in procs]
        with sessions() as session:
            problems = check_fired_once(session, hazard_ids)
        if any(codes):
            problems.append(f"worker exit statuses {codes}")
        engine.dispose()
        return Measurement(workers, timers, seconds, [w.fired() for w in procs], problems)


def profile(base_url: str, timers: int, workdir: Path) -> None:
    """cProfile one in-process ``run_due`` over ``timers`` due timers (no worker processes)."""
    with postgres_database(base_url) as url:
        if url is None:
            raise RuntimeError("PostgreSQL unreachable")
        engine, sessions, ctx, template = prepare(url, workdir)
        with sessions.begin() as session:
            hazard_ids = insert_copies(session, template, timers, progress=progress_printer("creating"))
        profiler = cProfile.Profile()
        t = time.perf_counter()
        profiler.enable()
        result = scheduler.run_due(sessions, ctx, owner=scheduler.new_owner("bench"))
        profiler.disable()
        seconds = time.perf_counter() - t
        print(
            f"in-process run_due: {result.fired:,} fired in {seconds:.2f} s ({result.fired / seconds:.0f}/s)"
        )
        with sessions() as session:
            print("check:", check_fired_once(session, hazard_ids) or "ok")
        for key in ("cumulative", "tottime"):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(key).print_stats(30)
            print(out.getvalue())
        engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--timers", type=int, default=None, help=f"due timers (default {DEFAULT_TIMERS:,})")
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_TIMERS} timers (CI)")
    parser.add_argument("--pg-url", default=None, help="PostgreSQL server URL used to create bench databases")
    parser.add_argument("--profile", action="store_true", help="cProfile one in-process run_due instead")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up on a run after this many s")
    parser.add_argument(
        "--require-postgres", action="store_true", help="exit 1 when PostgreSQL is unreachable"
    )
    args = parser.parse_args(argv)
    timers = args.timers or (SMOKE_TIMERS if args.smoke else DEFAULT_TIMERS)
    if timers < 1:
        parser.error("--timers must be at least 1")
    pg_url = (
        args.pg_url
        or os.environ.get("HAZARDLOOP_BENCH_PG_URL")
        or (os.environ.get("HAZARDLOOP_TEST_DATABASE_URL") or "").strip()
        or DEFAULT_PG
    )
    with postgres_database(pg_url) as probe:
        if probe is None:
            print("PostgreSQL is required: skipped")
            return 1 if args.require_postgres else 0
    print(f"hazardloop scheduler benchmark: {timers:,} due timers, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="hl-bench-sched-") as tmp:
        workdir = Path(tmp)
        if args.profile:
            profile(pg_url, timers, workdir)
            return 0
        results = []
        for workers in (1, 2):
            print(f"{workers} worker{'s' if workers > 1 else ''}:")
            results.append(measure(pg_url, timers, workers, workdir, timeout=args.timeout))
            r = results[-1]
            print(
                f"  {r.timers:,} fired in {r.seconds:.2f} s ({r.rate:,.0f} timers/s), per worker",
                r.per_worker,
            )
    one, two = results
    speedup = one.seconds / two.seconds if two.seconds else 0.0
    print()
    print(f"{'':12}{'timers':>8}{'seconds':>10}{'timers/s':>10}  fired per worker")
    for r in results:
        label = f"{r.workers} worker{'s' if r.workers > 1 else ''}"
        print(f"{label:12}{r.timers:>8,}{r.seconds:>10.2f}{r.rate:>10,.0f}  {r.per_worker}")
    print(f"speed-up 2 vs 1 worker: {speedup:.2f}x")
    rate_ok = two.rate >= GOAL_RATE
    print(
        f"goal ≤ {GOAL_SECONDS:.0f} s for {DEFAULT_TIMERS:,} with 2 workers (≥ {GOAL_RATE:.0f} timers/s): "
        f"{two.rate:,.0f}/s → {'met' if rate_ok else 'missed'}"
        + ("" if timers == DEFAULT_TIMERS else f" (measured on {timers:,}, not {DEFAULT_TIMERS:,})")
    )
    print(
        f"goal speed-up ≥ {GOAL_SPEEDUP}x: {speedup:.2f}x → {'met' if speedup >= GOAL_SPEEDUP else 'missed'}"
    )
    both_worked = all(n > 0 for n in two.per_worker)
    print(f"both workers fired timers: {'yes' if both_worked else 'no'} {two.per_worker}")
    problems = [f"{r.workers} worker(s): {p}" for r in results for p in r.problems]
    if problems:
        print("FAILED checks:\n  " + "\n  ".join(problems))
        return 1
    print("checks: every timer fired exactly once (rows and timer_fired events), no incidents")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
