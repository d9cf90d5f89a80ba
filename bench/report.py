#!/usr/bin/env python3
"""bench/report.py: renders the results of one `bench/run` as markdown.

Usage: bench/report.py RUN_DIR [OUT.md]

RUN_DIR holds run.env (written by bench/run) and one folder per scenario
(s1 .. s5) written by bench/scenarios/*.sh: meta.env, cpu.env, bench.json
(`sluice bench --json`, schema sluice-bench/1, see src/loadgen/report.h),
metrics-before.txt / metrics-after.txt (GET /metrics), or for scenario 3 the
report.md of bench/gateway_vs_nginx.sh. Prints the markdown on stdout and,
with OUT.md, also writes it there. Standard library only.
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
    def __init__(self, run_dir, n):
        self.n = n
        self.dir = os.path.join(run_dir, f"s{n}")
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
                f"max_batch_delay_us {m.get('cfg_max_batch_delay_us')}, queue_capacity {m.get('cfg_queue_capacity')}, "
                f"io_threads {m.get('cfg_io_threads')}; **admission {adm}**.")

    def commands(self):
        out = []
        if "cmd_serve" in self.meta:
            out.append(self.meta["cmd_serve"])
        if "cmd_bench" in self.meta:
            out.append(self.meta["cmd_bench"])
        if "cmd" in self.meta:
            out.append(self.meta["cmd"])
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


def section_2(s):
    rate = s.meta.get("rate", "10000")
    title = f"Seed growth: {int(float(rate)):,} req/s, {s.meta.get('cfg_devices', '34')} devices"
    out = [f"## 2. {title}", ""]
    target = f"p95 < {SLO_MS:.0f} ms and ≥ {100 * SUCCESS_TARGET:.1f} % success"
    if not s.ok:
        return out + [s.error_block(), ""], ["2", title, target, "not measured", "ERROR", "n/a"]
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
        m = re.search(r"free (\d+)", depth)
        ms = f"{1000.0 * int(m.group(1)) / float(rate):.0f} ms" if m else "a few ms"
        why.append(f"  `queue_depth_threshold` is admission's per-tier queue-depth rule (a tier is refused while "
                   f"more requests than its threshold are queued; here {depth or 'n/a'}): at {float(rate):,.0f} "
                   f"req/s the free tier's threshold is {ms} of arrivals, so a stall of the gateway's core "
                   f"(another process, a burst) sheds free-tier requests.")
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
    return out, ["2", title, target, result, verdict, s.machine_cell()]


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


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    run_dir = sys.argv[1]
    run = read_env(os.path.join(run_dir, "run.env"))
    scen = {n: Scenario(run_dir, n) for n in range(1, 6)}
    sections, summary = [], []
    for n, fn in ((1, section_1), (2, section_2), (3, section_3), (4, section_4), (5, section_5)):
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
           f"{run.get('build_type', 'n/a')}, built {run.get('binary_mtime', 'n/a')})"]
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
    for n in range(1, 6):
        s = scen[n]
        if s.present and s.commands():
            out.append(f"{n}. " + "<br>".join(f"`{c}`" for c in s.commands()))
    out.append("")
    text = "\n".join(out).rstrip() + "\n"
    text = re.sub(r"\n{3,}", "\n\n", text)
    sys.stdout.write(text)
    if len(sys.argv) > 2:
        with open(sys.argv[2], "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
