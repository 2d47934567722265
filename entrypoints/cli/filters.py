"""The job filters as command-line flags (`chute jobs list|cancel|retry`, `chute watch`),
and the `k=v` and time values the client commands take."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from chute.application import JobFilter
from chute.domain import JobStatus, Mode, Priority, SourceType

E = TypeVar("E", bound=StrEnum)


ENUM_FILTERS: dict[str, type[StrEnum]] = {
    "--status": JobStatus,
    "--priority": Priority,
    "--source-type": SourceType,
    "--mode": Mode,
}


def add_filters(parser: argparse.ArgumentParser) -> None:
    """The list filters of `GET /api/v1/jobs`, each flag repeatable where the API's is."""
    group = parser.add_argument_group("filters (repeat a flag for any of its values)")
    for flag, kind in ENUM_FILTERS.items():
        name = flag.removeprefix("--").replace("-", " ")
        metavar = name.split()[-1].upper()
        group.add_argument(flag, action="append", type=one_of(kind), metavar=metavar,
                           help=choices(name, kind))  # fmt: skip
    group.add_argument("--queue", action="append", metavar="NAME", help="queue name")
    group.add_argument("--mime-type", metavar="TYPE", help="detected type: exact, or type/*")
    group.add_argument(
        "--created-after",
        type=moment,
        metavar="TIME",
        help="created at or after (RFC 3339 with an offset)",
    )
    group.add_argument(
        "--created-before",
        type=moment,
        metavar="TIME",
        help="created before (RFC 3339 with an offset)",
    )
    add_metadata_filter(group)


def add_metadata_filter(parser: Any) -> None:
    parser.add_argument(
        "--metadata",
        action="append",
        type=pair,
        default=[],
        metavar="K=V",
        help="metadata key K has the value V (repeatable, at most 5)",
    )


def job_filter(args: argparse.Namespace) -> JobFilter:
    """The filter the flags of `add_filters` name; the server checks the values."""
    return JobFilter(
        statuses=frozenset(args.status or ()),
        queues=frozenset(args.queue or ()),
        priorities=frozenset(args.priority or ()),
        source_types=frozenset(args.source_type or ()),
        modes=frozenset(args.mode or ()),
        mime_type=args.mime_type,
        created_after=args.created_after,
        created_before=args.created_before,
        metadata=tuple(sorted(args.metadata)),
    )


def has_filters(args: argparse.Namespace) -> bool:
    return any(
        getattr(args, name)
        for name in (
            "status",
            "queue",
            "priority",
            "source_type",
            "mode",
            "mime_type",
            "created_after",
            "created_before",
            "metadata",
        )
    )


def pair(text: str) -> tuple[str, str]:
    """`key=value`, as the text the metadata filters compare."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE")
    return key, value


def metadata_value(text: str) -> Any:
    """A value of `chute submit --metadata`: JSON when it parses as a number, true, false
    or null (`batch=7`), else the text itself (`tenant=acme`)."""
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if not isinstance(value, dict | list | str) else text


def moment(text: str) -> datetime:
    """A time with its UTC offset (RFC 3339; `Z` for UTC)."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected a time like 2026-12-01T09:00:00Z"
        ) from None
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r}: give a UTC offset (Z or +01:00)")
    return value


def one_of(kind: type[E]) -> Callable[[str], E]:
    """An argument type of the values of `kind`, whose error names them."""

    def parse(text: str) -> E:
        try:
            return kind(text)
        except ValueError:
            names = ", ".join(member.value for member in kind)
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {names}") from None

    return parse


def choices(name: str, values: Any) -> str:
    return f"{name}: {', '.join(v.value for v in values)}"
