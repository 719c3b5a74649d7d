"""Domain errors and the one handler that turns them into ``{"error", "detail"}`` JSON."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)


class DomainError(Exception):
    """Base of every error a service raises on purpose; ``status`` is the HTTP answer."""

    status = 400
    error = "bad_request"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.error)
        self.detail = detail or self.error


class BadRequest(DomainError):
    status, error = 400, "bad_request"


class Unauthorized(DomainError):
    status, error = 401, "unauthorized"


class Forbidden(DomainError):
    status, error = 403, "forbidden"


class NotFound(DomainError):
    status, error = 404, "not_found"


class Conflict(DomainError):
    status, error = 409, "conflict"


class PayloadTooLarge(DomainError):
    status, error = 413, "payload_too_large"


class UnsupportedMediaType(DomainError):
    status, error = 415, "unsupported_media_type"


class Invalid(DomainError):
    status, error = 422, "invalid"


class Overloaded(DomainError):
    """No database connection came free in time: 503, so the caller retries."""

    status, error = 503, "overloaded"


class Unavailable(DomainError):
    """The database could not confirm what was written: 503, so the caller sends it again."""

    status, error = 503, "unavailable"


def error_response(status: int, error: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": error, "detail": detail}, status_code=status)


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return error_response(exc.status, exc.error, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid", _describe_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, error, str(exc.detail))

    @app.exception_handler(PoolTimeout)
    async def _pool_timeout(_: Request, exc: PoolTimeout) -> JSONResponse:
        return error_response(
            503, "overloaded", "the server is overloaded (no database connection free); retry"
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"method": request.method, "path": request.url.path})
        return error_response(500, "internal", "internal error; see the server log")
