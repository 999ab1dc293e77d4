#!/usr/bin/env python3
"""Counts the instructions tollgate spends per proxied request.

Starts a small keep-alive upstream and the release binary on loopback (the
binary under callgrind unless --plain), sends a warm-up of requests with one
cached HS256 token, zeroes callgrind's counters, sends --requests more over
one keep-alive connection (with that token; with --distinct a new token
each, so that every request verifies and fills the cache; with --refuse a
token of the refusal floods of benches/load, each answered 401), and dumps
the profile. The instruction count of that dump divided by the request
count is the figure to compare before and after a change: unlike wall time
it barely moves on a busy machine.

    cargo build --release   # with CARGO_PROFILE_RELEASE_DEBUG=line-tables-only
    python3 benches/profile.py --binary target/release/tollgate --out /tmp/cg

Then `callgrind_annotate /tmp/cg/callgrind.out.*` shows where it went.
With --naive it profiles the load benchmark's naive hyper proxy instead
(no checks): the same count for a proxy that is nothing but the HTTP
libraries. Everything listens on 127.0.0.1 (a port the kernel picked) and
every wait is bounded.
"""

import argparse
import base64
import glob
import hashlib
import hmac
import http.client
import http.server
import itertools
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time

SECRET = "profile-secret-of-at-least-thirty-two-bytes!"
# The demo's public keys: random-kid tokens need a key set to miss in.
JWKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "config", "jwks.json")
ISSUER = "https://accounts.chessmate.test"
AUDIENCE = "chessmate-api"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint_hs256(sub, lifetime=3600):
    """Signs an HS256 token the way the provider below accepts it."""
    now = int(time.time())
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims_for(sub, now, lifetime), separators=(",", ":")).encode())
    signing_input = f"{header}.{body}".encode()
    signature = hmac.new(SECRET.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{body}.{b64(signature)}"


def claims_for(sub, now, lifetime):
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "email": f"{sub}@chessmate.test",
        "roles": ["player"],
        "iat": now,
        "exp": now + lifetime,
    }


def refused_tokens(kind, count):
    """Returns `count` tokens the proxy refuses for one reason, as the load
    benchmark's refusal floods send them; random-kid tokens are all
    distinct, as an attacker cycling key ids would send them."""
    if kind == "malformed":
        return ["not-a-jwt.%%%.x"] * count
    if kind == "expired":
        return [mint_hs256("alice", lifetime=-3600)] * count
    if kind == "bad-signature":
        head, body, sig = mint_hs256("alice").split(".")
        return [f"{head}.{body}.{'A' if sig[0] != 'A' else 'B'}{sig[1:]}"] * count
    now = int(time.time())
    out = []
    for at in range(count):
        header = {"alg": "RS256", "typ": "JWT", "kid": f"unknown-{at:016x}"}
        claims = claims_for(f"user-{at}", now, 3600)
        out.append(".".join([
            b64(json.dumps(header, separators=(",", ":")).encode()),
            b64(json.dumps(claims, separators=(",", ":")).encode()),
            b64(os.urandom(256)),
        ]))
    return out


class Upstream(http.server.BaseHTTPRequestHandler):
    """Answers every request with a tiny 200 over keep-alive."""

    protocol_version = "HTTP/1.1"

    def do_GET(self):
        # One write: a head and a body sent apart meet Nagle and delayed
        # ACKs, which would add 40 ms to every request.
        self.wfile.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n"
            b"content-length: 3\r\n\r\nok\n"
        )

    def log_message(self, *args):
        pass


def start_upstream():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def write_config(directory, upstream_port, cache_bytes=None):
    cache = f"max_bytes = {cache_bytes}" if cache_bytes else ""
    text = f"""
service = "profile"
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
algorithms = ["HS256", "RS256"]
secret_env = "PROFILE_SECRET"
jwks_file = "{os.path.normpath(JWKS)}"
[providers.claim_to_headers]
"X-User-Id" = "sub"
"X-User-Email" = "email"
"X-User-Roles" = "roles"
[cache]
{cache}
[log]
level = "info"
access = true
"""
    path = os.path.join(directory, "tollgate.toml")
    with open(path, "w") as handle:
        handle.write(text)
    return path


def wait_for_addresses(log_path, process, deadline_s):
    """Reads the proxy and admin address from the 'tollgate serving' line."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"tollgate exited early with {process.returncode}")
        with open(log_path) as handle:
            for line in handle:
                if '"tollgate serving"' in line:
                    fields = json.loads(line)
                    return fields["listen.addr"], fields["admin.addr"]
        time.sleep(0.1)
    process.kill()
    sys.exit("tollgate did not start in time")


def free_port():
    """Returns a port the kernel just handed out on 127.0.0.1."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port, process, deadline_s):
    """Waits until something accepts on 127.0.0.1:`port`."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"the proxy exited early with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    process.kill()
    sys.exit("the proxy did not start in time")


def send(address, tokens, count, path="/api/games/12345", expect=200):
    """Sends `count` GETs on one keep-alive connection, taking the next of
    `tokens` (an iterator) for each; all must answer `expect`."""
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    for _ in range(count):
        headers = {"authorization": f"Bearer {next(tokens)}", "accept": "application/json"}
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        if response.status != expect:
            sys.exit(f"unexpected status {response.status}")
    connection.close()


def process_cost(pid):
    """Returns CPU seconds (user + system) and context switches of every
    thread of `pid` so far, from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    switches = 0
    for status in glob.glob(f"/proc/{pid}/task/*/status"):
        try:
            with open(status) as handle:
                for line in handle:
                    if "ctxt_switches:" in line:
                        switches += int(line.split()[-1])
        except FileNotFoundError:
            continue  # a thread that ended meanwhile
    return cpu, switches


def callgrind_control(*args):
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=120)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default="target/release/tollgate")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--out", default=None, help="directory for callgrind.out")
    parser.add_argument("--plain", action="store_true",
                        help="no valgrind: report CPU time and context switches instead")
    parser.add_argument("--distinct", action="store_true",
                        help="a new token for every measured request (each one verified "
                             "and cached), instead of one cached token")
    parser.add_argument("--refuse", choices=["malformed", "expired", "bad-signature",
                                             "random-kid"],
                        help="measure refusals of this kind (401) instead")
    parser.add_argument("--naive", metavar="BINARY",
                        help="profile the load benchmark's naive proxy (cargo build --release "
                             "--example naive-proxy) with no checks instead of tollgate: the "
                             "floor of the HTTP libraries")
    args = parser.parse_args()
    if args.naive and (args.distinct or args.refuse):
        parser.error("--naive checks no token: it takes neither --distinct nor --refuse")

    upstream = start_upstream()
    work = tempfile.mkdtemp(prefix="tollgate-profile-")
    out = args.out or work
    os.makedirs(out, exist_ok=True)
    for old in glob.glob(os.path.join(out, "callgrind.out.*")):
        os.remove(old)
    config = write_config(work, upstream.server_address[1])
    log_path = os.path.join(work, "tollgate.log")
    command = [args.binary, "run", "--config", config]
    if args.naive:
        naive_port = free_port()
        command = [args.naive, str(naive_port), str(upstream.server_address[1])]
    if not args.plain:
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}/callgrind.out.%p",
        ] + command
    env = dict(os.environ, PROFILE_SECRET=SECRET)
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.DEVNULL, env=env)
    try:
        if args.naive:
            proxy = f"127.0.0.1:{naive_port}"
            wait_for_port(naive_port, process, 120)
        else:
            proxy, _admin = wait_for_addresses(log_path, process, 120)
        token = mint_hs256("alice")
        send(proxy, itertools.repeat(token), args.warmup)
        # Minted before the counters start, so the measured stretch is only
        # the requests.
        expect = 200
        if args.refuse:
            measured, expect = iter(refused_tokens(args.refuse, args.requests)), 401
        elif args.distinct:
            measured = iter([mint_hs256(f"user-{at}") for at in range(args.requests)])
        else:
            measured = itertools.repeat(token)
        if not args.plain:
            callgrind_control("--zero", str(process.pid))
        started = time.monotonic()
        cost_before = process_cost(process.pid)
        send(proxy, measured, args.requests, expect=expect)
        cost_after = process_cost(process.pid)
        elapsed = time.monotonic() - started
        if not args.plain:
            callgrind_control("--dump=measured", str(process.pid))
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
        upstream.shutdown()

    print(f"{args.requests} requests in {elapsed:.2f}s")
    if args.plain:
        # Under valgrind these would count valgrind's own work.
        cpu = (cost_after[0] - cost_before[0]) / args.requests * 1e6
        switches = (cost_after[1] - cost_before[1]) / args.requests
        print(f"proxy CPU us/request: {cpu:.1f}; context switches/request: {switches:.2f}")
        return
    dumps = sorted(glob.glob(os.path.join(out, "callgrind.out.*")))
    total = None
    for dump in dumps:
        with open(dump) as handle:
            text = handle.read()
        if "measured" not in text.split("\nevents:", 1)[0]:
            continue
        match = re.search(r"^summary:\s+(\d+)", text, re.M) or re.search(
            r"^totals:\s+(\d+)", text, re.M
        )
        if match:
            total = int(match.group(1))
            print(f"profile: {dump}")
    if total is None:
        sys.exit("no measured dump found")
    print(f"instructions/request: {total / args.requests:,.0f}")


if __name__ == "__main__":
    main()
