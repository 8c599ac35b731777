"""The documented exception tree of Tiaojie's domain.

::

    TiaojieError
    ├── ValidationError          bad input; carries field-level messages (zh-CN, en)
    │   ├── InvalidPhone
    │   ├── InvalidIdNumber
    │   ├── PayloadTooLarge      an upload over the size limit (413)
    │   └── UnsupportedType      an upload that is not a PDF, JPEG or PNG (415)
    ├── NotFound                 no such object, or out of the caller's reach (one answer)
    ├── PermissionDenied         within reach, but this principal may not do this (403)
    ├── StateError
    │   ├── InvalidTransition    the state machine has no such edge
    │   └── GuardFailed          the edge exists but its guard refused
    ├── ConflictError            stale ``version`` or idempotency-key reuse
    ├── CalendarError            working-day arithmetic outside known data
    └── NotificationError        an outbound notification could not be delivered
        └── NotificationRejected the receiver refused for good (4xx other than 408/429)

Every error has ``code`` (stable, machine-readable), ``message_zh`` and ``message_en``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message_zh: str
    message_en: str


class TiaojieError(Exception):
    code = "error"
    http_status = 400

    def __init__(self, message_en: str, message_zh: str | None = None) -> None:
        super().__init__(message_en)
        self.message_en = message_en
        self.message_zh = message_zh or message_en

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message_zh, "message_en": self.message_en}


class ValidationError(TiaojieError):
    code = "validation_error"
    http_status = 422

    def __init__(
        self,
        message_en: str,
        message_zh: str | None = None,
        *,
        problems: list[FieldProblem] | None = None,
    ) -> None:
        super().__init__(message_en, message_zh)
        self.problems = problems or []

    def to_dict(self) -> dict[str, object]:
        data = super().to_dict()
        data["fields"] = [
            {"field": p.field, "message": p.message_zh, "message_en": p.message_en}
            for p in self.problems
        ]
        return data


class InvalidPhone(ValidationError):
    code = "invalid_phone"


class InvalidIdNumber(ValidationError):
    code = "invalid_id_number"


class NotFound(TiaojieError):
    code = "not_found"
    http_status = 404


class PermissionDenied(TiaojieError):
    # The one 403 of every front end (staff REST, Open311, web pages): the same code as
    # a bare HTTP 403, so a client needs to know one.
    code = "forbidden"
    http_status = 403


class StateError(TiaojieError):
    code = "state_error"
    http_status = 409


class InvalidTransition(StateError):
    code = "invalid_transition"


class GuardFailed(StateError):
    code = "guard_failed"


class ConflictError(TiaojieError):
    code = "conflict"
    http_status = 409


class CalendarError(TiaojieError):
    code = "calendar_error"
    http_status = 500


class NotificationError(TiaojieError):
    code = "notification_failed"
    http_status = 502


class NotificationRejected(NotificationError):
    code = "notification_rejected"


class PayloadTooLarge(ValidationError):
    code = "payload_too_large"
    http_status = 413


class UnsupportedType(ValidationError):
    code = "unsupported_media_type"
    http_status = 415


__all__ = [
    "CalendarError",
    "ConflictError",
    "FieldProblem",
    "GuardFailed",
    "InvalidIdNumber",
    "InvalidPhone",
    "InvalidTransition",
    "NotFound",
    "NotificationError",
    "NotificationRejected",
    "PayloadTooLarge",
    "PermissionDenied",
    "StateError",
    "TiaojieError",
    "UnsupportedType",
    "ValidationError",
]
