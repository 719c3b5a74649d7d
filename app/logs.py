"""Structured logs: one JSON object a line, with the request id, call id and trace id in scope.

Log calls keep a constant message (what happened) and put the variable parts in ``extra``::

    log.warning("redis publish failed", extra={"channel": channel, "error": repr(exc)})

``bound(call_id=...)`` adds fields to every line logged inside it (a context variable, so it
follows the task, not the thread); the request middleware binds ``request_id`` the same way.
"""

from __future__ import annotations

import contextvars
import logging
import logging.config
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
from opentelemetry import trace

_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("log_context")

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "color_message",  # uvicorn's copy of the message with terminal colours
}
_QUIET = ("uvicorn.access", "aiosqlite", "asyncio", "httpx")


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Add ``fields`` (e.g. ``call_id``) to every log line written inside the block."""
    token = _context.set({**_context.get({}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def bind(**fields: Any) -> contextvars.Token[dict[str, Any]]:
    """Like ``bound`` for code that cannot use a ``with`` block; undo with ``unbind(token)``."""
    return _context.set({**_context.get({}), **fields})


def unbind(token: contextvars.Token[dict[str, Any]]) -> None:
    _context.reset(token)


def current_fields() -> dict[str, Any]:
    """The fields bound in this context (request id, call id, ...)."""
    return dict(_context.get({}))


def record_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The bound context, the trace ids and the record's ``extra`` fields, in that order."""
    fields = dict(_context.get({}))
    span = trace.get_current_span().get_span_context()
    if span.is_valid:
        fields["trace_id"] = format(span.trace_id, "032x")
        fields["span_id"] = format(span.span_id, "016x")
    for key, value in record.__dict__.items():
        if key not in _STANDARD and not key.startswith("_"):
            if key == "fields" and isinstance(value, dict):
                fields.update(value)
            else:
                fields[key] = value
    return fields


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "msg", <bound and extra fields>, "exc"?}``."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update(record_fields(record))
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


class TextFormatter(logging.Formatter):
    """For a terminal: ``LEVEL logger: msg key=value ...``."""

    def format(self, record: logging.LogRecord) -> str:
        pairs = " ".join(f"{k}={v}" for k, v in record_fields(record).items())
        line = f"{record.levelname} {record.name}: {record.getMessage()}"
        line = f"{line} {pairs}" if pairs else line
        if record.exc_info:
            line = f"{line}\n{self.formatException(record.exc_info)}"
        return line


def logging_config(level: str = "INFO", json: bool = True) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` document: every logger (ours, uvicorn's, libraries')
    through one structured handler on stderr. uvicorn applies it in each worker process."""
    formatter = "app.logs.JsonFormatter" if json else "app.logs.TextFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": {"()": formatter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "structured",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            # uvicorn's own loggers would otherwise keep their plain-text handlers.
            **{n: {"handlers": [], "propagate": True} for n in ("uvicorn", "uvicorn.error")},
            **{n: {"level": "WARNING"} for n in _QUIET},
        },
    }


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    """Apply ``logging_config`` in this process."""
    logging.config.dictConfig(logging_config(level, json))
