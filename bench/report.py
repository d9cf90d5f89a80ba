#!/usr/bin/env python3
"""bench/report.py: renders the results of one `bench/run` as markdown.

Usage: bench/report.py RUN_DIR [OUT.md]

RUN_DIR holds run.env (written by bench/run) and one folder per scenario
(s1 .. s11) written by bench/scenarios/*.sh: meta.env, cpu.env, bench.json
(`sluice bench --json`, schema sluice-bench/1, see src/loadgen/report.h),
metrics-before.txt / metrics-after.txt (GET /metrics); for scenario 3 the
report.md of bench/gateway_vs_nginx.sh; for 6 one such set per batching mode
(s6/static, s6/adaptive); for 9 and 10 `sluice simulate --json` documents
(schema sluice-simulate/1, see src/simulation/simulation_report.h), and for
10 a live run in s10/live; for 11 `sluice plan`'s text output. Prints the
markdown on stdout and, with OUT.md, also writes it there. Standard library
only.
"""

import json
import math
import os
import platform
import re
import subprocess
import sys

NOISE_PCT = float(os.environ.get("NOISE_PCT", "10"))
SLO_MS = 500.0
SUCCESS_TARGET = 0.999
TIERS = ("free", "paid", "enterprise")


# ---------------------------------------------------------------- inputs
def read_env(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                line = line.rstrip("\n")
                if "=" in line:
                    k, v = line.split("=", 1)
                    out[k] = v
    except OSError:
        pass
    return out


def read_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


METRIC_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """{(name, frozenset(labels.items())): value}"""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = METRIC_RE.match(line)
        if not m:
            continue
        labels = frozenset(LABEL_RE.findall(m.group(3) or ""))
        try:
            out[(m.group(1), labels)] = float(m.group(4))
        except ValueError:
            pass
    return out


def metrics_delta(before, after):
    return {k: v - before.get(k, 0.0) for k, v in after.items()}


def select(metrics, name, **labels):
    """[(labels dict, value)] of one metric whose labels include `labels`."""
    out = []
    for (n, ls), v in metrics.items():
        if n != name:
            continue
        d = dict(ls)
        if all(d.get(k) == val for k, val in labels.items()):
            out.append((d, v))
    return out


def msum(metrics, name, **labels):
    return sum(v for _, v in select(metrics, name, **labels))


def histogram_quantile(metrics, name, q, **labels):
    """Prometheus-style quantile (linear inside a bucket) of a delta
    histogram; returns (estimate, lower bound, upper bound) in the metric's
    unit, or None when empty."""
    buckets = []
    for d, v in select(metrics, name + "_bucket", **labels):
        le = d.get("le")
        buckets.append((math.inf if le == "+Inf" else float(le), v))
    buckets.sort()
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_c = 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if math.isinf(le):
                return (prev_le, prev_le, math.inf)
            frac = (rank - prev_c) / (c - prev_c) if c > prev_c else 1.0
            return (prev_le + (le - prev_le) * frac, prev_le, le)
        prev_le, prev_c = le, c
    return None


# ---------------------------------------------------------------- formatting
def fnum(v, digits=1):
    if v is None:
        return "n/a"
    return f"{v:,.{digits}f}"


def fms(v):
    return "n/a" if v is None else f"{v:,.1f}"


def fpct(ratio, digits=2):
    return "n/a" if ratio is None else f"{100 * ratio:.{digits}f} %"


def fus(ms):
    return "n/a" if ms is None else f"{ms * 1000:,.0f}"


def table(header, rows, align=None):
    align = align or ["---"] + ["---:"] * (len(header) - 1)
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------- per-scenario facts
class Scenario:
    def __init__(self, run_dir, n, sub=None):
        self.n = n
        self.dir = os.path.join(run_dir, f"s{n}", sub) if sub else os.path.join(run_dir, f"s{n}")
        self.present = os.path.isdir(self.dir)
        self.meta = read_env(os.path.join(self.dir, "meta.env"))
        self.cpu = read_env(os.path.join(self.dir, "cpu.env"))
        self.bench = read_json(os.path.join(self.dir, "bench.json"))
        mb = parse_metrics(read_text(os.path.join(self.dir, "metrics-before.txt")))
        ma = parse_metrics(read_text(os.path.join(self.dir, "metrics-after.txt")))
        self.metrics = metrics_delta(mb, ma) if ma else {}
        self.after = ma
        self.status = read_env(os.path.join(run_dir, "status.env")).get(f"s{n}", "not run")

    @property
    def ok(self):
        return self.bench is not None and self.meta.get("bench_rc", "1") == "0"

    def cpu_pct(self, key):
        try:
            wall = float(self.cpu["wall_ticks"])
            return 100.0 * float(self.cpu[key]) / wall if wall > 0 else None
        except (KeyError, ValueError):
            return None

    @property
    def noisy(self):
        o = self.cpu_pct("other_ticks")
        return o is not None and o >= NOISE_PCT

    def machine_cell(self):
        o = self.cpu_pct("other_ticks")
        if o is None:
            return "n/a"
        return (f"**NOISY** (others {o:.0f} %)" if o >= NOISE_PCT else f"clean (others {o:.0f} %)")

    def cpu_line(self):
        s, g, o, st, os_, oc = (self.cpu_pct(k) for k in ("server_ticks", "generator_ticks", "other_ticks",
                                                          "steal_ticks", "other_server_cpu_ticks",
                                                          "other_client_cpu_ticks"))
        if s is None:
            return "CPU: not measured."
        where = ""
        if os_ is not None and oc is not None:
            where = f" ({os_:.0f} % on the gateway's CPU, {oc:.0f} % on the generator's)"
        text = (f"CPU over the run, % of one CPU: gateway {s:.0f} % (pinned to CPU 0), "
                f"generator {g:.0f} % (CPU 1), other processes {o:.0f} %{where}, steal {st:.0f} %.")
        if o >= NOISE_PCT:
            text += (f" **NOISY: other processes used {o:.0f} % of a CPU (>= {NOISE_PCT:.0f} %) "
                     "during this run; its figures are not clean.**")
        else:
            text += " Clean (other processes < %.0f %%)." % NOISE_PCT
        return text

    def gateway_model(self):
        g = (self.bench or {}).get("gateway") or []
        return g[0] if g else None

    def shed_text(self):
        rows = [(d.get("reason"), d.get("tier"), v) for d, v in
                select(self.metrics, "sluice_shed_total", model="sluice-sim-small") if v > 0]
        if not rows:
            return "none"
        return ", ".join(f"{int(v):,} {t} ({r})" for r, t, v in sorted(rows))

    def failure_text(self, a):
        parts = []
        for key, label in (("status_503", "503"), ("status_504", "504"), ("status_429", "429"),
                           ("other_status", "other status"), ("transport_errors", "transport errors"),
                           ("timeouts", "timeouts")):
            if a.get(key):
                parts.append(f"{a[key]:,} {label}")
        return ", ".join(parts) if parts else "none"

    def generator_line(self):
        gen = (self.bench or {}).get("generator") or {}
        lag = gen.get("schedule_lag_ms") or {}
        sched = ((self.bench or {}).get("overall") or {}).get("all", {}).get("scheduled") or 0
        late = gen.get("late", 0)
        text = (f"Generator: {late:,} of {sched:,} requests sent > {gen.get('late_threshold_ms', 1)} ms late "
                f"({fpct(late / sched if sched else None)}), schedule lag p99 {fms(lag.get('p99'))} ms / "
                f"max {fms(lag.get('max'))} ms (inside the latency figures), load thread busy "
                f"{fpct(gen.get('max_thread_busy'), 0)} of its core, connection waits {gen.get('connection_waits', 0):,}, "
                f"connections {gen.get('connections_open', 0):,}.")
        return text

    def config_line(self):
        m = self.meta
        def describe(o):
            k, _, v = o.partition("=")
            if k == "depth_scale":
                return f"every tier's max_queue_depth × {v}"
            return f"{k} {v}"
        ov = ", ".join(describe(o) for o in m.get("overrides", "").split())
        depth = m.get("cfg_max_queue_depth")
        adm = m.get("admission", "n/a")
        if adm == "on" and depth:
            adm += f" (queue-depth thresholds: {depth})"
        return (f"Config: config/sluice.yaml with {ov}, requests_per_minute 0 and "
                f"tokens_per_minute 0 for every tier; effective: {m.get('cfg_devices')} sim device(s), "
                f"fixed_latency_us {m.get('cfg_fixed_latency_us')}, per_item_latency_us {m.get('cfg_per_item_latency_us')}, "
                f"jitter {m.get('cfg_jitter')}, max_batch_size {m.get('cfg_max_batch_size')}, "
                f"max_batch_delay_us {m.get('cfg_max_batch_delay_us')}, batching {m.get('cfg_batching', 'n/a')}, "
                f"queue_capacity {m.get('cfg_queue_capacity')}, "
                f"io_threads {m.get('cfg_io_threads')}; **admission {adm}**.")

    def commands(self):
        out = []
        if "cmd_serve" in self.meta:
            out.append(self.meta["cmd_serve"])
        if "cmd_bench" in self.meta:
            out.append(self.meta["cmd_bench"])
        if "cmd" in self.meta:
            out.append(self.meta["cmd"])
        out += [v for k, v in self.meta.items() if k.startswith("cmd_") and k not in ("cmd_serve", "cmd_bench")]
        return out

    def error_block(self):
        lines = [f"**Not measured: {self.status}.**"]
        for name in ("bench.err", "sluice.err", "log.txt", "scenario.log"):
            t = read_text(os.path.join(self.dir, name)).strip()
            if t:
                tail = "\n".join(t.splitlines()[-12:])
                lines += ["", f"Last lines of {name}:", "", "```", tail, "```"]
        return "\n".join(lines)


def tier_rows(section):
    rows = []
    for name in TIERS + ("all",):
        t = section["all"] if name == "all" else section.get("tiers", {}).get(name)
        if not t:
            continue
        lat = t.get("latency_ms") or {}
        rows.append([name if name != "all" else "**all**", fnum(t.get("offered_rps")), fnum(t.get("achieved_rps")),
                     fpct(t.get("success_ratio")), fms(lat.get("p50")), fms(lat.get("p95")),
                     fms(lat.get("p99")), fms(lat.get("max")), f"{t.get('status_503', 0):,}",
                     f"{t.get('status_504', 0):,}", f"{t.get('other', 0) + t.get('status_429', 0):,}"])
    return table(["tier", "offered req/s", "achieved req/s", "success", "p50 ms", "p95 ms", "p99 ms",
                  "max ms", "503", "504", "other"], rows)


def utilisation(s):
    """(gauge at the end of the run, busy fraction from accelerator seconds over the run)"""
    g = s.gateway_model()
    gauge = g.get("utilization_after") if g else None
    if gauge is None and s.after:   # sluice bench's scrape failed: ours, just after the run
        vals = [v for _, v in select(s.after, "sluice_accelerator_utilization", model="sluice-sim-small")]
        gauge = vals[0] if vals else None
    acc = msum(s.metrics, "sluice_accelerator_batch_seconds_sum", model="sluice-sim-small")
    try:
        devices = int(s.meta.get("cfg_devices", "0"))
        wall = float(s.cpu["wall_ticks"]) / float(s.cpu["clk_tck"])
        measured = acc / (devices * wall) if devices and wall > 0 and s.metrics else None
    except (KeyError, ValueError):
        measured = None
    return gauge, measured


def mean_batch(s):
    g = s.gateway_model()
    if g and g.get("mean_batch_size") is not None:
        return g["mean_batch_size"]
    n = msum(s.metrics, "sluice_batch_size_count", model="sluice-sim-small")
    return msum(s.metrics, "sluice_batch_size_sum", model="sluice-sim-small") / n if n else None


def batch_line(s):
    g = s.gateway_model()
    if not g:
        n = msum(s.metrics, "sluice_batch_size_count", model="sluice-sim-small")
        tot = msum(s.metrics, "sluice_batch_size_sum", model="sluice-sim-small")
        if n:
            return (f"Mean batch size {tot / n:.2f} over {int(n):,} batches (this suite's /metrics scrapes, "
                    f"warm-up included; sluice bench's own scrape failed).")
        return "Batches: n/a (no /metrics scrape)."
    dist = []
    prev = 0
    for b in g.get("batch_size_buckets", []):
        lo = int(prev) + 1
        if b["batches"]:
            if b["le"] is None:
                rng = f"> {int(prev)}"
            else:
                hi = int(b["le"])
                rng = f"{hi}" if hi == lo else f"{lo}-{hi}"
            dist.append(f"{rng}: {int(b['batches']):,}")
        prev = b["le"] if b["le"] is not None else prev
    return (f"Mean batch size {fnum(g.get('mean_batch_size'), 2)} over {int(g.get('batches', 0)):,} batches "
            f"(max_batch_size {s.meta.get('cfg_max_batch_size')}; sizes {', '.join(dist) or 'none'}).")


# ---------------------------------------------------------------- sections
def section_1(s):
    out = ["## 1. Seed baseline: 1,000 req/s, 4 sim devices", ""]
    if not s.ok:
        return out + [s.error_block(), ""], ["1", "Seed baseline: 1,000 req/s, 4 devices", "report p95 per tier",
                                             "not measured", "ERROR", "n/a"]
    ov = s.bench["overall"]
    gauge, measured = utilisation(s)
    out += [s.config_line(), "", tier_rows(ov), "",
            f"- Accelerator utilisation: {fpct(gauge, 1)} (the gateway's busy-fraction gauge "
            f"`sluice_accelerator_utilization`, last 10 s of the run); {fpct(measured, 1)} from "
            f"`sluice_accelerator_batch_seconds` ÷ (devices × wall time), whole run incl. warm-up.",
            f"- {batch_line(s)}",
            f"- Shed by admission (from /metrics): {s.shed_text()}.",
            f"- {s.generator_line()}",
            f"- {s.cpu_line()}"]
    for w in s.bench.get("warnings", []):
        out.append(f"- sluice bench warning: {w}")
    out.append("")
    p95 = {t: ov["tiers"].get(t, {}).get("latency_ms", {}).get("p95") for t in TIERS}
    result = (f"p95 free {fms(p95['free'])} / paid {fms(p95['paid'])} / enterprise {fms(p95['enterprise'])} ms; "
              f"utilisation {fpct(gauge, 0)}; mean batch {fnum(mean_batch(s), 1)}; "
              f"success {fpct(ov['all'].get('success_ratio'))}")
    return out, ["1", "Seed baseline: 1,000 req/s, 4 devices", "report p95 per tier, utilisation, mean batch",
                 result, "measured", s.machine_cell()]


def section_growth(s, n, name, default_devices):
    rate = s.meta.get("rate", "10000")
    title = f"{name}: {int(float(rate)):,} req/s, {s.meta.get('cfg_devices', default_devices)} devices"
    out = [f"## {n}. {title}", ""]
    target = f"p95 < {SLO_MS:.0f} ms and ≥ {100 * SUCCESS_TARGET:.1f} % success"
    if not s.ok:
        return out + [s.error_block(), ""], [str(n), title, target, "not measured", "ERROR", "n/a"]
    a = s.bench["overall"]["all"]
    p95 = a["latency_ms"].get("p95")
    succ = a.get("success_ratio") or 0.0
    passed = p95 is not None and p95 < SLO_MS and succ >= SUCCESS_TARGET
    verdict = "**PASS**" if passed else "**FAIL**"
    if not passed and s.noisy:
        verdict = "**FAIL**, inconclusive (NOISY)"
    out += [s.config_line(), "", tier_rows(s.bench["overall"]), "",
            f"Verdict: {verdict}: p95 {fms(p95)} ms (target < {SLO_MS:.0f}), success {fpct(succ, 3)} "
            f"(target ≥ {100 * SUCCESS_TARGET:.1f} %), achieved {fnum(a.get('achieved_rps'))} of "
            f"{fnum(a.get('offered_rps'))} req/s offered.", ""]
    gauge, measured = utilisation(s)
    why = [f"- Failed requests: {s.failure_text(a)}; shed by admission (from /metrics): {s.shed_text()}."]
    if "queue_depth_threshold" in s.shed_text():
        depth = s.meta.get("cfg_max_queue_depth", "")
        m = re.search(r"free (?:(\d+) \+ )?(\d+)/device", depth) or re.search(r"free (\d+)()", depth)
        bound = None
        if m:
            per = int(m.group(2)) if m.group(2) else 0
            bound = int(m.group(1) or 0) + per * int(s.meta.get("cfg_devices", "0") or 0)
        ms = f"{1000.0 * bound / float(rate):.0f} ms" if bound else "a few ms"
        why.append(f"  `queue_depth_threshold` is admission's per-tier queue-depth bound (a tier is refused while "
                   f"more requests than its bound are queued; here {depth or 'n/a'}, per healthy device): at "
                   f"{float(rate):,.0f} req/s the free tier's bound ({bound if bound else 'n/a'} queued with every "
                   f"device healthy) is {ms} of arrivals, so a stall of the gateway's core (another process, a "
                   f"burst) sheds free-tier requests.")
    why.append(f"- {s.generator_line()}")
    srv = s.cpu_pct("server_ticks")
    if srv is not None:
        note = ""
        o_srv = s.cpu_pct("other_server_cpu_ticks")
        gen = s.cpu_pct("generator_ticks")
        o_gen = s.cpu_pct("other_client_cpu_ticks")
        if srv >= 90:
            note = " The gateway's core was saturated (≥ 90 %): at this rate one core is the limit."
        elif o_srv is not None and o_srv >= NOISE_PCT:
            note = (f" The gateway was CPU-starved, not saturated: it used {srv:.0f} % of CPU 0 while other "
                    f"processes took {o_srv:.0f} % of it.")
        if o_gen is not None and o_gen >= NOISE_PCT and (gen or 0) < 90:
            note += (f" The generator shared CPU 1 with other processes ({o_gen:.0f} %), hence its lag.")
        why.append(f"- {s.cpu_line()}" + note)
    why.append(f"- Accelerator utilisation {fpct(gauge, 1)} (gauge, last 10 s), {fpct(measured, 1)} (accelerator "
               f"seconds over the run); {batch_line(s)}")
    out += why
    for w in s.bench.get("warnings", []):
        out.append(f"- sluice bench warning: {w}")
    out.append("")
    result = (f"p95 {fms(p95)} ms, success {fpct(succ, 3)}, achieved {fnum(a.get('achieved_rps'), 0)} req/s"
              + ("" if succ >= SUCCESS_TARGET else f" (failures: {s.failure_text(a)})"))
    return out, [str(n), title, target, result, verdict, s.machine_cell()]


def section_2(s):
    return section_growth(s, 2, "Seed growth", "34")


def section_8(s):
    return section_growth(s, 8, "Growth on half the fleet", "17")


def section_3(s):
    title = "Gateway efficiency: Sluice vs nginx (wrk, zero-latency sim)"
    out = [f"## 3. {title}", ""]
    target = "Sluice ≥ 0.70 × nginx req/s"
    report = read_text(os.path.join(s.dir, "report.md"))
    if not report.strip():
        return out + [s.error_block(), ""], ["3", title, target, "not measured", "ERROR", "n/a"]
    ratio = re.search(r"^ratio sluice/nginx = (\S+)", report, re.M)
    verdict = re.search(r"^verdict: (.*)$", report, re.M)
    medians = dict(re.findall(r"^\| (nginx|sluice) \| (\d+) \|", report, re.M))
    noisy = "**NOISY" in report
    clean = re.search(r"^clean runs only.*$", report, re.M)
    body = []
    for line in report.splitlines():
        if line.startswith("## "):   # its own title; the date is the suite's
            continue
        body.append(line)
    out += [f"Output of `bench/gateway_vs_nginx.sh` (exit status {s.meta.get('rc', 'n/a')}), unchanged:", ""]
    out += body + [""]
    v = verdict.group(1) if verdict else "n/a"
    if v.startswith("sluice meets"):
        vcell = "**PASS**"
    elif v.startswith("sluice BELOW"):
        vcell = "**FAIL**"
    else:
        vcell = "**" + v.split(" ")[0] + "**"
    result = (f"ratio {ratio.group(1) if ratio else 'n/a'} (sluice {int(medians.get('sluice', 0)):,} vs nginx "
              f"{int(medians.get('nginx', 0)):,} req/s, medians)")
    if clean:
        result += "; " + clean.group(0)
    upto = re.search(r"other processes used up to (\d+)% of a CPU", report)
    machine = (f"**NOISY** (others up to {upto.group(1) if upto else '?'} % in a run)" if noisy
               else "clean (others < 10 % in every run)")
    return out, ["3", title, target, result, vcell, machine]


def section_4(s):
    rate = s.meta.get("rate", "5000")
    title = f"Gateway overhead at {int(float(rate)):,} req/s"
    out = [f"## 4. {title} (zero-latency sim)", ""]
    target = "report p50 / p99 in µs"
    if not s.ok:
        return out + [s.error_block(), ""], ["4", title, target, "not measured", "ERROR", "n/a"]
    o = s.bench.get("gateway_overhead_ms") or {}
    rows = [["`sluice bench`: Server-Timing `gateway;dur` of every 200", f"{o.get('count', 0):,}",
             fus(o.get("p50")), fus(o.get("p90")), fus(o.get("p99")), fus(o.get("p999")), fus(o.get("max")),
             fus(o.get("mean"))]]
    cnt = msum(s.metrics, "sluice_gateway_overhead_seconds_count", model="sluice-sim-small")
    ssum = msum(s.metrics, "sluice_gateway_overhead_seconds_sum", model="sluice-sim-small")
    qs = {q: histogram_quantile(s.metrics, "sluice_gateway_overhead_seconds", q, model="sluice-sim-small")
          for q in (0.5, 0.9, 0.99, 0.999)}

    def hq(q):
        v = qs.get(q)
        if not v:
            return "n/a"
        est, lo, hi = v
        hi_t = "+Inf" if math.isinf(hi) else f"{hi * 1e6:,.0f}"
        return f"~{est * 1e6:,.0f} ({lo * 1e6:,.0f}–{hi_t})"

    rows.append(["gateway `/metrics` `sluice_gateway_overhead_seconds` (delta over the run incl. warm-up; "
                 "bucket interpolation, bucket bounds in brackets)", f"{int(cnt):,}", hq(0.5), hq(0.9), hq(0.99),
                 hq(0.999), "n/a", fus(ssum / cnt * 1000) if cnt else "n/a"])
    a = s.bench["overall"]["all"]
    lat = a["latency_ms"]
    qcount = msum(s.metrics, "sluice_queue_wait_seconds_count", model="sluice-sim-small")
    qsum = msum(s.metrics, "sluice_queue_wait_seconds_sum", model="sluice-sim-small")
    out += [s.config_line(), "",
            table(["source", "requests", "p50 µs", "p90 µs", "p99 µs", "p99.9 µs", "max µs", "mean µs"], rows,
                  ["---"] + ["---:"] * 7), "",
            "- What the gateway counts as its overhead (src/http/inference_endpoint.cc): from the moment the "
            "front door hands over a parsed HTTP request until the request's completion callback runs, minus "
            "the queue wait (accepted by the service, just before admission → dispatched) and the accelerator "
            "time (batch start → batch done): JSON decoding, authentication, the rate-limit check, and the "
            "hand-offs from dispatch to batch start and from batch done to the completion. HTTP parsing, response encoding and the socket "
            "write are outside it (they are in the end-to-end figure below). Server-Timing has a resolution "
            "of 1 µs.",
            f"- For scale: end to end (client side, from the scheduled send time) p50 {fms(lat.get('p50'))} ms, "
            f"p99 {fms(lat.get('p99'))} ms; achieved {fnum(a.get('achieved_rps'))} req/s, success "
            f"{fpct(a.get('success_ratio'), 3)}; mean queue wait "
            f"{fus(qsum / qcount * 1000) if qcount else 'n/a'} µs (/metrics).",
            f"- {s.generator_line()}", f"- {s.cpu_line()}"]
    for w in s.bench.get("warnings", []):
        out.append(f"- sluice bench warning: {w}")
    out.append("")
    result = (f"p50 {fus(o.get('p50'))} µs, p99 {fus(o.get('p99'))} µs (/metrics: p50 {hq(0.5)}, p99 {hq(0.99)} µs)")
    return out, ["4", title, target, result, "measured", s.machine_cell()]


def section_5(s):
    title = "Capacity per device (1 sim device, 32 items ≈ 50 ms)"
    out = [f"## 5. {title}", ""]
    tmax = float(s.meta.get("theoretical_max", "640"))
    target = f"highest rate with p99 < {SLO_MS:.0f} ms, as a fraction of {tmax:.0f} req/s"
    if not s.ok:
        return out + [s.error_block(), ""], ["5", title, target, "not measured", "ERROR", "n/a"]
    rows = []
    best = None
    broken = False
    step_ok = {}
    for st in s.bench.get("steps", []):
        a = st["all"]
        lat = a["latency_ms"]
        p99 = lat.get("p99")
        succ = a.get("success_ratio") or 0.0
        ok = p99 is not None and p99 < SLO_MS and succ >= SUCCESS_TARGET
        g = (st.get("gateway") or [None])[0] or {}
        rate = st.get("target_rate")
        # At or above the theoretical maximum the queue cannot settle (it
        # grows for as long as the step lasts), so such a step is never a
        # sustained rate, whatever its p99 after STEP_DURATION.
        at_max = rate >= tmax
        step_ok[rate] = ok
        verdict = ("pass, but ≥ max" if at_max else "pass") if ok else "**fail**"
        rows.append([fnum(rate, 0), fpct(rate / tmax, 1), fnum(a.get("achieved_rps")), fpct(succ, 2),
                     fms(lat.get("p50")), fms(lat.get("p95")), fms(p99), f"{a.get('status_504', 0):,}",
                     f"{a.get('status_503', 0):,}", fnum(g.get("mean_batch_size"), 1),
                     fpct(g.get("utilization_after"), 0), verdict])
        if ok and not at_max and not broken:
            best = rate
        if not ok or at_max:
            broken = True
    steps = s.bench.get("steps", [])
    next_fail = None
    if best is not None:
        later = [st["target_rate"] for st in steps if st["target_rate"] > best]
        next_fail = later[0] if later else None
    if best is None:
        answer = f"no step passed (lowest step {fnum(steps[0]['target_rate'], 0) if steps else 'n/a'} req/s)"
        short = answer
    else:
        answer = (f"**{best:,.0f} req/s = {best / tmax:.2f} of the theoretical {tmax:.0f} req/s** "
                  f"(max_batch_size {s.meta.get('cfg_max_batch_size')} ÷ 50 ms)")
        if next_fail is not None and not step_ok.get(next_fail, False):
            answer += (f"; the next step, {next_fail:,.0f} req/s ({next_fail / tmax:.2f}), failed, so the "
                       f"capacity lies between the two")
        elif next_fail is not None and next_fail >= tmax:
            answer += (f"; the next step, {next_fail:,.0f} req/s ({next_fail / tmax:.2f}), is at or above the "
                       f"theoretical maximum, where the queue grows without bound, so it does not count even "
                       f"when its p99 stayed under {SLO_MS:.0f} ms for {s.meta.get('step_duration', 'one step')}")
        elif next_fail is not None:
            answer += (f"; the next step, {next_fail:,.0f} req/s ({next_fail / tmax:.2f}), failed, so the "
                       f"capacity lies between the two")
        else:
            answer += "; every step passed, so this is a lower bound"
        answer += (". Near the maximum the answer depends on the step length: a queue that grows slowly "
                   "crosses 500 ms later in a longer step")
        short = f"{best:,.0f} req/s = {best / tmax:.2f} × {tmax:.0f}"
    out += [s.config_line(), "",
            f"Ramp `{s.meta.get('steps')}` req/s, one gateway, steps back to back (a step counts requests "
            f"scheduled in it). A step passes with p99 < {SLO_MS:.0f} ms (200s) and ≥ {100 * SUCCESS_TARGET:.1f} % "
            f"success; the answer is the highest step below the theoretical maximum with every step up to it "
            f"passing (at or above the maximum the queue cannot settle, so a pass there only means the "
            f"backlog stayed under {SLO_MS:.0f} ms for the step's length).", "",
            table(["offered req/s", "of max", "achieved req/s", "success", "p50 ms", "p95 ms", "p99 ms", "504",
                   "503", "mean batch", "utilisation", "step"], rows), "",
            f"Answer: {answer}.", "",
            "- Utilisation: the gateway's busy-fraction gauge at the end of each step (last 10 s).",
            f"- {s.generator_line()}", f"- {s.cpu_line()}"]
    for w in s.bench.get("warnings", []):
        out.append(f"- sluice bench warning: {w}")
    out.append("")
    return out, ["5", title, target, short, "measured", s.machine_cell()]


# ---------------------------------------------------------------- issue 10: scheduler scenarios
def noise_tol(v):
    """The noise allowed when comparing two latencies (ms): max(2 ms, 5 %)."""
    return max(2.0, 0.05 * v)


def machine_cell_of(scenarios):
    """One machine cell for several runs: NOISY when any was."""
    vals = [x.cpu_pct("other_ticks") for x in scenarios]
    vals = [v for v in vals if v is not None]
    if not vals:
        return "n/a"
    worst = max(vals)
    if worst >= NOISE_PCT:
        return f"**NOISY** (others up to {worst:.0f} % in a run)"
    return f"clean (others ≤ {worst:.0f} % in every run)"


def step_gw(st):
    return ((st.get("gateway") or [None])[0]) or {}


def section_6(run_dir, s):
    title = "Static vs adaptive batching, 4 sim devices"
    out = [f"## 6. {title}", ""]
    target = ("adaptive never worse than static on p50, p99, throughput (noise max(2 ms, 5 %)); adaptive p50 at the "
              "lowest rate ≤ 1.15 × a batch of one; mean batch ≥ 30 at ≥ 95 % load")
    modes = s.meta.get("modes", "static,adaptive").split(",")
    sub = {m: Scenario(run_dir, 6, m) for m in modes}
    if "static" not in sub or "adaptive" not in sub or not all(x.ok for x in sub.values()):
        blocks = [s.error_block()] + [f"{m}: " + x.error_block() for m, x in sub.items() if not x.ok]
        return out + blocks + [""], ["6", title, target, "not measured", "ERROR", "n/a"]
    st_s, st_a = sub["static"].bench.get("steps", []), sub["adaptive"].bench.get("steps", [])
    cap = float(s.meta.get("capacity", "2560"))
    m = sub["adaptive"].meta
    try:
        one = (float(m.get("cfg_fixed_latency_us")) + float(m.get("cfg_per_item_latency_us"))) / 1000.0
    except (TypeError, ValueError):
        one = float(s.meta.get("batch_of_one_ms", "34.5"))
    rows, worse_steps = [], []
    for a_st, s_st in zip(st_a, st_s):
        rate = a_st.get("target_rate")
        a, b = a_st["all"], s_st["all"]
        la, lb = a["latency_ms"], b["latency_ms"]
        worse = []
        for q in ("p50", "p99"):
            if la.get(q) is not None and lb.get(q) is not None and la[q] > lb[q] + noise_tol(lb[q]):
                worse.append(f"{q} +{la[q] - lb[q]:.1f} ms")
        if (a.get("achieved_rps") or 0) < (b.get("achieved_rps") or 0) * 0.95:
            worse.append(f"throughput {a.get('achieved_rps', 0) - b.get('achieved_rps', 0):+,.0f} req/s")
        if worse:
            worse_steps.append((rate, worse))
        rows.append([fnum(rate, 0), fpct(rate / cap, 0), f"{fms(lb.get('p50'))} / {fms(la.get('p50'))}",
                     f"{fms(lb.get('p99'))} / {fms(la.get('p99'))}",
                     f"{fnum(b.get('achieved_rps'), 0)} / {fnum(a.get('achieved_rps'), 0)}",
                     f"{fpct(b.get('success_ratio'), 1)} / {fpct(a.get('success_ratio'), 1)}",
                     f"{fnum(step_gw(s_st).get('mean_batch_size'), 1)} / {fnum(step_gw(a_st).get('mean_batch_size'), 1)}",
                     "**worse: " + ", ".join(worse) + "**" if worse else "not worse"])
    low = st_a[0] if st_a else None
    low_p50 = low["all"]["latency_ms"].get("p50") if low else None
    lim = 1.15 * one
    low_ok = low_p50 is not None and low_p50 <= lim
    full = [(st_a[i], st_s[i]) for i in range(min(len(st_a), len(st_s))) if st_a[i]["target_rate"] >= 0.95 * cap]
    full_ok = bool(full) and all((step_gw(a_st).get("mean_batch_size") or 0) >= 30 for a_st, _ in full)
    full_txt = ", ".join(f"{a_st['target_rate']:,.0f} req/s: adaptive {fnum(step_gw(a_st).get('mean_batch_size'), 1)}"
                         f" (static {fnum(step_gw(s_st).get('mean_batch_size'), 1)})" for a_st, s_st in full)
    fails = []
    if worse_steps:
        fails.append("adaptive worse than static at " + ", ".join(f"{r:,.0f} req/s" for r, _ in worse_steps))
    if not low_ok:
        fails.append(f"p50 at {low['target_rate'] if low else 'n/a'} req/s above {lim:.1f} ms")
    if not full_ok:
        fails.append("mean batch < 30 at ≥ 95 % load")
    noisy = any(x.noisy for x in sub.values())
    verdict = "**PASS**" if not fails else "**FAIL**" + (", inconclusive (NOISY)" if noisy else "")
    out += [f"Both modes (shown: adaptive; static differs only in `batching`): {sub['adaptive'].config_line()} Tier mix 70/25/5; ramp `{s.meta.get('steps')}` req/s, "
            f"{s.meta.get('step_duration')} a step, back to back on one gateway per mode (a fresh `sluice serve` "
            f"for each mode; a step counts the requests scheduled in it). Capacity on full batches: 4 × 32 ÷ "
            f"50 ms = {cap:,.0f} req/s.", "",
            "Each cell: static / adaptive.", "",
            table(["offered req/s", "load", "p50 ms", "p99 ms", "achieved req/s", "success", "mean batch",
                   "adaptive vs static"], rows), "",
            "Checks (adaptive is the new default):",
            f"- Adaptive never worse than static at any step, on p50, p99 (worse = more than max(2 ms, 5 %) "
            f"above static: the run-to-run noise allowed) or achieved throughput (more than 5 % below): "
            + ("**yes**." if not worse_steps else "**no**: " + "; ".join(
                f"{r:,.0f} req/s ({', '.join(w)})" for r, w in worse_steps) + "."),
            f"- Adaptive p50 at {low['target_rate'] if low else 'n/a'} req/s: {fms(low_p50)} ms against a limit of "
            f"1.15 × the batch-of-one cost ({one:.1f} ms) = {lim:.1f} ms: **{'yes' if low_ok else 'no'}** (static: "
            f"{fms(st_s[0]['all']['latency_ms'].get('p50')) if st_s else 'n/a'} ms, which waits up to "
            f"max_batch_delay for a fuller batch).",
            f"- Mean batch ≥ 30 at the steps ≥ 95 % of capacity ({full_txt or 'none'}): "
            f"**{'yes' if full_ok else 'no'}**.",
            "- Mean batch and latencies per step come from `sluice bench` (its /metrics scrapes at the step "
            "boundaries; latencies of the 200s from the scheduled send time).",
            f"- Static run: {sub['static'].cpu_line()}", f"- Adaptive run: {sub['adaptive'].cpu_line()}"]
    for mode, x in sub.items():
        for w in x.bench.get("warnings", []):
            out.append(f"- sluice bench warning ({mode}): {w}")
    out.append("")
    result = (f"adaptive worse at {len(worse_steps)} of {len(rows)} steps"
              + (" (" + "; ".join(f"{r:,.0f}: {', '.join(w)}" for r, w in worse_steps) + ")" if worse_steps else "")
              + f"; adaptive p50 at {low['target_rate'] if low else 'n/a'} req/s {fms(low_p50)} ms (≤ {lim:.1f}); "
              f"mean batch at ≥ 95 % load {', '.join(fnum(step_gw(a_st).get('mean_batch_size'), 1) for a_st, _ in full)}")
    return out, ["6", title + "; admission on", target, result, verdict, machine_cell_of(sub.values())]


def section_7(s):
    rate = float(s.meta.get("rate", "7680"))
    cap = float(s.meta.get("capacity", "2560"))
    title = f"3× overload: {rate:,.0f} req/s on {s.meta.get('cfg_devices', '4')} devices"
    out = [f"## 7. {title}", ""]
    target = (f"goodput ≥ {0.95 * cap:,.0f} req/s (95 % of {cap:,.0f}); enterprise and paid 100 %; no 504; every "
              f"refusal a 503/429 before queueing; utilisation ≥ 95 %")
    if not s.ok:
        return out + [s.error_block(), ""], ["7", title, target, "not measured", "ERROR", "n/a"]
    ov = s.bench["overall"]
    a, tiers = ov["all"], ov.get("tiers", {})
    goodput = a.get("achieved_rps") or 0.0
    gauge, measured = utilisation(s)
    m503 = msum(s.metrics, "sluice_requests_total", model="sluice-sim-small", status="503")
    m429 = msum(s.metrics, "sluice_requests_total", model="sluice-sim-small", status="429")
    shed = msum(s.metrics, "sluice_shed_total", model="sluice-sim-small")
    checks = []

    def check(name, ok, figure):
        checks.append((name, ok, figure))

    check(f"goodput ≥ {0.95 * cap:,.0f} req/s", goodput >= 0.95 * cap,
          f"{goodput:,.0f} req/s of 200s ({goodput / cap * 100:.1f} % of {cap:,.0f})")
    for t in ("enterprise", "paid"):
        x = tiers.get(t) or {}
        check(f"{t} 100 % success", bool(x) and x.get("ok") == x.get("scheduled"),
              f"{x.get('ok', 0):,} of {x.get('scheduled', 0):,} ({fpct(x.get('success_ratio'), 3)})")
    check("no 504", (a.get("status_504") or 0) == 0, f"{a.get('status_504', 0):,} 504")
    immediate = bool(s.metrics) and abs(m503 - shed) < 0.5
    check("every refusal a 503/429, before queueing",
          (a.get("other") or 0) == 0 and immediate,
          f"client: {a.get('status_503', 0):,} 503, {a.get('status_429', 0):,} 429, {a.get('other', 0):,} other; "
          f"/metrics over the run incl. warm-up: {m503:,.0f} answered 503, {shed:,.0f} refused at admission "
          f"(`sluice_shed_total`: {s.shed_text()}), {m429:,.0f} answered 429"
          + ("" if s.metrics else " (no /metrics scrape)"))
    util = gauge if gauge is not None else measured
    check("utilisation ≥ 95 %", util is not None and util >= 0.95,
          f"{fpct(gauge, 1)} (gauge, last 10 s of the run); {fpct(measured, 1)} (accelerator seconds ÷ "
          f"(devices × wall time), whole run incl. warm-up, start and drain)")
    fails = [c[0] for c in checks if not c[1]]
    verdict = "**PASS**" if not fails else "**FAIL**" + (", inconclusive (NOISY)" if s.noisy else "")
    out += [s.config_line(), "", tier_rows(ov), "",
            "Checks:"]
    out += [f"- {name}: **{'yes' if ok else 'no'}**: {fig}." for name, ok, fig in checks]
    out += [f"- {batch_line(s)}", f"- {s.generator_line()}", f"- {s.cpu_line()}"]
    for w in s.bench.get("warnings", []):
        out.append(f"- sluice bench warning: {w}")
    out.append("")
    ent, paid, free = (tiers.get(t) or {} for t in ("enterprise", "paid", "free"))
    result = (f"goodput {goodput:,.0f} req/s; success enterprise {fpct(ent.get('success_ratio'), 2)}, paid "
              f"{fpct(paid.get('success_ratio'), 2)}, free {fpct(free.get('success_ratio'), 1)}; 504 "
              f"{a.get('status_504', 0):,}; 503 {a.get('status_503', 0):,} (all at admission: "
              f"{'yes' if immediate else 'no'}); utilisation {fpct(util, 1)}"
              + (f" (failed: {', '.join(fails)})" if fails else ""))
    return out, ["7", title, target, result, verdict, s.machine_cell()]


SIM_CASES = (("baseline", 1), ("overload", 7), ("growth", 8))


def overload_note(run_dir):
    """Why the all-tier p95 of the overload case is ill-conditioned, with its figures."""
    meas = Scenario(run_dir, 7)
    if not meas.ok:
        return "- "
    t = meas.bench["overall"].get("tiers", {})
    ok_all = meas.bench["overall"]["all"].get("ok") or 0
    free = t.get("free") or {}
    share = (free.get("ok") or 0) / ok_all if ok_all else None
    prem = max((t.get(x) or {}).get("latency_ms", {}).get("p95") or 0 for x in ("paid", "enterprise"))
    return (f"- Under overload the p95 of all tiers together is ill-conditioned: of the measured 200s, "
            f"{fpct(share, 1)} are admitted free requests (free p95 {fms(free.get('latency_ms', {}).get('p95'))} ms) "
            f"and the rest paid and enterprise (p95 ≤ {fms(prem)} ms), so the 95th percentile of all falls on the "
            f"steep step between the two groups and moves a lot with a small change in the free share. ")


def section_9(run_dir, s):
    title = "Simulated vs measured (`sluice simulate` on scenarios 1, 7, 8)"
    out = [f"## 9. {title}", ""]
    target = "every tier's simulated p95 within 10 % (relative) and success within 10 points of the measured"
    sims = {c: (read_json(os.path.join(s.dir, f"{c}-poisson.json")), read_json(os.path.join(s.dir, f"{c}-constant.json")))
            for c, _ in SIM_CASES}
    if not s.present or not all(p for p, _ in sims.values()):
        return out + [s.error_block(), ""], ["9", title, target, "not simulated", "ERROR", "n/a"]
    rows, detail, agree, missing, measured_runs, tier_disagree = [], [], {}, [], [], []
    for c, n in SIM_CASES:
        sim, simc = sims[c]
        meas = Scenario(run_dir, n)
        sa, sca = sim["all"], (simc or {}).get("all", {})
        sp95, ssucc = sa["latency_ms"].get("p95"), sa.get("success_ratio")
        cells = [c, f"{n}", s.meta.get(f"{c}_devices", "n/a"), fnum(float(s.meta.get(f"{c}_rate", "0")), 0)]
        if not meas.ok:
            missing.append(c)
            rows.append(cells + ["not measured in this run", fms(sp95), "n/a", "n/a", fpct(ssucc, 2), "n/a",
                                 "n/a", f"{fms(sca.get('latency_ms', {}).get('p95'))} / {fpct(sca.get('success_ratio'), 2)}"])
            continue
        measured_runs.append(meas)
        ma = meas.bench["overall"]["all"]
        mp95, msucc = ma["latency_ms"].get("p95"), ma.get("success_ratio")
        rel = (sp95 - mp95) / mp95 if sp95 is not None and mp95 else None
        pts = 100 * (ssucc - msucc) if ssucc is not None and msucc is not None else None
        ok = rel is not None and abs(rel) <= 0.10 and pts is not None and abs(pts) <= 10.0
        agree[c] = True  # judged per tier below
        noisy = " (NOISY)" if meas.noisy else ""
        rows.append(cells + [f"{fms(mp95)}{noisy}", fms(sp95), f"{rel * 100:+.1f} %" if rel is not None else "n/a",
                             fpct(msucc, 2), fpct(ssucc, 2), f"{pts:+.2f}" if pts is not None else "n/a",
                             "**yes**" if ok else "**no**",
                             f"{fms(sca.get('latency_ms', {}).get('p95'))} / {fpct(sca.get('success_ratio'), 2)}"])
        for t in TIERS:
            mt = meas.bench["overall"].get("tiers", {}).get(t) or {}
            st = next((x for x in sim["tiers"] if x["name"] == t), {})
            tm, ts = mt.get("latency_ms", {}).get("p95"), st.get("latency_ms", {}).get("p95")
            trel = (ts - tm) / tm if tm and ts is not None else None
            tpts = (100 * (st["success_ratio"] - mt["success_ratio"])
                    if st.get("success_ratio") is not None and mt.get("success_ratio") is not None else None)
            tok = trel is not None and abs(trel) <= 0.10 and tpts is not None and abs(tpts) <= 10.0
            if not tok:
                tier_disagree.append(f"{c} {t}")
                agree[c] = False
            detail.append([c, t, fms(tm), fms(ts), f"{trel * 100:+.1f} %" if trel is not None else "n/a",
                           fpct(mt.get("success_ratio"), 2), fpct(st.get("success_ratio"), 2),
                           "yes" if tok else "**no**",
                           f"{mt.get('status_503', 0):,} / {mt.get('status_504', 0):,}",
                           f"{st.get('refused_total', 0):,} / {st.get('timed_out', 0):,}"])
    out += [f"`sluice simulate` runs the gateway's scheduler (queue, admission, adaptive batching, retries, breakers) "
            f"on simulated devices in virtual time. Each case: the config of the measured scenario "
            f"({'; '.join(f'{c}: ' + s.meta.get(f'{c}_config', 'n/a') for c, _ in SIM_CASES)}), the same rate and "
            f"tier mix, {s.meta.get('warmup_s')} s + {s.meta.get('duration_s')} s of virtual time with the first "
            f"{s.meta.get('warmup_s')} s left out (as the measured warm-up), seed 1. Agreement, per tier: |simulated "
            f"p95 − measured p95| ≤ 10 % of the measured, and the success percentages within 10 points (the "
            f"all-tier p95 of a mix of tiers served ~10x apart, as under overload, swings with the mix's shares, "
            f"so it is shown, marked, but not judged). The verdict "
            f"uses Poisson arrivals; `sluice bench` sends evenly spaced arrivals, so the last column simulates "
            f"those too.", "",
            table(["case", "measured in", "devices", "req/s", "measured p95 ms", "simulated p95 ms (Poisson)", "Δ p95",
                   "measured success", "simulated success", "Δ points", "agree", "simulated, even arrivals: p95 ms / success"],
                  rows), "", "Per tier:", "",
            table(["case", "tier", "measured p95 ms", "simulated p95 ms", "Δ p95", "measured success",
                   "simulated success", "agree", "measured 503 / 504", "simulated refused / 504"], detail,
                  ["---", "---"] + ["---:"] * 8), "",
            "- Latencies: measured from each request's scheduled send time by `sluice bench` (so they include the "
            "HTTP round trip, the gateway's own CPU and the generator's lag); simulated from arrival to answer in "
            "virtual time (no network, no CPU).",
            overload_note(run_dir) + "The per-tier rows compare like with like: "
            + ("every tier agrees within 10 %." if not tier_disagree else
               "disagreeing: " + ", ".join(tier_disagree) + "."), ""]
    disagree = [c for c, ok in agree.items() if not ok]
    if missing and not agree:
        verdict = "not compared (scenarios 1, 7, 8 not run)"
    elif disagree:
        verdict = "**FAIL**" + (", inconclusive (NOISY)" if any(m.noisy for m in measured_runs) else "")
    else:
        verdict = "**PASS**" if not missing else "**PASS** (partial)"
    result = "; ".join(
        f"{c}: p95 {r[4]} vs {r[5]} sim ({r[6]}), success {r[7]} vs {r[8]}" if r[4] != "not measured in this run"
        else f"{c}: not measured" for c, r in zip((c for c, _ in SIM_CASES), rows))
    if missing:
        result += f" (not measured in this run: {', '.join(missing)})"
    if disagree and agree:
        result += ("; per tier: every tier within 10 %" if not tier_disagree
                   else f"; per tier disagreeing: {', '.join(tier_disagree)}")
    machine = machine_cell_of(measured_runs) + " (measured runs; the simulation is virtual time)" if measured_runs \
        else "n/a (virtual time)"
    return out, ["9", title, target, result, verdict, machine]


def failure_series(tiers_per_step, step_s, start_s, end_s, remaining_cap):
    """Analyses per-interval tier counts [{tier: {offered, ok, bad}}]: where the
    degraded properties hold (paid and enterprise 100 %, no 504 / 502, goodput
    >= 95 % of min(offered, remaining capacity)) and when every tier is back to
    100 % success. Returns a dict of figures (times in s from the start)."""
    n = len(tiers_per_step)

    def tot(i, key):
        return sum(v[key] for v in tiers_per_step[i].values())

    def degraded_ok(i):
        t = tiers_per_step[i]
        prem = all(t[x]["ok"] == t[x]["offered"] for x in ("paid", "enterprise") if x in t)
        goodput = tot(i, "ok") / step_s
        return prem and tot(i, "bad") == 0 and goodput >= 0.95 * min(tot(i, "offered") / step_s, remaining_cap)

    def normal_ok(i):
        return all(v["ok"] == v["offered"] for v in tiers_per_step[i].values())

    first, last = int(round(start_s / step_s)), int(round(end_s / step_s))
    # Trailing intervals with nothing offered (a simulation's drain) do not count.
    while n > 0 and tot(n - 1, "offered") == 0:
        n -= 1
    hold_from = None
    for i in range(first, min(last, n)):
        if all(degraded_ok(j) for j in range(i, min(last, n))):
            hold_from = i
            break
    back_from = None
    for i in range(last, n):
        if all(normal_ok(j) for j in range(i, n)):
            back_from = i
            break
    window = {}
    for x in TIERS:
        off = sum(tiers_per_step[i].get(x, {}).get("offered", 0) for i in range(first, min(last, n)))
        ok = sum(tiers_per_step[i].get(x, {}).get("ok", 0) for i in range(first, min(last, n)))
        window[x] = ok / off if off else None
    bad = sum(tot(i, "bad") for i in range(n))
    return {"hold_after_s": None if hold_from is None else hold_from * step_s - start_s,
            "back_after_s": None if back_from is None else back_from * step_s - end_s,
            "window": window, "bad": bad,
            "before_ok": all(normal_ok(i) for i in range(0, min(first, n)))}


def sim_steps(d):
    per = {t["name"]: t.get("per_second") or [] for t in d.get("tiers", [])}
    n = max((len(v) for v in per.values()), default=0)
    out = []
    for i in range(n):
        row = {}
        for name, v in per.items():
            p = v[i] if i < len(v) else {"offered": 0, "ok": 0, "timed_out": 0, "failed": 0, "other": 0}
            row[name] = {"offered": p.get("offered", 0), "ok": p.get("ok", 0),
                         "bad": p.get("timed_out", 0) + p.get("failed", 0) + p.get("other", 0),
                         "refused": p.get("refused", 0)}
        out.append(row)
    return out


def live_steps(bench):
    out = []
    for st in bench.get("steps", []):
        row = {}
        for name, t in (st.get("tiers") or {}).items():
            row[name] = {"offered": t.get("scheduled", 0), "ok": t.get("ok", 0),
                         "bad": t.get("status_504", 0) + t.get("other", 0),
                         "refused": t.get("status_503", 0) + t.get("status_429", 0)}
        out.append(row)
    return out


def fsec(v):
    return "never" if v is None else f"+{v:g} s"


def section_10(run_dir, s):
    rate = float(s.meta.get("rate", "1792"))
    cap = float(s.meta.get("capacity", "2560"))
    lost = int(s.meta.get("lost_devices", "2"))
    title = f"Half the devices failing mid-run at {rate / cap:.1f} × capacity"
    out = [f"## 10. {title}", ""]
    target = ("paid and enterprise 100 % and no 504/502 while 2 of 4 devices are out (10–20 s); when the "
              "properties hold; when every tier is back to 100 %")
    sims = {ev: read_json(os.path.join(s.dir, f"sim-{ev}.json")) for ev in ("down", "disable")}
    if not all(sims.values()):
        return out + [s.error_block(), ""], ["10", title, target, "not simulated", "ERROR", "n/a"]
    devices = 4
    remaining = (devices - lost) * cap / devices
    res = {ev: failure_series(sim_steps(d), 1.0, 10.0, 20.0, remaining) for ev, d in sims.items()}
    steps = {ev: sim_steps(d) for ev, d in sims.items()}
    rows = []
    n = max(len(v) for v in steps.values())
    for i in range(8, min(n, 26)):
        cells = [f"{i}–{i + 1}" + (" ⟵ out" if i == 10 else " ⟵ back" if i == 20 else "")]
        for ev in ("down", "disable"):
            t = steps[ev][i] if i < len(steps[ev]) else {}
            for x in TIERS:
                v = t.get(x)
                cells.append(fpct(v["ok"] / v["offered"], 1) if v and v["offered"] else "n/a")
            cells.append(f"{sum(v['bad'] for v in t.values()):,}")
            cells.append(f"{sum(v['ok'] for v in t.values()):,}")
        rows.append(cells)
    out += [f"Config: config/sluice.yaml with 4 sim devices, 34 ms + 0.5 ms per item (jitter as bundled), "
            f"max_batch_size 32, admission on (bundled budgets and per-device depth bounds), rate limits off. "
            f"Load: {rate:,.0f} req/s ({rate / cap:.1f} × {cap:,.0f}), tiers 70/25/5. Devices 0 and 1 are lost from "
            f"10 s to 20 s: {lost} of {devices}, leaving {remaining:,.0f} req/s on full batches, so the load is "
            f"{rate / remaining:.1f} × what is left.", "",
            "### Simulated (`sluice simulate`, 40 s of Poisson arrivals, virtual time)", "",
            "`down`: the devices fail every batch (the breakers must find out; batches in flight fail and are "
            "retried elsewhere); `disable`: they are taken out of service (what the live run below does). Per "
            "second of arrival: success of each tier, requests answered 504 or 502 (bad), 200s (goodput).", "",
            table(["second", "down: free", "paid", "enterprise", "504+502", "200s",
                   "disable: free", "paid", "enterprise", "504+502", "200s"], rows), ""]
    for ev in ("down", "disable"):
        r, d = res[ev], sims[ev]
        w = r["window"]
        out.append(f"- `{ev}`: during 10–20 s success free {fpct(w['free'], 1)}, paid {fpct(w['paid'], 2)}, "
                   f"enterprise {fpct(w['enterprise'], 2)}; {r['bad']:,} requests answered 504/502 over the run "
                   f"(dead letters {d.get('dead_letters', 0):,}, retried {d.get('retried_requests', 0):,}, breaker "
                   f"opens {d.get('breaker_opens', 0):,}); the degraded properties (paid and enterprise 100 %, no "
                   f"504/502, goodput ≥ 95 % of min(offered, {remaining:,.0f})) hold from {fsec(r['hold_after_s'])} "
                   f"after the loss to the return; every tier is at 100 % again {fsec(r['back_after_s'])} after "
                   f"the return, and stays there.")
    out.append("")
    live = Scenario(run_dir, 10, "live")
    live_res = None
    if live.present and live.ok:
        step = float(s.meta.get("live_step_s", "2"))
        down_s, up_s = float(s.meta.get("live_down_s", "10")), float(s.meta.get("live_up_s", "20"))
        ls = live_steps(live.bench)
        live_res = failure_series(ls, step, down_s, up_s, remaining)
        events = [line.split("\t") for line in read_text(os.path.join(live.dir, "events.tsv")).splitlines() if line]
        ev_txt = ", ".join(f"device {e[1]} enabled={e[2]} at {float(e[0]):.2f} s (HTTP {e[3]})" for e in events
                           if len(e) >= 4)
        lrows = []
        for i, st in enumerate(live.bench.get("steps", [])):
            t0 = i * step
            mark = " ⟵ out" if abs(t0 - down_s) < 1e-6 else " ⟵ back" if abs(t0 - up_s) < 1e-6 else ""
            a, tt = st["all"], st.get("tiers", {})
            lrows.append([f"{t0:g}–{t0 + step:g}{mark}", fnum(a.get("offered_rps"), 0), fnum(a.get("achieved_rps"), 0)]
                         + [fpct((tt.get(x) or {}).get("success_ratio"), 1) for x in TIERS]
                         + [f"{a.get('status_503', 0):,}", f"{a.get('status_504', 0):,}", f"{a.get('other', 0):,}",
                            fms(a["latency_ms"].get("p95")), fnum(step_gw(st).get("mean_batch_size"), 1)])
        w = live_res["window"]
        oa = live.bench["overall"]["all"]
        out += ["### Live (`sluice serve` + `sluice bench`, devices disabled over HTTP)", "",
                f"{live.config_line()} `sluice bench` offers {rate:,.0f} req/s (evenly spaced) as {len(lrows)} "
                f"steps of {step:g} s after a 2-s warm-up; a sidecar POSTs "
                f"`/internal/models/sluice-sim-small/devices/{{0,1}}` `{{\"enabled\":false}}` at {down_s:g} s and "
                f"`{{\"enabled\":true}}` at {up_s:g} s (service token). Measured: {ev_txt or 'no device events recorded'} "
                f"(times from the end of the warm-up; the sidecar's clock starts at the gateway's first answer, "
                f"seen on /metrics every 20 ms, less 35 ms, so it is within ~30 ms of the generator's).", "",
                table(["s", "offered req/s", "achieved req/s", "free", "paid", "enterprise", "503", "504", "other",
                       "p95 ms", "mean batch"], lrows), "",
                f"- Totals over the {len(lrows) * step:g} s: {oa.get('scheduled', 0):,} requests, {oa.get('ok', 0):,} "
                f"200 ({fpct(oa.get('success_ratio'), 2)}), {oa.get('status_503', 0):,} 503, "
                f"{oa.get('status_504', 0):,} 504, {oa.get('other', 0):,} other; per tier "
                + ", ".join(f"{x} {fpct((live.bench['overall']['tiers'].get(x) or {}).get('success_ratio'), 2)}"
                            for x in TIERS) + ".",
                f"- During {down_s:g}–{up_s:g} s success free {fpct(w['free'], 1)}, paid {fpct(w['paid'], 2)}, "
                f"enterprise {fpct(w['enterprise'], 2)}; the degraded properties hold from "
                f"{fsec(live_res['hold_after_s'])} after the loss (step resolution {step:g} s); every tier at 100 % "
                f"again {fsec(live_res['back_after_s'])} after the return. Shed by admission (from /metrics): "
                f"{live.shed_text()}.",
                f"- {live.generator_line()}", f"- {live.cpu_line()}", ""]
    elif live.present:
        out += ["### Live", "", live.error_block(), ""]
    else:
        out += ["### Live", "", "Not run (LIVE_FAILURE=0).", ""]

    def prem_ok(r):
        w = r["window"]
        return w["paid"] == 1.0 and w["enterprise"] == 1.0 and r["bad"] == 0
    judged = [("sim down", res["down"]), ("sim disable", res["disable"])]
    if live_res:
        judged.append(("live disable", live_res))
    fails = [name for name, r in judged if not prem_ok(r)]
    verdict = "**PASS**" if not fails else "**FAIL** (" + ", ".join(fails) + ")"
    if fails and live_res and live.noisy and fails == ["live disable"]:
        verdict += ", inconclusive (NOISY)"
    result = "; ".join(
        f"{name}: paid {fpct(r['window']['paid'], 2)} / ent {fpct(r['window']['enterprise'], 2)} / free "
        f"{fpct(r['window']['free'], 0)} while out, {r['bad']:,} 504+502, properties from {fsec(r['hold_after_s'])}, "
        f"all 100 % {fsec(r['back_after_s'])} after return" for name, r in judged)
    machine = (live.machine_cell() + " (live run)") if live_res else "n/a (virtual time)"
    return out, ["10", title + "; admission on", target, result, verdict, machine]


SEEDS_PLAN = {1000: 4, 10000: 34}   # the seeds: 426 req/s per GPU at 70 % utilisation


def parse_plan(text):
    sim = re.search(r"^simulation: (\d+) devices? meets? the SLA", text, re.M)
    arith = re.search(r"->\s*(\d+) devices? for (\S+) req/s, (\d+) devices? for the (\S+) peak", text)
    per = re.search(r"^arithmetic: (.*)$", text, re.M)
    rows = {}
    for m in re.finditer(r"^\s*(\d+)\s+(yes|no)\s+(\S+)\s+(\S+)\s+(\S+)%\s+(.*)$", text, re.M):
        rows[int(m.group(1))] = m.groups()
    return {"devices": int(sim.group(1)) if sim else None, "sim_line": sim.group(0) if sim else None,
            "arith_avg": int(arith.group(1)) if arith else None, "arith_peak": int(arith.group(3)) if arith else None,
            "arith_line": per.group(1) if per else None, "rows": rows}


def section_11(s):
    title = "Capacity plan: `sluice plan` vs the seeds' arithmetic"
    out = [f"## 11. {title}", ""]
    p95 = s.meta.get("p95_ms", "500")
    peak = s.meta.get("peak", "3")
    target = f"fewest devices with every tier's p95 < {p95} ms and ≥ 99.9 % success at {peak}× peak"
    rates = [int(r) for r in s.meta.get("rates", "1000,10000").split(",") if r]
    rows, short, arith_line = [], [], None
    for rate in rates:
        for pk in dict.fromkeys([peak, "1"]):
            text = read_text(os.path.join(s.dir, f"plan-{rate}-{pk}.txt"))
            if not text:
                continue
            p = parse_plan(text)
            arith_line = arith_line or p["arith_line"]
            r = p["rows"].get(p["devices"]) if p["devices"] else None
            rc = s.meta.get(f"rc_{rate}_{pk}", "n/a")
            rows.append([f"{rate:,}", f"{pk}×", f"{rate * float(pk):,.0f}",
                         f"**{p['devices']}**" if p["devices"] else f"none (exit {rc})",
                         f"{r[3]} / {r[2]} / {r[4]} %" if r else "n/a",
                         f"{p['arith_avg']} / {p['arith_peak']}" if p["arith_avg"] is not None else "n/a",
                         f"{SEEDS_PLAN.get(rate, 'n/a')}"])
            if pk == peak:
                short.append(f"{rate:,} req/s: {p['devices']} devices at {peak}× peak (seeds {SEEDS_PLAN.get(rate, 'n/a')})")
    if not rows:
        return out + [s.error_block(), ""], ["11", title, target, "not computed", "ERROR", "n/a"]
    out += [f"`sluice plan --config config/sluice.yaml --rate R --p95-ms {p95} --peak P`: each trial simulates 60 s "
            f"of Poisson traffic at R × P through the gateway's scheduler (tiers 70/25/5, 5 s left out), and the "
            f"answer is the fewest devices whose every tier keeps p95 < {p95} ms and ≥ 99.9 % success. The bundled "
            f"model: 34 ms + 0.5 ms per item, max_batch_size 32 (640 req/s per device on full batches).", "",
            table(["avg req/s", "peak", "simulated at req/s", "devices (simulation)",
                   "at that count: worst p95 ms / worst success / utilisation",
                   "plan's arithmetic: for the average / for the peak", "seeds' arithmetic"], rows), "",
            f"- Plan's arithmetic: {arith_line or 'n/a'}, devices = ceil(rate ÷ that).",
            "- Seeds' arithmetic: 426 req/s per GPU at 70 % utilisation: 4 GPUs for 1,000 req/s, 34 for 10,000 "
            "(their figures, quoted).", ""]
    return out, ["11", title, target, "; ".join(short), "computed", "n/a (virtual time)"]


# ---------------------------------------------------------------- machine and run
def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
    except (subprocess.SubprocessError, OSError):
        return ""


def machine_lines(run):
    cpu = ""
    for line in read_text("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    osr = {}
    for line in read_text("/etc/os-release").splitlines():
        if "=" in line:
            k, v = line.split("=", 1)
            osr[k] = v.strip('"')
    mem = ""
    for line in read_text("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem = f"{int(line.split()[1]) / 1048576:.1f} GiB RAM"
    return [
        f"- CPUs: `nproc` = {run.get('nproc', sh('nproc'))}; {cpu or 'unknown CPU model'}; {mem}",
        f"- Kernel: {platform.release()}; OS: {osr.get('PRETTY_NAME', 'unknown')} "
        f"(Debian version {read_text('/etc/debian_version').strip() or 'n/a'})",
        f"- Pinning: gateway (`sluice serve`, io_threads {run.get('io_threads', '1')}) on CPU "
        f"{run.get('server_cpu', '0')}, load generator (`sluice bench`, 1 thread; wrk in scenario 3) on CPU "
        f"{run.get('client_cpu', '1')}, with `taskset`. Other processes are not pinned away: the machine is "
        f"shared with other sessions, so each scenario records the CPU they used; ≥ {NOISE_PCT:.0f} % of a CPU "
        f"marks it **NOISY**.",
    ]


def notes_outside_the_suite():
    """bench/notes/*.md (hand-kept figures from runs outside bench/run), in
    name order, so that regenerating RESULTS.md keeps them."""
    notes_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "notes")
    names = sorted(n for n in os.listdir(notes_dir) if n.endswith(".md")) if os.path.isdir(notes_dir) else []
    if not names:
        return []
    out = ["## Measured outside the suite", "",
           "Kept by hand in `bench/notes/` (each file names its command and commit); appended here by "
           "`bench/report.py`.", ""]
    for name in names:
        with open(os.path.join(notes_dir, name)) as f:
            out += [f.read().rstrip(), ""]
    return out


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    run_dir = sys.argv[1]
    run = read_env(os.path.join(run_dir, "run.env"))
    scen = {n: Scenario(run_dir, n) for n in range(1, 12)}
    sections, summary = [], []
    fns = ((1, section_1), (2, section_2), (3, section_3), (4, section_4), (5, section_5),
           (6, lambda s: section_6(run_dir, s)), (7, section_7), (8, section_8),
           (9, lambda s: section_9(run_dir, s)), (10, lambda s: section_10(run_dir, s)), (11, section_11))
    for n, fn in fns:
        s = scen[n]
        if not s.present:
            sections.append([f"## {n}. (not run in this suite run)", ""])
            continue
        body, row = fn(s)
        if s.meta.get("admission"):
            row[1] += f"; admission {s.meta['admission']}"
        sections.append(body)
        summary.append(row)

    out = ["# Sluice benchmark results", "",
           f"Latest run of `bench/run`: {run.get('finished', 'n/a')} (UTC), mode **{run.get('mode', 'n/a')}**, "
           f"took {run.get('elapsed', 'n/a')}. Generated by `bench/report.py`; rerun `bench/run` to refresh.", "",
           f"- Commit: `{run.get('commit', 'n/a')}`{run.get('dirty', '')}",
           f"- Binary: `{run.get('binary', 'n/a')}` ({run.get('version', '')}, CMake build type "
           f"{run.get('build_type', 'n/a')}, built {run.get('binary_mtime', 'n/a')}{run.get('binary_note', '')})"]
    out += machine_lines(run)
    out += ["", "## Summary", "",
            table(["#", "scenario", "target", "result", "verdict", "machine during the run"], summary,
                  ["---:", "---", "---", "---", "---", "---"]), ""]
    noisy = [row[0] for row in summary if "NOISY" in row[5]]
    if noisy:
        out += [f"Scenarios {', '.join(noisy)} ran while other processes used ≥ {NOISE_PCT:.0f} % of a CPU "
                f"(marked NOISY): their latency and throughput figures are pessimistic and not clean; rerun on a "
                f"quiet machine (or with `IDLE_WAIT=60`) before quoting them as Sluice's.", ""]
    out += ["Latencies are client side, from each request's scheduled send time (open loop, no coordinated "
            "omission), for 200 answers; success = 200s ÷ requests scheduled. Rate limits are off "
            "(requests_per_minute / tokens_per_minute 0) in every scenario; admission is as stated per scenario.",
            ""]
    for body in sections:
        out += body
    out += ["## Commands", "", f"Suite: `{run.get('suite_cmd', 'bench/run')}` (each scenario is also "
            "runnable on its own: `bench/scenarios/N_*.sh OUT_DIR`, then `bench/report.py`). Per scenario, "
            "SCENARIO.yaml is the generated config described in its section and PORT the port `sluice serve` "
            "printed:", ""]
    for n in range(1, 12):
        s = scen[n]
        cmds = s.commands() if s.present else []
        if n == 6 and s.present:
            for mode in s.meta.get("modes", "static,adaptive").split(","):
                cmds += [f"({mode}) {c}" for c in Scenario(run_dir, 6, mode).commands()]
        if n == 10 and s.present:
            cmds += [f"(live) {c}" for c in Scenario(run_dir, 10, "live").commands()]
        if cmds:
            out.append(f"{n}. " + "<br>".join(f"`{c}`" for c in cmds))
    out.append("")
    out += notes_outside_the_suite()
    text = "\n".join(out).rstrip() + "\n"
    text = re.sub(r"\n{3,}", "\n\n", text)
    sys.stdout.write(text)
    if len(sys.argv) > 2:
        with open(sys.argv[2], "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
