"""The web pages: the landing page, the agent screen, the supervisor wallboard and reports.

The pages are static files in ``frontend/`` (ES modules and one stylesheet, no build step); this
router serves the HTML documents at stable paths. Scripts and styles load from ``/static``.
"""

from __future__ import annotations

from functools import lru_cache
from html import escape
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse

from app.deps import SettingsDep

FRONTEND_DIR = Path(__file__).resolve().parent.parent / "frontend"
DEMO_MARKER = "<!-- demo-credentials -->"
# The demo users app.demo seeds; shown on the landing page only when the demo runs.
DEMO_ACCOUNTS = (
    ("Agent screen", "/agent", ("alice", "bob")),
    ("Supervisor wallboard", "/supervisor", ("sam",)),
)
DEMO_PASSWORD = "demo"
# In demo mode the agent page carries this, and its script then loads the demo phone.
DEMO_AGENT_META = '<meta name="screenpop-demo" content="phone">'
# Pages change with each release; browsers must revalidate them rather than run stale scripts.
NO_CACHE = {"Cache-Control": "no-cache"}

router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=4)
def _read(name: str) -> str:
    return (FRONTEND_DIR / name).read_text(encoding="utf-8")


def demo_credentials_html() -> str:
    """The landing page's block listing the demo users and their password."""
    rows = "".join(
        f'<li><a href="{escape(path)}">{escape(label)}</a>: '
        + ", ".join(f"<kbd>{escape(user)}</kbd>" for user in users)
        + f" / <kbd>{escape(DEMO_PASSWORD)}</kbd></li>"
        for label, path, users in DEMO_ACCOUNTS
    )
    return (
        '<section class="card demo" aria-labelledby="demo-title">'
        '<h2 id="demo-title">Demo sign-in</h2>'
        "<p>This server runs the demo: calls are simulated every few seconds. Sign in as an "
        "agent and answer them on the demo phone of the agent screen; simulated agents "
        "(sim-…) take the calls nobody else is free for.</p>"
        f'<ul class="demo-accounts">{rows}</ul>'
        "</section>"
    )


def render_landing(demo: bool) -> str:
    """The landing page, with the demo credentials when the demo runs."""
    page = _read("index.html")
    return page.replace(DEMO_MARKER, demo_credentials_html() if demo else "")


@router.get("/")
async def landing(settings: SettingsDep) -> HTMLResponse:
    """Links to both screens; shows the demo credentials in demo mode."""
    return HTMLResponse(render_landing(settings.demo), headers=NO_CACHE)


@router.get("/agent", response_model=None)
async def agent_page(settings: SettingsDep) -> FileResponse | HTMLResponse:
    """The agent screen: sign in, status, the pop, wrap-up, today's calls; in demo mode
    marked so that it shows the demo phone."""
    if settings.demo:
        return HTMLResponse(render_agent_demo(), headers=NO_CACHE)
    return FileResponse(FRONTEND_DIR / "agent.html", headers=NO_CACHE)


def render_agent_demo() -> str:
    """The agent screen with the demo marker its script looks for (frontend/js/demo_phone.js)."""
    return _read("agent.html").replace("<head>", f"<head>\n  {DEMO_AGENT_META}", 1)


@router.get("/supervisor")
async def supervisor_page() -> FileResponse:
    """The supervisor wallboard: queues, waiting calls, agents, pop health."""
    return FileResponse(FRONTEND_DIR / "supervisor.html", headers=NO_CACHE)


@router.get("/reports")
async def reports_page() -> FileResponse:
    """Reports for supervisors and admins: retention, base value, offers, satisfaction."""
    return FileResponse(FRONTEND_DIR / "reports.html", headers=NO_CACHE)
