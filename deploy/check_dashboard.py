#!/usr/bin/env python3
"""Checks that the Grafana dashboard and the Prometheus alerts query only
metrics tollgate exports.

    python3 deploy/check_dashboard.py METRICS_FILE [--promql-rules OUT]

METRICS_FILE is a /metrics page of a running tollgate, in the Prometheus
text format (.ci/assets captures one from the real binary). Every
`tollgate_*` name in a dashboard query or an alert expression must be a
metric family on that page; a histogram's `_bucket`, `_sum` and `_count`
series count as their family. A name that is neither exported nor on the
allowlist below is reported with where it is used, and the exit code is 1.
A metric renamed in src/telemetry/metrics.rs therefore fails CI until the
dashboard and the alerts follow it.

With --promql-rules, the dashboard's queries are also written out as a
Prometheus rules file (Grafana variables replaced by plain values), so that
`promtool check rules` can parse every one of them.

Standard library only: it runs before anything is installed.
"""

import argparse
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DASHBOARD = HERE / "grafana" / "tollgate.json"
ALERTS = HERE / "prometheus" / "alerts.yml"

# Metrics the dashboard and the alerts use that the /metrics capture cannot
# show. Remove an entry once the capture exports it: the checker says so
# when it sees one.
COMING = {
    # Exported only for a provider with a jwks_uri, which the /metrics
    # capture in .ci/assets does not configure.
    "tollgate_jwks_fetches_total": "only with a jwks_uri provider",
    "tollgate_jwks_key_age_seconds": "only with a jwks_uri provider",
}

HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
METRIC_NAME = re.compile(r"\btollgate_[A-Za-z0-9_:]*")
SAMPLE_NAME = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)")


# -- what tollgate exports ----------------------------------------------------


def exported_families(text):
    """Returns {family name: type} for a Prometheus text-format page."""
    families = {}
    samples = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            parts = line.split()
            if len(parts) >= 4:
                families[parts[2]] = parts[3]
        elif line and not line.startswith("#"):
            match = SAMPLE_NAME.match(line)
            if match:
                samples.add(match.group(1))
    # A sample with no TYPE line is still a metric (untyped).
    for name in samples:
        if name in families or family_of(name, families):
            continue
        families[name] = "untyped"
    return families


def family_of(name, families):
    """Returns the histogram or summary family a series name belongs to."""
    for suffix in HISTOGRAM_SUFFIXES:
        base = name[: -len(suffix)]
        if name.endswith(suffix) and families.get(base) in ("histogram", "summary"):
            return base
    return None


# -- what the dashboard and the alerts query ----------------------------------


def dashboard_queries(path):
    """Yields (where, expression, is_promql) for every query of a dashboard."""
    dashboard = json.loads(path.read_text())

    def panels(items):
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            expr = target.get("expr")
            if expr:
                where = f'panel {panel.get("id")} "{panel.get("title", "")}" ({target.get("refId")})'
                yield where, expr, True
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if variable.get("type") == "query" and query:
            # label_values(...) is Grafana's, not PromQL: names only.
            yield f'variable "{variable.get("name")}"', query, False


def dashboard_shape(path):
    """Returns what Grafana would trip over: duplicate panel ids, panels
    without a position, and panels that query nothing."""
    dashboard = json.loads(path.read_text())
    problems = []
    seen = set()
    for panel in dashboard.get("panels", []):
        where = f'{path}: panel {panel.get("id")} "{panel.get("title", "")}"'
        if panel.get("id") in seen:
            problems.append(f"{where}: duplicate id")
        seen.add(panel.get("id"))
        if "gridPos" not in panel:
            problems.append(f"{where}: no gridPos")
        if panel.get("type") != "row" and not any(t.get("expr") for t in panel.get("targets", [])):
            problems.append(f"{where}: no query")
    return problems


def alert_expressions(path):
    """Yields (where, expression) for every rule of a rules file.

    A small reader for the YAML this file uses (no YAML library in the
    standard library): `expr:` with an inline value or a `|` or `>` block.
    It counts rules too, so that an expression it failed to read is an
    error rather than a silent pass.
    """
    lines = path.read_text().splitlines()
    rules = 0
    found = 0
    name = None
    at = 0
    while at < len(lines):
        line = lines[at]
        at += 1
        rule = re.match(r"^\s*-\s+(alert|record):\s*(\S+)", line)
        if rule:
            rules += 1
            name = rule.group(2)
            continue
        match = re.match(r"^(\s*)(?:-\s+)?expr:\s*(.*?)\s*$", line)
        if not match:
            continue
        indent, value = len(match.group(1)), match.group(2)
        if value[:1] in ("|", ">"):
            block = []
            while at < len(lines) and (
                not lines[at].strip() or len(lines[at]) - len(lines[at].lstrip()) > indent
            ):
                block.append(lines[at].strip())
                at += 1
            value = "\n".join(block)
        elif value[:1] in ("'", '"') and value[-1:] == value[:1]:
            value = value[1:-1]
        found += 1
        yield f"rule {name}", value
    if found != rules:
        raise SystemExit(f"{path}: read {found} expressions for {rules} rules; the reader needs fixing")


# -- PromQL for promtool -------------------------------------------------------


def as_plain_promql(expr):
    """Replaces Grafana's variables with values PromQL accepts."""
    expr = re.sub(r"\$\{?__(rate_interval|interval|range)\}?", "5m", expr)
    return re.sub(r"\$\{?[A-Za-z_][A-Za-z0-9_]*\}?", ".*", expr)


def write_promql_rules(queries, out):
    lines = ["# Generated by deploy/check_dashboard.py for `promtool check rules`.", "groups:",
             "  - name: dashboard_queries", "    rules:"]
    for number, (where, expr, is_promql) in enumerate(queries):
        if not is_promql:
            continue
        lines.append(f"      # {where}")
        lines.append(f"      - record: dashboard_query_{number}")
        lines.append("        expr: " + json.dumps(as_plain_promql(expr)))
    Path(out).write_text("\n".join(lines) + "\n")


# -- the check -----------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("metrics", type=Path, help="a /metrics page of a running tollgate")
    parser.add_argument("--dashboard", type=Path, default=DASHBOARD)
    parser.add_argument("--alerts", type=Path, default=ALERTS)
    parser.add_argument("--promql-rules", metavar="OUT", help="write the dashboard's queries as a rules file")
    args = parser.parse_args()

    families = exported_families(args.metrics.read_text())
    if not any(name.startswith("tollgate_") for name in families):
        print(f"{args.metrics}: no tollgate_ metric at all; is it a tollgate /metrics page?")
        return 2

    problems = dashboard_shape(args.dashboard)
    queries = list(dashboard_queries(args.dashboard))
    uses = [(args.dashboard, where, expr) for where, expr, _ in queries]
    uses += [(args.alerts, where, expr) for where, expr in alert_expressions(args.alerts)]

    unknown = list(problems)
    queried = set()
    coming_used = set()
    for path, where, expr in uses:
        for name in METRIC_NAME.findall(expr):
            family = name if name in families else family_of(name, families)
            if family:
                queried.add(family)
            elif name in COMING:
                coming_used.add(name)
            else:
                unknown.append(f"{path}: {where}: unknown metric {name}")

    for name in sorted(set(COMING) & set(families)):
        print(f"note: {name} is exported now; remove it from COMING in {Path(__file__).name}")
    for name in sorted(n for n in families if n.startswith("tollgate_") and n not in queried):
        print(f"note: {name} is exported but neither charted nor alerted on")
    if args.promql_rules:
        write_promql_rules(queries, args.promql_rules)

    if unknown:
        print("\n".join(unknown))
        print(f"{len(unknown)} problem(s); tollgate exports: {', '.join(sorted(families))}")
        return 1
    print(
        f"ok: {len(uses)} queries use {len(queried)} exported tollgate metrics"
        + (f" and {len(coming_used)} coming ones ({', '.join(sorted(coming_used))})" if coming_used else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
