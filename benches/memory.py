#!/usr/bin/env python3
"""Measures tollgate's resident memory: idle, full of cached tokens, and
holding many idle keep-alive connections.

    cargo build --release
    python3 benches/memory.py --binary target/release/tollgate

Starts a small keep-alive upstream and the release binary on loopback (port
0), then reads VmRSS from /proc/<pid>/status:

1. at idle, once the binary serves;
2. after --tokens distinct HS256 tokens (default 100,000), each sent once
   and so verified and cached (requests are pipelined on a few
   connections; the cache is sized so that none is evicted, and the
   tollgate_cache_entries gauge is read back to prove it);
3. while --connections idle keep-alive connections (default 10,000) are
   open, each having sent one request.

Targets (issue 4): idle < 20 MiB, 100k cached tokens < 100 MiB. Needs only
python3's standard library. Every wait is bounded; everything listens on
127.0.0.1.
"""

import argparse
import base64
import hashlib
import hmac
import http.server
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time

SECRET = "memory-secret-of-at-least-thirty-two-bytes!!"
ISSUER = "https://accounts.chessmate.test"
AUDIENCE = "chessmate-api"
PIPELINE = 200
DEADLINE_S = 600


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


HEADER = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())


def mint(sub, now):
    """Signs a distinct HS256 token for `sub` with the shared secret."""
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "email": f"{sub}@chessmate.test",
        "roles": ["player"],
        "iat": now,
        "exp": now + 3600,
    }
    body = b64(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{HEADER}.{body}".encode()
    signature = hmac.new(SECRET.encode(), signing_input, hashlib.sha256).digest()
    return f"{HEADER}.{body}.{b64(signature)}"


class Upstream(http.server.BaseHTTPRequestHandler):
    """Answers every request with a tiny 200 over keep-alive, in one write."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.wfile.write(b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nok\n")

    def log_message(self, *args):
        pass


def start_upstream():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def write_config(directory, upstream_port, capacity, max_bytes):
    text = f"""
service = "memory"
[listen]
address = "127.0.0.1:0"
drain_timeout = "1s"
[admin]
address = "127.0.0.1:0"
[upstream]
url = "http://127.0.0.1:{upstream_port}"
[[providers]]
name = "accounts"
issuer = "{ISSUER}"
audiences = ["{AUDIENCE}"]
algorithms = ["HS256"]
secret_env = "MEMORY_SECRET"
[providers.claim_to_headers]
"X-User-Id" = "sub"
"X-User-Email" = "email"
"X-User-Roles" = "roles"
[cache]
capacity = {capacity}
max_bytes = {max_bytes}
[log]
level = "warn"
"""
    path = os.path.join(directory, "tollgate.toml")
    with open(path, "w") as handle:
        handle.write(text)
    return path


def raise_fd_limit(wanted):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def start(binary, config, log_path):
    env = dict(os.environ, MEMORY_SECRET=SECRET, RUST_LOG="warn,tollgate=info")
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [binary, "run", "--config", config],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"tollgate exited with {process.returncode}; see {log_path}")
        with open(log_path) as handle:
            for line in handle:
                if '"tollgate serving"' in line:
                    fields = json.loads(line)
                    return process, fields["listen.addr"], fields["admin.addr"]
        time.sleep(0.05)
    process.kill()
    sys.exit("tollgate did not start in time")


def split(address):
    host, port = address.rsplit(":", 1)
    return host, int(port)


def request_bytes(token):
    return (
        f"GET /api/games/1 HTTP/1.1\r\nhost: game.test\r\n"
        f"authorization: Bearer {token}\r\n\r\n"
    ).encode()


def read_answers(sock, count):
    """Reads `count` pipelined answers; returns how many were 200."""
    data = b""
    ok = 0
    seen = 0
    while seen < count:
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        data += chunk
        # Every answer here is small and has a content-length; split on
        # whole answers and keep the rest.
        while True:
            end = data.find(b"\r\n\r\n")
            if end < 0:
                break
            head = data[:end].decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(data) < end + 4 + length:
                break
            seen += 1
            ok += head.startswith("HTTP/1.1 200")
            data = data[end + 4 + length :]
    return ok


def fill_cache(address, tokens, workers):
    """Sends each token once, pipelined, on `workers` connections."""
    results = [0] * workers

    def work(index):
        mine = tokens[index::workers]
        sock = socket.create_connection(split(address), timeout=60)
        for at in range(0, len(mine), PIPELINE):
            batch = mine[at : at + PIPELINE]
            sock.sendall(b"".join(request_bytes(token) for token in batch))
            results[index] += read_answers(sock, len(batch))
        sock.close()

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE_S)
    return sum(results)


def cache_entries(admin):
    sock = socket.create_connection(split(admin), timeout=10)
    sock.sendall(b"GET /metrics HTTP/1.1\r\nhost: admin\r\nconnection: close\r\n\r\n")
    data = b""
    while chunk := sock.recv(1 << 16):
        data += chunk
    sock.close()
    for line in data.decode().splitlines():
        if line.startswith("tollgate_cache_entries"):
            return int(float(line.split()[-1]))
    return None


def hold_connections(address, token, count):
    """Opens `count` connections, each answered once and then left idle."""
    held = []
    request = request_bytes(token)
    for _ in range(count):
        try:
            sock = socket.create_connection(split(address), timeout=10)
            sock.sendall(request)
            if read_answers(sock, 1) != 1:
                sock.close()
                break
        except OSError as error:
            print(f"stopped at {len(held)} connections: {error}", file=sys.stderr)
            break
        held.append(sock)
    return held


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default="target/release/tollgate")
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()

    limit = raise_fd_limit(args.connections + 1024)
    if limit < args.connections + 100:
        sys.exit(f"open-file limit {limit} is too low for {args.connections} connections")

    upstream = start_upstream()
    work = tempfile.mkdtemp(prefix="tollgate-memory-")
    # Sized so that no token is evicted: the figure is for all of them held.
    max_bytes = max(args.tokens * 2048, 64 << 20)
    # Twice the count: quick_cache's shards fill unevenly, and at exactly
    # --tokens a few hundred would be evicted.
    config = write_config(work, upstream.server_address[1], args.tokens * 2, max_bytes)
    process, address, admin = start(args.binary, config, os.path.join(work, "tollgate.log"))
    rows = []
    try:
        time.sleep(1)
        rows.append(("idle", rss_kib(process.pid), "-"))

        now = int(time.time())
        tokens = [mint(f"user-{at}", now) for at in range(args.tokens)]
        started = time.monotonic()
        ok = fill_cache(address, tokens, args.workers)
        elapsed = time.monotonic() - started
        entries = cache_entries(admin)
        rows.append(
            (
                f"{args.tokens:,} distinct tokens sent",
                rss_kib(process.pid),
                f"{ok:,} answered 200 in {elapsed:.0f}s; {entries:,} cached",
            )
        )

        held = hold_connections(address, tokens[0], args.connections)
        time.sleep(1)
        rows.append(
            (
                f"{len(held):,} idle keep-alive connections",
                rss_kib(process.pid),
                f"{len(held):,} open",
            )
        )
        for sock in held:
            sock.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        upstream.shutdown()

    print("| state | VmRSS (MiB) | note |")
    print("|---|---|---|")
    for state, kib, note in rows:
        print(f"| {state} | {kib / 1024:.1f} | {note} |")


if __name__ == "__main__":
    main()
