"""The folders of a local file store by age, for the orphan sweep.

Only directories named by a canonical uuid count: anything else in the root (files,
other names, symbolic links, whatever they point at) is neither listed nor entered.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from uuid import UUID

SCAN_CHUNK = 256  # entries of the root read per hop to a worker thread


def folder_id(name: str) -> UUID | None:
    """The uuid that `name` spells in canonical form (as keys do), or None."""
    try:
        uuid = UUID(name)
    except ValueError:
        return None
    return uuid if str(uuid) == name else None


async def old_folders(root: Path, older_than: datetime) -> AsyncIterator[UUID]:
    """The uuid folders of `root` in which nothing changed since `older_than`."""
    cutoff = older_than.timestamp()
    try:
        scan = await asyncio.to_thread(os.scandir, root)
    except FileNotFoundError:
        return
    try:
        more = True
        while more:
            found, more = await asyncio.to_thread(_next_old, scan, cutoff)
            for folder in found:
                yield folder
    finally:
        scan.close()


def _next_old(entries: Iterator[os.DirEntry[str]], cutoff: float) -> tuple[list[UUID], bool]:
    """The old folders among the next `SCAN_CHUNK` entries, and whether any are left."""
    found: list[UUID] = []
    for _ in range(SCAN_CHUNK):
        entry = next(entries, None)
        if entry is None:
            return found, False
        folder = folder_id(entry.name)
        if folder is None:
            continue
        try:
            if entry.is_dir(follow_symlinks=False) and _changed(entry) < cutoff:
                found.append(folder)
        except FileNotFoundError:
            pass  # removed meanwhile: by a delete, or an abort
    return found, True


def _changed(folder: os.DirEntry[str]) -> float:
    """When a folder or anything in it last changed: a file being written changes its
    own mtime, not its folder's, so a long upload must look young by its file."""
    newest = folder.stat(follow_symlinks=False).st_mtime
    with os.scandir(folder.path) as entries:
        for entry in entries:
            newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
    return newest
