"""The shape of an upload form, for the OpenAPI description only.

`POST /api/v1/upload` parses its body as a stream (`chute.entrypoints.http.multipart`), so no
model validates it; this one describes it, from the same enums as the JSON bodies, and
`chute.entrypoints.http.openapi` files it among the description's components.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from chute.domain import DEFAULT_QUEUE, Mode, Priority
from chute.domain import validation as rules
from chute.entrypoints.http.values import AwareTime, QueueName
from pydantic import BaseModel, ConfigDict, Field


class FormFlag(StrEnum):
    """A yes or no sent as a form field's text."""

    TRUE = "true"
    FALSE = "false"


class UploadForm(BaseModel):
    """The parts of an upload: one or more files, and optional text fields. Any other
    part is refused (422)."""

    model_config = ConfigDict(extra="forbid")

    file: list[bytes] = Field(
        min_length=1,
        description="one or more files (at most CHUTE_MAX_FILES_PER_UPLOAD, 20 by default), "
        "each sent with a file name",
    )
    priority: Priority = Priority.NORMAL
    mode: Mode = Mode.AUTO
    detect: FormFlag = Field(
        FormFlag.TRUE,
        description="`false`: the job's mime_type is the type the part declares, and no "
        "detection is stored",
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        description=f"any JSON object of at most {rules.MAX_METADATA_BYTES // 1024} KiB, "
        "sent as a part of type application/json (or as text)",
        examples=[{"tenant": "acme"}],
    )
    queue: QueueName = Field(
        DEFAULT_QUEUE, description="1 to 64 characters of a-z, 0-9, `_`, `.` and `-`"
    )
    run_after: AwareTime | None = Field(
        None,
        description="not claimed before this time (RFC 3339 with offset); a past time "
        "means now; at most 366 days ahead",
    )


# How each part is sent, beside the schema of the form.
UPLOAD_ENCODING: dict[str, Any] = {
    "file": {"contentType": "application/octet-stream"},
    "metadata": {"contentType": "application/json"},
}
