"""The API's documentation pages, `/docs` (Swagger UI) and `/redoc`, with every script,
style sheet and icon they load served by chute itself under `/docs/assets/`: they work
on a machine without network, and send nothing to a CDN.

The files come from the `fastapi-offline` package, which ships the Swagger UI and ReDoc
builds that FastAPI's own pages load from a CDN (rather than a copy kept in this
repository, which would have to be updated by hand).
"""

from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse
from starlette.exceptions import HTTPException

DOCS = "/docs"
REDOC = "/redoc"
OAUTH2_REDIRECT = "/docs/oauth2-redirect"
ASSETS = "/docs/assets/"

_FILES = Path(fastapi_offline.__file__).parent / "static"
# The files the pages load, and their media types; nothing else is served from there.
_MEDIA_TYPES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "redoc.standalone.js": "text/javascript",
    "favicon.png": "image/png",
}
# Swagger UI would otherwise send the description to an online validator for a badge.
_SWAGGER_PARAMETERS = {"validatorUrl": None}

router = APIRouter(include_in_schema=False)


def _root(request: Request) -> str:
    """Where the app is mounted (behind a proxy that strips a prefix), without a `/`."""
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")


def _openapi_url(request: Request) -> str:
    return _root(request) + (request.app.openapi_url or "/openapi.json")


@router.get(DOCS)
async def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI on the app's description."""
    root = _root(request)
    return get_swagger_ui_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} - Swagger UI",
        swagger_js_url=f"{root}{ASSETS}swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS}swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS}favicon.png",
        oauth2_redirect_url=f"{root}{OAUTH2_REDIRECT}",
        swagger_ui_parameters=_SWAGGER_PARAMETERS,
    )


@router.get(OAUTH2_REDIRECT)
async def swagger_ui_oauth2_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get(REDOC)
async def redoc(request: Request) -> HTMLResponse:
    """ReDoc on the app's description, without Google's fonts."""
    root = _root(request)
    return get_redoc_html(
        openapi_url=_openapi_url(request),
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}{ASSETS}redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS}favicon.png",
        with_google_fonts=False,
    )


@router.get(ASSETS + "{name}")
async def docs_asset(name: str) -> FileResponse:
    """One file of the pages; 404 for any other name (no path reaches the disk)."""
    media_type = _MEDIA_TYPES.get(name)
    if media_type is None:
        raise HTTPException(404)
    headers = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
    return FileResponse(_FILES / name, media_type=media_type, headers=headers)
