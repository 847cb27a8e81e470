"""The JSON API under ``/api/v1``: one blueprint, marshmallow at the edge, one error format.

A view parses its input with a schema from :mod:`web.api.schemas`, makes one engine call inside
a unit of work and dumps the result; errors propagate to :mod:`web.errors`, which answers
``{"code", "message", "errors"}`` for every path under ``/api/``::

    @bp.post("/tasks/<id:item_id>/claim")
    @operation("认领任务", tag="tasks", response=schemas.TaskSchema, errors=(403, 404, 409))
    @api_auth_required
    def claim_task(item_id: int) -> ResponseReturnValue:
        with sessions().begin() as session:
            item = runtime.claim(session, engine_context(), work_item_id=item_id, actor=current_actor())
            return schemas.TaskSchema().dump(item)

:func:`operation` records the OpenAPI operation next to the view; :mod:`web.api.openapi` builds
``/api/v1/openapi.json`` from the app's URL map and those records, so a route without one is a
test failure, not a silent gap in the document.

Input rules shared by every endpoint (:func:`json_body`, :func:`query_args`, :func:`form_fields`):
a body that is not JSON is 400 ``malformed_json`` (415 for another content type), JSON that is
not an object is 400 ``invalid_body``; strings holding NUL or lone surrogates and integers beyond
±2^53 are 422 before any schema sees them (no database stores the former, and the latter
overflow SQLite); unknown keys are 422 naming them; a query parameter given twice is 422.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from typing import TypeVar

from flask import Blueprint
from flask import Flask
from flask import request
from marshmallow import Schema
from marshmallow import ValidationError
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter
from werkzeug.routing import Map

from ..errors import WebError

F = TypeVar("F", bound=Callable[..., Any])

bp = Blueprint("api", __name__, url_prefix="/api/v1")

#: ids in paths are positive 32-bit integers: larger ones are 404 before any query runs
MAX_ID = 2**31 - 1
#: JSON integers beyond this are refused (IEEE double range clients can represent exactly)
MAX_JSON_INT = 2**53
_UNSAFE_CHARS = re.compile("[\x00\ud800-\udfff]")


class IdConverter(IntegerConverter):
    """``<id:name>``: a positive database id that fits an ``integer`` column."""

    def __init__(self, map: Map) -> None:
        super().__init__(map, min=1, max=MAX_ID)


class InvalidBody(WebError):
    """The JSON body parsed, but is not an object."""

    status = 400
    code = "invalid_body"
    message = "请求体必须是 JSON 对象"


# --- OpenAPI records ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Operation:
    """What :mod:`web.api.openapi` needs to document one view."""

    summary: str
    tag: str
    description: str = ""
    query: type[Schema] | None = None
    body: type[Schema] | None = None
    #: an OpenAPI ``requestBody`` written out (multipart uploads, free-form task forms)
    request_body: Mapping[str, Any] | None = None
    response: type[Schema] | None = None
    status: int = 200
    errors: Sequence[int] = ()
    auth: bool = True
    #: the 201 answer carries a ``Location`` header
    location: bool = False
    #: the success answer's media type when it is not JSON (a PDF, say): documented as binary
    produces: str | None = None
    #: JSON Schemas of path parameters that are not ``<id:…>`` (those are documented as ids)
    path: Mapping[str, Mapping[str, Any]] | None = None


#: attribute of a view function holding its :class:`Operation`
OPERATION_ATTR = "_hazardloop_openapi"


def operation(
    summary: str,
    *,
    tag: str,
    description: str = "",
    query: type[Schema] | None = None,
    body: type[Schema] | None = None,
    request_body: Mapping[str, Any] | None = None,
    response: type[Schema] | None = None,
    status: int = 200,
    errors: Sequence[int] = (),
    auth: bool = True,
    location: bool = False,
    produces: str | None = None,
    path: Mapping[str, Mapping[str, Any]] | None = None,
) -> Callable[[F], F]:
    """Record the OpenAPI description of a view (put it right under the route decorator)."""
    record = Operation(
        summary=summary,
        tag=tag,
        description=description,
        query=query,
        body=body,
        request_body=request_body,
        response=response,
        status=status,
        errors=tuple(errors),
        auth=auth,
        location=location,
        produces=produces,
        path=path,
    )

    def decorate(view: F) -> F:
        setattr(view, OPERATION_ATTR, record)
        return view

    return decorate


# --- input ----------------------------------------------------------------------------------------


def _unsafe_values(value: object, path: str, out: dict[str, list[str]]) -> None:
    """Collect strings no database stores and integers that overflow, keyed by their path."""
    if isinstance(value, str):
        if _UNSAFE_CHARS.search(value):
            out[path or "_schema"] = ["含有不允许的字符（NUL 或不成对的代理项）"]
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if abs(value) > MAX_JSON_INT:
            out[path or "_schema"] = ["数值超出允许范围"]
    elif isinstance(value, Mapping):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            if _UNSAFE_CHARS.search(str(key)):
                out[path or "_schema"] = ["字段名含有不允许的字符"]
                continue
            _unsafe_values(item, name, out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _unsafe_values(item, f"{path}.{index}" if path else str(index), out)


def check_safe(data: object) -> None:
    """:raises ValidationError: strings with NUL or lone surrogates, integers beyond ±2^53."""
    errors: dict[str, list[str]] = {}
    _unsafe_values(data, "", errors)
    if errors:
        raise ValidationError(errors)


def raw_json_object() -> dict[str, Any]:
    """The request's JSON body, which must be an object (no schema applied).

    :raises BadRequest: not JSON (400 ``malformed_json``); :raises UnsupportedMediaType: another
        content type (415); :raises InvalidBody: not an object; :raises ValidationError: unsafe values.
    """
    try:
        data = request.get_json()
    except RecursionError:  # absurdly deep nesting: json.loads gives up with RecursionError
        raise BadRequest("Failed to decode JSON object: nested too deeply") from None
    if not isinstance(data, dict):
        raise InvalidBody()
    check_safe(data)
    return data


def json_body(schema: Schema) -> dict[str, Any]:
    """The JSON body loaded through ``schema`` (unknown keys, wrong types, … raise 422)."""
    loaded: dict[str, Any] = schema.load(raw_json_object())
    return loaded


def _single_values(source: Mapping[str, Any], getlist: Callable[[str], list[Any]]) -> dict[str, Any]:
    errors = {key: ["只能出现一次"] for key in source if len(getlist(key)) > 1}
    if errors:
        raise ValidationError(errors)
    data = {key: getlist(key)[0] for key in source}
    check_safe(data)
    return data


def query_args(schema: Schema) -> dict[str, Any]:
    """The query string loaded through ``schema``; every parameter at most once."""
    loaded: dict[str, Any] = schema.load(_single_values(request.args, request.args.getlist))
    return loaded


def form_fields(schema: Schema, *, ignore: Sequence[str] = ("csrf_token",)) -> dict[str, Any]:
    """The non-file fields of a multipart form loaded through ``schema``."""
    values = {k: v for k, v in request.form.items() if k not in ignore}
    loaded: dict[str, Any] = schema.load(_single_values(values, request.form.getlist))
    return loaded


# --- registration -------------------------------------------------------------------------------------

# The view modules add their routes to ``bp`` when imported (they import ``bp`` from here).
from . import auth_tokens  # noqa: E402, F401
from . import definitions  # noqa: E402, F401
from . import design  # noqa: E402, F401
from . import hazards  # noqa: E402, F401
from . import inspections  # noqa: E402, F401
from . import notices  # noqa: E402, F401
from . import openapi  # noqa: E402
from . import tasks  # noqa: E402, F401


def init_app(app: Flask) -> None:
    """Register ``/api/v1`` and the docs page ``/api/docs``."""
    app.url_map.converters.setdefault("id", IdConverter)
    app.register_blueprint(bp)
    app.register_blueprint(openapi.docs_bp)
