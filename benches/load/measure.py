"""One measurement: load one running configuration with one tool, and charge CPU.

Three load generators, all bounded by a duration:
- wrk (closed loop, HTTP/1.1 keep-alive) with bench.lua, which counts
  responses whose status is not the expected one;
- oha with `-q RATE --latency-correction` (open loop: latency is measured
  from when each request was due, so a stall is not hidden);
- h2load (HTTP/2 prior knowledge), with a per-request log for percentiles.
"""

import http.client
import json
import os
import statistics
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from procs import BenchError, require_tool, tree_cpu_seconds

LUA = Path(__file__).resolve().parent / "bench.lua"


@dataclass
class Load:
    """What to send: tool, connections, token (fixed or pool), expected status."""

    tool: str  # wrk, oha, h2load
    conns: int
    token: str | None = None
    pool: str | None = None
    expect: int = 200
    rate: int | None = None  # oha only
    streams: int = 1  # h2load only: concurrent streams per connection


@dataclass
class Sample:
    """The figures of one run."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    bad_status: int
    socket_errors: int = 0
    pool_wraps: int = 0
    cpu_us_per_req: float | None = None
    notes: list = field(default_factory=list)

    @property
    def rps(self):
        return self.requests / self.seconds if self.seconds else 0.0


def run_load(load, port, seconds, cpu_pid=None):
    """Runs `load` against 127.0.0.1:`port` for `seconds`, charging `cpu_pid`'s tree."""
    before = tree_cpu_seconds(cpu_pid) if cpu_pid else None
    runner = {"wrk": _wrk, "oha": _oha, "h2load": _h2load}[load.tool]
    sample = runner(load, port, seconds)
    if cpu_pid:
        spent = tree_cpu_seconds(cpu_pid) - before
        sample.cpu_us_per_req = spent * 1e6 / sample.requests if sample.requests else None
    return sample


def _timeout(seconds):
    return seconds + 60


def _wrk(load, port, seconds):
    threads = max(1, min(2, load.conns))
    env = dict(os.environ, BENCH_EXPECT=str(load.expect), BENCH_THREADS=str(threads),
               BENCH_TOKEN=load.token or "", BENCH_POOL=load.pool or "")
    cmd = [require_tool("wrk"), "-t", str(threads), "-c", str(load.conns), "-d", f"{int(seconds)}s",
           "--timeout", "5s", "-s", str(LUA), f"http://127.0.0.1:{port}/"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env,
                          timeout=_timeout(seconds))
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr[-500:]}{done.stdout[-500:]}")
    result = json.loads(line.split(" ", 1)[1])
    return Sample(
        requests=result["requests"], seconds=result["duration_us"] / 1e6,
        p50_ms=result["p50_us"] / 1e3, p99_ms=result["p99_us"] / 1e3,
        bad_status=result["bad_status"], socket_errors=result["socket_errors"],
        pool_wraps=result["pool_wraps"],
    )


def _oha(load, port, seconds):
    cmd = [require_tool("oha"), "--no-tui", "--output-format", "json", "-z", f"{int(seconds)}s",
           "-c", str(load.conns), "-q", str(load.rate), "--latency-correction"]
    if load.token:
        cmd += ["-H", f"Authorization: Bearer {load.token}"]
    cmd.append(f"http://127.0.0.1:{port}/")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=_timeout(seconds))
    if done.returncode != 0:
        raise BenchError(f"oha failed ({done.returncode}): {done.stderr[-500:]}")
    result = json.loads(done.stdout)
    statuses = {int(k): v for k, v in result["statusCodeDistribution"].items()}
    requests = sum(statuses.values())
    # Requests cut off by the deadline are not failures of the proxy.
    errors = {k: v for k, v in result["errorDistribution"].items() if "deadline" not in k}
    pct = result["latencyPercentiles"]
    sample = Sample(
        requests=requests, seconds=result["summary"]["total"],
        p50_ms=(pct.get("p50") or 0) * 1e3, p99_ms=(pct.get("p99") or 0) * 1e3,
        bad_status=requests - statuses.get(load.expect, 0),
        socket_errors=sum(errors.values()),
    )
    achieved = requests / sample.seconds if sample.seconds else 0
    if achieved < 0.95 * load.rate:
        sample.notes.append(f"rate not held: {achieved:.0f}/s")
    return sample


def _h2load(load, port, seconds):
    with tempfile.NamedTemporaryFile("r", suffix=".h2log") as log:
        cmd = [require_tool("h2load"), "-c", str(load.conns), "-m", str(load.streams), "-t", "1",
               "-D", str(int(seconds)), "--log-file", log.name]
        if load.token:
            cmd += ["-H", f"authorization: Bearer {load.token}"]
        cmd.append(f"http://127.0.0.1:{port}/")
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=_timeout(seconds))
        if done.returncode != 0:
            raise BenchError(f"h2load failed ({done.returncode}): {done.stderr[-500:]}")
        latencies, bad = [], 0
        for line in log:
            parts = line.split()
            if len(parts) < 3:
                continue
            latencies.append(int(parts[2]))
            bad += int(parts[1]) != load.expect
    if not latencies:
        raise BenchError(f"h2load completed no request: {done.stdout[-500:]}")
    latencies.sort()
    seconds_run = _h2load_seconds(done.stdout) or seconds
    return Sample(
        requests=len(latencies), seconds=seconds_run,
        p50_ms=latencies[len(latencies) // 2] / 1e3,
        p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] / 1e3,
        bad_status=bad,
    )


def _h2load_seconds(stdout):
    for line in stdout.splitlines():
        if line.startswith("finished in "):
            text = line.split()[2].rstrip(",")
            if text.endswith("ms"):
                return float(text[:-2]) / 1e3
            if text.endswith("s"):
                return float(text[:-1])
    return None


# -- checks before measuring -----------------------------------------------------

def status_of(port, token=None, http2=False):
    """Returns the status of one GET / on 127.0.0.1:`port` with `token`."""
    if http2:
        cmd = [require_tool("h2load"), "-n", "1", "-c", "1", "--log-file", "/dev/stdout"]
        if token:
            cmd += ["-H", f"authorization: Bearer {token}"]
        done = subprocess.run(cmd + [f"http://127.0.0.1:{port}/"], capture_output=True,
                              text=True, timeout=30)
        for line in done.stdout.splitlines():
            parts = line.split("\t")
            if len(parts) >= 3 and parts[1].isdigit():
                return int(parts[1])
        raise BenchError(f"h2load check got no response: {done.stdout[-300:]}")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        conn.request("GET", "/", headers=headers)
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None
