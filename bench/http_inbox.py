"""Benchmark of the inbox over HTTP: ``GET /tasks`` and ``GET /api/v1/tasks`` under gunicorn on
PostgreSQL with 100,000 open work items.

1. A fresh PostgreSQL database (created, dropped at the end), migrated; the demo organisations
   and users (argon2 hashes of the demo password), the bundled processes, calendar and policies;
   the demo hazards, driven through ``engine.runtime`` — these are the *templates*.
2. Bulk copies (SQLAlchemy Core insert batches, explicit ids): each copy is a hazard, a process
   instance holding a template's stored workflow state (the same bytes) and the template's open
   work item(s), spread over the demo enterprises plus synthetic enterprises in the demo regions
   and sectors, with due times from three weeks ago to six weeks ahead (about a third overdue).
   The copies have no audit events and no timer jobs: they are for reading. ANALYZE.
3. ``EXPLAIN ANALYZE`` of every SQL statement the two endpoints run for each user (captured from
   ``engine.tasklist``), flagging sequential scans of ``work_item`` or ``hazard``.
4. ``hazardloop serve`` (gunicorn, gthread) on 127.0.0.1 and a free port; each user logs in
   through the real login form (session cookie) and gets a bearer token from
   ``POST /api/v1/auth/token``; then K client threads, each with its own keep-alive connection
   (http.client), request one endpoint for a fixed time after a warm-up.

Users: ``chen_safety`` (enterprise safety officer: a few hundred items), ``wu_reviewer`` (county
department reviewer: his scope covers ~20 % of the hazards), ``he_office`` (county 安委办: sees
the whole county, ~70 %). Prints requests/s and p50/p95/p99 latency per endpoint and user.

    .venv/bin/python bench/http_inbox.py            # 100,000 items, ~4 min
    .venv/bin/python bench/http_inbox.py --smoke    # 5,000 items, 2 s per endpoint, < 60 s (CI)

PostgreSQL: ``--pg-url`` or ``HAZARDLOOP_BENCH_PG_URL`` / ``HAZARDLOOP_TEST_DATABASE_URL``
(default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``; only used to create a database).
Unreachable: the bench says so and exits 0 (exit 1 with ``--require-postgres``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import http.client
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine  # noqa: E402
from sqlalchemy import event  # noqa: E402
from sqlalchemy import func  # noqa: E402
from sqlalchemy import insert  # noqa: E402
from sqlalchemy import select  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402
from sqlalchemy.orm import sessionmaker  # noqa: E402

from engine import db as dbmod  # noqa: E402
from engine import demo  # noqa: E402
from engine import runtime  # noqa: E402
from engine import tasklist  # noqa: E402
from engine.access import Actor  # noqa: E402
from engine.access import hazard_visibility  # noqa: E402
from engine.access import load_actor  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.models import Enterprise  # noqa: E402
from engine.models import Hazard  # noqa: E402
from engine.models import ProcessInstance  # noqa: E402
from engine.models import Region  # noqa: E402
from engine.models import User  # noqa: E402
from engine.models import WorkItem  # noqa: E402
from engine.models import WorkItemState  # noqa: E402
from web import serve  # noqa: E402
from web.auth import hash_password  # noqa: E402
from web.auth import make_hasher  # noqa: E402

DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
HOST = "127.0.0.1"  # loopback only
USERS = ("chen_safety", "wu_reviewer", "he_office")
ENDPOINTS = (("inbox page", "/tasks"), ("API", "/api/v1/tasks?scope=group"))
BATCH = 5000
#: share of the copies per demo enterprise (the rest go to synthetic enterprises)
DEMO_ENTERPRISE_SHARE = {"chem": 0.004, "mall": 0.002, "site": 0.002, "gd_chem": 0.002}
#: where synthetic enterprises are (region code: weight) and what they do (sector: weight); with
#: these, 郎溪县应急管理局 (hazchem, industry_trade, mines in 郎溪县) sees 0.70 × 0.28 ≈ 20 %.
REGION_WEIGHTS = {"341821": 0.30, "341821100": 0.25, "341821100001": 0.15, "341882": 0.30}
SECTOR_WEIGHTS = {
    "hazchem": 0.15,
    "industry_trade": 0.10,
    "mines": 0.03,
    "fire": 0.27,
    "construction": 0.30,
    "gas": 0.15,
}
#: how often each open task of the demo templates is copied (by task key)
TASK_WEIGHTS = {
    "rectify": 40,
    "fix_on_spot": 6,
    "assign_plan": 12,
    "verify": 12,
    "closure_review": 16,
    "regulator_review": 3,
    "principal_signoff": 3,
    "govern": 4,
    "report_regulator": 4,
}
TITLES = (
    "储罐区可燃气体报警器失效",
    "消防通道堆放杂物",
    "配电箱未设置漏电保护",
    "动火作业未办理作业票",
    "安全出口指示标志损坏",
    "脚手架连墙件缺失",
    "压力表超期未检",
    "有限空间作业未检测",
    "危化品仓库通风不良",
    "特种作业人员无证上岗",
    "应急照明灯不亮",
    "高处作业未系安全带",
)


@dataclass(frozen=True)
class Mode:
    items: int
    seconds: float
    warmup: float


SMOKE = Mode(items=5_000, seconds=2.0, warmup=0.5)
FULL = Mode(items=100_000, seconds=15.0, warmup=2.0)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# --- database -----------------------------------------------------------------------------------


@contextmanager
def postgres_database(base_url: str, *, keep: bool = False) -> Iterator[str | None]:
    """A fresh PostgreSQL database (dropped afterwards unless ``keep``), or None if the server is
    unreachable."""
    try:
        scratch = dbmod.scratch_database(base_url, prefix="hl_bench_http_", keep=keep)
        url = scratch.__enter__()
    except Exception as exc:  # unreachable, auth, …: skip with the reason
        print(f"PostgreSQL: unreachable ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})")
        yield None
        return
    name = make_url(url).database
    try:
        yield url
    finally:
        scratch.__exit__(None, None, None)
        if keep:
            print(f'database {name} kept (--keep): DROP DATABASE "{name}" when done')
        else:
            print(f"database {name} dropped")


def bench_environment(url: str, workdir: Path) -> dict[str, str]:
    """The HAZARDLOOP_* settings of both the seeding (in this process) and the server."""
    return {
        "DATABASE_URL": url,
        "HAZARDLOOP_ENV": "bench",
        "HAZARDLOOP_SECRET_KEY": uuid.uuid4().hex,
        "HAZARDLOOP_AUDIT_KEY": "bench-audit-key-0123456789abcdef",
        "HAZARDLOOP_VAR_DIR": str(workdir / "var"),
        "HAZARDLOOP_AUDIT_KEY_FILE": str(workdir / "audit.key"),
    }


@dataclass
class Template:
    """A demo hazard with open work items: its rows, as dicts of column values."""

    hazard: dict[str, Any]
    instance: dict[str, Any]
    items: list[dict[str, Any]]

    @property
    def key(self) -> str:
        return str(self.items[0]["task_key"])


def _rows(session: Session, table: Any, where: Any) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in session.execute(select(table).where(where))]


def load_templates(session: Session) -> list[Template]:
    open_items = _rows(session, WorkItem.__table__, WorkItem.state == WorkItemState.OPEN.value)
    by_hazard: dict[int, list[dict[str, Any]]] = {}
    for item in sorted(open_items, key=lambda i: i["id"]):
        by_hazard.setdefault(item["hazard_id"], []).append(item)
    templates = []
    for hazard_id, items in by_hazard.items():
        [hazard] = _rows(session, Hazard.__table__, Hazard.id == hazard_id)
        [instance] = _rows(session, ProcessInstance.__table__, ProcessInstance.id == items[0]["instance_id"])
        templates.append(Template(hazard, instance, items))
    return templates


@dataclass
class World:
    """What the copies are spread over."""

    now: dt.datetime
    year: int
    regions: dict[str, Region]
    #: (enterprise id, region, sector code, lead department id)
    enterprises: list[tuple[int, Region, str, int | None]]
    demo_enterprises: dict[str, tuple[int, Region, str, int | None]]
    users: dict[str, int]
    lead: dict[tuple[str, str], int | None] = field(default_factory=dict)
    #: (region code, sector) -> its synthetic enterprises
    strata: dict[tuple[str, str], list[tuple[int, Region, str, int | None]]] = field(default_factory=dict)

    def pick(self, rng: random.Random) -> tuple[int, Region, str, int | None]:
        """A synthetic enterprise: region and sector by weight, then one of that stratum's."""
        stratum = (_weighted(rng, REGION_WEIGHTS), _weighted(rng, SECTOR_WEIGHTS))
        return rng.choice(self.strata[stratum])


def _weighted(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def make_world(session: Session, ctx: runtime.EngineContext, items: int, rng: random.Random) -> World:
    """Synthetic enterprises (about one per 100 items) in the demo regions and sectors."""
    regions = {r.code: r for r in session.scalars(select(Region))}
    now = ctx.clock.now()
    world = World(
        now=now,
        year=now.astimezone(ctx.tz).year,
        regions=regions,
        enterprises=[],
        demo_enterprises={},
        users={name: user_id for name, user_id in session.execute(select(User.username, User.id))},
    )

    def lead_for(sector: str, region: Region) -> int | None:
        key = (sector, region.code)
        if key not in world.lead:
            world.lead[key] = runtime._default_lead_department(session, sector, region)
        return world.lead[key]

    for key, (_name, code, *_rest) in demo.ENTERPRISES.items():
        ent = session.scalars(select(Enterprise).where(Enterprise.credit_code == code)).one()
        world.demo_enterprises[key] = (
            ent.id,
            ent.region,
            ent.sector_code,
            lead_for(ent.sector_code, ent.region),
        )
    # One enterprise per ~100 items, in every (region, sector) stratum in proportion to its weight;
    # a copy picks its stratum by weight, then an enterprise in it: the shares hold exactly in
    # expectation, however few enterprises a smoke run has.
    count = max(100, items // 100)
    rows = []
    for region_code, region_weight in REGION_WEIGHTS.items():
        region = regions[region_code]
        for sector, sector_weight in SECTOR_WEIGHTS.items():
            for _ in range(max(1, round(count * region_weight * sector_weight))):
                n = len(rows) + 1
                rows.append(
                    {
                        "name": f"基准测试企业{n:04d}（{region.name}）",
                        "credit_code": f"91BENCH{n:011d}",
                        "region_id": region.id,
                        "sector_code": sector,
                        "principal_name": "测试负责人",
                        "actual_controller": None,
                        "high_risk": n % 5 == 0,
                    }
                )
    session.execute(insert(Enterprise), rows)
    by_id = {r.id: r for r in regions.values()}
    for ent in session.scalars(
        select(Enterprise).where(Enterprise.credit_code.like("91BENCH%")).order_by(Enterprise.id)
    ):
        region = by_id[ent.region_id]
        stratum = world.strata.setdefault((region.code, ent.sector_code), [])
        stratum.append((ent.id, region, ent.sector_code, lead_for(ent.sector_code, region)))
        world.enterprises.append(stratum[-1])
    return world


def _next_ids(session: Session) -> dict[str, int]:
    return {
        name: (session.scalar(select(func.max(model.id))) or 0) + 1
        for name, model in (("hazard", Hazard), ("instance", ProcessInstance), ("item", WorkItem))
    }


def bulk_copy(
    sessions: sessionmaker[Session], templates: list[Template], world: World, total: int, rng: random.Random
) -> int:
    """Insert copies until ``total`` work items are open; returns the number of copied items."""
    weights = [TASK_WEIGHTS.get(t.key, 1) for t in templates]
    single = [t for t in templates if len(t.items) == 1]
    with sessions() as session:
        existing = session.scalar(
            select(func.count(WorkItem.id)).where(WorkItem.state == WorkItemState.OPEN.value)
        )
        ids = _next_ids(session)
    wanted = total - (existing or 0)
    demo_quota = {k: int(total * share) for k, share in DEMO_ENTERPRISE_SHARE.items()}
    rectifiers = [world.users["zhang_rectifier"], world.users["liu_rectifier"]]
    reviewer = world.users["wu_reviewer"]
    reviewer_lead = world.demo_enterprises["chem"][3]  # 郎溪县应急管理局
    county_path = world.regions["341821"].path
    started = time.perf_counter()
    copied = 0
    seq = 0
    while copied < wanted:
        hazards: list[dict[str, Any]] = []
        instances: list[dict[str, Any]] = []
        items: list[dict[str, Any]] = []
        while len(items) < BATCH and copied + len(items) < wanted:
            left = wanted - copied - len(items)
            template = rng.choices(templates, weights=weights)[0] if left > 1 else rng.choice(single)
            demo_key = next((k for k, q in demo_quota.items() if q > 0 and rng.random() < 0.05), None)
            if demo_key is not None:
                demo_quota[demo_key] -= len(template.items)
                enterprise_id, region, sector, lead = world.demo_enterprises[demo_key]
            else:
                enterprise_id, region, sector, lead = world.pick(rng)
            seq += 1
            hazard_id, instance_id = ids["hazard"], ids["instance"]
            ids["hazard"] += 1
            ids["instance"] += 1
            created = world.now - dt.timedelta(days=rng.uniform(0, 90))
            due = world.now + dt.timedelta(days=rng.uniform(-21, 42))
            has_deadline = template.hazard["deadline"] is not None
            hazards.append(
                {
                    **template.hazard,
                    "id": hazard_id,
                    "number": f"YH-{region.code}-{world.year}-B{seq:06d}",
                    "title": f"{rng.choice(TITLES)}（{seq}）",
                    "enterprise_id": enterprise_id,
                    "region_id": region.id,
                    "region_path": region.path,
                    "sector_code": sector,
                    "lead_department_id": lead,
                    "deadline": due if has_deadline else None,
                    "overdue": has_deadline and due < world.now,
                    "discovered_at": created - dt.timedelta(days=1),
                    "created_at": created,
                    "updated_at": created,
                }
            )
            instances.append(
                {
                    **template.instance,
                    "id": instance_id,
                    "hazard_id": hazard_id,
                    "created_at": created,
                    "updated_at": created,
                    "event_seq": 0,
                    "last_event_hash": "",
                }
            )
            for item in template.items:
                assignee = None
                if item["candidate_role"] == "rectifier" and demo_key == "chem" and rng.random() < 0.5:
                    assignee = rng.choice(rectifiers)
                elif (
                    item["org_scope"] == "department"
                    and lead == reviewer_lead
                    and region.path.startswith(county_path)
                    and rng.random() < 0.1
                ):
                    assignee = reviewer
                items.append(
                    {
                        **item,
                        "id": ids["item"],
                        "instance_id": instance_id,
                        "hazard_id": hazard_id,
                        "due_at": due if item["due_at"] is not None else None,
                        "created_at": created,
                        "assignee_id": assignee,
                        "claimed_at": created if assignee else None,
                    }
                )
                ids["item"] += 1
        with sessions.begin() as session:  # Core inserts (multi-row VALUES), not the ORM
            conn = session.connection()
            conn.execute(insert(Hazard.__table__), hazards)
            conn.execute(insert(ProcessInstance.__table__), instances)
            conn.execute(insert(WorkItem.__table__), items)
        copied += len(items)
        elapsed = time.perf_counter() - started
        print(
            f"  copied {copied:>7,} / {wanted:,} work items ({len(hazards):,} hazards and instances "
            f"in this batch)  {elapsed:5.1f} s  {copied / elapsed:,.0f} items/s",
            flush=True,
        )
    return copied


def fix_sequences(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in ("hazard", "process_instance", "work_item"):
            conn.execute(
                text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            )


def vacuum_analyze(engine: Engine) -> None:
    """VACUUM (ANALYZE): statistics, and the visibility map a database that autovacuum has seen
    would have (index-only scans depend on it)."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM (ANALYZE)"))


# --- EXPLAIN ANALYZE ------------------------------------------------------------------------------


@contextmanager
def captured_statements(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", record)


@dataclass
class Plan:
    user: str
    call: str
    label: str
    statement: str
    ms: float
    #: shared buffers the statement touched (hit + read): the same on every run, unlike the time
    buffers: int
    seq_scans: list[str]
    text: str


def explain(
    engine: Engine, user: str, call: str, label: str, statement: str, parameters: Any, runs: int = 5
) -> Plan:
    """EXPLAIN ANALYZE once to warm the cache, then ``runs`` times: the fastest run is kept (on a
    shared machine the minimum is the least disturbed figure; the buffer count does not vary)."""
    measured: list[tuple[float, str]] = []
    with engine.connect() as conn:
        for n in range(runs + 1):
            rows = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, parameters).scalars().all()
            plan = "\n".join(rows)
            match = re.search(r"Execution Time: ([\d.]+) ms", plan)
            if n:
                measured.append((float(match.group(1)) if match else float("nan"), plan))
    ms, plan = min(measured, key=lambda m: m[0])
    scans = sorted(set(re.findall(r"Seq Scan on (work_item|hazard)\b", plan)))
    top = re.search(r"Buffers: shared hit=(\d+)(?: read=(\d+))?", plan)
    buffers = int(top.group(1)) + int(top.group(2) or 0) if top else 0
    return Plan(user, call, label, statement, ms, buffers, scans, plan)


def _what(statement: str) -> str:
    head = " ".join(statement.split())[:200]
    if head.startswith("SELECT count("):
        return "count"
    if "FROM work_item" in head or "work_item.id" in head:
        return "items"
    if "extension_request" in head:
        return "extensions"
    return "other"


def explain_endpoints(
    engine: Engine, actors: dict[str, Actor], now: dt.datetime, show: bool
) -> tuple[list[Plan], dict[str, dict[str, int]]]:
    """EXPLAIN ANALYZE every SELECT that /tasks (``task_inbox``), /api/v1/tasks?scope=group
    (``task_page``) and ``engine.tasklist.inbox`` (the CLI's and the dashboard's list) run."""
    plans: list[Plan] = []
    counts: dict[str, dict[str, int]] = {}
    sessions = dbmod.make_sessionmaker(engine)
    for username, actor in actors.items():
        for endpoint, call in (
            ("/tasks", lambda s, a: tasklist.task_inbox(s, a, now=now)),
            ("/api/v1/tasks", lambda s, a: tasklist.task_page(s, a, scope="group")),
            ("tasklist.inbox", lambda s, a: tasklist.inbox(s, a)),
        ):
            with sessions() as session:
                with captured_statements(engine) as statements:
                    result = call(session, actor)
                if endpoint == "/tasks":
                    counts[username] = dict(result.counts)
                    counts[username]["visible"] = session.scalar(
                        select(func.count(Hazard.id)).where(hazard_visibility(actor))
                    )
                elif endpoint == "/api/v1/tasks":
                    counts[username]["api_group"] = result.total
            for n, (statement, parameters) in enumerate(statements, start=1):
                label = f"{username} {endpoint} #{n} {_what(statement)}"
                plans.append(explain(engine, username, endpoint, label, statement, parameters))
    if show:
        for plan in plans:
            print(f"\n--- {plan.label}\n{plan.statement}\n{plan.text}")
    return plans, counts


# --- HTTP ---------------------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def bearer_token(port: int, username: str) -> str:
    conn = http.client.HTTPConnection(HOST, port, timeout=30)
    try:
        body = json.dumps(
            {"username": username, "password": demo.DEMO_PASSWORD, "name": "http_inbox bench", "ttl_hours": 2}
        )
        conn.request("POST", "/api/v1/auth/token", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    if response.status != 201:
        raise RuntimeError(f"POST /api/v1/auth/token as {username}: {response.status} {data[:200]!r}")
    return str(json.loads(data)["token"])


def session_cookie(port: int, username: str) -> str:
    browser = serve.Browser(HOST, port, timeout=30)
    try:
        reply = browser.login(username, demo.DEMO_PASSWORD)
    finally:
        browser.close()
    if reply.status != 302:
        raise RuntimeError(f"login as {username} through the form: {reply.status}")
    return "; ".join(f"{k}={v}" for k, v in browser.cookies.items())


@dataclass
class Load:
    endpoint: str
    user: str
    rows: int
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    seconds: float = 0.0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0


def drive(
    port: int, path: str, headers: dict[str, str], *, clients: int, seconds: float, warmup: float, load: Load
) -> None:
    """``clients`` threads, each with one keep-alive connection, request ``path`` until the time is
    up (after ``warmup`` seconds that are not counted); bounded by time and by a request cap."""
    cap = 200_000
    lock = threading.Lock()
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + seconds

    def client() -> None:
        conn: http.client.HTTPConnection | None = None
        latencies: list[float] = []
        errors: list[str] = []
        while True:
            t0 = time.perf_counter()
            if t0 >= stop_at or len(latencies) + len(errors) >= cap:
                break
            if conn is None:
                conn = http.client.HTTPConnection(HOST, port, timeout=60)
            try:
                conn.request("GET", path, headers=headers)
                response = conn.getresponse()
                body = response.read()
            except (http.client.HTTPException, OSError):
                conn.close()
                conn = None  # keep-alive closed by the server: reconnect, don't count it
                continue
            t1 = time.perf_counter()
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = None
            if t0 < measure_from:
                continue
            if response.status != 200:
                errors.append(f"{response.status} {body[:160]!r}")
            else:
                latencies.append(t1 - t0)
        if conn is not None:
            conn.close()
        with lock:
            load.latencies.extend(latencies)
            load.errors += len(errors)
            if errors and not load.first_error:
                load.first_error = errors[0]

    threads = [threading.Thread(target=client, name=f"client-{n}") for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    load.seconds = min(time.perf_counter(), stop_at + 60) - measure_from


@contextmanager
def gunicorn(env: dict[str, str], port: int, workers: int, threads: int) -> Iterator[subprocess.Popen[bytes]]:
    argv = serve.hazardloop_argv(
        "serve", "--host", HOST, "--port", str(port), "--workers", str(workers), "--threads", str(threads)
    )
    argv += ["--log-level", "warning"]
    proc = subprocess.Popen(argv, env={**os.environ, **env, "PYTHONUNBUFFERED": "1"}, process_group=0)
    child = serve.Child("gunicorn", proc)
    try:
        dead = serve.wait_ready(HOST, port, [child], timeout=90)
        if dead is not None:
            raise RuntimeError(f"gunicorn exited with status {proc.returncode}")
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# --- the run --------------------------------------------------------------------------------------------


def seed(
    url: str, env: dict[str, str], items: int, rng: random.Random, without: list[str]
) -> tuple[Settings, int]:
    settings = Settings.from_env(env)
    dbmod.upgrade(url)
    engine = dbmod.make_engine(url)
    for index in without:  # the "before" of a before/after comparison
        with engine.begin() as conn:
            conn.execute(text(f'DROP INDEX "{index}"'))
        print(f"index {index} dropped (--without-index)")
    sessions = dbmod.make_sessionmaker(engine)
    ctx = runtime.EngineContext(settings=settings)
    try:
        t = time.perf_counter()
        hasher = functools.partial(hash_password, hasher=make_hasher(settings))
        with sessions.begin() as session:
            world = demo.seed_organisations(session, password_hasher=hasher)
            demo.deploy_bundled(session, settings.processes_dir, ctx.forms)
            demo.seed_calendar_and_policies(session, settings.processes_dir)
        seeded = demo.seed_demo_hazards(sessions, ctx, world)
        with sessions() as session:
            templates = load_templates(session)
        real = sum(len(t.items) for t in templates)
        print(
            f"organisations, users and {len(seeded)} real demo hazards through engine.runtime "
            f"({real} open work items in {len(templates)} templates: "
            f"{', '.join(sorted({t.key for t in templates}))})  {time.perf_counter() - t:.1f} s"
        )
        with sessions.begin() as session:
            bench_world = make_world(session, ctx, items, rng)
        print(f"{len(bench_world.enterprises):,} synthetic enterprises in {len(REGION_WEIGHTS)} demo regions")
        t = time.perf_counter()
        copied = bulk_copy(sessions, templates, bench_world, items, rng)
        fix_sequences(engine)
        print(f"bulk copy: {copied:,} work items in {time.perf_counter() - t:.1f} s")
        t = time.perf_counter()
        vacuum_analyze(engine)
        print(f"VACUUM (ANALYZE) {time.perf_counter() - t:.1f} s")
        with sessions() as session:
            open_items = session.scalar(
                select(func.count(WorkItem.id)).where(WorkItem.state == WorkItemState.OPEN.value)
            )
        return settings, int(open_items or 0)
    finally:
        engine.dispose()


def report_plans(plans: list[Plan]) -> None:
    print()
    print("EXPLAIN (ANALYZE, BUFFERS) of the statements behind each endpoint (fastest of 5 warm runs):")
    print(f"  {'statement':44}{'ms':>9}{'buffers':>9}  sequential scans")
    totals: dict[tuple[str, str], tuple[float, int]] = {}
    for plan in plans:
        scans = ", ".join(plan.seq_scans) if plan.seq_scans else "—"
        print(f"  {plan.label:44}{plan.ms:>9.2f}{plan.buffers:>9,}  {scans}")
        ms, buffers = totals.get((plan.user, plan.call), (0.0, 0))
        totals[(plan.user, plan.call)] = (ms + plan.ms, buffers + plan.buffers)
    print("  per request (sum of its statements):")
    for (user, call), (ms, buffers) in totals.items():
        print(f"    {user:14}{call:16}{ms:>9.2f} ms{buffers:>9,} buffers")


def report_loads(loads: list[Load], open_items: int, workers: int, threads: int, clients: int) -> None:
    ms = 1000.0
    print()
    print(
        f"{open_items:,} open work items; gunicorn {workers} workers × {threads} threads (gthread), "
        f"{clients} keep-alive client connections, {os.cpu_count()} CPUs shared by client, server and "
        "PostgreSQL"
    )
    print(
        f"  {'endpoint':42}{'user':14}{'rows':>8}{'requests':>10}{'req/s':>9}"
        f"{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}"
    )
    for load in loads:
        lat = load.latencies
        print(
            f"  {load.endpoint:42}{load.user:14}{load.rows:>8,}{len(lat):>10,}{load.rps:>9.1f}"
            f"{(statistics.median(lat) if lat else float('nan')) * ms:>9.1f}"
            f"{percentile(lat, 0.95) * ms:>9.1f}{percentile(lat, 0.99) * ms:>9.1f}{load.errors:>8}"
        )
        if load.first_error:
            print(f"    first error: {load.first_error}")


def profile_requests(settings: Settings, username: str, requests: int = 100) -> None:
    """cProfile both endpoints in this process (Flask test client, no HTTP, no gunicorn)."""
    import cProfile
    import io
    import pstats

    from web import create_app

    app = create_app(settings)
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None
    form = {"csrf_token": match.group(1), "username": username, "password": demo.DEMO_PASSWORD}
    assert client.post("/login", data=form).status_code == 302
    credentials = {"username": username, "password": demo.DEMO_PASSWORD}
    reply = app.test_client().post("/api/v1/auth/token", json=credentials)  # no cookie: no CSRF
    token = reply.get_json()["token"]
    for label, path in ENDPOINTS:
        headers = {"Authorization": f"Bearer {token}"} if path.startswith("/api/") else {}
        for _ in range(5):
            assert client.get(path, headers=headers).status_code == 200
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for _ in range(requests):
            client.get(path, headers=headers)
        profiler.disable()
        elapsed = time.perf_counter() - started
        print(
            f"\n{label} GET {path} as {username}: {elapsed / requests * 1000:.1f} ms per request (profiled)"
        )
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(40)
        print(out.getvalue())
    app.extensions["hazardloop"].engine.dispose()


def run(url: str, mode: Mode, args: argparse.Namespace) -> int:
    rng = random.Random(20260)
    with tempfile.TemporaryDirectory(prefix="hl-bench-http-") as tmp:
        env = bench_environment(url, Path(tmp))
        settings, open_items = seed(url, env, mode.items, rng, args.without_index)
        print(f"open work items: {open_items:,}")
        engine = dbmod.make_engine(url)
        try:
            with dbmod.make_sessionmaker(engine)() as session:
                actors = {u: load_actor(session, username=u) for u in USERS}
            now = runtime.EngineContext(settings=settings).clock.now()
            plans, counts = explain_endpoints(engine, actors, now, args.explain)
        finally:
            engine.dispose()
        report_plans(plans)
        print()
        print("what each user's inbox holds (tab counts of /tasks; group total of the API):")
        for user, c in counts.items():
            share = c["visible"] / open_items if open_items else 0
            print(
                f"  {user:14} visible hazards {c['visible']:>7,} ({share:.0%})   mine {c['mine']:>6,}"
                f"   group {c['group']:>6,}   overdue {c['overdue']:>6,}"
                f"   API group total {c['api_group']:>6,}"
            )
        if args.profile:
            profile_requests(settings, args.profile)
            return 0
        if args.no_load:
            return 0
        port = free_port()
        loads: list[Load] = []
        with gunicorn(env, port, args.workers, args.threads):
            credentials = {u: (session_cookie(port, u), bearer_token(port, u)) for u in USERS}
            print(f"\ngunicorn on http://{HOST}:{port}/ ; logged in {', '.join(USERS)} (form + token)")
            for label, path in ENDPOINTS:
                for user in USERS:
                    cookie, token = credentials[user]
                    if path.startswith("/api/"):
                        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
                        rows = counts[user]["api_group"]
                    else:
                        headers = {"Cookie": cookie, "Accept": "text/html"}
                        rows = sum(counts[user][tab] for tab in tasklist.TABS)
                    load = Load(f"{label} GET {path}", user, rows)
                    drive(
                        port,
                        path,
                        headers,
                        clients=args.clients,
                        seconds=mode.seconds,
                        warmup=mode.warmup,
                        load=load,
                    )
                    loads.append(load)
                    print(
                        f"  {load.endpoint} as {user}: {len(load.latencies):,} requests, "
                        f"{load.rps:.1f}/s, {load.errors} errors",
                        flush=True,
                    )
        report_loads(loads, open_items, args.workers, args.threads, args.clients)
    return 1 if any(load.errors or not load.latencies for load in loads) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="5,000 items, 2 s per endpoint (CI, < 60 s)")
    parser.add_argument("--items", type=int, default=None, help="open work items (default 100,000)")
    parser.add_argument("--seconds", type=float, default=None, help="measured seconds per endpoint and user")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (default 2)")
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker (default 4)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent client connections (default 8)")
    parser.add_argument(
        "--pg-url", default=None, help="PostgreSQL server URL used to create a bench database"
    )
    parser.add_argument("--explain", action="store_true", help="print every EXPLAIN ANALYZE plan in full")
    parser.add_argument(
        "--without-index",
        action="append",
        default=[],
        metavar="NAME",
        help="drop this index after migrating (before/after comparisons; repeatable)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the database (for EXPLAIN experiments)")
    parser.add_argument("--no-load", action="store_true", help="seed and EXPLAIN only: no server, no load")
    parser.add_argument(
        "--profile", metavar="USER", help="cProfile both endpoints in-process as USER, no HTTP"
    )
    parser.add_argument(
        "--require-postgres", action="store_true", help="exit 1 when PostgreSQL is unreachable"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= 64 or not 1 <= args.workers <= 16 or not 1 <= args.threads <= 32:
        parser.error("--clients 1–64, --workers 1–16, --threads 1–32")
    base = SMOKE if args.smoke else FULL
    mode = Mode(
        items=args.items or base.items,
        seconds=args.seconds or base.seconds,
        warmup=base.warmup,
    )
    pg_url = (
        args.pg_url
        or os.environ.get("HAZARDLOOP_BENCH_PG_URL")
        or (os.environ.get("HAZARDLOOP_TEST_DATABASE_URL") or "").strip()
        or DEFAULT_PG
    )
    started = time.perf_counter()
    kind = "smoke" if args.smoke else "full"
    print(
        f"hazardloop HTTP inbox benchmark ({kind}: {mode.items:,} open work items), "
        f"Python {sys.version.split()[0]}"
    )
    with postgres_database(pg_url, keep=args.keep) as url:
        if url is None:
            print("PostgreSQL is required: skipped")
            return 1 if args.require_postgres else 0
        status = run(url, mode, args)
    print(f"\ntotal {time.perf_counter() - started:.1f} s")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
