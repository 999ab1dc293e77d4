"""The configurations under test: the upstream, each peer and tollgate.

Each `Config` renders its file from peers/ into the work directory, starts
the server with `Procs`, and hands back a `Running` with the ports to load
and the pid whose process tree is charged for CPU.
"""

import json
import os
import resource
import subprocess
from dataclasses import dataclass
from pathlib import Path

from procs import BenchError, envoy_binary, free_port, require_tool, wait_for_port
from tokens import AUDIENCE, ISSUER

PEERS = Path(__file__).resolve().parent / "peers"
WORKERS = 2


def render(template, values):
    text = (PEERS / template).read_text()
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", str(value))
    if "@@" in text:
        raise BenchError(f"{template}: placeholder left unfilled")
    return text


def _fill(node, values):
    """Fills @@KEY@@ placeholders inside every string of a JSON document."""
    if isinstance(node, dict):
        return {k: _fill(v, values) for k, v in node.items()}
    if isinstance(node, list):
        return [_fill(v, values) for v in node]
    if isinstance(node, str):
        for key, value in values.items():
            node = node.replace(f"@@{key}@@", str(value))
    return node


@dataclass
class Running:
    """One started server: where to send load and which process to charge."""

    name: str
    proc: object
    port: int
    h2_port: int | None
    log_path: Path | None
    admin_port: int | None = None  # tollgate only: /metrics

    @property
    def pid(self):
        """Returns the pid charged for CPU; None for the direct row."""
        return self.proc.pid if self.proc is not None else None

    def log_bytes(self):
        try:
            return self.log_path.stat().st_size if self.log_path else 0
        except FileNotFoundError:
            return 0


@dataclass(frozen=True)
class Config:
    """One row family of the table: a peer (or none) with its settings."""

    name: str
    kind: str  # direct, nginx, haproxy, envoy, naive, tollgate
    alg: str | None = None  # the algorithm it verifies, None for plain proxies
    jwt_cache: bool = False  # Envoy's jwt_cache_config
    cache_tokens: int | None = None  # tollgate: size the cache to hold this many

    @property
    def validates(self):
        return self.alg is not None


class Bench:
    """Shared state for starting servers: tools, keys, work directory."""

    def __init__(self, workdir, procs, keys, tollgate_bin, log, naive_bin=None):
        self.dir = Path(workdir)
        self.procs = procs
        self.keys = keys
        self.tollgate_bin = tollgate_bin
        self.naive_bin = naive_bin
        self.log = log
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.dir / "tmp" / sub).mkdir(parents=True, exist_ok=True)
        self.upstream = None
        # Every server inherits our open-files limit; the peers' own
        # connection limits are sized to it (each proxied connection may
        # hold two descriptors).
        self.nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        self.max_conns = max(64, (self.nofile - 256) // 2)

    # -- the upstream --------------------------------------------------------

    def start_upstream(self):
        port, h2 = free_port(), free_port()
        conf = self.dir / "upstream.conf"
        conf.write_text(render("upstream-nginx.conf",
                               {"DIR": self.dir, "PORT": port, "H2PORT": h2,
                                "NOFILE": self.nofile}))
        proc = self._spawn("upstream", [require_tool("nginx"), "-e", "stderr", "-p", str(self.dir),
                                        "-c", str(conf)])
        wait_for_port(port, proc, "upstream nginx")
        wait_for_port(h2, proc, "upstream nginx (h2c)")
        self.upstream = Running("upstream", proc, port, h2, None)
        return self.upstream

    # -- one configuration ---------------------------------------------------

    def start(self, config):
        """Starts `config` and waits until it listens."""
        if config.kind == "direct":
            return Running("direct", None, self.upstream.port, self.upstream.h2_port, None)
        # Logs live apart from the configs: tollgate watches its config's
        # directory, and a log growing there would wake its watcher on
        # every line, which no deployment does (its log is a pipe).
        log_path = self.dir / "logs" / f"{config.name}.access.log"
        log_path.parent.mkdir(exist_ok=True)
        log_path.unlink(missing_ok=True)
        starter = getattr(self, f"_start_{config.kind}")
        running = starter(config, log_path)
        wait_for_port(running.port, running.proc, config.name)
        if running.h2_port:
            wait_for_port(running.h2_port, running.proc, config.name)
        return running

    def stop(self, running):
        if running.proc is not None:
            self.procs.stop(running.proc)
        if running.log_path:
            running.log_path.unlink(missing_ok=True)

    def _spawn(self, name, cmd, env=None, stdout_path=None):
        stderr = open(self.dir / f"{name}.stderr", "w")
        stdout = open(stdout_path, "w") if stdout_path else subprocess.DEVNULL
        try:
            return self.procs.start(name, cmd, stdout=stdout, stderr=stderr, env=env,
                                    cwd=self.dir)
        finally:
            stderr.close()
            if stdout_path:
                stdout.close()

    def _start_nginx(self, config, log_path):
        port, h2 = free_port(), free_port()
        conf = self.dir / f"{config.name}.conf"
        conf.write_text(render("nginx-proxy.conf", {
            "DIR": self.dir, "PORT": port, "H2PORT": h2, "LOG": log_path,
            "UPSTREAM": self.upstream.port, "NOFILE": self.nofile,
        }))
        proc = self._spawn(config.name, [require_tool("nginx"), "-e", "stderr", "-p",
                                         str(self.dir), "-c", str(conf)])
        return Running(config.name, proc, port, h2, log_path)

    def _start_haproxy(self, config, log_path):
        port = free_port()
        jwt = ""
        if config.validates:
            key = self.keys.secret.decode() if config.alg == "HS256" \
                else self.keys.public_pem(config.alg)
            jwt = render("haproxy-jwt.cfg", {"ALG": config.alg, "ISSUER": ISSUER,
                                             "AUDIENCE": AUDIENCE, "KEY": key})
        conf = self.dir / f"{config.name}.cfg"
        conf.write_text(render("haproxy.cfg", {"PORT": port, "UPSTREAM": self.upstream.port,
                                               "MAXCONN": self.max_conns,
                                               "JWT": jwt.rstrip("\n")}))
        proc = self._spawn(config.name, [require_tool("haproxy"), "-db", "-f", str(conf)],
                           stdout_path=log_path)
        return Running(config.name, proc, port, None, log_path)

    def _start_envoy(self, config, log_path):
        port = free_port()
        doc = json.loads((PEERS / "envoy.json").read_text())
        doc = _fill(doc, {"LOG": log_path})
        listener = doc["static_resources"]["listeners"][0]
        listener["address"]["socket_address"]["port_value"] = port
        cluster = doc["static_resources"]["clusters"][0]
        endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
        endpoint["address"]["socket_address"]["port_value"] = self.upstream.port
        if config.validates:
            jwt = _fill(json.loads((PEERS / "envoy-jwt.json").read_text()), {
                "ISSUER": ISSUER, "AUDIENCE": AUDIENCE,
                "JWKS": json.dumps(self._jwks_with_secret(config.alg)),
            })
            if config.jwt_cache:
                provider = jwt["typed_config"]["providers"]["bench"]
                provider["jwt_cache_config"] = {"jwt_cache_size": 100000}
            manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
            manager["http_filters"].insert(0, jwt)
        conf = self.dir / f"{config.name}.json"
        conf.write_text(json.dumps(doc, indent=1))
        cmd = [envoy_binary(), "-c", str(conf), "--concurrency", str(WORKERS),
               "--disable-hot-restart", "-l", "warning"]
        proc = self._spawn(config.name, cmd)
        return Running(config.name, proc, port, None, log_path)

    def _start_naive(self, config, _log_path):
        if self.naive_bin is None:
            raise BenchError(f"{config.name}: no naive-proxy binary (cargo build --release "
                             "--example naive-proxy)")
        port = free_port()
        cmd = [self.naive_bin, str(port), str(self.upstream.port)]
        if config.validates:
            key = self.dir / f"naive-{config.alg}.jwk"
            key.write_text(json.dumps(self.keys.jwk(config.alg)))
            cmd += [config.alg, str(key), ISSUER, AUDIENCE]
        env = {k: v for k, v in os.environ.items() if k != "RUST_LOG"}
        env["TOKIO_WORKER_THREADS"] = str(WORKERS)
        proc = self._spawn(config.name, cmd, env=env)
        # It logs nothing: no access log to check.
        return Running(config.name, proc, port, None, None)

    def _jwks_with_secret(self, alg):
        return {"keys": [self.keys.jwk(alg)]}

    def _start_tollgate(self, config, log_path):
        port, admin = free_port(), free_port()
        algs = config.alg.split("+")
        keys = []
        if "HS256" in algs:
            secret = self.dir / "tollgate.secret"
            secret.write_text(self.keys.secret.decode() + "\n")
            keys.append(f'secret_file = "{secret}"')
        if any(a != "HS256" for a in algs):
            jwks = self.dir / f"jwks-{config.name}.json"
            jwks.write_text(json.dumps(self.keys.jwks(algs)))
            keys.append(f'jwks_file = "{jwks}"')

        capacity, max_bytes = cache_size(config.cache_tokens)
        conf = self.dir / f"{config.name}.toml"
        conf.write_text(render("tollgate.toml", {
            "PORT": port, "ADMIN": admin, "UPSTREAM": self.upstream.port,
            "ISSUER": ISSUER, "AUDIENCE": AUDIENCE, "ALGS": ", ".join(f'"{a}"' for a in algs),
            "KEYS": "\n".join(keys), "CACHE_CAPACITY": capacity, "CACHE_BYTES": max_bytes,
            "MAX_CONNS": self.max_conns,
        }))
        env = {k: v for k, v in os.environ.items() if k != "RUST_LOG"}
        env["TOKIO_WORKER_THREADS"] = str(WORKERS)
        proc = self._spawn(config.name, [self.tollgate_bin, "run", "--config", str(conf)],
                           env=env, stdout_path=log_path)
        # tollgate serves HTTP/1.1 and h2c on the same port.
        return Running(config.name, proc, port, port, log_path, admin_port=admin)


# tollgate's own defaults, kept for every row but the cache-size scenario.
DEFAULT_CACHE = (100_000, 64 * 1024 * 1024)
# Bytes budgeted per cached token: above what one bench token weighs in
# tollgate's cache (160 bytes of bookkeeping plus a small identity).
CACHE_BYTES_PER_TOKEN = 1024


def cache_size(tokens):
    """Returns (cache.capacity, cache.max_bytes) able to hold `tokens` tokens.

    A quarter of headroom on both: the cache is split into shards that each
    get an equal share of the limits, and hashing does not spread the
    tokens perfectly evenly, so an exact fit would evict a few.
    """
    if tokens is None:
        return DEFAULT_CACHE
    capacity = tokens + tokens // 4 + 64
    return capacity, capacity * CACHE_BYTES_PER_TOKEN
