"""Which measurements a session makes, and how one measurement goes.

A case is one (scenario, configuration, load) triple. Every case is run
once per repetition, in the same order, so slow drift on a busy machine
spreads over all rows instead of landing on one peer.
"""

from dataclasses import dataclass

from measure import Load, run_load, scrape_metrics, send_pool_once, status_of
from peers import Config
from procs import BenchError, rss_mib
from tokens import forgeries, pool, pool_head, refusal_tokens

DIRECT = Config("direct", "direct")
NGINX = Config("nginx", "nginx")
HAPROXY = Config("haproxy", "haproxy")
HAPROXY_JWT = {a: Config(f"haproxy-jwt-{a}", "haproxy", a) for a in ("HS256", "RS256", "ES256")}
ENVOY_JWT = {a: Config(f"envoy-jwt-{a}", "envoy", a) for a in ("HS256", "RS256", "ES256")}
ENVOY_RS256_CACHE = Config("envoy-jwt-RS256-cache", "envoy", "RS256", jwt_cache=True)
TOLLGATE = {a: Config(f"tollgate-{a}", "tollgate", a) for a in ("HS256", "RS256", "ES256", "EdDSA")}
# Issue 4's naive hyper + jsonwebtoken proxy (benches/load/naive_proxy.rs):
# what the HTTP libraries tollgate is built on cost with nothing added
# (plain), and with every token verified and no cache (jwt).
NAIVE = Config("hyper-naive", "naive")
NAIVE_JWT = {a: Config(f"hyper-naive-jwt-{a}", "naive", a) for a in ("HS256", "RS256", "ES256")}
# Refusal floods: HS256 for the signed-but-refused tokens, RS256 keys for
# the random-kid tokens, in one tollgate.
TOLLGATE_REFUSE = Config("tollgate-HS256+RS256", "tollgate", "HS256+RS256")

CACHED_CONFIGS = [DIRECT, NGINX, HAPROXY, *HAPROXY_JWT.values(), *ENVOY_JWT.values(),
                  ENVOY_RS256_CACHE, NAIVE, *NAIVE_JWT.values(), *TOLLGATE.values()]

# Tokens per distinct-token pool: more than one run sends, so no token repeats
# within a proxy process (wrap-arounds are counted and flagged if not).
POOL_QUICK = 60_000
POOL_FULL = 250_000
H2_CONNS, H2_STREAMS = 8, 8
SCALING_CONNS = (1, 10, 100, 1000, 10000)
# Issue 4's cache sizes, each filled and then measured with every request a hit.
CACHE_SIZES = ((1_000, "1k"), (100_000, "100k"), (1_000_000, "1M"))
CACHE_ALGS = ("HS256", "ES256")
CACHE_CONNS = 64
CACHE_HITS = "tollgate_cache_hits_total"
CACHE_MISSES = "tollgate_cache_misses_total"


@dataclass(frozen=True)
class Case:
    """One row of the table."""

    scenario: str
    config: Config
    load: Load
    variant: str = ""

    @property
    def key(self):
        return (self.scenario, self.config.name, self.variant, self.load.conns, self.load.rate)

    @property
    def label(self):
        extra = f" {self.variant}" if self.variant else ""
        return f"{self.scenario}{extra} {self.config.name} c={self.load.conns}"


ALL_SCENARIOS = ("cached", "distinct", "refusal", "open-loop", "http2", "scaling",
                 "cache-size")
# Scenarios the quick mode leaves out, even when named.
FULL_ONLY = ("scaling", "cache-size")


def cases(quick, keys, pool_dir, max_conns, log, scenarios=ALL_SCENARIOS, nofile=None):
    """Returns the session's cases, in the order each repetition runs them.

    Only the scenarios named are planned, so a subset does not mint the
    token pools it would not use.
    """
    valid = {a: keys.token(a) for a in ("HS256", "RS256", "ES256", "EdDSA")}

    def token_for(config):
        return valid[config.alg] if config.validates else valid["HS256"]

    out = []
    # The quick mode keeps the naive proxy's plain row only: the floor.
    cached = [c for c in CACHED_CONFIGS if not (quick and c in NAIVE_JWT.values())]
    for conns in () if "cached" not in scenarios else (64,) if quick else (64, 256):
        out += [Case("cached", c, Load("wrk", conns, token=token_for(c))) for c in cached]

    pool_size = POOL_QUICK if quick else POOL_FULL
    distinct = [*HAPROXY_JWT.values(), *TOLLGATE.values()]
    if not quick:
        distinct[3:3] = ENVOY_JWT.values()
    for config in distinct if "distinct" in scenarios else ():
        tokens = pool(keys, pool_dir, config.alg, pool_size, log=log)
        out.append(Case("distinct", config, Load("wrk", 64, pool=tokens)))

    if "refusal" in scenarios:
        for variant, token in refusal_tokens(keys).items():
            out.append(Case("refusal", TOLLGATE_REFUSE,
                            Load("wrk", 64, token=token, expect=401), variant))
        kid_pool = pool(keys, pool_dir, "RS256", pool_size, random_kid=True, log=log)
        out.append(Case("refusal", TOLLGATE_REFUSE,
                        Load("wrk", 64, pool=kid_pool, expect=401), "random-kid"))

    for rate in () if "open-loop" not in scenarios else (5000,) if quick else (5000, 20000):
        for config in (DIRECT, NGINX, TOLLGATE["HS256"], TOLLGATE["ES256"]):
            out.append(Case("open-loop", config,
                            Load("oha", 64, token=token_for(config), rate=rate)))

    for config in (DIRECT, NGINX, TOLLGATE["HS256"]) if "http2" in scenarios else ():
        out.append(Case("http2", config, Load("h2load", H2_CONNS, token=token_for(config),
                                              streams=H2_STREAMS)))

    if not quick and "scaling" in scenarios:
        out += scaling_cases(max_conns, nofile, log, token_for)
    if not quick and "cache-size" in scenarios:
        out += cache_size_cases(keys, pool_dir, log)
    return out


def scaling_cases(max_conns, nofile, log, token_for):
    """Returns the connection-scaling cases, each count capped by the open-files limit.

    A proxied connection can hold two descriptors (downstream and
    upstream), so a count above `max_conns` would measure EMFILE. Such a
    point is measured at the largest round count the limit allows instead,
    and its variant names the real count and the reason; a count no larger
    than the point before it is skipped.
    """
    out, previous = [], 0
    for wanted in SCALING_CONNS:
        conns, variant = wanted, ""
        if wanted > max_conns:
            conns = max_conns // 1000 * 1000 if max_conns >= 1000 else max_conns
            limit = f"{nofile:,}" if nofile else "?"
            variant = f"in place of {wanted:,}: open-files limit {limit}"
            log(f"scaling: {wanted} connections need more descriptors than the open-files "
                f"limit ({nofile}) allows; measuring {conns} instead")
        if conns <= previous:
            log(f"scaling: skipping {wanted} connections: the limit allows no more than "
                f"{previous}, already measured")
            continue
        previous = conns
        for config in (DIRECT, NGINX, TOLLGATE["HS256"]):
            out.append(Case("scaling", config, Load("wrk", conns, token=token_for(config)),
                            variant))
    return out


def cache_size_cases(keys, pool_dir, log):
    """Returns one case per (algorithm, cache size): N tokens, all cached, cycled.

    The largest pool is minted once per algorithm (and kept on disk); the
    smaller ones are its head, so the 1k tokens are among the 1M.
    """
    out = []
    largest = max(n for n, _ in CACHE_SIZES)
    for alg in CACHE_ALGS:
        full = pool(keys, pool_dir, alg, largest, log=log)
        for count, name in CACHE_SIZES:
            tokens = full if count == largest else pool_head(full, count)
            config = Config(TOLLGATE[alg].name, "tollgate", alg, cache_tokens=count)
            load = Load("wrk", CACHE_CONNS, pool=tokens, cycle=True)
            out.append(Case("cache-size", config, load, f"{name} tokens"))
    return out


def measure(bench, case, seconds, quick):
    """Starts the case's server, checks it, warms it, measures, stops it."""
    running = bench.start(case.config)
    try:
        check(bench, case, running)
        if case.scenario == "cache-size":
            return measure_cache_hits(case, running, seconds)
        http2 = case.load.tool == "h2load"
        port = running.h2_port if http2 else running.port
        if case.load.pool is None:
            # Fills the cache and the upstream pool; not counted. At most
            # 256 connections: warming the scaling rows at 9,000 left so
            # many sockets in TIME_WAIT that the measured run's connections
            # then hung (0 requests).
            warm = Load("wrk", min(case.load.conns, 256), token=case.load.token,
                        expect=case.load.expect)
            run_load(warm, running.port, 1)
        sample = run_load(case.load, port, seconds, cpu_pid=running.pid)
        if running.log_path is not None and running.log_bytes() == 0:
            raise BenchError(f"{case.config.name}: the access log stayed empty")
        return sample
    finally:
        bench.stop(running)


def measure_cache_hits(case, running, seconds):
    """Fills tollgate's cache with the case's pool, then measures with every request a hit.

    The fill sends each token once (not measured), bounded by a minute plus
    one second per 2,000 tokens. The sample carries tollgate's RSS after
    the run, the tokens its cache held after the fill, and the hit ratio of
    the measured run from /metrics, so the row shows the hits instead of
    assuming them.
    """
    wanted = case.config.cache_tokens
    start = scrape_metrics(running.admin_port)

    def verified():
        now = scrape_metrics(running.admin_port)
        return int(now.get(CACHE_MISSES, 0) - start.get(CACHE_MISSES, 0))

    fill = Load("wrk", case.load.conns, pool=case.load.pool)
    filled, seen = send_pool_once(fill, running.port, verified, wanted, 60 + wanted // 2000)
    if filled.bad_status or filled.socket_errors:
        raise BenchError(f"{case.label}: the fill got {filled.bad_status} unexpected statuses "
                         f"and {filled.socket_errors} socket errors")

    before = scrape_metrics(running.admin_port)
    sample = run_load(case.load, running.port, seconds, cpu_pid=running.pid)
    after = scrape_metrics(running.admin_port)
    sample.rss_mib = rss_mib(running.pid)
    sample.cache_entries = int(before.get("tollgate_cache_entries", 0))
    sample.hit_ratio = hit_ratio(before, after)
    if seen < wanted:
        sample.notes.append(f"fill verified {seen:,} of {wanted:,}")
    if sample.cache_entries < wanted:
        sample.notes.append(f"cache held {sample.cache_entries:,} of {wanted:,}")
    if running.log_bytes() == 0:
        raise BenchError(f"{case.config.name}: the access log stayed empty")
    return sample


def hit_ratio(before, after):
    """Returns hits / lookups between two /metrics scrapes, or None without lookups."""
    hits = after.get(CACHE_HITS, 0) - before.get(CACHE_HITS, 0)
    misses = after.get(CACHE_MISSES, 0) - before.get(CACHE_MISSES, 0)
    return hits / (hits + misses) if hits + misses else None


def check(bench, case, running):
    """Refuses to measure a server that does not answer as its row claims.

    Every configuration must pass a fresh valid token (200); one that
    validates must also refuse no token, a bad signature and an expired
    token (401), and every forgery of `tokens.forgeries` (401, or 403,
    which Envoy gives for an audience), so a proxy that lets everything
    through, or skips one of the checks its row claims, cannot pass as a
    validating one.
    """
    config = case.config
    alg = config.alg.split("+")[0] if config.validates else "HS256"
    keys = bench.keys
    http2 = case.load.tool == "h2load"
    port = running.h2_port if http2 else running.port
    expectations = [("valid token", keys.token(alg), 200)]
    if config.validates:
        good = keys.token(alg)
        head, body, sig = good.split(".")
        forged = f"{head}.{body}.{'A' if sig[0] != 'A' else 'B'}{sig[1:]}"
        expectations += [
            ("no token", None, 401),
            ("bad signature", forged, 401),
            ("expired token", keys.token(alg, lifetime=-3600), 401),
        ]
    for what, token, wanted in expectations:
        got = status_of(port, token, http2=http2)
        if got != wanted:
            raise BenchError(f"{config.name}: {what} got {got}, expected {wanted}")
    if config.validates:
        for what, token in forgeries(keys, config.alg.split("+")):
            got = status_of(port, token, http2=http2)
            if got not in (401, 403):
                raise BenchError(f"{config.name}: {what} got {got}, expected 401 or 403")
