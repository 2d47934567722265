"""The console's webhooks pages: `/ui/webhooks` lists them and registers one (the fields
of `POST /api/v1/webhooks`, read by the API's own request model); `/ui/webhooks/{id}`
shows one with its latest deliveries. Both pause, resume and delete a webhook (a
paused one's deliveries are written but wait, unsent, until it is resumed). The
signing secret is shown once, on the page that answers the registration, as the API
shows it once; it is never shown again.

A URL the engine refuses (a literal private address, unless the server allows them)
is refused here by the same call, and named as the field `url` with a 422.
"""

# No `from __future__ import annotations` here: FastAPI reads the `Annotated[...]`
# dependencies from the evaluated signature.
import logging
from typing import Any
from uuid import UUID

from chute.application import ValidationFailed, Webhook, WebhookNotFound
from chute.application.queries import filter_to_json
from chute.domain import JobStatus, Mode, Priority, SourceType
from chute.domain.webhooks import DEFAULT_WEBHOOK_EVENTS, WEBHOOK_EVENTS
from chute.entrypoints.http.console.pages import (
    back_to,
    field_name,
    no_offset,
    not_cross_site,
    page,
    read_form,
)
from chute.entrypoints.http.deps import Engine
from chute.entrypoints.http.schemas.webhooks import WebhookRequest
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData

log = logging.getLogger("chute.console")

router = APIRouter(prefix="/ui", include_in_schema=False, dependencies=[Depends(not_cross_site)])

CHOICES = {
    "events": list(WEBHOOK_EVENTS),
    "status": [s.value for s in JobStatus],
    "priority": [p.value for p in Priority],
    "source_type": [s.value for s in SourceType],
    "mode": [m.value for m in Mode],
}
LISTS = ("status", "priority", "source_type", "mode")
TEXTS = ("url", "description", "queue", "mime_type", "created_after", "created_before", "metadata")


@router.get("/webhooks")
async def webhooks_page(request: Request, engine: Engine) -> Response:
    return await _list_page(request, engine, 200, _blank())


@router.post("/webhooks")
async def create_webhook(request: Request, engine: Engine) -> Response:
    form = await read_form(request)
    values: dict[str, Any] = {name: str(form.get(name) or "") for name in TEXTS}
    values |= {name: [str(v) for v in form.getlist(name)] for name in ("events", *LISTS)}
    body, errors = webhook_request(form)
    if body is not None:
        job_filter = body.filter.to_filter() if body.filter is not None else None
        try:
            webhook = await engine.create_webhook(
                body.url, events=body.events, filter=job_filter, description=body.description
            )
        except ValidationFailed as e:
            errors = [{"field": field_name(err.loc), "message": err.msg} for err in e.errors]
    if errors:
        return await _list_page(request, engine, 422, values, errors=errors)
    log.info("console.webhook_created", extra={"webhook_id": str(webhook.id)})
    # Answered here, not after a redirect: the secret must not travel in a URL, and it
    # is shown this once.
    return page(
        request,
        "webhook.html",
        201,
        section="webhooks",
        webhook=webhook,
        filter=filter_to_json(webhook.filter),
        deliveries=[],
        secret=webhook.secret,
    )


@router.get("/webhooks/{webhook_id}")
async def webhook_page(request: Request, webhook_id: str, engine: Engine) -> Response:
    try:
        found = UUID(webhook_id)
        webhook = await engine.get_webhook(found)
        deliveries = await engine.list_webhook_deliveries(found)
    except (ValueError, WebhookNotFound):
        return _missing(request, webhook_id)
    return page(
        request,
        "webhook.html",
        section="webhooks",
        webhook=webhook,
        filter=filter_to_json(webhook.filter),
        deliveries=deliveries,
        secret=None,
    )


@router.post("/webhooks/{webhook_id}/pause")
async def pause_webhook(
    request: Request, webhook_id: str, engine: Engine, back: str = ""
) -> Response:
    return await _pause(request, webhook_id, engine, True, back)


@router.post("/webhooks/{webhook_id}/resume")
async def resume_webhook(
    request: Request, webhook_id: str, engine: Engine, back: str = ""
) -> Response:
    return await _pause(request, webhook_id, engine, False, back)


@router.post("/webhooks/{webhook_id}/delete")
async def delete_webhook(request: Request, webhook_id: str, engine: Engine) -> Response:
    try:
        await engine.delete_webhook(UUID(webhook_id))
    except (ValueError, WebhookNotFound):
        return _missing(request, webhook_id)
    log.info("console.webhook_deleted", extra={"webhook_id": webhook_id})
    return back_to(request, "/ui/webhooks")


async def _pause(
    request: Request, webhook_id: str, engine: Engine, paused: bool, back: str
) -> Response:
    """Pause or resume, then back to the page the button was on: the webhook's own
    (its form's action says `?back=webhook`) or the list."""
    try:
        webhook = await engine.pause_webhook(UUID(webhook_id), paused)
    except (ValueError, WebhookNotFound):
        return _missing(request, webhook_id)
    log.info("console.webhook_paused", extra={"webhook_id": webhook_id, "paused": paused})
    if back == "webhook":
        return back_to(request, f"/ui/webhooks/{webhook.id}")
    return back_to(request, "/ui/webhooks")


def webhook_request(form: FormData) -> tuple[WebhookRequest | None, list[dict[str, str]]]:
    """The API's request model for the form's fields, or None with each error by its
    field. The filter is the list's: boxes of values, queues and `key=value` metadata
    separated by spaces, times without an offset read as UTC."""
    errors: list[dict[str, str]] = []
    filt: dict[str, Any] = {name: form.getlist(name) for name in LISTS if form.getlist(name)}
    queues = str(form.get("queue") or "").split()
    if queues:
        filt["queue"] = queues
    for name in ("mime_type", "created_after", "created_before"):
        text = str(form.get(name) or "").strip()
        if text:
            filt[name] = text + "Z" if name != "mime_type" and no_offset(text) else text
    metadata: dict[str, str] = {}
    for word in str(form.get("metadata") or "").split():
        key, sep, value = word.partition("=")
        if not sep or not key:
            errors.append({"field": "filter.metadata", "message": f"{word!r} is not key=value"})
        metadata[key] = value
    if metadata:
        filt["metadata"] = metadata
    description = str(form.get("description") or "").strip()
    data = {
        "url": str(form.get("url") or "").strip(),
        "events": form.getlist("events"),
        "filter": filt or None,
        "description": description or None,
    }
    try:
        body = WebhookRequest.model_validate(data)
    except ValidationError as e:
        errors += [
            {"field": field_name(err["loc"]), "message": str(err["msg"])} for err in e.errors()
        ]
        return None, errors
    return (None if errors else body), errors


def _blank() -> dict[str, Any]:
    values: dict[str, Any] = {name: "" for name in TEXTS}
    return values | {name: [] for name in LISTS} | {"events": list(DEFAULT_WEBHOOK_EVENTS)}


def _missing(request: Request, webhook_id: str) -> Response:
    return page(
        request,
        "error.html",
        404,
        heading="No such webhook",
        problem=f"No webhook has id {webhook_id}.",
    )


async def _list_page(
    request: Request,
    engine: Engine,
    status: int,
    values: dict[str, Any],
    errors: list[dict[str, str]] | None = None,
) -> Response:
    errors = errors or []
    webhooks: list[Webhook] = await engine.list_webhooks()
    return page(
        request,
        "webhooks.html",
        status,
        section="webhooks",
        webhooks=[(w, filter_to_json(w.filter)) for w in webhooks],
        values=values,
        choices=CHOICES,
        errors=errors,
        bad={_input_of(error["field"]) for error in errors},
    )


def _input_of(field: str) -> str:
    """The form's input of an error's field: `filter.queue.0` is the input `queue`."""
    parts = field.split(".")
    return parts[1] if parts[0] == "filter" and len(parts) > 1 else parts[0]
