"""The console's pages under `/ui`: server-rendered HTML that calls the engine as the API
routes do, enhanced by htmx (partial updates, and Server-Sent Events from `/ui/live`).

Every page works without scripts; with them, the rows of the job list and a job's page
follow the live feed, and the overview's queues refresh every 5 seconds. The filters
of `/ui/jobs` are the list API's query parameters, so a view can be bookmarked and
shared, and the same URL's query works on `GET /api/v1/jobs`. Every value from users
is escaped by the templates (Jinja2 with autoescape). Pages send a Content-Security-
Policy that allows chute's own scripts and styles only.
"""

# No `from __future__ import annotations` here: FastAPI reads the `Annotated[...]`
# dependencies from the evaluated signature.
import json
import logging
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, get_origin
from urllib.parse import parse_qsl, urlencode
from uuid import UUID

import jinja2
from chute.application import (
    BulkOutcome,
    JobNotFound,
    JobSelection,
    QueueChange,
    ValidationFailed,
)
from chute.application.feed import EventFeed, StreamFilter, SubscriptionDropped
from chute.application.queries import JobSort
from chute.domain import ChuteError, InvalidTransition, Job, JobStatus, Mode, Priority, SourceType
from chute.entrypoints.http.console.chart import chart
from chute.entrypoints.http.console.session import COOKIE, MAX_AGE, Sessions, cross_site
from chute.entrypoints.http.deps import Engine
from chute.entrypoints.http.downloads import download_headers, opened
from chute.entrypoints.http.schemas.jobs import JobListQuery
from chute.entrypoints.http.stream import KEEP_ALIVE, OPENED
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.datastructures import FormData

log = logging.getLogger("chute.console")

FOLDER = Path(__file__).parent
STATIC = FOLDER / "static"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
MAX_LIVE_JOBS = 200  # jobs one live connection follows
# A change takes its time before it commits, and other processes' clocks differ a little:
# a live connection also sends the jobs that changed this long before the page read them.
LIVE_SLACK = timedelta(seconds=2)
MAX_BULK_IDS = 1000  # selected jobs one action takes
MAX_FORM_BYTES = 256 * 1024  # an action's form: 1,000 ids and the list's query fit
BULK_ROUND = 1000  # jobs an "all that match" action changes a round
MAX_BULK_ROUNDS = 1000  # rounds of one action at most: a million jobs
LIST_FIELDS = frozenset(
    name for name, f in JobListQuery.model_fields.items() if get_origin(f.annotation) is list
)


async def not_cross_site(request: Request) -> None:
    """Refuse an action that a browser says another site's page sent."""
    if cross_site(request.method, dict(request.headers)):
        log.warning("console.cross_site", extra={"path": request.url.path})
        raise Refused(403, "Refused", "This action came from another site's page and was refused.")


class Refused(Exception):
    """A request the console answers with an error page before any work: `status`,
    with `heading` and `problem` on the page."""

    def __init__(self, status: int, heading: str, problem: str) -> None:
        super().__init__(problem)
        self.status, self.heading, self.problem = status, heading, problem


router = APIRouter(prefix="/ui", include_in_schema=False, dependencies=[Depends(not_cross_site)])
# No auto_reload: the templates are the package's files, and checking their times on
# every get_template (an include or an import) cost a stat each, dozens a page.
templates = jinja2.Environment(
    loader=jinja2.FileSystemLoader(FOLDER / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    auto_reload=False,
)


def age(moment: datetime) -> str:
    """How long ago `moment` was, shortly: 45 s, 12 min, 3 h, 2 d."""
    seconds = max(0.0, (datetime.now(UTC) - moment).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{math.floor(seconds / size)} {unit}"
    return f"{math.floor(seconds)} s"


def json_text(value: Any, indent: int | None = None) -> str:
    """`value` as JSON text for people to read: its keys in their order and its text as
    written (autoescape makes it safe). Jinja's `tojson` is for scripts and attributes:
    it sorts keys and shows <, >, & and ' as \\u escapes, and every non-ASCII letter."""
    return json.dumps(value, ensure_ascii=False, indent=indent)


templates.globals["age"] = age
templates.filters["json_text"] = json_text


def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Template `name` rendered with what every page needs, and the console's headers."""
    html = templates.get_template(name).render(
        root=request.scope.get("root_path", ""),
        signed_in=getattr(request.app.state, "console_sessions", None) is not None,
        section=context.pop("section", ""),
        notice=context.pop("notice", None),
        problem=context.pop("problem", None),
        **context,
    )
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def fragment(name: str, request: Request, **context: Any) -> str:
    """A template rendered on its own: a part of a page that htmx swaps in."""
    return templates.get_template(name).render(root=request.scope.get("root_path", ""), **context)


def back_to(request: Request, path: str) -> RedirectResponse:
    """After an action: the page to show, by GET (so that a reload does not act again)."""
    return RedirectResponse(request.scope.get("root_path", "") + path, status_code=303)


# -- sign-in -------------------------------------------------------------------------------


@router.get("/login")
async def login_page(request: Request, next: str = "/ui") -> Response:
    return page(request, "login.html", next=_local(next))


@router.post("/login")
async def login(request: Request) -> Response:
    form = await read_form(request)
    sessions: Sessions | None = request.app.state.console_sessions
    target = _local(str(form.get("next") or "/ui"))
    if sessions is None:
        return back_to(request, target)  # no keys: nothing to sign in to
    cookie = sessions.issue(str(form.get("key") or ""))
    if cookie is None:
        log.info("console.sign_in_refused")
        return page(request, "login.html", 401, next=target, problem="That is not a key.")
    log.info("console.signed_in")
    response = back_to(request, target)
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=MAX_AGE,
        path=request.scope.get("root_path", "") + "/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    response = back_to(request, "/ui/login")
    path = request.scope.get("root_path", "") + "/ui"
    response.delete_cookie(COOKIE, path=path, httponly=True, samesite="strict")
    return response


def _local(target: str) -> str:
    """`target` when it is a console path of this site, else the overview (no open
    redirect to another site through `next`)."""
    if target.startswith("/ui") and not target.startswith("//") and "\\" not in target:
        return target
    return "/ui"


# -- overview and queues -------------------------------------------------------------------


@router.get("")
async def overview(request: Request, engine: Engine) -> Response:
    return await _overview(request, engine)


@router.get("/queues")
async def queues_fragment(request: Request, engine: Engine) -> Response:
    html = fragment("_queues.html", request, queues=await engine.list_queues())
    return HTMLResponse(html, headers=SECURITY_HEADERS)


@router.get("/chart")
async def chart_fragment(request: Request, engine: Engine) -> Response:
    html = fragment("_chart.html", request, chart=chart(await engine.finished_per_minute()))
    return HTMLResponse(html, headers=SECURITY_HEADERS)


@router.post("/queues/{name}")
async def change_queue(request: Request, name: str, engine: Engine) -> Response:
    form = await read_form(request)
    if "paused" in form:
        change = QueueChange(paused=form.get("paused") == "true")
    else:
        text = str(form.get("concurrency_limit") or "").strip()
        if text and not text.isdigit():
            return await _overview_problem(request, engine, f"{name}: the limit is a number.")
        limit = int(text) if text else None
        change = QueueChange(concurrency_limit=limit, set_concurrency_limit=True)
    try:
        await engine.update_queue(name, change)
    except ValidationFailed as e:
        return await _overview_problem(request, engine, f"{name}: {_messages(e)}")
    return back_to(request, "/ui")


async def _overview_problem(request: Request, engine: Engine, problem: str) -> Response:
    return await _overview(request, engine, 422, problem)


async def _overview(
    request: Request, engine: Engine, status: int = 200, problem: str | None = None
) -> Response:
    """The queues, and the chart of the jobs finished in each minute of the last hour."""
    return page(
        request,
        "overview.html",
        status,
        section="overview",
        queues=await engine.list_queues(),
        chart=chart(await engine.finished_per_minute()),
        problem=problem,
    )


# -- jobs ----------------------------------------------------------------------------------


@router.get("/jobs")
async def jobs_page(request: Request, engine: Engine) -> Response:
    pairs = list(request.query_params.multi_items())
    query, errors = parse_list_query(pairs)
    chosen = _chosen(pairs)
    context: dict[str, Any] = {"section": "jobs", "choices": CHOICES, "chosen": chosen}
    if query is None:
        return page(request, "jobs.html", 422, errors=errors, **context)
    read_at = datetime.now(UTC)
    try:
        found = await engine.list_jobs(
            filter=query.to_filter(),
            sort=query.sort,
            limit=query.limit,
            cursor=query.cursor,
            count=query.cursor is None,
        )
    except ValidationFailed as e:
        errors = [{"field": field_name(err.loc), "message": err.msg} for err in e.errors]
        return page(request, "jobs.html", 422, errors=errors, **context)
    canonical = canonical_query(query)
    root = request.scope.get("root_path", "")
    live = {
        "view": "row",
        "job_id": [str(job.id) for job in found.items],
        "since": read_at.isoformat(),
    }
    return page(
        request,
        "jobs.html",
        errors=[],
        jobs=found.items,
        total=found.total,
        exact=found.total_exact,
        query=canonical,
        live=f"{root}/ui/live?{urlencode(live, doseq=True)}",
        first=f"{root}/ui/jobs?{canonical}" if query.cursor else None,
        next=(
            f"{root}/ui/jobs?{_joined(canonical, urlencode({'cursor': found.next_cursor}))}"
            if found.next_cursor
            else None
        ),
        **context,
    )


@router.get("/jump")
async def jump(request: Request, id: str = "") -> Response:
    try:
        job_id = UUID(id.strip())
    except ValueError:
        return page(
            request, "error.html", 404, heading="Not a job id", problem=f"{id!r} is not a job id."
        )
    return back_to(request, f"/ui/jobs/{job_id}")


@router.get("/jobs/{job_id}")
async def job_page(request: Request, job_id: str, engine: Engine) -> Response:
    return await _job_page(request, job_id, engine)


async def _job_page(
    request: Request, job_id: str, engine: Engine, status: int = 200, problem: str | None = None
) -> Response:
    read_at = datetime.now(UTC)
    try:
        found = UUID(job_id)
        job = await engine.get_job(found)
        events = await engine.list_job_events(found)
    except (ValueError, JobNotFound):
        return page(
            request, "error.html", 404, heading="No such job", problem=f"No job has id {job_id}."
        )
    root = request.scope.get("root_path", "")
    wanted = {"view": "job", "job_id": str(job.id), "since": read_at.isoformat()}
    live = f"{root}/ui/live?{urlencode(wanted)}"
    return page(
        request,
        "job.html",
        status,
        section="jobs",
        job=job,
        events=events,
        live=live,
        problem=problem,
    )


@router.post("/jobs/{job_id}/cancel")
async def cancel_job(request: Request, job_id: UUID, engine: Engine) -> Response:
    return await _act_on_job(request, job_id, engine, "cancel")


@router.post("/jobs/{job_id}/retry")
async def retry_job(request: Request, job_id: UUID, engine: Engine) -> Response:
    return await _act_on_job(request, job_id, engine, "retry")


async def _act_on_job(request: Request, job_id: UUID, engine: Engine, action: str) -> Response:
    """Cancel or retry a job as the API's route would, then show its page; a 409 page
    saying why when the job's status does not allow it."""
    act = engine.cancel_job if action == "cancel" else engine.retry_job
    try:
        await act(job_id)
    except InvalidTransition as e:
        return await _job_page(request, str(job_id), engine, 409, problem=str(e))
    except JobNotFound:
        return await _job_page(request, str(job_id), engine)
    log.info(f"console.{action}", extra={"job_id": str(job_id)})
    return back_to(request, f"/ui/jobs/{job_id}")


@router.get("/jobs/{job_id}/content")
async def job_content(request: Request, job_id: UUID, engine: Engine) -> Response:
    try:
        job, chunks = await engine.open_content(job_id)
    except ChuteError as e:
        return page(request, "error.html", 404, heading="No content", problem=str(e))
    return StreamingResponse(await opened(job_id, chunks), headers=download_headers(job))


@router.post("/jobs/bulk")
async def bulk(request: Request, engine: Engine) -> Response:
    """Cancel or retry the selected jobs, or every job that matches the list's filters
    (after a confirmation that says how many), each as the single action would."""
    form = await read_form(request)
    action = str(form.get("action") or "")
    verb, _, scope = action.partition("-")
    if verb not in ("cancel", "retry") or scope not in ("", "all"):
        return page(
            request, "error.html", 422, heading="Unknown action", problem="Choose cancel or retry."
        )
    query_text = str(form.get("query") or "")
    root = request.scope.get("root_path", "")
    back = f"{root}/ui/jobs?{query_text}"
    act = engine.cancel_jobs if verb == "cancel" else engine.retry_jobs
    context: dict[str, Any] = {
        "section": "jobs",
        "verb": verb,
        "action": action,
        "back": back,
        "query": query_text,
    }
    if scope == "":
        ids = _ids(form.getlist("id"))
        if ids is None:
            return page(
                request,
                "error.html",
                422,
                heading="Not job ids",
                problem="A selected value is not a job id.",
            )
        if not ids:
            return page(
                request,
                "bulk.html",
                422,
                outcome=None,
                problem="Select at least one job.",
                total=0,
                exact=True,
                **context,
            )
        outcome = await act(JobSelection(ids=ids))
        log.info("console.bulk", extra={"action": verb, "changed": outcome.changed})
        return page(request, "bulk.html", outcome=outcome, **context)
    query, errors = parse_list_query(parse_qsl(query_text, keep_blank_values=True))
    if query is None:
        problem = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return page(
            request, "error.html", 422, heading="These filters cannot be used", problem=problem
        )
    job_filter = query.to_filter()
    if form.get("confirmed") != "yes":
        found = await engine.list_jobs(filter=job_filter, limit=1, count=True)
        return page(
            request,
            "bulk.html",
            outcome=None,
            total=found.total or 0,
            exact=found.total_exact,
            **context,
        )
    total = BulkOutcome(0, 0, 0, False)
    for _ in range(MAX_BULK_ROUNDS):
        outcome = await act(JobSelection(filter=job_filter, limit=BULK_ROUND))
        total = BulkOutcome(
            total.matched + outcome.matched,
            total.changed + outcome.changed,
            total.unchanged + outcome.unchanged,
            outcome.more,
        )
        if not outcome.more:
            break
    log.info("console.bulk", extra={"action": verb, "changed": total.changed, "all": True})
    return page(request, "bulk.html", outcome=total, **context)


# -- live updates --------------------------------------------------------------------------


@router.get("/live")
async def live(request: Request, engine: Engine) -> Response:
    """Server-Sent Events of HTML for htmx to swap in: `event: job-<id>` with the job's
    row (`view=row`) or its page's live part (`view=job`) whenever it changes, and first
    of each job that changed after `since` (when the page read them; all when absent)."""
    view = request.query_params.get("view", "row")
    ids = _ids(request.query_params.getlist("job_id"))
    since_text = request.query_params.get("since")
    since = _aware(since_text) if since_text is not None else None
    if (
        view not in ("row", "job")
        or ids is None
        or not 0 < len(ids) <= MAX_LIVE_JOBS
        or (since_text is not None and since is None)
    ):
        return Response(
            "view=row|job, 1 to 200 job_id values and since (a time with its offset)",
            422,
            media_type="text/plain",
        )
    feed: EventFeed = request.app.state.feed
    keepalive = request.app.state.container.config.stream_keepalive_seconds()
    wanted = StreamFilter(job_ids=frozenset(ids))
    return StreamingResponse(
        _live(request, engine, feed, wanted, view, keepalive, since),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _live(
    request: Request,
    engine: Engine,
    feed: EventFeed,
    wanted: StreamFilter,
    view: str,
    keepalive: float,
    since: datetime | None,
) -> AsyncIterator[bytes]:
    subscription = await feed.subscribe()  # first: nothing committed from now on is missed
    try:
        yield OPENED
        # What changed after the page read its jobs and before this subscription (while
        # the page loaded its scripts, or its connection was away) would never come:
        # each job that changed since is sent as it is now. A connection that comes back
        # asks with the same `since`, and is sent again what changed since the page.
        for job in await engine.get_jobs(sorted(wanted.job_ids)):  # less the purged ones
            if since is None or job.updated_at >= since - LIVE_SLACK:
                yield await _rendered(request, engine, job, view)
        while True:
            item = await subscription.next(keepalive)
            if item is None:
                yield KEEP_ALIVE
            elif wanted.matches(item):
                yield await _rendered(request, engine, item.job, view)
    except SubscriptionDropped:
        pass  # the browser reconnects, and is sent what changed since the page was read
    finally:
        feed.unsubscribe(subscription)


async def _rendered(request: Request, engine: Engine, job: Job, view: str) -> bytes:
    if view == "row":
        html = fragment("_row.html", request, job=job)
    else:
        fresh = await engine.get_job(job.id)
        html = fragment(
            "_job.html", request, job=fresh, events=await engine.list_job_events(job.id)
        )
    data = "".join(f"data: {line}\n" for line in html.splitlines() if line.strip())
    return f"event: job-{job.id}\n{data}\n".encode()


# -- the list's filters --------------------------------------------------------------------

CHOICES = {
    "status": [s.value for s in JobStatus],
    "priority": [p.value for p in Priority],
    "source_type": [s.value for s in SourceType],
    "mode": [m.value for m in Mode],
    "sort": [s.value for s in JobSort],
}
DEFAULT_SORT = JobListQuery.model_fields["sort"].default.value
DEFAULT_LIMIT = JobListQuery.model_fields["limit"].default


def parse_list_query(
    pairs: list[tuple[str, str]],
) -> tuple[JobListQuery | None, list[dict[str, str]]]:
    """The list API's query from the console's parameters: the API's own names, empty
    values left out (a form sends every field), `queue` and `metadata` also as words
    separated by spaces (`metadata` as key=value), and times without an offset in UTC."""
    data: dict[str, Any] = {}
    for name, value in pairs:
        value = value.strip()
        if not value or name == "page":
            continue
        if name == "metadata":
            for word in value.split():
                key, sep, text = word.partition("=")
                if not sep or not key:
                    return None, [{"field": "metadata", "message": f"{word!r} is not key=value"}]
                data.setdefault(f"metadata.{key}", []).append(text)
        elif name == "queue":
            data.setdefault("queue", []).extend(value.split())
        elif name in LIST_FIELDS or name.startswith("metadata."):
            data.setdefault(name, []).append(value)
        elif name in ("created_after", "created_before") and no_offset(value):
            data[name] = value + (":00Z" if len(value) == 16 else "Z")  # datetime-local's
        else:
            data[name] = value
    try:
        return JobListQuery.model_validate(data), []
    except ValidationError as e:
        return None, [
            {"field": field_name(err["loc"]), "message": str(err["msg"])} for err in e.errors()
        ]


def canonical_query(query: JobListQuery) -> str:
    """The query string of `query` in the list API's own names (no cursor)."""
    pairs: list[tuple[str, str]] = []
    for name in ("status", "priority", "source_type", "mode", "queue"):
        pairs += [(name, str(getattr(v, "value", v))) for v in getattr(query, name)]
    if query.mime_type:
        pairs.append(("mime_type", query.mime_type))
    for name in ("created_after", "created_before"):
        moment = getattr(query, name)
        if moment is not None:
            pairs.append((name, moment.isoformat().replace("+00:00", "Z")))
    pairs += [(f"metadata.{key}", value) for key, value in query._metadata]
    if query.sort.value != DEFAULT_SORT:
        pairs.append(("sort", query.sort.value))
    if query.limit != DEFAULT_LIMIT:
        pairs.append(("limit", str(query.limit)))
    return urlencode(pairs)


def _chosen(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """What the filter form shows as chosen: the parameters as given."""
    chosen: dict[str, Any] = {
        name: [] for name in ("status", "priority", "source_type", "mode", "queue")
    }
    metadata: list[str] = []
    for name, value in pairs:
        if name in chosen:
            chosen[name] += value.split()
        elif name == "metadata":
            metadata += value.split()
        elif name.startswith("metadata."):
            metadata.append(f"{name.removeprefix('metadata.')}={value}")
        elif name in ("mime_type", "created_after", "created_before", "sort"):
            chosen[name] = value
    chosen.setdefault("sort", DEFAULT_SORT)
    chosen["metadata"] = " ".join(metadata)
    for name in ("mime_type", "created_after", "created_before"):
        chosen.setdefault(name, None)
    return chosen


def _aware(text: str) -> datetime | None:
    """The time `text` says, with its offset; None when it is not one."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def no_offset(value: str) -> bool:
    return len(value) in (16, 19) and value[10:11] == "T" and value[-1].isdigit()


def _joined(first: str, second: str) -> str:
    return f"{first}&{second}" if first else second


def field_name(loc: Any) -> str:
    """A field's name from an error's location: no `query`, no list positions."""
    return ".".join(
        str(part) for part in loc if part not in ("query", "body") and not isinstance(part, int)
    )


def _messages(error: ValidationFailed) -> str:
    return "; ".join(f"{field_name(e.loc)}: {e.msg}" for e in error.errors)


def _ids(values: list[Any]) -> tuple[UUID, ...] | None:
    """The job ids of form or query values; None when one is not an id."""
    if len(values) > MAX_BULK_IDS:
        return None
    try:
        return tuple(dict.fromkeys(UUID(str(value)) for value in values))
    except ValueError:
        return None


async def read_form(request: Request) -> FormData:
    """The form of an action: URL-encoded fields of at most MAX_FORM_BYTES in all (a
    larger body is refused before it is read whole, whether or not it says its length)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/x-www-form-urlencoded":
        raise Refused(415, "Not a form", "Actions take a form (application/x-www-form-urlencoded).")
    declared = request.headers.get("content-length", "")
    too_large = Refused(413, "Too large", f"A form may hold at most {MAX_FORM_BYTES} bytes.")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise too_large
    request._body = bytes(body)  # what `form()` parses, instead of the spent stream
    return await request.form()
