"""`python -m bench`: run the benchmarks, print one summary table, write results/summary.json.

python -m bench                   # every benchmark, sizes of `make bench`
python -m bench --full            # adds the 1M-row list cases and a 1 GiB upload
python -m bench --only list       # one benchmark (repeatable)
python -m bench --quick           # tiny sizes, to try the scripts (figures mean little)
python -m bench --only create --profile   # with py-spy profiles of chute (results/*.top.txt)
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
import traceback

from chute.adapters.s3 import settle

from bench.core import Context, Figure, Sizes, environment, load_average, write_json
from bench.report import markdown, table

BENCHMARKS = (
    "create", "stack", "parts", "batch", "list", "upload", "workers", "remote", "queues",
    "bulkretry", "detection", "s3ingest", "s3upload", "schedules", "streams", "webhooks",
    "console", "submit",
)  # fmt: skip
MODULES = {"list": "listing"}  # `list` is a builtin: the module is bench/listing.py


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="add the 1M-row and 1 GiB cases")
    parser.add_argument("--only", action="append", choices=BENCHMARKS, help="run only this one")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to try the scripts")
    parser.add_argument("--profile", action="store_true", help="py-spy the server under load")
    return parser.parse_args(argv)


def run_one(name: str, ctx: Context) -> tuple[list[Figure], str | None]:
    module = importlib.import_module(f"bench.{MODULES.get(name, name)}")
    print(f"\n== {name} (load {_load()})", flush=True)
    started = time.monotonic()
    try:
        figures: list[Figure] = module.run(ctx)
    except Exception:
        error = traceback.format_exc()
        print(error, file=sys.stderr, flush=True)
        return [Figure(f"{name}.failed", None, "", note=error.splitlines()[-1])], error
    print(table(figures))
    print(
        f"   ({time.monotonic() - started:.0f} s, load {_load()}; {_noise(ctx, name)})", flush=True
    )
    return figures, None


def _noise(ctx: Context, name: str) -> str:
    found = ctx.noise.get(name)
    if not found:
        return "other processes: not measured"
    busiest = ", ".join(f"{b['command'][:40]} {b['cores']}" for b in found["busiest"][:2])
    return f"other processes used {found['cores']} cores" + (f": {busiest}" if busiest else "")


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in load_average())


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    sizes = Sizes.of(full=args.full, quick=args.quick)
    ctx = Context(sizes, full=args.full, profile=args.profile)
    started, load_before = time.monotonic(), load_average()
    figures: list[Figure] = []
    failed: dict[str, str] = {}
    try:
        for name in args.only or BENCHMARKS:
            found, error = run_one(name, ctx)
            figures += found
            if error:
                failed[name] = error
    finally:
        ctx.close()
    seconds = time.monotonic() - started
    before = " ".join(f"{x:.2f}" for x in load_before)
    print(f"\n== summary ({seconds:.0f} s; load {before} before, {_load()} after)")
    for name, noise in ctx.noise.items():
        print(f"   {name}: other processes used {noise['cores']} cores")
    print(table(figures))
    write_json(
        "summary.json",
        {
            "environment": environment(),
            "full": args.full,
            "quick": args.quick,
            "seconds": round(seconds, 1),
            "load_before": load_before,
            "load_after": load_average(),
            "figures": figures,
            "failed": failed,
            "markdown": markdown(figures),
            "other_processes": ctx.noise,
        },
    )
    return 1 if failed else 0


if __name__ == "__main__":
    code = main()
    settle()  # the S3 benchmarks used obstore: let its threads end before the interpreter
    raise SystemExit(code)
