"""The console: web pages at `/ui` to see and steer chute (pages.py; schedules.py and
webhooks.py for those), its sign-in (session.py), and its templates and static files,
all inside the package."""

from __future__ import annotations

from chute.entrypoints.http.console import schedules, webhooks
from chute.entrypoints.http.console.pages import STATIC, Refused, page, router
from chute.entrypoints.http.console.session import Sessions
from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles


def install(app: FastAPI, sessions: Sessions | None) -> None:
    """Add the console to `app`: its pages, its static files, and the page of a request
    refused before any work (from another site, too large, not a form). `sessions`
    signs and checks sign-ins (None: no keys, no sign-in)."""
    app.state.console_sessions = sessions
    app.include_router(router)
    app.include_router(schedules.router)
    app.include_router(webhooks.router)
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="console-static")

    async def refuse(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        return page(request, "error.html", exc.status, heading=exc.heading, problem=exc.problem)

    app.add_exception_handler(Refused, refuse)


__all__ = ["Sessions", "install"]
