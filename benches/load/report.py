"""The markdown report: one table of medians, then the issue's targets."""

import os
import platform
import time

from measure import median
from plan import NAIVE, NAIVE_JWT, NGINX, TOLLGATE

ALGS = ("HS256", "RS256", "ES256", "EdDSA")


def _fmt(value, digits=1):
    return "n/a" if value is None else f"{value:,.{digits}f}"


class Medians:
    """Median figures per case, looked up by scenario, config, variant, conns, rate."""

    def __init__(self, cases, samples):
        self.rows = {}
        for case in cases:
            runs = samples.get(case.key, [])
            if not runs:
                continue
            self.rows[case.key] = {
                "case": case,
                "runs": len(runs),
                "rps": median([s.rps for s in runs]),
                "p50": median([s.p50_ms for s in runs]),
                "p99": median([s.p99_ms for s in runs]),
                "cpu": median([s.cpu_us_per_req for s in runs]),
                "bad": sum(s.bad_status for s in runs),
                "errors": sum(s.socket_errors for s in runs),
                # A pool cycled on purpose repeats by design.
                "wraps": 0 if case.load.cycle else sum(s.pool_wraps for s in runs),
                "notes": sorted({n for s in runs for n in s.notes}),
                "rss": median([s.rss_mib for s in runs]),
                "entries": min((s.cache_entries for s in runs if s.cache_entries is not None),
                               default=None),
                "hit_ratio": min((s.hit_ratio for s in runs if s.hit_ratio is not None),
                                 default=None),
            }

    def get(self, scenario, name, variant="", conns=64, rate=None):
        return self.rows.get((scenario, name, variant, conns, rate))


def render_report(cases, samples, args, seconds):
    medians = Medians(cases, samples)
    lines = [
        f"# tollgate load benchmark ({'quick' if args.quick else 'full'} mode)",
        "",
        *(["**Smoke run (`--smoke`): a trial of the driver, not a measurement.**", ""]
          if getattr(args, "smoke", False) else []),
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPUs, {_cpu_model()}, "
        f"kernel {platform.release()}, open-files limit {getattr(args, 'nofile', '?')}",
        f"- medians of {args.reps} interleaved repetitions, {seconds:g} s per run; "
        "proxy CPU is user+system time of the proxy's process tree per completed request",
        "- versions: " + "; ".join(f"{k}: {v}" for k, v in getattr(args, "versions", {}).items()),
        "",
        "| scenario | configuration | conns | req/s | p50 ms | p99 ms | proxy CPU µs/req "
        "| vs direct | checks |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for key, row in medians.rows.items():
        case = row["case"]
        if case.scenario == "cache-size":
            continue
        scenario = case.scenario + (f" {case.variant}" if case.variant else "")
        if case.load.rate:
            scenario += f" @{case.load.rate}/s"
        direct = medians.get(case.scenario, "direct", case.variant, case.load.conns,
                             case.load.rate)
        ratio = row["rps"] / direct["rps"] if direct and direct["rps"] else None
        lines.append(
            f"| {scenario} | {case.config.name} | {case.load.conns} | {_fmt(row['rps'], 0)} "
            f"| {_fmt(row['p50'], 2)} | {_fmt(row['p99'], 2)} | {_fmt(row['cpu'])} "
            f"| {_fmt(ratio, 2)} | {_checks(row)} |"
        )
    lines += cache_size_table(medians)
    lines += ["", "## Targets (issue 4)", "", "| target | measured | needed | verdict |",
              "|---|---:|---:|---|"]
    for target in targets(medians):
        lines.append("| {} | {} | {} | {} |".format(*target))
    return "\n".join(lines) + "\n"


def cache_size_table(medians):
    """Returns the lines of the cache-size table, or none if it was not run.

    Apart from the main table: its rows need tollgate's RSS, the tokens its
    cache held and the hit ratio, which prove every measured request a hit.
    """
    rows = [r for r in medians.rows.values() if r["case"].scenario == "cache-size"]
    if not rows:
        return []
    lines = [
        "", "## Cost as the cache grows (issue 4)", "",
        "Each run first sends every token of the pool once (not measured), then wrk "
        "cycles through the same tokens. Hit ratio: hits / lookups during the measured "
        "run, the lowest of the repetitions; cached: `tollgate_cache_entries` after the "
        "fill; RSS: tollgate's VmRSS after the run.", "",
        "| tokens | configuration | conns | req/s | p50 ms | p99 ms | proxy CPU µs/req "
        "| RSS MiB | cached | hit ratio | checks |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        case = row["case"]
        ratio = "n/a" if row["hit_ratio"] is None else f"{row['hit_ratio'] * 100:.2f} %"
        entries = "n/a" if row["entries"] is None else f"{row['entries']:,}"
        lines.append(
            f"| {case.variant} | {case.config.name} | {case.load.conns} | {_fmt(row['rps'], 0)} "
            f"| {_fmt(row['p50'], 2)} | {_fmt(row['p99'], 2)} | {_fmt(row['cpu'])} "
            f"| {_fmt(row['rss'])} | {entries} | {ratio} | {_checks(row)} |"
        )
    return lines


def _checks(row):
    issues = []
    if not row["rps"]:
        issues.append("no request completed")
    if row["bad"]:
        issues.append(f"{row['bad']} unexpected statuses")
    if row["errors"]:
        issues.append(f"{row['errors']} socket errors")
    if row["wraps"]:
        issues.append(f"token pool exhausted {row['wraps']}x")
    if row.get("hit_ratio") is not None and row["hit_ratio"] < 0.999:
        issues.append("misses while measuring")
    issues += row["notes"]
    return "; ".join(issues) or "ok"


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def _ratio_target(label, mine, theirs, needed, field="rps", lower_is_better=False):
    if not mine or not theirs or not mine[field] or not theirs[field]:
        return (label, "not measured", f"{needed}×", "not measured")
    ratio = mine[field] / theirs[field]
    met = ratio <= needed if lower_is_better else ratio >= needed
    sign = "≤" if lower_is_better else "≥"
    return (label, f"{ratio:.2f}×", f"{sign} {needed}×", "met" if met else "NOT met")


def _verdict(valid, met):
    if not valid:
        return "invalid: rate not held"
    return "met" if met else "NOT met"


def flatness(m):
    """Yields 'cost as work grows' rows: the largest point's CPU/req against the smallest's.

    Issue 4 asks the cost to stay flat and names no threshold, so these are
    reported, not judged.
    """
    out = []
    rows = list(m.rows.values())
    for alg in ALGS:
        sizes = [r for r in rows if r["case"].scenario == "cache-size"
                 and r["case"].config.alg == alg]
        if len(sizes) >= 2:
            small, large = sizes[0], sizes[-1]
            out.append(_reported(f"cache {large['case'].variant} vs {small['case'].variant}, "
                                 f"{alg}: proxy CPU/req", large, small))
    scaling = [r for r in rows if r["case"].scenario == "scaling"
               and r["case"].config.name == TOLLGATE["HS256"].name]
    if len(scaling) >= 2:
        small, large = scaling[0], scaling[-1]
        out.append(_reported(f"scaling c={large['case'].load.conns} vs "
                             f"c={small['case'].load.conns}, HS256: proxy CPU/req", large, small))
    return out


def _reported(label, mine, base):
    if not mine["cpu"] or not base["cpu"]:
        return (label, "not measured", "flat", "not measured")
    return (label, f"{mine['cpu'] / base['cpu']:.2f}×", "flat", "reported")


def naive_rows(m, nginx):
    """Yields reported rows against the naive hyper proxy (no target of their own).

    The plain naive proxy is the floor of the HTTP libraries tollgate is
    built on: its CPU per request against nginx's says how much of the CPU
    target is within reach of any proxy built on them.
    """
    out = []
    plain = m.get("cached", NAIVE.name)
    if plain and nginx and plain["cpu"] and nginx["cpu"]:
        out.append(("hyper-naive plain, c=64: proxy CPU/req vs nginx plain",
                    f"{plain['cpu'] / nginx['cpu']:.2f}×", "reported", "reported"))
    for alg in ("HS256", "RS256", "ES256"):
        mine = m.get("cached", TOLLGATE[alg].name)
        for peer in (NAIVE, NAIVE_JWT[alg]):
            theirs = m.get("cached", peer.name)
            if mine and theirs and mine["cpu"] and theirs["cpu"]:
                out.append((f"cached {alg}, c=64: proxy CPU/req vs {peer.name}",
                            f"{mine['cpu'] / theirs['cpu']:.2f}×", "reported", "reported"))
    return out


def targets(m):
    """Yields (target, measured, needed, verdict) rows for every target measured."""
    out = []
    for conns in (64, 256):
        nginx = m.get("cached", NGINX.name, conns=conns)
        if nginx is None:
            continue
        for alg in ALGS:
            mine = m.get("cached", TOLLGATE[alg].name, conns=conns)
            out.append(_ratio_target(f"cached {alg}, c={conns}: throughput vs nginx plain",
                                     mine, nginx, 1.05))
        for alg, peer, needed in (("HS256", "haproxy-jwt-HS256", 1.5),
                                  ("RS256", "haproxy-jwt-RS256", 2.2),
                                  ("ES256", "haproxy-jwt-ES256", 3.5),
                                  ("RS256", "envoy-jwt-RS256-cache", 2.3)):
            out.append(_ratio_target(f"cached {alg}, c={conns}: throughput vs {peer}",
                                     m.get("cached", TOLLGATE[alg].name, conns=conns),
                                     m.get("cached", peer, conns=conns), needed))
    nginx = m.get("cached", NGINX.name)
    for alg in ALGS:
        out.append(_ratio_target(f"cached {alg}, c=64: proxy CPU/req vs nginx plain",
                                 m.get("cached", TOLLGATE[alg].name), nginx, 0.9, "cpu",
                                 lower_is_better=True))
    out += naive_rows(m, nginx)
    for alg, peer_alg in (("HS256", "HS256"), ("RS256", "RS256"), ("ES256", "ES256"),
                          ("EdDSA", "ES256")):
        out.append(_ratio_target(
            f"distinct {alg}: throughput vs HAProxy jwt_verify {peer_alg}",
            m.get("distinct", TOLLGATE[alg].name), m.get("distinct", f"haproxy-jwt-{peer_alg}"),
            1.15))
    refuse = "tollgate-HS256+RS256"
    for variant in ("malformed", "expired", "bad-signature"):
        out.append(_ratio_target(f"refusal flood {variant}: req/s vs nginx forwarding (c=64)",
                                 m.get("refusal", refuse, variant), nginx, 2.0))
    out.append(_ratio_target("refusal flood random-kid: CPU/req vs malformed flood",
                             m.get("refusal", refuse, "random-kid"),
                             m.get("refusal", refuse, "malformed"), 1.0, "cpu",
                             lower_is_better=True))
    for rate in (5000, 20000):
        direct = m.get("open-loop", "direct", rate=rate)
        ngx = m.get("open-loop", NGINX.name, rate=rate)
        if not direct:
            continue
        ngx_added = ngx["p99"] - direct["p99"] if ngx else None
        for alg in ("HS256", "ES256"):
            row = m.get("open-loop", TOLLGATE[alg].name, rate=rate)
            if not row:
                continue
            added = row["p99"] - direct["p99"]
            # A rate that was not held is a closed loop in disguise.
            held = not any(r and r["notes"] for r in (row, direct, ngx))
            out.append((f"open loop {rate}/s, {alg}: p99 added over direct", f"{added:.3f} ms",
                        "≤ 0.3 ms", _verdict(held, added <= 0.3)))
            if ngx_added is not None:
                out.append((f"open loop {rate}/s, {alg}: p99 added vs nginx's added",
                            f"{added:.3f} vs {ngx_added:.3f} ms", "≤ nginx",
                            _verdict(held, added <= ngx_added)))
    out += flatness(m)
    h2_mine = m.get("http2", TOLLGATE["HS256"].name, conns=8)
    h2_nginx = m.get("http2", NGINX.name, conns=8)
    if h2_mine and h2_nginx:
        out.append(("HTTP/2 HS256: throughput vs nginx http2",
                    f"{h2_mine['rps'] / h2_nginx['rps']:.2f}×", "reported", "reported"))
    return out
