"""One contract for the storage ports, run on memory, SQLite and PostgreSQL alike."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4

import pytest
from chute.adapters.sqlalchemy import SqlDatabase
from chute.application.errors import IdempotencyConflict
from chute.application.ports import IdempotencyRecord, UnitOfWorkFactory
from chute.application.queries import ClaimFilter, JobFilter, JobQuery, JobSort, Keyset
from chute.domain import DetectionResult, Job, JobEvent, JobStatus, Mode, Priority, SourceType

from tests.factories import at, make_detection, make_job

S, P, M, T = JobStatus, Priority, Mode, SourceType
INDIA = timezone(timedelta(hours=5, minutes=30))


async def store(database: UnitOfWorkFactory, *jobs: Job) -> None:
    async with database() as uow:
        await uow.jobs.add(jobs)
        await uow.commit()


async def get(database: UnitOfWorkFactory, job_id: UUID) -> Job | None:
    async with database(read_only=True) as uow:
        return await uow.jobs.get(job_id)


async def find(database: UnitOfWorkFactory, **query: Any) -> list[Job]:
    async with database(read_only=True) as uow:
        return await uow.jobs.find(JobQuery(**query))


async def count(database: UnitOfWorkFactory, filt: JobFilter, at_most: int | None = None) -> int:
    async with database(read_only=True) as uow:
        return await uow.jobs.count(filt, at_most=at_most)


def as_dict(job: Job) -> dict[str, Any]:
    return {f.name: getattr(job, f.name) for f in dataclasses.fields(job)}


def assert_same(found: Job | None, expected: Job) -> None:
    assert found is not None
    assert as_dict(found) == as_dict(expected)


def assert_utc(database: UnitOfWorkFactory, *times: datetime | None) -> None:
    """The SQL adapters give every time back in UTC (memory gives back what it got)."""
    if isinstance(database, SqlDatabase):
        assert all(t is None or t.utcoffset() == timedelta(0) for t in times), times


def ids(jobs: list[Job]) -> list[UUID]:
    return [job.id for job in jobs]


# -- add, get, update, transactions ---------------------------------------------------


async def test_added_jobs_are_found_by_id_in_the_order_asked(database: UnitOfWorkFactory) -> None:
    jobs = [make_job(created_at=at(i)) for i in range(5)]
    await store(database, *jobs)
    async with database(read_only=True) as uow:
        asked = [jobs[3].id, uuid4(), jobs[0].id, jobs[4].id, jobs[3].id]
        assert ids(await uow.jobs.get_many(asked)) == [asked[0], asked[2], asked[3], asked[4]]
        assert await uow.jobs.get_many([]) == []
        assert_same(await uow.jobs.get(jobs[2].id), jobs[2])


async def test_jobs_read_never_share_their_json_containers(database: UnitOfWorkFactory) -> None:
    job = make_job(metadata={"tags": ["a"]}, result={"pages": [1]})
    await store(database, job)
    async with database(read_only=True) as uow:
        first, again = await uow.jobs.get_many([job.id, job.id])
        found = await uow.jobs.find(JobQuery())
    first.metadata["tags"].append("b")
    assert first.result is not None
    first.result["pages"].append(2)
    assert (again.metadata, again.result) == ({"tags": ["a"]}, {"pages": [1]})
    assert (found[0].metadata, found[0].result) == ({"tags": ["a"]}, {"pages": [1]})


async def test_json_numbers_come_back_exactly(database: UnitOfWorkFactory) -> None:
    # Integers past 64 bits, and floats of many digits, as JSON carries them: the JSON
    # columns' reader takes orjson's faster path only where it reads the same value.
    numbers = {"big": 2**70, "low": -(2**63) - 1, "u64": 2**64 - 1, "f": 0.1 + 0.2, "e": 1e-7}
    job = make_job(metadata=numbers, result={"pages": 10**25, "ratio": 1 / 3})
    await store(database, job)
    found = await get(database, job.id)
    assert found is not None
    assert (found.metadata, found.result) == (numbers, {"pages": 10**25, "ratio": 1 / 3})
    assert {k: type(v) for k, v in found.metadata.items()} == {
        k: type(v) for k, v in numbers.items()
    }


async def test_get_of_a_missing_id_is_none(database: UnitOfWorkFactory) -> None:
    assert await get(database, uuid4()) is None
    async with database() as uow:
        assert await uow.jobs.get(uuid4(), for_update=True) is None


async def test_adding_an_existing_id_or_updating_a_missing_job_is_refused(
    database: UnitOfWorkFactory,
) -> None:
    job = make_job()
    await store(database, job)
    with pytest.raises(ValueError):
        async with database() as uow:
            await uow.jobs.add([make_job(id=job.id)])
    with pytest.raises(ValueError):
        async with database() as uow:
            await uow.jobs.update(make_job())


def every_field_set() -> Job:
    return make_job(
        status=S.RUNNING,
        source_type=T.S3,
        source_uri="s3://my-bucket/päth/ключ.bin",
        file_name="Ünïcødé 報告.pdf",
        file_size=2**40,
        mime_type="application/pdf",
        priority=P.URGENT,
        mode=M.ACCURATE,
        metadata={"tenant": "acme", "ünï": {"list": [1, 2.5, None, True, "日本"], "deep": {}}},
        attempts=2,
        max_attempts=5,
        last_error="boom: «quoted» 'single' \"double\"",
        worker_id="worker-7",
        lease_seconds=60,
        lease_expires_at=datetime(2026, 3, 1, 18, 1, 2, 345678, tzinfo=INDIA),
        run_after=at(3.000001),
        started_at=at(1.999999),
        finished_at=at(7),
        progress=42,
        progress_message="à moitié fait ✓",
        result={"pages": 3, "text": "naïve", "nested": {"a": [1, {"b": None}]}},
        created_at=at(0.000001),
        updated_at=at(5.5),
        content_key="0193a4f2-7c1e-7d3a-9b1e-5f0c2d6e8a41/Ünïcødé 報告.pdf",
    )


async def test_every_field_round_trips_through_add_and_update(database: UnitOfWorkFactory) -> None:
    job = every_field_set()
    await store(database, job)
    found = await get(database, job.id)
    assert_same(found, job)
    assert found is not None
    assert_utc(database, found.created_at, found.lease_expires_at, found.run_after)

    changed = dataclasses.replace(
        job, status=S.CANCELLING, priority=P.LOW, mode=M.FAST, source_type=T.UPLOAD,
        metadata={}, result=None, progress=None, lease_expires_at=None, file_size=0,
        content_key="elsewhere/report.pdf",
    )  # fmt: skip
    async with database() as uow:
        await uow.jobs.update(changed)
        await uow.commit()
    assert_same(await get(database, job.id), changed)


async def test_every_field_round_trips_through_a_deferred_unit(
    database: UnitOfWorkFactory,
) -> None:
    # Deferred units that only insert are group-committed on SQL databases: their rows go
    # in one statement a table (PostgreSQL: one array a column), not through `store`'s.
    jobs = [every_field_set(), make_job(file_name=None, file_size=None, mime_type=None)]
    async with database(deferred=True) as uow:
        await uow.jobs.add(jobs)
        await uow.commit()
    for job in jobs:
        assert_same(await get(database, job.id), job)


async def test_update_many_writes_every_field_of_each_job(database: UnitOfWorkFactory) -> None:
    first, second, untouched = every_field_set(), make_job(), make_job()
    await store(database, first, second, untouched)
    changed = [
        dataclasses.replace(first, status=S.COMPLETED, metadata={}, result={"ok": [1, "ü"]},
                            lease_expires_at=None, finished_at=at(9), content_key=None),
        dataclasses.replace(second, status=S.RUNNING, attempts=1, worker_id="w-2",
                            lease_expires_at=datetime(2026, 3, 1, 18, 0, tzinfo=INDIA)),
    ]  # fmt: skip
    async with database() as uow:
        await uow.jobs.update_many(changed)
        await uow.jobs.update_many([])
        await uow.commit()
    async with database(read_only=True) as uow:
        found = await uow.jobs.get_many([first.id, second.id, untouched.id])
    for got, expected in zip(found, [*changed, untouched], strict=True):
        assert_same(got, expected)
    assert_utc(database, found[1].lease_expires_at)


async def test_pending_changes_and_detection_are_not_stored_with_the_job(
    database: UnitOfWorkFactory,
) -> None:
    job = make_job(changes=[(None, S.PENDING)])
    await store(database, job)
    job.changes.append((S.PENDING, S.RUNNING))
    async with database() as uow:
        await uow.jobs.update(dataclasses.replace(job, detection=make_detection()))
        await uow.commit()
    async with database(read_only=True) as uow:
        found = await uow.jobs.get(job.id)
        assert found is not None and found.changes == []
        assert await uow.events.list(job.id) == []  # events are the use cases' to write
    # A job's detection comes from the detections repository, whatever the job carried.
    assert found.detection is None


@pytest.mark.parametrize("value", [*S, *P, *M, *T], ids=str)
async def test_every_enum_value_round_trips(database: UnitOfWorkFactory, value: Any) -> None:
    field = {S: "status", P: "priority", M: "mode", T: "source_type"}[type(value)]
    job = make_job(**{field: value})
    await store(database, job)
    found = await get(database, job.id)
    assert found is not None and getattr(found, field) is value


async def test_a_unit_of_work_left_without_commit_changes_nothing(
    database: UnitOfWorkFactory,
) -> None:
    kept = make_job()
    await store(database, kept)
    async with database() as uow:
        await uow.jobs.add([make_job(id=(lost := uuid4()))])
        await uow.jobs.update(dataclasses.replace(kept, status=S.CANCELLED))
        await uow.detections.add(kept.id, make_detection())
        await uow.idempotency.add(IdempotencyRecord("jobs", "k", "f", (kept.id,), at(0)))
    async with database(read_only=True) as uow:
        assert await uow.jobs.get(lost) is None
        assert_same(await uow.jobs.get(kept.id), kept)  # without the detection result
        assert await uow.idempotency.get("jobs", "k") is None


async def test_an_exception_rolls_back_the_unit_of_work(database: UnitOfWorkFactory) -> None:
    job = make_job()
    with pytest.raises(KeyError):
        async with database() as uow:
            await uow.jobs.add([job])
            raise KeyError("stop")
    assert await get(database, job.id) is None


async def test_a_write_is_invisible_to_other_units_of_work_until_commit(
    database: UnitOfWorkFactory,
) -> None:
    job = make_job()
    async with database() as writer:
        await writer.jobs.add([job])
        assert await writer.jobs.get(job.id) is not None  # it sees its own write
        async with database(read_only=True) as reader:
            assert await reader.jobs.get(job.id) is None
            assert await reader.jobs.count(JobFilter()) == 0
        await writer.commit()
    assert_same(await get(database, job.id), job)


async def test_a_unit_of_work_goes_on_after_commit(database: UnitOfWorkFactory) -> None:
    first, second = make_job(), make_job()
    async with database() as uow:
        await uow.jobs.add([first])
        await uow.commit()
        assert await uow.jobs.get(first.id) is not None
        await uow.jobs.add([second])
        await uow.commit()
    async with database(read_only=True) as uow:
        assert len(await uow.jobs.get_many([first.id, second.id])) == 2


# -- filters --------------------------------------------------------------------------

CATALOGUE: dict[str, dict[str, Any]] = {
    "a": {"status": S.PENDING, "source_type": T.URL, "priority": P.LOW, "mode": M.AUTO,
          "mime_type": "image/png"},
    "b": {"status": S.RUNNING, "source_type": T.S3, "priority": P.NORMAL, "mode": M.FAST,
          "mime_type": "image/jpeg"},
    "c": {"status": S.FAILED, "source_type": T.UPLOAD, "priority": P.HIGH, "mode": M.ACCURATE,
          "mime_type": "application/pdf"},
    "d": {"status": S.CANCELLED, "source_type": T.URL, "priority": P.URGENT, "mode": M.AUTO,
          "mime_type": "text/plain"},
    "e": {"status": S.COMPLETED, "source_type": T.S3, "priority": P.NORMAL, "mode": M.FAST,
          "mime_type": None},
    "f": {"status": S.PENDING, "source_type": T.UPLOAD, "priority": P.HIGH, "mode": M.ACCURATE,
          "mime_type": "IMAGE/GIF"},
    "g": {"status": S.PENDING, "source_type": T.URL, "priority": P.NORMAL, "mode": M.AUTO,
          "mime_type": "imagex/png"},
    "h": {"status": S.RUNNING, "source_type": T.URL, "priority": P.URGENT, "mode": M.AUTO,
          "mime_type": "image/svg+xml"},
    "i": {"status": S.CANCELLING, "source_type": T.S3, "priority": P.LOW, "mode": M.FAST,
          "mime_type": "ima_e/x"},
}  # fmt: skip
NAMES = list(CATALOGUE)  # created one second apart, in this order

FILTER_CASES: list[tuple[JobFilter, str]] = [
    (JobFilter(), "abcdefghi"),
    (JobFilter(statuses=frozenset({S.PENDING})), "afg"),
    (JobFilter(statuses=frozenset({S.FAILED, S.CANCELLED, S.CANCELLING})), "cdi"),
    (JobFilter(source_types=frozenset({T.S3})), "bei"),
    (JobFilter(priorities=frozenset({P.HIGH, P.URGENT})), "cdfh"),
    (JobFilter(modes=frozenset({M.FAST})), "bei"),
    (JobFilter(mime_type="image/png"), "a"),
    (JobFilter(mime_type="image/*"), "abh"),  # not IMAGE/GIF, not imagex/png
    (JobFilter(mime_type="ima_e/*"), "i"),  # "_" is no wildcard
    (JobFilter(mime_type="video/*"), ""),
    (JobFilter(created_after=at(2)), "cdefghi"),  # inclusive
    (JobFilter(created_before=at(2)), "ab"),  # exclusive
    (JobFilter(created_after=at(1), created_before=at(3)), "bc"),
    (JobFilter(created_after=at(1).replace(microsecond=123457)), "cdefghi"),
    (JobFilter(created_after=at(2).astimezone(INDIA)), "cdefghi"),
    (
        JobFilter(
            statuses=frozenset({S.PENDING, S.RUNNING}),
            source_types=frozenset({T.URL}),
            mime_type="image/*",
        ),
        "ah",
    ),
    (
        JobFilter(
            priorities=frozenset({P.NORMAL, P.URGENT}),
            modes=frozenset({M.AUTO, M.FAST}),
            created_after=at(1),
            created_before=at(7),
        ),
        "bdeg",
    ),
]


@pytest.fixture
async def catalogue(database: UnitOfWorkFactory) -> dict[str, Job]:
    jobs = {name: make_job(created_at=at(i), **CATALOGUE[name]) for i, name in enumerate(NAMES)}
    await store(database, *jobs.values())
    return jobs


@pytest.mark.parametrize(("filt", "expected"), FILTER_CASES)
async def test_filters_select_exactly_the_matching_jobs(
    database: UnitOfWorkFactory, catalogue: dict[str, Job], filt: JobFilter, expected: str
) -> None:
    newest_first = [catalogue[name].id for name in reversed(expected)]
    assert ids(await find(database, filter=filt, limit=100)) == newest_first
    assert await count(database, filt) == len(expected)


@pytest.mark.parametrize(("filt", "expected"), FILTER_CASES)
async def test_count_stops_at_its_bound(
    database: UnitOfWorkFactory, catalogue: dict[str, Job], filt: JobFilter, expected: str
) -> None:
    matching = len(expected)
    assert await count(database, filt, at_most=matching + 1) == matching
    assert await count(database, filt, at_most=matching) == matching
    assert await count(database, filt, at_most=1) == min(1, matching)
    if matching > 1:
        assert await count(database, filt, at_most=matching - 1) == matching - 1


# -- metadata filters -----------------------------------------------------------------

METADATA: list[dict[str, Any]] = [
    {"tenant": "acme", "batch": 7},
    {"tenant": "acme", "batch": "7"},
    {"tenant": "ACME", "batch": 7.0},
    {"tenant": "globex", "batch": [7], "flag": True},
    {"flag": "true", "gone": None, "t.x": "dot"},
    {"flag": False, "gone": "null", "nested": {"tenant": "acme"}, "batch": -1.5},
    {},
    {"tenant": ["acme"], "batch": {"7": 7}, 'quo"te': "é ü", "n": 12345678901234},
]

METADATA_CASES: list[tuple[list[tuple[str, str]], list[int]]] = [
    ([("tenant", "acme")], [0, 1]),  # not ACME, not in an array, not nested deeper
    ([("batch", "7")], [0, 1]),  # the number and the string, not 7.0, [7] or {"7": 7}
    ([("batch", "7.0")], [2]),
    ([("batch", "-1.5")], [5]),
    ([("batch", "07")], []),
    ([("flag", "true")], [3, 4]),
    ([("flag", "false")], [5]),
    ([("gone", "null")], [4, 5]),
    ([("missing", "null")], []),
    ([("t.x", "dot")], [4]),  # a dot is part of the key, not a path
    ([('quo"te', "é ü")], [7]),
    ([("n", "12345678901234")], [7]),
    ([("tenant", "")], []),
    ([("batch", "7"), ("tenant", "acme")], [0, 1]),
    ([("flag", "true"), ("tenant", "globex")], [3]),
    ([("flag", "true"), ("tenant", "acme")], []),
]


@pytest.mark.parametrize(("filters", "expected"), METADATA_CASES)
async def test_metadata_filters_match_strings_and_the_json_text_of_scalars(
    database: UnitOfWorkFactory, filters: list[tuple[str, str]], expected: list[int]
) -> None:
    made = [make_job(created_at=at(i), metadata=m) for i, m in enumerate(METADATA)]
    await store(database, *made)
    filt = JobFilter(metadata=tuple(sorted(filters)))
    newest_first = [made[i].id for i in reversed(expected)]
    assert ids(await find(database, filter=filt, limit=100)) == newest_first
    assert await count(database, filt) == len(expected)
    and_running = JobFilter(metadata=filt.metadata, statuses=frozenset({S.RUNNING}))
    assert await find(database, filter=and_running, limit=100) == []


# -- sorts and pages ------------------------------------------------------------------


def sort_key(job: Job, sort: JobSort) -> tuple[Any, ...]:
    key = (job.created_at, job.id)
    return (job.priority.rank, *key) if sort.by_priority else key


def in_order(jobs: list[Job], sort: JobSort) -> list[UUID]:
    return ids(sorted(jobs, key=lambda job: sort_key(job, sort), reverse=sort.descending))


def tied_jobs(n: int, *, start: int = 0, seconds: float = 0) -> list[Job]:
    """Jobs that share created_at three by three and priorities four by four."""
    return [
        make_job(
            id=UUID(int=(start + i) * 7919 % 1000 + 1 + start * 1000),
            created_at=at(seconds + i // 3),
            priority=list(P)[(i * 5) % 4],
        )
        for i in range(n)
    ]


@pytest.mark.parametrize("sort", list(JobSort), ids=str)
async def test_sorts_break_ties_by_created_at_then_id(
    database: UnitOfWorkFactory, sort: JobSort
) -> None:
    jobs = tied_jobs(14)
    await store(database, *jobs)
    assert ids(await find(database, sort=sort, limit=100)) == in_order(jobs, sort)


@pytest.mark.parametrize("sort", list(JobSort), ids=str)
async def test_offset_pages_split_the_sorted_list(
    database: UnitOfWorkFactory, sort: JobSort
) -> None:
    jobs = tied_jobs(10)
    await store(database, *jobs)
    pages = [await find(database, sort=sort, limit=3, offset=o) for o in (0, 3, 6, 9, 12)]
    assert [len(page) for page in pages] == [3, 3, 3, 1, 0]
    assert [job_id for page in pages for job_id in ids(page)] == in_order(jobs, sort)


async def arrive_around(
    database: UnitOfWorkFactory, round_: int, sort: JobSort, last: Job
) -> list[Job]:
    """Store jobs newer and older than all others, at two priorities; return those
    that sort after `last`, which alone belong in the rest of a walk by `sort`."""
    arriving = [
        *tied_jobs(2, start=round_, seconds=1000 + round_),
        *tied_jobs(2, start=round_ + 50, seconds=-1000 - round_),
    ]
    await store(database, *arriving)
    mark = sort_key(last, sort)
    if sort.descending:
        return [job for job in arriving if sort_key(job, sort) < mark]
    return [job for job in arriving if sort_key(job, sort) > mark]


@pytest.mark.parametrize("sort", list(JobSort), ids=str)
async def test_keyset_pages_walk_everything_once_while_jobs_arrive(
    database: UnitOfWorkFactory, sort: JobSort
) -> None:
    jobs = tied_jobs(17)
    await store(database, *jobs)
    walked: list[Job] = []
    expected: list[Job] = list(jobs)
    for round_ in range(1, 100):
        after = Keyset.of(walked[-1], sort) if walked else None
        page = await find(database, sort=sort, limit=4, after=after)
        if not page:
            break
        walked += page
        if round_ <= 3:
            expected += await arrive_around(database, round_, sort, walked[-1])
    else:
        pytest.fail("the walk never ended")
    assert ids(walked) == in_order(expected, sort)
    assert len(set(ids(walked))) == len(walked)
    assert set(ids(jobs)) <= set(ids(walked))


async def test_keyset_and_filter_work_together(
    database: UnitOfWorkFactory, catalogue: dict[str, Job]
) -> None:
    filt = JobFilter(statuses=frozenset({S.PENDING, S.RUNNING, S.CANCELLING}))
    first = await find(database, filter=filt, limit=2)
    rest = await find(database, filter=filt, limit=10, after=Keyset.of(first[-1], JobSort.NEWEST))
    assert [job.id for job in first + rest] == [catalogue[n].id for n in "ihgfba"]


# -- events ---------------------------------------------------------------------------


async def test_events_are_listed_per_job_in_the_order_they_were_added(
    database: UnitOfWorkFactory,
) -> None:
    first, second = make_job(), make_job()
    await store(database, first, second)
    made = [
        JobEvent(first.id, at(0), None, S.PENDING, "client"),
        JobEvent(second.id, at(0), None, S.PENDING, "client"),
        JobEvent(first.id, at(5).astimezone(INDIA), S.PENDING, S.RUNNING, "w" * 255),
    ]
    later = [
        # Earlier than the event before it: the order is that of adding, not of `at`.
        JobEvent(first.id, at(1), S.RUNNING, S.PENDING, "w1", "boom: «x» " + "é" * 4000),
        JobEvent(second.id, at(2), S.PENDING, S.CANCELLED, "client"),
        JobEvent(first.id, at(6), S.PENDING, S.RUNNING, "rescuer", None),
    ]
    async with database() as uow:
        await uow.events.add(made)
        await uow.events.add([])
        await uow.commit()
    async with database() as uow:
        await uow.events.add(later)
        assert len(await uow.events.list(first.id)) == 4  # it sees its own events
        await uow.commit()
    async with database(read_only=True) as uow:
        listed = await uow.events.list(first.id)
        assert listed == [made[0], made[2], later[0], later[2]]
        assert await uow.events.list(second.id) == [made[1], later[1]]
        assert await uow.events.list(uuid4()) == []
    assert_utc(database, *(event.at for event in listed))


async def test_events_of_a_unit_of_work_left_without_commit_are_lost(
    database: UnitOfWorkFactory,
) -> None:
    job = make_job()
    await store(database, job)
    async with database() as uow:
        await uow.events.add([JobEvent(job.id, at(0), None, S.PENDING, "client")])
    async with database(read_only=True) as uow:
        assert await uow.events.list(job.id) == []


# -- detection results ----------------------------------------------------------------


async def test_detection_results_are_added_replaced_and_found_by_job(
    database: UnitOfWorkFactory,
) -> None:
    first, second, bare = make_job(), make_job(), make_job()
    await store(database, first, second, bare)
    pdf = make_detection(detected_at=datetime(2026, 3, 1, 18, 0, 0, 654321, tzinfo=INDIA))
    png = make_detection(mime_type="image/png", label="png", group="image", confidence=0.5)
    async with database() as uow:
        await uow.detections.add(first.id, pdf)
        await uow.detections.add(second.id, pdf)
        await uow.commit()
    async with database() as uow:
        await uow.detections.add(second.id, png)
        await uow.commit()
    async with database(read_only=True) as uow:
        jobs = await uow.jobs.get_many([first.id, second.id, bare.id, uuid4()])
    found = {job.id: job.detection for job in jobs}
    assert found == {first.id: pdf, second.id: png, bare.id: None}
    assert_utc(database, found[first.id].detected_at)


async def test_every_read_of_jobs_carries_each_ones_detection_result(
    database: UnitOfWorkFactory,
) -> None:
    old = at(-3600)
    seen, bare = make_job(created_at=at(0)), make_job(created_at=at(1))
    running = make_job(status=S.RUNNING, worker_id="w", lease_expires_at=old, created_at=at(2))
    done = make_job(status=S.COMPLETED, updated_at=old, created_at=at(3))
    await store(database, seen, bare, running, done)
    pdf = make_detection()
    async with database() as uow:
        for job in (seen, running, done):
            await uow.detections.add(job.id, pdf)
        # Within the transaction, a read sees the result it has just added.
        assert_detection(await uow.jobs.get(seen.id, for_update=True), pdf)
        await uow.commit()
    async with database(read_only=True) as uow:
        assert_detection(await uow.jobs.get(seen.id), pdf)
        assert_detection(await uow.jobs.get(bare.id), None)
        many = await uow.jobs.get_many([bare.id, seen.id])
        found = await uow.jobs.find(JobQuery(sort=JobSort.OLDEST))
    assert [job.detection for job in many] == [None, pdf]
    assert [job.detection for job in found] == [pdf, None, pdf, pdf]
    async with database() as uow:
        claimed = await uow.jobs.lock_claimable(ClaimFilter(), at(10), 10)
        expired = await uow.jobs.lock_expired(at(10), 10)
        purgeable = await uow.jobs.lock_purgeable(frozenset({S.COMPLETED}), at(0), 10)
    assert [(job.id, job.detection) for job in claimed] == [(seen.id, pdf), (bare.id, None)]
    assert [job.detection for job in expired + purgeable] == [pdf, pdf]


def assert_detection(job: Job | None, expected: DetectionResult | None) -> None:
    assert job is not None
    assert job.detection == expected


# -- idempotency keys -----------------------------------------------------------------


def record(key: str = "key-1", *job_ids: UUID) -> IdempotencyRecord:
    created = datetime(2026, 3, 1, 12, 0, 0, 1, tzinfo=UTC)
    return IdempotencyRecord("jobs", key, "f" * 64, job_ids or (uuid4(), uuid4()), created)


async def test_idempotency_keys_are_stored_found_and_deleted(database: UnitOfWorkFactory) -> None:
    kept = record()
    async with database() as uow:
        assert await uow.idempotency.get("jobs", "key-1") is None
        await uow.idempotency.add(kept)
        await uow.idempotency.add(dataclasses.replace(kept, scope="jobs/batch"))
        await uow.commit()
    async with database() as uow:
        assert await uow.idempotency.get("jobs", "key-1") == kept
        await uow.idempotency.delete("jobs", "key-1")
        await uow.idempotency.delete("jobs", "never-stored")
        assert await uow.idempotency.get("jobs", "key-1") is None
        await uow.commit()
    async with database(read_only=True) as uow:
        assert await uow.idempotency.get("jobs", "key-1") is None
        assert await uow.idempotency.get("jobs/batch", "key-1") is not None


async def test_adding_a_stored_idempotency_key_raises_conflict(
    database: UnitOfWorkFactory,
) -> None:
    async with database() as uow:
        await uow.idempotency.add(record())
        await uow.commit()
    with pytest.raises(IdempotencyConflict):
        async with database() as uow:
            await uow.idempotency.add(record())
    with pytest.raises(IdempotencyConflict):
        async with database() as uow:
            await uow.idempotency.add(record("key-2"))
            await uow.idempotency.add(record("key-2"))


async def test_a_deleted_key_can_be_added_again_in_the_same_unit_of_work(
    database: UnitOfWorkFactory,
) -> None:
    async with database() as uow:
        await uow.idempotency.add(record())
        await uow.commit()
    fresh = record("key-1", uuid4())
    async with database() as uow:
        await uow.idempotency.delete("jobs", "key-1")
        await uow.idempotency.add(fresh)
        await uow.commit()
    async with database(read_only=True) as uow:
        assert await uow.idempotency.get("jobs", "key-1") == fresh
