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
import signal
import statistics
import subprocess
import tempfile
import time
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
    cycle: bool = False  # wrk pool sent round and round on purpose: repeats expected


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
    # The cache-size scenario only: tollgate's figures after the run.
    rss_mib: float | None = None
    hit_ratio: float | None = None
    cache_entries: int | None = None

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


def _wrk_command(load, port, seconds, ready, once=False):
    """Returns wrk's command line and environment for `load`."""
    threads = max(1, min(2, load.conns))
    env = dict(os.environ, BENCH_EXPECT=str(load.expect), BENCH_THREADS=str(threads),
               BENCH_TOKEN=load.token or "", BENCH_POOL=load.pool or "",
               BENCH_READY=ready if load.pool else "", BENCH_ONCE="1" if once else "")
    cmd = [require_tool("wrk"), "-t", str(threads), "-c", str(load.conns), "-d", f"{int(seconds)}s",
           "--timeout", "5s", "-s", str(LUA), f"http://127.0.0.1:{port}/"]
    return cmd, env


def _wrk_sample(returncode, stdout, stderr):
    line = next((ln for ln in stdout.splitlines() if ln.startswith("BENCH_RESULT ")), None)
    if returncode != 0 or line is None:
        raise BenchError(f"wrk failed ({returncode}): {stderr[-500:]}{stdout[-500:]}")
    result = json.loads(line.split(" ", 1)[1])
    return Sample(
        requests=result["requests"], seconds=result["duration_us"] / 1e6,
        p50_ms=result["p50_us"] / 1e3, p99_ms=result["p99_us"] / 1e3,
        bad_status=result["bad_status"], socket_errors=result["socket_errors"],
        pool_wraps=result["pool_wraps"],
    )


def _wrk(load, port, seconds):
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as scratch:
        cmd, env = _wrk_command(load, port, seconds, os.path.join(scratch, "ready"))
        done = subprocess.run(cmd, capture_output=True, text=True, env=env,
                              timeout=_timeout(seconds))
    return _wrk_sample(done.returncode, done.stdout, done.stderr)


def send_pool_once(load, port, progress, wanted, bound):
    """Sends every token of `load.pool` once with wrk; returns (Sample, progress seen).

    wrk runs for a duration, not a count: each thread stops after its slice
    (BENCH_ONCE) and wrk is interrupted (SIGINT, after which it prints its
    summary) as soon as `progress()` reaches `wanted`, when progress stalls
    for 15 s after it started, or after `bound` seconds at most.
    """
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as scratch:
        cmd, env = _wrk_command(load, port, bound, os.path.join(scratch, "ready"), once=True)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env, start_new_session=True)
        try:
            seen = _watch(proc, progress, wanted, time.monotonic() + bound)
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return _wrk_sample(proc.returncode, stdout, stderr), seen


def _watch(proc, progress, wanted, deadline):
    seen, last_change = 0, time.monotonic()
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.5)
        now_seen = progress()
        if now_seen >= wanted:
            return now_seen
        if now_seen != seen:
            seen, last_change = now_seen, time.monotonic()
        elif seen and time.monotonic() - last_change > 15:
            break
    return progress()


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


def scrape_metrics(port):
    """Returns {metric name: value} from /metrics on 127.0.0.1:`port`, label sets summed."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/metrics")
        response = conn.getresponse()
        text = response.read().decode()
    finally:
        conn.close()
    if response.status != 200:
        raise BenchError(f"/metrics on port {port} answered {response.status}")
    values = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        name = name.split("{", 1)[0]
        try:
            values[name] = values.get(name, 0.0) + float(value)
        except ValueError:
            continue
    return values


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None
