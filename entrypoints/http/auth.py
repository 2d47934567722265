"""API-key authentication: `Authorization: Bearer <key>` on every route but the open ones.

A pure ASGI middleware (no `BaseHTTPMiddleware`, which buffers bodies), installed by
`create_app` only when CHUTE_API_KEYS names at least one key, inside the request-id
middleware so that its 401s carry `X-Request-ID` and are logged like any request.
It protects every path except the health checks and the API's own description
(deny by default: a route added later is protected without anyone remembering to).

A refusal is the `unauthorized` problem with `WWW-Authenticate: Bearer`, plus
`error="invalid_token"` (RFC 6750) when the client did try a bearer token. Neither
the problem, the log nor any exception ever holds what the client presented.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode

import structlog
from chute.entrypoints.http.console.session import COOKIE, Sessions
from chute.entrypoints.http.keys import KeyRing
from chute.entrypoints.http.problems import Unauthorized, handle_chute_error
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

OPEN_PATHS = frozenset(
    {"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
)
# The scripts and styles of the documentation pages, which load them without a key.
OPEN_PREFIXES = ("/docs/assets/",)
# The console: its pages ask for a session cookie instead of a key, but for these.
CONSOLE = "/ui"
CONSOLE_OPEN = frozenset({"/ui/login"})
CONSOLE_STATIC = "/ui/static/"
# Where clients put keys when they should not: refused, never read.
QUERY_KEY_NAMES = frozenset({"api_key", "apikey", "api-key", "key", "token", "access_token"})
# One space, then RFC 6750's b64token; the scheme is case-insensitive (RFC 9110).
_BEARER = re.compile(rb"[Bb][Ee][Aa][Rr][Ee][Rr] ([A-Za-z0-9\-._~+/]+=*)")

CHALLENGE = "Bearer"
INVALID_TOKEN = 'Bearer error="invalid_token"'

log = structlog.get_logger("chute.http")


class Refusal(Unauthorized):
    """Why a request is refused, with its `WWW-Authenticate` challenge and a log reason."""

    def __init__(self, detail: str, challenge: str, reason: str) -> None:
        super().__init__(detail)
        self.challenge, self.reason = challenge, reason


def route_path(scope: Scope) -> str:
    """The path the router sees: without the `root_path` a proxy may have mounted us at."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def refusal_of(scope: Scope, keys: KeyRing) -> Refusal | None:
    """Why this request may not pass, or None when it carries one of `keys`."""
    query = scope.get("query_string", b"").decode("latin-1")
    for name, _ in parse_qsl(query, keep_blank_values=True):
        if name.lower() in QUERY_KEY_NAMES:
            detail = (
                f"API keys go in the Authorization header only (Authorization: Bearer <key>), "
                f"never in the URL; the {name.lower()!r} query parameter is not read."
            )
            return Refusal(detail, CHALLENGE, "key_in_query")
    values = [value for name, value in scope["headers"] if name == b"authorization"]
    if not values:
        detail = "This API asks for an API key: send Authorization: Bearer <key>."
        return Refusal(detail, CHALLENGE, "missing")
    found = _BEARER.fullmatch(values[0]) if len(values) == 1 else None
    if found is None:
        if len(values) == 1 and not values[0].lower().startswith(b"bearer"):
            detail = "Only API keys are accepted, as Authorization: Bearer <key>."
            return Refusal(detail, CHALLENGE, "other_scheme")
        detail = "The Authorization header must be one line: Bearer, one space, the key."
        return Refusal(detail, INVALID_TOKEN, "malformed")
    if not keys.accepts(found.group(1)):
        return Refusal("The API key is not valid.", INVALID_TOKEN, "invalid_key")
    return None


class ApiKeyMiddleware:
    """Lets a request through to the app only with a valid key or on an open path; the
    console's pages (`/ui`) with a valid session cookie instead, and to its sign-in page
    without one."""

    def __init__(self, app: ASGIApp, keys: KeyRing, sessions: Sessions) -> None:
        self.app = app
        self.keys = keys
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = route_path(scope) if scope["type"] == "http" else ""
        if scope["type"] != "http" or path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            await self.app(scope, receive, send)
            return
        if path == CONSOLE or path.startswith(CONSOLE + "/"):
            await self._console(scope, receive, send, path)
            return
        refusal = refusal_of(scope, self.keys)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        log.info("http.unauthorized", reason=refusal.reason)
        response = await handle_chute_error(Request(scope), refusal)
        response.headers["WWW-Authenticate"] = refusal.challenge
        await response(scope, receive, send)

    async def _console(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        request = Request(scope)
        if path in CONSOLE_OPEN or path.startswith(CONSOLE_STATIC):
            await self.app(scope, receive, send)
            return
        if self.sessions.valid(request.cookies.get(COOKIE)):
            await self.app(scope, receive, send)
            return
        log.info("http.unauthorized", reason="no_session")
        if request.method in ("GET", "HEAD"):
            target = path + (f"?{request.url.query}" if request.url.query else "")
            to = f"{CONSOLE}/login?{urlencode({'next': target})}"
            await RedirectResponse(to, status_code=303)(scope, receive, send)
            return
        refusal = Unauthorized("Sign in to the console first.")
        await (await handle_chute_error(request, refusal))(scope, receive, send)
