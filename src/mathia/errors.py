"""Domain errors. Each is an HTTP error (Litestar renders it as JSON) that also
carries the short `code` a WebSocket `error` frame uses, so one raise serves both."""

from __future__ import annotations

from typing import Any

from litestar import status_codes
from litestar.exceptions import HTTPException


class MathiaError(HTTPException):
    code = "invalid_frame"
    status_code = status_codes.HTTP_400_BAD_REQUEST

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail=detail, extra={"code": self.code, **extra})


class InvalidInput(MathiaError):
    code = "invalid_frame"
    status_code = status_codes.HTTP_400_BAD_REQUEST


class NotFound(MathiaError):
    code = "not_found"
    status_code = status_codes.HTTP_404_NOT_FOUND


class Forbidden(MathiaError):
    code = "forbidden"
    status_code = status_codes.HTTP_403_FORBIDDEN


class Conflict(MathiaError):
    code = "conflict"
    status_code = status_codes.HTTP_409_CONFLICT


class TooLarge(MathiaError):
    code = "too_large"
    status_code = status_codes.HTTP_413_REQUEST_ENTITY_TOO_LARGE


class RateLimited(MathiaError):
    code = "rate_limited"
    status_code = status_codes.HTTP_429_TOO_MANY_REQUESTS

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__(detail, retry_after=round(retry_after, 3))
        self.headers = {"Retry-After": str(max(1, round(retry_after)))}


class Muted(MathiaError):
    code = "muted"
    status_code = status_codes.HTTP_403_FORBIDDEN


class InsufficientCredits(MathiaError):
    code = "insufficient_credits"
    status_code = status_codes.HTTP_402_PAYMENT_REQUIRED


_CODES_BY_STATUS = {
    400: "invalid_frame",
    401: "forbidden",
    403: "forbidden",
    404: "not_found",
    413: "too_large",
    429: "rate_limited",
    402: "insufficient_credits",
}


def frame_code(exc: HTTPException) -> str:
    """The WebSocket error code of any HTTP error, ours or Litestar's."""
    return (
        exc.code if isinstance(exc, MathiaError) else _CODES_BY_STATUS.get(exc.status_code, "invalid_frame")
    )
