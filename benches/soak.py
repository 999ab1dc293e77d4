#!/usr/bin/env python3
"""Soak test for tollgate: steady mixed traffic for a long time, on loopback.

Starts, on 127.0.0.1 ports the kernel picks, a stand-in upstream and account
store (a separate Python process, so they never compete with the load for
the interpreter lock), then the release binary with a temporary config:
one provider with HS256 secrets in a `secret_file` and RS256 keys in a
`jwks_file`. It then sends, at a steady rate over several keep-alive
connections, a mix of requests whose answer is known in advance:

    valid_hs256   a good HS256 token (a few reused, some fresh)  -> 200
    valid_rs256   a good RS256 token                             -> 200
    bad_signature a good token with its signature altered        -> 401
    expired       a token that expired an hour ago               -> 401
    retired_key   signed by a secret or key rotated out          -> 401
    no_token      no Authorization header                        -> 401
    public        a public route, no token                       -> 200
    login         the account store route, no token              -> 200

Every ~20 s, in turn: the config is reloaded (the file rewritten, or SIGHUP
every other time), the HMAC secret is rotated through the `secret_file`
(new secret listed beside the old one, tokens switch to it once the reload
landed, the old one dropped the next time), and the same for an RSA key in
the `jwks_file`. Tokens signed by what was dropped must then get 401.

At the end it reports the requests sent, every answer that was not the one
expected (by kind), tollgate's RSS after the warm-up and at the end, and
its open file descriptors; it exits 1 if any answer was unexpected, RSS
grew by 10 % or more after the warm-up, descriptors leaked, or tollgate
died. Python standard library only: RSA keys are generated and used with
plain integer arithmetic (PKCS#1 v1.5, enough for test tokens, nothing
else).

    python3 benches/soak.py                 # 10 minutes
    python3 benches/soak.py --duration 60   # a short run
"""

import argparse
import base64
import hashlib
import hmac
import http.client
import http.server
import json
import math
import multiprocessing
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter

ISSUER = "https://accounts.soak.test"
AUDIENCE = "soak-api"
# Share of each kind in the traffic, in percent.
MIX = {
    "valid_hs256": 35,
    "valid_rs256": 20,
    "bad_signature": 5,
    "expired": 10,
    "retired_key": 5,
    "no_token": 10,
    "public": 10,
    "login": 5,
}
EXPECTED = {
    "valid_hs256": 200,
    "valid_rs256": 200,
    "bad_signature": 401,
    "expired": 401,
    "retired_key": 401,
    "no_token": 401,
    "public": 200,
    "login": 200,
}
RSS_GROWTH_LIMIT = 10.0


# --- tokens -----------------------------------------------------------------


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64_int(value):
    return b64(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def signing_input(header, claims):
    def part(value):
        return b64(json.dumps(value, separators=(",", ":")).encode())

    return part(header) + "." + part(claims)


def claims(sub, exp_in=3600):
    now = int(time.time())
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": sub,
        "iat": now,
        "exp": now + exp_in,
        "roles": ["player"],
    }


def hs256(secret, claim_set):
    text = signing_input({"alg": "HS256", "typ": "JWT"}, claim_set)
    mac = hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()
    return text + "." + b64(mac)


SMALL_PRIMES = [p for p in range(3, 2000, 2) if all(p % d for d in range(3, int(p**0.5) + 1, 2))]


def is_probable_prime(n, rounds=32):
    if any(n % p == 0 for p in SMALL_PRIMES):
        return n in SMALL_PRIMES
    d, r = n - 1, 0
    while d % 2 == 0:
        d, r = d // 2, r + 1
    for _ in range(rounds):
        x = pow(secrets.randbelow(n - 3) + 2, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(r - 1):
            x = pow(x, 2, n)
            if x == n - 1:
                break
        else:
            return False
    return True


def prime(bits):
    while True:
        candidate = secrets.randbits(bits) | (3 << (bits - 2)) | 1
        if is_probable_prime(candidate):
            return candidate


class RsaKey:
    """A 2048-bit RSA key for RS256 test tokens (PKCS#1 v1.5 signatures)."""

    DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")

    def __init__(self, kid):
        self.kid = kid
        e = 65537
        while True:
            p, q = prime(1024), prime(1024)
            phi = (p - 1) * (q - 1)
            if p != q and math.gcd(e, phi) == 1:
                break
        self.n, self.e, self.d = p * q, e, pow(e, -1, phi)
        self.size = (self.n.bit_length() + 7) // 8

    def jwk(self):
        return {
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": b64_int(self.n),
            "e": b64_int(self.e),
        }

    def mint(self, claim_set):
        text = signing_input({"alg": "RS256", "typ": "JWT", "kid": self.kid}, claim_set)
        digest = self.DIGEST_INFO + hashlib.sha256(text.encode()).digest()
        padded = b"\x00\x01" + b"\xff" * (self.size - len(digest) - 3) + b"\x00" + digest
        signature = pow(int.from_bytes(padded, "big"), self.d, self.n)
        return text + "." + b64(signature.to_bytes(self.size, "big"))


def tamper(token):
    """The same token with the first signature character changed."""
    head, signature = token.rsplit(".", 1)
    first = "B" if signature[0] == "A" else "A"
    return head + "." + first + signature[1:]


# --- stand-ins ----------------------------------------------------------------


class StandIn(http.server.BaseHTTPRequestHandler):
    """Answers every request 200 with a small body, keeping connections."""

    protocol_version = "HTTP/1.1"
    # Head and body in one write, sent at once: written apart, the body
    # waits for the delayed ACK of the head (40 ms on Linux), and the
    # stand-in, not tollgate, would set every latency.
    wbufsize = 64 * 1024
    disable_nagle_algorithm = True

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = b'{"ok":true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = answer

    def log_message(self, *args):
        pass


def serve_stand_ins(ports):
    """Runs the upstream and account store; sends their ports back."""
    servers = [http.server.ThreadingHTTPServer(("127.0.0.1", 0), StandIn) for _ in range(2)]
    for server in servers:
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
    ports.send([server.server_address[1] for server in servers])
    while True:
        time.sleep(3600)


# --- tollgate -----------------------------------------------------------------

CONFIG = """# soak revision {revision}
service = "soak"

[listen]
address = "127.0.0.1:0"
drain_timeout = "5s"

[admin]
address = "127.0.0.1:0"

[upstream]
url = "http://127.0.0.1:{upstream}"
timeout = "5s"

[account_store]
url = "http://127.0.0.1:{account_store}"
timeout = "5s"

[[providers]]
name = "accounts"
issuer = "{issuer}"
audiences = ["{audience}"]
algorithms = ["HS256", "RS256"]
secret_file = "{secret_file}"
jwks_file = "{jwks_file}"

[providers.claim_to_headers]
"X-User-Id" = "sub"
"X-User-Roles" = "roles"

# Small enough to fill during the warm-up (about 30 fresh tokens a second
# at 400 req/s), so RSS growth after it measures leaks rather than the
# cache filling up.
[cache]
capacity = 500

[[rules]]
path_prefix = "/public/"
public = true

[log]
level = "info"
access = true
"""


class Tollgate:
    """The binary under test, its files and its addresses."""

    def __init__(self, binary, directory, ports):
        self.dir = directory
        self.ports = ports
        self.secret_file = os.path.join(directory, "secrets.txt")
        self.jwks_file = os.path.join(directory, "jwks.json")
        self.config_file = os.path.join(directory, "tollgate.toml")
        self.log_file = os.path.join(directory, "tollgate.log")
        self.revision = 0
        self.missed_reloads = 0
        self.binary = binary
        self.process = None
        self.proxy = self.admin = None

    def write_config(self):
        self.revision += 1
        text = CONFIG.format(
            revision=self.revision,
            upstream=self.ports[0],
            account_store=self.ports[1],
            issuer=ISSUER,
            audience=AUDIENCE,
            secret_file=self.secret_file,
            jwks_file=self.jwks_file,
        )
        replace_file(self.config_file, text)

    def start(self):
        self.write_config()
        log = open(self.log_file, "wb")
        self.process = subprocess.Popen(
            [self.binary, "run", "--config", self.config_file],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={key: value for key, value in os.environ.items() if key != "RUST_LOG"},
        )
        log.close()
        deadline = time.time() + 15
        while time.time() < deadline:
            for line in read_lines(self.log_file):
                if line.get("message") == "tollgate serving":
                    self.proxy = line["listen.addr"]
                    self.admin = line["admin.addr"]
                    return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        with open(self.log_file, errors="replace") as log:
            raise SystemExit("tollgate did not start:\n" + log.read()[-2000:])

    def metric(self, name):
        with urllib.request.urlopen(f"http://{self.admin}/metrics", timeout=5) as response:
            text = response.read().decode()
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name) and not line.startswith("#")
        )

    def wait_reload(self, before, what):
        """Waits until a reload beyond `before` counted `ok`, up to 10 s."""
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.reloads() > before:
                return True
            time.sleep(0.05)
        print(f"  ! {what}: no reload within 10 s", flush=True)
        self.missed_reloads += 1
        return False

    def reloads(self):
        return self.metric('tollgate_config_reloads_total{result="ok"}')

    def rss_kib(self):
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def fds(self):
        return len(os.listdir(f"/proc/{self.process.pid}/fd"))

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                return self.process.wait()
        return self.process.returncode if self.process else None


def replace_file(path, text):
    """Writes a file in one step (write, then rename), as editors do."""
    temporary = path + ".tmp"
    with open(temporary, "w") as handle:
        handle.write(text)
    os.replace(temporary, path)


def read_lines(path):
    with open(path, "rb") as handle:
        for raw in handle:
            try:
                yield json.loads(raw)
            except ValueError:
                continue


# --- keys and their rotation --------------------------------------------------


class Keys:
    """The secrets and RSA keys tollgate holds, and the ones tokens use."""

    def __init__(self, tollgate):
        self.tollgate = tollgate
        self.lock = threading.Lock()
        self.secrets = [secrets.token_urlsafe(48)]
        self.rsa = [RsaKey("soak-rsa-1")]
        self.rotations = Counter()
        # Tokens signed by secrets and keys tollgate no longer holds; until
        # the first one is rotated out, by a secret it never held.
        self.retired = [hs256(secrets.token_urlsafe(48), claims("never-held"))]
        self.write_secrets()
        self.write_jwks()
        self.mint()

    def write_secrets(self):
        replace_file(self.tollgate.secret_file, "\n".join(self.secrets) + "\n")

    def write_jwks(self):
        replace_file(self.tollgate.jwks_file, json.dumps({"keys": [k.jwk() for k in self.rsa]}))

    def mint(self):
        """Mints the tokens the traffic uses, with the newest keys."""
        secret, rsa = self.secrets[0], self.rsa[0]
        hs = [hs256(secret, claims(f"user-{i}")) for i in range(20)]
        rs = [rsa.mint(claims(f"rsa-user-{i}")) for i in range(10)]
        tokens = {
            "secret": secret,
            "valid_hs256": hs,
            "valid_rs256": rs,
            "bad_signature": [tamper(t) for t in hs[:5] + rs[:5]],
            "expired": [hs256(secret, claims("late", exp_in=-3600)), rsa.mint(claims("late", -3600))],
            "retired_key": list(self.retired),
        }
        with self.lock:
            self.tokens = tokens

    def current(self):
        with self.lock:
            return self.tokens

    def rotate_secret(self):
        """Lists a new secret first; drops all but the previous one."""
        before = self.tollgate.reloads()
        dropped = self.secrets[1:]
        self.secrets = [secrets.token_urlsafe(48), self.secrets[0]]
        self.write_secrets()
        if self.tollgate.wait_reload(before, "secret rotation"):
            self.retire([hs256(secret, claims("retired")) for secret in dropped])
            self.mint()
            self.rotations["secret"] += 1

    def rotate_rsa(self):
        """Adds a new RSA key first; drops all but the previous one."""
        key = RsaKey(f"soak-rsa-{self.rotations['rsa'] + 2}")
        before = self.tollgate.reloads()
        dropped = self.rsa[1:]
        self.rsa = [key, self.rsa[0]]
        self.write_jwks()
        if self.tollgate.wait_reload(before, "key rotation"):
            self.retire([old.mint(claims("retired")) for old in dropped])
            self.mint()
            self.rotations["rsa"] += 1

    def retire(self, tokens):
        """Keeps the newest few tokens of keys rotated out."""
        self.retired = (tokens + self.retired)[:6]

    def reload_config(self):
        """Rewrites the config file, or every other time sends SIGHUP."""
        before = self.tollgate.reloads()
        how = "sighup" if (self.rotations["config"] + self.rotations["sighup"]) % 2 else "config"
        if how == "sighup":
            self.tollgate.process.send_signal(signal.SIGHUP)
        else:
            self.tollgate.write_config()
        if self.tollgate.wait_reload(before, how):
            self.rotations[how] += 1


# --- load ---------------------------------------------------------------------


class Results:
    def __init__(self):
        self.lock = threading.Lock()
        self.sent = Counter()
        self.unexpected = Counter()
        self.examples = {}
        self.latencies = []

    def record(self, kind, status, seconds):
        with self.lock:
            self.sent[kind] += 1
            self.latencies.append(seconds)
            if status != EXPECTED[kind]:
                key = f"{kind}:{status}"
                self.unexpected[key] += 1
                self.examples.setdefault(key, time.strftime("%H:%M:%S"))


def pick_kind(rng):
    point = rng.uniform(0, 100)
    for kind, share in MIX.items():
        point -= share
        if point < 0:
            return kind
    return "public"


def request_for(kind, keys, rng, counter):
    """Returns method, path and headers for one request of this kind."""
    tokens = keys.current()
    if kind == "public":
        return "GET", "/public/info", {}
    if kind == "login":
        return "POST", "/auth/login", {"Content-Type": "application/json"}
    if kind == "no_token":
        return "GET", "/api/games", {}
    if kind == "valid_hs256" and counter % 5 == 0:
        # A fresh token now and then, so the cache keeps missing and evicting.
        token = hs256(tokens["secret"], claims(f"fresh-{counter}-{rng.random()}"))
    else:
        token = rng.choice(tokens[kind])
    return "GET", "/api/games", {"Authorization": "Bearer " + token}


def drive(address, keys, results, rate, until, seed):
    """Sends requests on one keep-alive connection at `rate` per second."""
    rng = random.Random(seed)
    host, port = address.rsplit(":", 1)
    connection = None
    interval = 1.0 / rate
    next_at = time.monotonic()
    counter = 0
    while True:
        now = time.monotonic()
        if now >= until:
            break
        if next_at > now:
            time.sleep(next_at - now)
        elif next_at < now - 1:
            # After a stall, carry on at the rate rather than in a burst.
            next_at = now
        next_at += interval
        counter += 1
        kind = pick_kind(rng)
        method, path, headers = request_for(kind, keys, rng, counter)
        body = b'{"user":"soak"}' if method == "POST" else None
        sent_at = time.monotonic()
        try:
            if connection is None:
                connection = http.client.HTTPConnection(host, int(port), timeout=10)
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            status = response.status
            if response.getheader("Connection", "").lower() == "close":
                connection.close()
                connection = None
        except (OSError, http.client.HTTPException) as error:
            status = type(error).__name__
            if connection is not None:
                connection.close()
            connection = None
        results.record(kind, status, time.monotonic() - sent_at)
    if connection is not None:
        connection.close()


def rotate(keys, until, period, log):
    """Every `period` seconds, one of: config reload, secret, RSA key."""
    steps = [keys.reload_config, keys.rotate_secret, keys.rotate_rsa]
    index = 0
    next_at = time.monotonic() + period
    while True:
        wait = next_at - time.monotonic()
        if time.monotonic() + max(wait, 0) >= until - 2:
            return
        time.sleep(max(wait, 0))
        step = steps[index % len(steps)]
        step()
        log(f"{step.__name__} done ({dict(keys.rotations)})")
        index += 1
        next_at += period


# --- main ---------------------------------------------------------------------


def build(repo):
    print("building the release binary (cargo build --release)...", flush=True)
    subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=repo, check=True)
    target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(repo, "target")
    return os.path.join(target, "release", "tollgate")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds of load (600)")
    parser.add_argument("--rate", type=float, default=400, help="requests per second (400)")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections (16)")
    parser.add_argument("--warm-up", type=float, default=None,
                        help="seconds before the first RSS reading (10%% of the duration, 10-60)")
    parser.add_argument("--period", type=float, default=20 / 3,
                        help="seconds between reload steps; each of the three comes every 3x (6.7)")
    parser.add_argument("--binary", help="a tollgate binary to use instead of building one")
    args = parser.parse_args()
    if args.duration <= 0 or args.duration > 24 * 3600:
        parser.error("--duration must be between 0 and 86400 seconds")

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    binary = args.binary or build(repo)
    warm_up = args.warm_up if args.warm_up is not None else min(60, max(10, args.duration / 10))
    started = time.monotonic()

    def log(message):
        print(f"[{time.monotonic() - started:7.1f}s] {message}", flush=True)

    parent, child = multiprocessing.Pipe()
    stand_ins = multiprocessing.Process(target=serve_stand_ins, args=(child,), daemon=True)
    stand_ins.start()
    ports = parent.recv()
    directory = tempfile.mkdtemp(prefix="tollgate-soak-")
    tollgate = Tollgate(binary, directory, ports)
    failures = []
    try:
        keys = Keys(tollgate)
        tollgate.start()
        log(f"tollgate {tollgate.proxy} (admin {tollgate.admin}), stand-ins on {ports}, "
            f"{args.rate:g} req/s over {args.connections} connections for {args.duration:g} s")

        results = Results()
        until = time.monotonic() + args.duration
        threads = [
            threading.Thread(
                target=drive,
                args=(tollgate.proxy, keys, results, args.rate / args.connections, until, i),
                daemon=True,
            )
            for i in range(args.connections)
        ]
        threads.append(threading.Thread(target=rotate, args=(keys, until, args.period, log),
                                        daemon=True))
        for thread in threads:
            thread.start()

        time.sleep(min(warm_up, args.duration))
        rss_warm, fds_warm = tollgate.rss_kib(), tollgate.fds()
        log(f"after warm-up: RSS {rss_warm} KiB, {fds_warm} fds, {sum(results.sent.values())} sent")
        while time.monotonic() < until:
            time.sleep(min(30, max(0.1, until - time.monotonic())))
            if tollgate.process.poll() is not None:
                failures.append(f"tollgate exited early with {tollgate.process.returncode}")
                break
            log(f"RSS {tollgate.rss_kib()} KiB, cache {tollgate.metric('tollgate_cache_entries'):.0f}, {tollgate.fds()} fds, "
                f"{sum(results.sent.values())} sent, {sum(results.unexpected.values())} unexpected")
        for thread in threads:
            thread.join(timeout=30)

        alive = tollgate.process.poll() is None
        rss_end = tollgate.rss_kib() if alive else 0
        fds_end = tollgate.fds() if alive else 0
        code = tollgate.stop()
        report(args, results, keys, rss_warm, rss_end, fds_warm, fds_end, code, tollgate,
               failures, time.monotonic() - started)
    finally:
        tollgate.stop()
        stand_ins.terminate()
        shutil.rmtree(directory, ignore_errors=True)
    sys.exit(1 if failures else 0)


def quantile(ordered, q):
    """The q-quantile of sorted seconds, in milliseconds."""
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(args, results, keys, rss_warm, rss_end, fds_warm, fds_end, code, tollgate,
           failures, elapsed):
    sent = sum(results.sent.values())
    unexpected = sum(results.unexpected.values())
    growth = 100.0 * (rss_end - rss_warm) / rss_warm if rss_warm else float("inf")
    levels = Counter(line.get("level") for line in read_lines(tollgate.log_file))

    print("\n=== tollgate soak ===")
    print(f"duration        {args.duration:g} s of load ({elapsed:.0f} s in all), "
          f"target {args.rate:g} req/s over {args.connections} connections")
    print(f"requests sent   {sent} ({sent / args.duration:.0f} req/s): "
          + ", ".join(f"{kind} {count}" for kind, count in sorted(results.sent.items())))
    print(f"unexpected      {unexpected}"
          + "".join(f"\n  {key}: {count} (first at {results.examples[key]})"
                    for key, count in sorted(results.unexpected.items())))
    latencies = sorted(results.latencies) or [0.0]
    print(f"latency         p50 {quantile(latencies, 0.5):.1f} ms, "
          f"p99 {quantile(latencies, 0.99):.1f} ms, "
          f"max {latencies[-1] * 1000:.0f} ms (seen by the Python client)")
    print(f"reload steps    {dict(keys.rotations)}")
    print(f"RSS             {rss_warm} KiB after warm-up, {rss_end} KiB at the end "
          f"({growth:+.1f} %)")
    print(f"open fds        {fds_warm} after warm-up, {fds_end} at the end")
    print(f"log lines       {dict(levels)}")
    print(f"exit code       {code} after SIGTERM")

    if sent < 0.9 * args.rate * args.duration:
        print(f"note            the client reached {sent / args.duration:.0f} of "
              f"{args.rate:g} req/s: the machine, not tollgate, set the pace")
    if unexpected:
        failures.append(f"{unexpected} unexpected answers")
    if growth >= RSS_GROWTH_LIMIT:
        failures.append(f"RSS grew {growth:.1f} % (limit {RSS_GROWTH_LIMIT:g} %)")
    # Each connection is one descriptor, plus pooled ones to the stand-ins.
    if fds_end > fds_warm + 2 * args.connections:
        failures.append(f"descriptors grew from {fds_warm} to {fds_end}")
    if levels.get("ERROR"):
        failures.append(f"{levels['ERROR']} ERROR log lines")
    if not all(keys.rotations[step] for step in ("config", "secret", "rsa")) \
            and args.duration >= 3 * args.period + 5:
        failures.append("not every reload step landed")
    if tollgate.missed_reloads:
        failures.append(f"{tollgate.missed_reloads} reload steps did not land within 10 s")
    if code != 0:
        failures.append(f"exit code {code} after SIGTERM")
    print("result          " + ("FAIL: " + "; ".join(failures) if failures else "PASS"))


if __name__ == "__main__":
    main()
