"""`stack`: the server stack, chosen by measurement. POST /api/v1/jobs on SQLite, chute
at its default log level (INFO), against the no-op app on the same stack, for each
stack of `bench/stack_server.py` (uvicorn with asyncio or uvloop, h11 or httptools;
granian), under wrk's two shapes (1 thread x 64 connections, 2 threads x 32).

What a user gets is the absolute rate: the figure is each stack's create rate against
the default stack's, same shape, same run; the ratio to the no-op on the same stack is
reported beside it. Stacks are loaded in turn, the order reversed every other round,
and each side's best round counts.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bench.core import Context, Figure, recorded
from bench.create import PATH, SHAPES
from bench.data import create_body
from bench.load import LoadResult
from bench.procs import Server, base_env, chute_env, serving
from bench.runs import capture, posted
from bench.stack_server import DEFAULT, STACKS
from tests.pg import free_port

Key = tuple[str, str, tuple[int, int]]  # stack, app, shape


@contextmanager
def _server(folder: Path, stack: str, app: str) -> Iterator[Server]:
    port = free_port()
    if app == "serve":
        url = f"sqlite+aiosqlite:///{folder}/chute-{stack}.db"
        env = chute_env(url, folder / f"storage-{stack}", log_level="INFO")
    else:
        env = base_env(BENCH_CANNED_DIR=str(folder / "canned"), CHUTE_LOG_LEVEL="WARNING")
    env["BENCH_STACK"] = stack
    argv = [sys.executable, "-m", "bench.stack_server", app, "--port", str(port)]
    with serving(f"{app}-{stack}", argv, env, port, folder) as server:
        yield server


def run(ctx: Context) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="chute-bench-") as tmp, recorded("stack", ctx) as data:
        folder, body = Path(tmp), create_body()
        best: dict[Key, LoadResult] = {}
        data["rounds"] = []
        with ExitStack() as stack:
            servers = {
                (name, app): stack.enter_context(_server(folder, name, app))
                for name in STACKS
                for app in ("serve", "noop")
            }
            for name in STACKS:  # each stack's no-op answers what chute answered on it
                capture(servers[name, "serve"], folder / "canned", "POST", PATH, body)
            for n in range(ctx.sizes.rounds):
                order = list(servers) if n % 2 == 0 else list(reversed(servers))
                one = {}
                for shape in SHAPES:
                    for name, app in order:
                        threads, connections = shape
                        result = posted(
                            ctx, servers[name, app], PATH, folder, body,
                            connections=connections, threads=threads,
                        )  # fmt: skip
                        one[f"{name} {app} {threads}x{connections}"] = result.as_json()
                        key = (name, app, shape)
                        if key not in best or result.rps > best[key].rps:
                            best[key] = result
                data["rounds"].append(one)
        figures = _figures(best, ctx.sizes.rounds)
        data["figures"] = figures
        return figures


def _figures(best: dict[Key, LoadResult], rounds: int) -> list[Figure]:
    figures = []
    for shape in SHAPES:
        label = f"{shape[0]}x{shape[1]}"
        default = best[DEFAULT, "serve", shape]
        for name in STACKS:
            chute, noop = best[name, "serve", shape], best[name, "noop", shape]
            figures.append(
                Figure(
                    f"stack.{name}.{label}.rps",
                    chute.rps,
                    "req/s",
                    default.rps,
                    f"chute on {DEFAULT}",
                    note=f"create, SQLite, INFO logs; best of {rounds} rounds",
                )
            )
            figures.append(
                Figure(
                    f"stack.{name}.{label}.noop_ratio",
                    chute.rps,
                    "req/s",
                    noop.rps,
                    f"no-op on {name}",
                    note=f"server CPU {chute.cpu_ms_per_request or 0:.3f} against "
                    f"{noop.cpu_ms_per_request or 0:.3f} ms a request",
                )
            )
    return figures
