"""One error hierarchy for the engine; the web layer maps it to HTTP once."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""

    code = "engine_error"


class NotFound(EngineError, LookupError):
    """The thing asked for does not exist, or the actor may not see it."""

    code = "not_found"

    def __init__(self, kind: str, ident: object) -> None:
        self.kind = kind
        self.ident = ident
        super().__init__(f"{kind} {ident!r} 不存在或无权查看")


class Forbidden(EngineError):
    """The actor may see the object but may not do this to it."""

    code = "forbidden"

    def __init__(self, message: str) -> None:
        super().__init__(message)


class Conflict(EngineError):
    """The object changed under the caller (lost race, task no longer ready, claimed by another)."""

    code = "conflict"

    def __init__(self, message: str) -> None:
        super().__init__(message)


class InvalidInput(EngineError, ValueError):
    """Input failed validation; ``messages`` maps field names to error strings."""

    code = "invalid_input"

    def __init__(self, messages: Mapping[str, Sequence[str] | object], message: str = "输入有误") -> None:
        self.messages = dict(messages)
        super().__init__(f"{message}: {self.messages}")


class DefinitionInvalid(EngineError):
    """A BPMN/DMN deployment was refused; names the offending element and the reason."""

    code = "definition_invalid"

    def __init__(self, element_id: str | None, reason: str) -> None:
        self.element_id = element_id
        self.reason = reason
        where = f"元素 {element_id}: " if element_id else ""
        super().__init__(f"{where}{reason}")


class UnsafeExpression(EngineError, ValueError):
    """An expression uses something outside the allow-list (checked at deploy and at run time)."""

    code = "unsafe_expression"

    def __init__(self, expression: str, reason: str) -> None:
        self.expression = expression
        self.reason = reason
        super().__init__(f"不安全或不支持的表达式 {expression!r}: {reason}")


class ExpressionError(EngineError):
    """A safe expression failed while evaluating (unknown name, type error, division by zero)."""

    code = "expression_error"

    def __init__(self, expression: str, reason: str) -> None:
        self.expression = expression
        self.reason = reason
        super().__init__(f"表达式 {expression!r} 求值失败: {reason}")


class HandlerError(EngineError):
    """A service-task handler failed; carries the real cause (SpiffWorkflow would mask it)."""

    code = "handler_error"

    def __init__(self, handler: str, reason: str) -> None:
        self.handler = handler
        self.reason = reason
        super().__init__(f"服务任务处理器 {handler} 失败: {reason}")
