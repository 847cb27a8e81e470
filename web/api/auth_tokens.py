"""``/api/v1/auth/token``: trade a username and password for a bearer token; revoke one's own.

Issuing goes through :func:`web.auth.authenticate`, so it shares the login form's rate limit
(429 with ``Retry-After`` while the username or address is locked) and records every attempt.
"""

from __future__ import annotations

import datetime as dt

from flask import request
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.models import ApiToken

from ..auth import api_auth_required
from ..auth import authenticate
from ..auth import current_actor
from ..auth import issue_token
from ..auth import revoke_token
from ..auth import token_hash
from ..errors import Unauthenticated
from ..session import engine_context
from ..session import sessions
from ..session import settings
from . import bp
from . import json_body
from . import operation
from . import schemas


class InvalidCredentials(Unauthenticated):
    """Wrong username or password (or an inactive user): the same answer for each."""

    code = "invalid_credentials"
    message = "用户名或密码错误"


def _token_id(session: Session, token: str) -> int:
    # issue_token returns only the secret; its row was flushed in this transaction.
    return session.scalars(select(ApiToken.id).where(ApiToken.token_hash == token_hash(token))).one()


@bp.post("/auth/token")
@operation(
    "获取 API 令牌",
    tag="auth",
    description=(
        "用用户名和密码换取 Bearer 令牌（只显示一次），之后在 `Authorization: Bearer <token>` 中使用。"
        "与登录页共用失败次数限制：锁定期间返回 429（见 `Retry-After`）。用户名或密码错误：401。"
    ),
    body=schemas.TokenRequestSchema,
    response=schemas.TokenSchema,
    status=201,
    errors=(400, 401, 415, 422, 429),
    auth=False,
)
def create_token() -> ResponseReturnValue:
    data = json_body(schemas.TokenRequestSchema())
    now = engine_context().clock.now()
    # The failed attempt must be committed (it counts towards the limit), so the 401 is raised
    # after the block, not inside it.
    with sessions().begin() as session:
        user = authenticate(
            session,
            settings(),
            username=data["username"],
            password=data["password"],
            remote_addr=request.remote_addr or "unknown",
            now=now,
        )
        if user is not None:
            ttl = dt.timedelta(hours=data["ttl_hours"])
            token = issue_token(session, user.id, data["name"], ttl, now=now)
            body = schemas.TokenSchema().dump(
                {
                    "id": _token_id(session, token),
                    "token": token,
                    "token_type": "Bearer",
                    "name": data["name"],
                    "expires_at": now + ttl,
                }
            )
    if user is None:
        raise InvalidCredentials()
    return body, 201


@bp.delete("/auth/token/<id:token_id>")
@operation(
    "吊销 API 令牌",
    tag="auth",
    description="吊销自己的一个令牌（包括当前使用的这个）。别人的令牌与不存在的一样返回 404。",
    status=204,
    errors=(400, 404),
)
@api_auth_required
def revoke(token_id: int) -> ResponseReturnValue:
    with sessions().begin() as session:
        revoke_token(session, token_id=token_id, user_id=current_actor().user_id)
    return "", 204
