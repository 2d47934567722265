"""A throw-away PostgreSQL server for tests, from the binaries installed on the machine.

Any conftest can use it:

    with postgres_server() as server_url:          # CHUTE_TEST_POSTGRES_URL, or a new server
        url = await create_database(server_url, "chute_e2e")

The server listens on 127.0.0.1 only, on a free port, with its socket, data and log
in one temporary folder that is removed when it stops. It trades durability for
speed (fsync off): it holds test data only.
"""

from __future__ import annotations

import glob
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import make_url

ENV_URL = "CHUTE_TEST_POSTGRES_URL"
SUPERUSER = "postgres"
SERVER_OPTIONS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
}


class PostgresUnavailable(RuntimeError):
    """The test server could not be started; the message holds its log."""


@contextmanager
def postgres_server() -> Iterator[str]:
    """Yield the URL of a server to test on: `$CHUTE_TEST_POSTGRES_URL`, else a new one."""
    given = os.environ.get(ENV_URL)
    if given:
        yield given
        return
    folder = Path(tempfile.mkdtemp(prefix="chute-pg-"))
    try:
        yield _start(folder)
    finally:
        _stop(folder)


def _stop(folder: Path) -> None:
    try:
        if (folder / "data" / "postmaster.pid").exists():
            _run_as_owner(["pg_ctl", "stop", "-D", str(folder / "data"), "-m", "immediate"], folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def create_database(server_url: str, name: str | None = None) -> str:
    """Create a new, empty database on the server and return its `postgresql+asyncpg` URL."""
    import asyncpg  # imported here so that modules using only the server start stay light

    name = name or f"chute_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return _with_database(server_url, name)


async def drop_database(server_url: str, name: str) -> None:
    """Drop a database made by `create_database`, ending its open sessions."""
    import asyncpg

    conn = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


# -- starting a server ------------------------------------------------------------------


def _start(folder: Path) -> str:
    data, log = folder / "data", folder / "server.log"
    if os.geteuid() == 0:
        # initdb refuses to run as root: the server runs as the postgres user.
        shutil.chown(folder, SUPERUSER, SUPERUSER)
    initdb = ["initdb", "-D", str(data), "-U", SUPERUSER, "--auth=trust"]
    _check(_run_as_owner([*initdb, "-E", "UTF8", "--locale=C", "--no-sync"], folder), log)
    for _ in range(3):  # the free port may be taken between our probe and the server's bind
        port = free_port()
        options = {**SERVER_OPTIONS, "port": str(port), "unix_socket_directories": str(folder)}
        flags = " ".join(f"-c {key}={value}" for key, value in options.items())
        start = ["pg_ctl", "start", "-D", str(data), "-l", str(log), "-w", "-t", "30"]
        if _run_as_owner([*start, "-o", flags], folder).returncode == 0:
            return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{port}/postgres"
    raise PostgresUnavailable(f"PostgreSQL did not start; its log:\n{_read(log)}")


def _run_as_owner(argv: list[str], folder: Path) -> subprocess.CompletedProcess[str]:
    argv = [_binary(argv[0]), *argv[1:]]
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        if runuser:
            argv = [runuser, "-u", SUPERUSER, "--", *argv]
        else:
            argv = ["su", SUPERUSER, "-s", "/bin/sh", "-c", shlex.join(argv)]
    # Run from the server's folder: the postgres user may not enter the current one.
    return subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=60)


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True):
        return candidate
    raise PostgresUnavailable(f"{name} is not installed (looked on PATH and /usr/lib/postgresql)")


def _check(done: subprocess.CompletedProcess[str], log: Path) -> None:
    if done.returncode != 0:
        raise PostgresUnavailable(
            f"{done.args} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}\n{_read(log)}"
        )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return "(no log was written)"


def asyncpg_dsn(url: str) -> str:
    """The libpq DSN (postgresql://...) of a SQLAlchemy URL, for asyncpg."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _with_database(url: str, name: str) -> str:
    parsed = make_url(url).set(drivername="postgresql+asyncpg", database=name)
    return parsed.render_as_string(hide_password=False)
