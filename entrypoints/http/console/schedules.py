"""The console's schedules page, `/ui/schedules`: every schedule, a form that creates or
replaces one (the fields of `PUT /api/v1/schedules/{name}`, read by the API's own
request model, so that the rules are the API's), and pause, resume and delete.

Bad input re-renders the page with status 422, each error named by its field as the
API names it (`cron`, `timezone`, `job.metadata`), the values as typed, and nothing
stored: the engine saves a schedule whole or not at all.
"""

# No `from __future__ import annotations` here: FastAPI reads the `Annotated[...]`
# dependencies from the evaluated signature.
import json
import logging
import re
from typing import Any

from chute.application import ScheduleNotFound, ValidationFailed
from chute.application.commands import field_problems
from chute.domain import Mode, Priority, Schedule
from chute.domain import validation as rules
from chute.entrypoints.http.console.pages import (
    back_to,
    field_name,
    not_cross_site,
    page,
    read_form,
)
from chute.entrypoints.http.deps import Engine
from chute.entrypoints.http.schemas.jobs import ReferenceSourceType
from chute.entrypoints.http.schemas.schedules import ScheduleRequest
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import FormData

log = logging.getLogger("chute.console")

router = APIRouter(prefix="/ui", include_in_schema=False, dependencies=[Depends(not_cross_site)])

# The job's fields as the form sends them: text as it is, numbers as digits.
JOB_TEXT = ("source_type", "source_uri", "file_name", "mime_type", "priority", "mode", "queue")
JOB_NUMBERS = ("file_size", "max_attempts")
FORM_FIELDS = ("name", "cron", "timezone", "metadata", *JOB_TEXT, *JOB_NUMBERS)
CHOICES = {
    "source_type": [s.value for s in ReferenceSourceType],
    "priority": [p.value for p in Priority],
    "mode": [m.value for m in Mode],
}
DEFAULTS = {
    "timezone": "UTC",
    "source_type": "url",
    "priority": Priority.NORMAL.value,
    "mode": Mode.AUTO.value,
    "queue": "default",
    "max_attempts": "3",
    "metadata": "{}",
}
_INTEGER = re.compile(r"-?[0-9]{1,20}")


@router.get("/schedules")
async def schedules_page(
    request: Request, engine: Engine, edit: str = "", saved: str = ""
) -> Response:
    values = dict(DEFAULTS)
    if edit:
        try:
            values = _values_of(await engine.get_schedule(edit))
        except ScheduleNotFound as e:
            return await _page(request, engine, 404, values, problem=str(e))
    return await _page(request, engine, 200, values, saved=saved)


@router.post("/schedules")
async def save_schedule(request: Request, engine: Engine) -> Response:
    form = await read_form(request)
    values = {name: str(form.get(name) or "") for name in FORM_FIELDS}
    for name in CHOICES:  # a choice not sent shows the one the API takes then
        values[name] = values[name] or DEFAULTS[name]
    values["paused"] = "true" if form.get("paused") == "true" else ""
    name, body, errors = schedule_request(form)
    if body is not None:
        try:
            await engine.put_schedule(name, body.to_spec())
        except ValidationFailed as e:
            errors = [{"field": field_name(err.loc), "message": err.msg} for err in e.errors]
    if errors:
        return await _page(request, engine, 422, values, errors=errors)
    log.info("console.schedule_saved", extra={"schedule": name})
    return back_to(request, f"/ui/schedules?saved={name}")


@router.post("/schedules/{name}/pause")
async def pause_schedule(request: Request, name: str, engine: Engine) -> Response:
    return await _pause(request, name, engine, True)


@router.post("/schedules/{name}/resume")
async def resume_schedule(request: Request, name: str, engine: Engine) -> Response:
    return await _pause(request, name, engine, False)


@router.post("/schedules/{name}/delete")
async def delete_schedule(request: Request, name: str, engine: Engine) -> Response:
    try:
        await engine.delete_schedule(name)
    except ScheduleNotFound as e:
        return await _page(request, engine, 404, dict(DEFAULTS), problem=str(e))
    log.info("console.schedule_deleted", extra={"schedule": name})
    return back_to(request, "/ui/schedules")


async def _pause(request: Request, name: str, engine: Engine, paused: bool) -> Response:
    try:
        await engine.pause_schedule(name, paused)
    except ScheduleNotFound as e:
        return await _page(request, engine, 404, dict(DEFAULTS), problem=str(e))
    log.info("console.schedule_paused", extra={"schedule": name, "paused": paused})
    return back_to(request, "/ui/schedules")


def schedule_request(form: FormData) -> tuple[str, ScheduleRequest | None, list[dict[str, str]]]:
    """The schedule's name and the API's request model for the form's fields (None, with
    each error by its field, when a value breaks a rule the model or the name has)."""
    errors: list[dict[str, str]] = []
    name = str(form.get("name") or "").strip()
    cron = str(form.get("cron") or "").strip()
    timezone = str(form.get("timezone") or "").strip() or "UTC"
    # The engine's own rules, here too so that one answer names every bad field (the
    # engine then reads the expression with its calendar, and checks all again).
    problems = field_problems(
        lambda: rules.check_queue_name(name, "name"),
        lambda: rules.check_cron_shape(cron),
        lambda: rules.check_time_zone(timezone),
    )
    errors += [{"field": field_name(p.loc), "message": p.msg} for p in problems]
    job: dict[str, Any] = {}
    for field in JOB_TEXT:
        text = str(form.get(field) or "").strip()
        if text:
            job[field] = text
    for field in JOB_NUMBERS:
        text = str(form.get(field) or "").strip()
        if text:
            job[field] = int(text) if _INTEGER.fullmatch(text) else text  # the model says why
    metadata = str(form.get("metadata") or "").strip()
    if metadata:
        try:
            job["metadata"] = json.loads(metadata, parse_constant=_no_constant)
        except ValueError as e:
            errors.append({"field": "job.metadata", "message": f"not JSON: {e}"})
    data = {
        "cron": cron,
        "timezone": timezone,
        "job": job,
        "paused": form.get("paused") == "true",
    }
    try:
        body = ScheduleRequest.model_validate(data)
    except ValidationError as e:
        errors += [
            {"field": field_name(err["loc"]), "message": str(err["msg"])} for err in e.errors()
        ]
        return name, None, errors
    return name, None if errors else body, errors


def _no_constant(text: str) -> None:
    raise ValueError(f"{text} is not a JSON value")


def _values_of(schedule: Schedule) -> dict[str, str]:
    """The form's fields filled with `schedule`, to replace it."""
    job = schedule.job
    values = {
        "name": schedule.name,
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "paused": "true" if schedule.paused else "",
        "metadata": json.dumps(job.get("metadata") or {}, ensure_ascii=False, indent=2),
    }
    for field in (*JOB_TEXT, *JOB_NUMBERS):
        value = job.get(field)
        values[field] = "" if value is None else str(value)
    return values


async def _page(
    request: Request,
    engine: Engine,
    status: int,
    values: dict[str, str],
    *,
    errors: list[dict[str, str]] | None = None,
    problem: str | None = None,
    saved: str = "",
) -> Response:
    errors = errors or []
    schedules = await engine.list_schedules()
    # Said only of a schedule that exists: the query is anyone's to write.
    notice = f"Schedule {saved} saved." if any(s.name == saved for s in schedules) else None
    return page(
        request,
        "schedules.html",
        status,
        section="schedules",
        schedules=schedules,
        values={name: "" for name in (*FORM_FIELDS, "paused")} | values,
        choices=CHOICES,
        errors=errors,
        bad={error["field"].removeprefix("job.") for error in errors},
        problem=problem,
        notice=notice,
    )
