"""The ASGI application: ``create_app()`` wires routers; the lifespan builds and disposes state."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from app import api_docs, gauges, gc_policy, health, pages, tracing
from app.calls import agent_ws, drafts_router, webhook_docs, webhooks
from app.calls import router as calls_router
from app.calls import runtime as calls_runtime
from app.calls.fast_events import FastEvents
from app.customers import desk_router
from app.customers import router as customers_router
from app.customers import routing as customers_routing
from app.db import create_engine, create_sessionmaker
from app.errors import install_error_handlers
from app.http_observer import ObserveRequests
from app.insights import runtime as insights_runtime
from app.live.hub import build_hub
from app.metrics import Metrics, mark_process_dead
from app.queues import router as queues_router
from app.queues import runtime as queues_runtime
from app.reports import router as reports_router
from app.settings import Settings, get_settings
from app.sources import router as sources_router
from app.sources import runtime as sources_runtime
from app.state import State
from app.users import access as users_access
from app.users import router as users_router
from app.users.hashing import PasswordVerifier
from app.users.login_limits import LoginLimiter

FRONTEND_DIR = Path(__file__).resolve().parent.parent / "frontend"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[State]:
        # Read first: a bad file stops the start before anything needs disposing.
        routing_rules = customers_routing.load_rules(settings.routing_file)
        engine = create_engine(
            settings.database_url,
            pool_size=settings.db_pool_size,
            pool_timeout=settings.db_pool_timeout_s,
        )
        hub = build_hub(settings)
        await hub.start()
        state: State = {
            "settings": settings,
            "engine": engine,
            "sessionmaker": create_sessionmaker(engine),
            "metrics": Metrics(),
            "hub": hub,
            "services": {"routing": routing_rules},
        }
        access = users_access.Access(state["sessionmaker"], settings.users_refresh_s)
        state["services"]["access"] = access
        state["services"]["access_refresh"] = await users_access.start(access)
        state["services"]["login_limits"] = LoginLimiter(
            settings.login_failures_per_user, settings.login_failures_per_address
        )
        state["services"]["passwords"] = passwords = PasswordVerifier()
        await sources_runtime.start(state)
        await queues_runtime.start(state)
        await calls_runtime.start(state)
        await insights_runtime.start(state)
        sampler = gauges.start(state)
        tracing.start(settings)
        # See app/gc_policy.py: a full collection stalls every pop in flight.
        thresholds = gc_policy.tune_for_serving()
        try:
            yield state
        finally:
            gc_policy.restore(thresholds)
            tracing.stop()
            await gauges.stop(sampler)
            mark_process_dead()
            await insights_runtime.stop(state)
            await calls_runtime.stop(state)
            await queues_runtime.stop(state)
            await users_access.stop(state["services"]["access_refresh"])
            await passwords.close()
            await sources_runtime.stop(state)
            await hub.close()
            await engine.dispose()

    # /docs and /redoc load Swagger UI and ReDoc from assets shipped in fastapi-offline: no CDN.
    app: FastAPI = FastAPIOffline(
        title="screenpop",
        version=api_docs.VERSION,
        description=api_docs.DESCRIPTION,
        lifespan=lifespan,
        static_url="/static/api-docs",
    )
    install_error_handlers(app)
    webhook_docs.install(app)
    # Added first, so it runs inside ObserveRequests: request ids, logs, metrics, spans apply.
    app.add_middleware(FastEvents)
    app.add_middleware(ObserveRequests)
    routers = [
        health.router,
        api_docs.router,
        users_router.router,
        webhooks.router,
        drafts_router.router,
        calls_router.router,
        agent_ws.router,
        desk_router.router,
        customers_router.router,
        queues_router.router,
        sources_router.router,
        reports_router.router,
        pages.router,
    ]
    if settings.demo:
        # The demo phone exists only where the demo's PBX runs (app/calls/demo_centre.py).
        from app.calls import demo_phone

        routers.append(demo_phone.router)
    for router in routers:
        app.include_router(router)
    if FRONTEND_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=FRONTEND_DIR), name="static")
    api_docs.install(app, routers)
    return app
