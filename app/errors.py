"""Domain errors, the one mapping of database failures to them, and the handlers that turn
them into ``{"error", "detail"}`` JSON (503s with ``Retry-After``)."""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.outage import OUTAGE

log = logging.getLogger(__name__)


class DomainError(Exception):
    """Base of every error a service raises on purpose; ``status`` is the HTTP answer."""

    status = 400
    error = "bad_request"
    retry_after: int | None = None  # seconds; sent as ``Retry-After`` when set

    def __init__(self, detail: str = "", *, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail or self.error)
        self.detail = detail or self.error
        # More fields of the answer beside "error" and "detail" (what a client acts on).
        self.extra = extra or {}


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
    retry_after = 1


class Unavailable(DomainError):
    """The database is unreachable or could not confirm a write: 503, so the caller retries."""

    status, error = 503, "unavailable"
    retry_after = 5


# Exceptions a failed database call raises; ``database_error`` says which mean an outage.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    DBAPIError,
    PoolTimeout,
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
)
_CONNECTION_ERRORS = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InternalClientError,
)


def _sqlstate(exc: BaseException) -> str:
    """The SQLSTATE of a driver error, or of the driver error a SQLAlchemy error wraps."""
    orig = getattr(exc, "orig", None)
    for candidate in (exc, orig, (orig or exc).__cause__):
        code = getattr(candidate, "sqlstate", None) or getattr(candidate, "pgcode", None)
        if isinstance(code, str):
            return code
    return ""


def _driver_error(exc: BaseException) -> BaseException:
    orig: BaseException | None = getattr(exc, "orig", None)
    if orig is None:
        return exc
    return orig.__cause__ or orig


def database_error(exc: BaseException, engine: AsyncEngine | None) -> DomainError | None:
    """The answer for a failed database call: ``Overloaded`` (no pooled connection free),
    ``Unavailable`` (the database is unreachable; the outage is noted once), ``Invalid`` (the
    database refused a value: SQLSTATE class 22), or None (a bug: a 500). A domain error is
    its own answer."""
    if isinstance(exc, DomainError):
        if isinstance(exc, Unavailable):
            OUTAGE.begin(exc.detail, engine)
        return exc
    if isinstance(exc, PoolTimeout):
        return Overloaded("the server is overloaded (no database connection free); retry")
    state = _sqlstate(exc)
    if state.startswith("22"):
        return Invalid(f"a value is not valid for the database: {_driver_error(exc)}"[:300])
    driver = _driver_error(exc)
    lost = (
        state.startswith(("08", "57P0"))
        or isinstance(exc, (InterfaceError, OperationalError, *_CONNECTION_ERRORS))
        or isinstance(driver, _CONNECTION_ERRORS)
        or (isinstance(exc, DBAPIError) and exc.connection_invalidated)
    )
    if not lost:
        return None
    detail = f"{type(driver).__name__}: {driver}"[:200]
    OUTAGE.begin(detail, engine)
    return Unavailable("the database is unreachable; retry shortly")


def error_response(
    status: int,
    error: str,
    detail: str,
    retry_after: int | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    headers = {"retry-after": str(retry_after)} if retry_after is not None else None
    body = {**(extra or {}), "error": error, "detail": detail}
    return JSONResponse(body, status_code=status, headers=headers)


def domain_response(exc: DomainError) -> JSONResponse:
    return error_response(exc.status, exc.error, exc.detail, exc.retry_after, exc.extra)


def _engine(request: Request) -> Any:
    return getattr(request.state, "engine", None)


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query"))
        parts.append(f"{loc or 'body'}: {err.get('msg', 'invalid')}")
    return "; ".join(parts)


# Every error answer, as the OpenAPI document describes it (FastAPI's 422 schema replaced).
ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
    "required": ["error", "detail"],
}


def _document_errors(app: FastAPI) -> None:
    """Make ``app.openapi()`` describe a 422 as the ``{"error", "detail"}`` body it is."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            schemas = document.get("components", {}).get("schemas", {})
            if "HTTPValidationError" in schemas:
                schemas["HTTPValidationError"] = ERROR_SCHEMA
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented hook


def install_error_handlers(app: FastAPI) -> None:
    _document_errors(app)

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return domain_response(database_error(exc, _engine(request)) or exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid", _describe_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        error = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, error, str(exc.detail))

    async def _database(request: Request, exc: Exception) -> JSONResponse:
        mapped = database_error(exc, _engine(request))
        if mapped is None:
            return await _unexpected(request, exc)
        return domain_response(mapped)

    # Handlers by class run in ExceptionMiddleware: no traceback per request during an outage
    # (Starlette's catch-all ``Exception`` handler re-raises for the server to log).
    for cls in DATABASE_ERRORS:
        app.add_exception_handler(cls, _database)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", extra={"method": request.method, "path": request.url.path})
        return error_response(500, "internal", "internal error; see the server log")
