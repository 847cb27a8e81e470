"""Published versions of task forms, and the versions pinned to each running instance.

A department publishes a new version of a form for its sector (``scope`` = the sector code) or a
system administrator one for the whole country (``scope`` ``"*"``); versions are immutable and
count per (form key, scope). When an instance starts, :func:`form_pins_for` picks for every form
its diagram uses (and the side-action forms, :data:`ACTION_FORM_KEYS`) the latest version of the
hazard's sector, else the latest national one, and the runtime stores the ids on the instance
(``ProcessInstance.form_pins``) and on each work item it creates (``WorkItem.form_version_id``).
A hazard keeps those versions for its whole life: a version published later applies to hazards
started later. A form without a published version (no pin) is the shipped file form
(``processes/forms/<key>.json``, :meth:`EngineContext.form`).

Every place that shows or validates a task's form goes through :func:`form_for_item` (a work
item), :func:`form_for_hazard` / :func:`pinned_form` (a side action of a hazard) or
:func:`submission_forms` (stored submissions, for display).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

from sqlalchemy import and_
from sqlalchemy import event as sa_event
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm import object_session

from .clock import Clock
from .clock import SystemClock
from .errors import Conflict
from .errors import DefinitionInvalid
from .errors import NotFound
from .forms import FormDefinition
from .forms import load_form_directory
from .forms import parse_form_definition
from .models import FormVersion
from .models import Hazard
from .models import InstanceKind
from .models import ProcessInstance
from .models import Sector
from .models import TaskSubmission
from .models import WorkItem
from .models.design import NATIONAL_SCOPE
from .models.design import scope_of

if TYPE_CHECKING:
    from .runtime import EngineContext

__all__ = [
    "ACTION_FORM_KEYS",
    "canonical_hash",
    "form_definition",
    "form_for_hazard",
    "form_for_item",
    "form_pins_for",
    "get_form_version",
    "latest_form_version",
    "pinned_form",
    "pinned_versions",
    "previous_form_version",
    "publish_form_version",
    "seed_shipped_forms",
    "submission_forms",
]

#: forms of the actions beside the happy path (动态更新, 延期申请, 延期审批): pinned at start like
#: the task forms, though no diagram names them
ACTION_FORM_KEYS = ("progress_update", "extension_request", "extension_decision")


def canonical_hash(document: Mapping[str, Any]) -> str:
    """sha256 of a form document's canonical JSON (sorted keys, UTF-8, no spaces), without its
    ``version`` number: the same form published again is the same content."""
    content = {k: v for k, v in document.items() if k != "version"}
    text = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- publishing ---------------------------------------------------------------------------------------


def _latest_in_scope(session: Session, form_key: str, scope: str) -> FormVersion | None:
    return session.scalars(
        select(FormVersion)
        .where(FormVersion.form_key == form_key, FormVersion.scope == scope)
        .order_by(FormVersion.version.desc())
        .limit(1)
    ).first()


def publish_form_version(
    session: Session,
    *,
    form_key: str,
    sector_code: str | None,
    document: Mapping[str, Any],
    created_by_id: int | None = None,
    note: str | None = None,
    clock: Clock | None = None,
) -> tuple[FormVersion, bool]:
    """Publish ``document`` as the next version of ``form_key`` in the sector's scope (``None``:
    national).

    The document's own ``version`` is ignored: versions are numbered here, per (form key, scope),
    and the stored content carries the number it got. Unchanged content (the same
    :func:`canonical_hash` as the scope's latest version) publishes nothing.

    :returns: the version and whether it was created (``False``: the unchanged latest).
    :raises DefinitionInvalid: the document is not a valid form (the element names the form or
        ``<key>.<field>``), or its ``key`` is not ``form_key``.
    :raises NotFound: no such sector.
    :raises Conflict: someone published a version of the same form and scope at the same time.
    """
    if not isinstance(document, Mapping):
        raise DefinitionInvalid(form_key, "表单定义必须是 JSON 对象")
    if document.get("key") != form_key:
        raise DefinitionInvalid(form_key, f"表单定义的标识 key（{document.get('key')!r}）必须是 {form_key!r}")
    if sector_code is not None and session.get(Sector, sector_code) is None:
        raise NotFound("行业", sector_code)
    scope = scope_of(sector_code)
    latest = _latest_in_scope(session, form_key, scope)
    number = latest.version + 1 if latest is not None else 1
    definition = parse_form_definition({**document, "version": number})
    content = definition.to_dict()
    content_hash = canonical_hash(content)
    if latest is not None and latest.content_hash == content_hash:
        return latest, False
    created = FormVersion(
        form_key=form_key,
        scope=scope,
        sector_code=sector_code,
        version=number,
        title=definition.title,
        content=content,
        content_hash=content_hash,
        created_at=(clock or SystemClock()).now(),
        created_by_id=created_by_id,
        note=note,
    )
    try:
        with session.begin_nested():
            session.add(created)
    except IntegrityError as exc:  # (form_key, scope, version) is unique
        raise Conflict(f"表单「{definition.title}」刚由他人发布了新版本，请重新加载后再发布") from exc
    return created, True


def seed_shipped_forms(session: Session, forms_dir: Path) -> int:
    """Publish the shipped forms (``processes/forms/*.json``) as national version 1.

    Idempotent: a form that has a national version already is left alone (a later shipped edit
    does not overwrite what a system administrator published).

    :returns: how many versions were created.
    :raises DefinitionInvalid: a shipped file is not a valid form.
    """
    shipped = load_form_directory(forms_dir)
    existing = set(session.scalars(select(FormVersion.form_key).where(FormVersion.scope == NATIONAL_SCOPE)))
    created = 0
    for key, form in shipped.items():
        if key in existing:
            continue
        _version, new = publish_form_version(
            session, form_key=key, sector_code=None, document=form.to_dict(), note="随系统发布的表单"
        )
        created += new
    return created


# --- which version applies ----------------------------------------------------------------------------


def latest_form_version(session: Session, form_key: str, sector_code: str | None) -> FormVersion | None:
    """The version a hazard of ``sector_code`` started now gets: the sector's latest, else the
    latest national one (``None``: no published version, the shipped file applies)."""
    scopes = {scope_of(sector_code), NATIONAL_SCOPE}
    rows = session.scalars(
        select(FormVersion)
        .where(FormVersion.form_key == form_key, FormVersion.scope.in_(scopes))
        .order_by(FormVersion.version.desc())
    ).all()
    sector = [r for r in rows if r.scope != NATIONAL_SCOPE]
    return sector[0] if sector else (rows[0] if rows else None)


def get_form_version(session: Session, form_key: str, sector_code: str | None, version: int) -> FormVersion:
    """Version ``version`` of ``form_key`` in the sector's own scope (``None``: national).

    :raises NotFound: no such version in that scope.
    """
    found = session.scalars(
        select(FormVersion).where(
            FormVersion.form_key == form_key,
            FormVersion.scope == scope_of(sector_code),
            FormVersion.version == version,
        )
    ).first()
    if found is None:
        raise NotFound("表单版本", f"{form_key}@{scope_of(sector_code)} v{version}")
    return found


def previous_form_version(session: Session, version: FormVersion) -> FormVersion | None:
    """The version ``version`` replaced: the previous one of its scope; for a sector's first
    version, the national version that applied when it was published (``None``: the first of all,
    or the shipped file applied)."""
    if version.version > 1:
        return get_form_version(session, version.form_key, version.sector_code, version.version - 1)
    if version.scope == NATIONAL_SCOPE:
        return None
    return session.scalars(
        select(FormVersion)
        .where(
            FormVersion.form_key == version.form_key,
            FormVersion.scope == NATIONAL_SCOPE,
            FormVersion.created_at <= version.created_at,
        )
        .order_by(FormVersion.version.desc())
        .limit(1)
    ).first()


def form_pins_for(session: Session, form_keys: Iterable[str], sector_code: str | None) -> dict[str, int]:
    """``{form_key: form_version id}`` of :func:`latest_form_version` for each key, in one query.

    Keys without a published version are left out (their shipped file applies).
    """
    keys = sorted(set(form_keys))
    if not keys:
        return {}
    scopes = sorted({scope_of(sector_code), NATIONAL_SCOPE})
    newest = (
        select(FormVersion.form_key, FormVersion.scope, func.max(FormVersion.version).label("version"))
        .where(FormVersion.form_key.in_(keys), FormVersion.scope.in_(scopes))
        .group_by(FormVersion.form_key, FormVersion.scope)
        .subquery()
    )
    rows = session.execute(
        select(FormVersion.id, FormVersion.form_key, FormVersion.scope).join(
            newest,
            and_(
                FormVersion.form_key == newest.c.form_key,
                FormVersion.scope == newest.c.scope,
                FormVersion.version == newest.c.version,
            ),
        )
    ).all()
    pins: dict[str, int] = {}
    for version_id, key, _scope in sorted(rows, key=lambda r: r.scope != NATIONAL_SCOPE):
        pins[key] = version_id  # national first, so the sector's version wins
    return pins


# --- a version's definition, cached ------------------------------------------------------------------

# Versions are immutable, so a parsed definition is kept in-process by (database, id). Only rows
# known to be committed enter the cache: a session that wrote a version in its transaction caches
# nothing (that row could still roll back and its id be reused), and any write of a version row
# through this process clears the cache.
_DEFINITIONS: dict[tuple[str, int], FormDefinition] = {}
_LOCK = threading.Lock()
#: ``session.info`` key: the session wrote a form version in its current transaction
_WROTE = "hazardloop.wrote_form_versions"


def _database(session: Session) -> str:
    return str(session.get_bind().engine.url)


def clear_cache() -> None:
    """Forget the cached definitions (any form version row written through this process does)."""
    with _LOCK:
        _DEFINITIONS.clear()


def form_definition(session: Session, form_version_id: int) -> FormDefinition:
    """The definition of a published version (read once per process, then cached).

    :raises NotFound: no such version.
    """
    key = (_database(session), form_version_id)
    cached = _DEFINITIONS.get(key)
    if cached is not None:
        return cached
    with session.no_autoflush:  # read inside a runtime step: a flush now would split the step
        row = session.get(FormVersion, form_version_id)
    if row is None:
        raise NotFound("表单版本", form_version_id)
    definition = parse_form_definition(row.content)
    if not session.info.get(_WROTE):
        with _LOCK:
            _DEFINITIONS[key] = definition
    return definition


@sa_event.listens_for(FormVersion, "after_insert")
@sa_event.listens_for(FormVersion, "after_update")
@sa_event.listens_for(FormVersion, "after_delete")
def _version_written(_mapper: Any, _connection: Any, target: FormVersion) -> None:
    clear_cache()
    session = object_session(target)
    if session is not None:
        session.info[_WROTE] = True


@sa_event.listens_for(Session, "after_transaction_end")
def _forget_written(session: Session, transaction: Any) -> None:
    if transaction.parent is None:
        session.info.pop(_WROTE, None)


# --- the pinned form of an item, a hazard, a submission --------------------------------------------


def pinned_form(
    session: Session, ctx: EngineContext, pins: Mapping[str, Any] | None, form_key: str
) -> FormDefinition:
    """The form ``form_key`` as ``pins`` (an instance's ``form_pins``) pin it, else the shipped file.

    :raises NotFound: neither pinned nor shipped.
    """
    version_id = (pins or {}).get(form_key)
    if isinstance(version_id, int):
        return form_definition(session, version_id)
    return ctx.form(form_key)


def form_for_item(session: Session, ctx: EngineContext, item: WorkItem) -> FormDefinition:
    """The form a work item shows and validates: the version pinned to it, else the shipped file.

    :raises NotFound: neither pinned nor shipped.
    """
    if item.form_version_id is not None:
        return form_definition(session, item.form_version_id)
    return ctx.form(item.form_key)


def _loop_pins(session: Session, hazard_id: int) -> Mapping[str, Any] | None:
    return session.scalars(
        select(ProcessInstance.form_pins)
        .where(ProcessInstance.hazard_id == hazard_id, ProcessInstance.kind == InstanceKind.LOOP.value)
        .order_by(ProcessInstance.id.desc())
        .limit(1)
    ).first()


def form_for_hazard(
    session: Session, ctx: EngineContext, hazard: Hazard | int, form_key: str
) -> FormDefinition:
    """A side-action form (:data:`ACTION_FORM_KEYS`) of a hazard: as its latest loop instance pins
    it, else the shipped file. Callers check who may see the hazard.

    :raises NotFound: neither pinned nor shipped.
    """
    hazard_id = hazard if isinstance(hazard, int) else hazard.id
    return pinned_form(session, ctx, _loop_pins(session, hazard_id), form_key)


def submission_forms(
    session: Session, ctx: EngineContext, submissions: Sequence[TaskSubmission]
) -> dict[int, FormDefinition | None]:
    """The form each stored submission was made on, by submission id, for display (two queries at
    most): its work item's pinned version, for a side action its hazard's loop pins, else the
    shipped file; ``None`` for a form that no longer exists."""
    item_ids = sorted({s.work_item_id for s in submissions if s.work_item_id is not None})
    versions: dict[int, int | None] = {}
    if item_ids:
        versions = {
            item_id: version_id
            for item_id, version_id in session.execute(
                select(WorkItem.id, WorkItem.form_version_id).where(WorkItem.id.in_(item_ids))
            ).all()
        }
    hazard_ids = sorted({s.hazard_id for s in submissions if s.work_item_id is None})
    pins: dict[int, Mapping[str, Any] | None] = {}
    if hazard_ids:
        rows = session.execute(
            select(ProcessInstance.hazard_id, ProcessInstance.form_pins)
            .where(
                ProcessInstance.hazard_id.in_(hazard_ids),
                ProcessInstance.kind == InstanceKind.LOOP.value,
            )
            .order_by(ProcessInstance.id)
        ).all()
        pins = {
            hazard_id: form_pins for hazard_id, form_pins in rows
        }  # the latest instance of each hazard last
    out: dict[int, FormDefinition | None] = {}
    for submission in submissions:
        try:
            if submission.work_item_id is not None:
                version_id = versions.get(submission.work_item_id)
                out[submission.id] = (
                    form_definition(session, version_id)
                    if version_id is not None
                    else ctx.form(submission.form_key)
                )
            else:
                out[submission.id] = pinned_form(
                    session, ctx, pins.get(submission.hazard_id), submission.form_key
                )
        except NotFound:
            out[submission.id] = None
    return out


def pinned_versions(session: Session, pins: Mapping[str, Any] | None) -> list[FormVersion]:
    """The form versions an instance's ``form_pins`` name, by form key (for display)."""
    ids = [v for v in (pins or {}).values() if isinstance(v, int)]
    if not ids:
        return []
    return list(
        session.scalars(select(FormVersion).where(FormVersion.id.in_(ids)).order_by(FormVersion.form_key))
    )
