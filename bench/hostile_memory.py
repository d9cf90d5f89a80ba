#!/usr/bin/env python3
"""hostile_memory.py: what unauthenticated clients cost `sluice serve`.

Starts `sluice serve --port 0` on a copy of config/sluice.yaml (request log
in memory) and measures its resident set size (VmRSS, /proc/PID/status)
while hostile connections hold it:

  1. idle:     the server alone, after one authenticated request;
  2. headers:  N connections, each sending HEADER_BYTES of a request header
               that never ends (no API key has been seen yet), the most a
               connection may hold before authentication;
  3. chunked:  4 connections streaming a chunk-size line that never ends
               (`1;a=` and megabytes of `;b=c`), the finding of issue 11;
  4. after:    all of them closed.

In phase 2 the server's own account (`sluice_unauthenticated_connection_bytes`
on /metrics) is read too, and connections past the budget
(`server.unauthenticated_memory_limit_bytes`, BUDGET_MIB) are refused 503.
Metrics are read on an admin listener (its own budget). One authenticated
keep-alive connection, opened before the flood, keeps sending requests; its
answers are counted (new connections past the budget are refused by design). Prints a markdown report. Loopback only; every wait is bounded.

Usage: bench/hostile_memory.py [--bin build/src/app/sluice] [--connections 4000]
                               [--header-bytes 15000] [--budget-mib 64]
"""
import argparse
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
import http.client
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEY = "sk-paid-demo-0001"
SERVICE_TOKEN = "svc-demo-token"


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def get(port, path, token):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.read().decode()


def inference_ok(conn):
    body = b'{"model":"sluice-sim-small","input":"hello","parameters":{"max_tokens":4}}'
    try:
        conn.request("POST", "/v1/inference", body=body,
                     headers={"Authorization": f"Bearer {KEY}",
                              "Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        return r.status == 200
    except Exception:
        return False


def metric(port, name):
    _, text = get(port, "/metrics", SERVICE_TOKEN)
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def start_server(binary, tmp, budget_mib):
    with open(os.path.join(REPO, "config/sluice.yaml")) as f:
        yaml = f.read()
    yaml = re.sub(r"(?m)^(\s*backend:\s*)sqlite\s*$", r"\1memory", yaml, count=1)
    yaml = yaml.replace("server:\n", "server:\n  unauthenticated_memory_limit_bytes: "
                        f"{budget_mib << 20}\n", 1)
    yaml += "\nadmin:\n  listen_address: 127.0.0.1\n  port: 0\n"
    path = os.path.join(tmp, "sluice.yaml")
    with open(path, "w") as f:
        f.write(yaml)
    proc = subprocess.Popen([binary, "serve", "--config", path, "--port", "0"],
                            stdout=subprocess.PIPE, stderr=open(os.path.join(tmp, "log"), "w"),
                            text=True)
    deadline = time.time() + 20
    admin = 0
    while time.time() < deadline:
        line = proc.stdout.readline()
        a = re.match(r"sluice: admin on http://[^:]+:(\d+)", line)
        if a:
            admin = int(a.group(1))
        m = re.match(r"sluice: listening on http://[^:]+:(\d+)", line)
        if m:
            return proc, int(m.group(1)), admin
    proc.kill()
    sys.exit("sluice did not start")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(REPO, "build/src/app/sluice"))
    ap.add_argument("--connections", type=int, default=4000)
    ap.add_argument("--header-bytes", type=int, default=15000)
    ap.add_argument("--budget-mib", type=int, default=64)
    args = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    n = min(args.connections, hard - 100)

    tmp = tempfile.mkdtemp(prefix="sluice-hostile-")
    proc, port, admin = start_server(args.bin, tmp, args.budget_mib)
    rows = []
    client = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        assert inference_ok(client)
        rows.append(("idle (one request served)", rss_kib(proc.pid), "", ""))
        partial = (b"POST /v1/inference HTTP/1.1\r\nHost: x\r\nX-Pad: " +
                   b"a" * args.header_bytes)
        held, refused = [], 0
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port))
            s.setblocking(False)
            try:
                s.send(partial)
            except OSError:
                pass
            held.append(s)
        # Let the server read what was sent (bounded wait on its own account).
        deadline = time.time() + 20
        last = -1
        while time.time() < deadline:
            now = metric(admin, "sluice_unauthenticated_connection_bytes")
            if now == last:
                break
            last = now
            time.sleep(0.5)
        for s in held:  # refused ones were answered 503 and closed
            try:
                data = s.recv(256)  # non-blocking
            except OSError:
                data = b""
            if data.startswith(b"HTTP/1.1 503"):
                refused += 1
        served = sum(inference_ok(client) for _ in range(20))
        rows.append((f"{n} connections × {args.header_bytes} B of header, no key",
                     rss_kib(proc.pid),
                     f"server's account {last / 2**20:.1f} MiB; {refused} refused 503",
                     f"{served}/20"))
        floods = []
        junk = b";b=c" * 1024
        for _ in range(4):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"POST /v1/inference HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                      KEY.encode() + b"\r\nTransfer-Encoding: chunked\r\n\r\n1;a=")
            s.setblocking(False)
            sent = 0
            for _ in range(2048):  # up to 8 MiB, until the server stops reading
                try:
                    sent += s.send(junk)
                except OSError:
                    break
            floods.append((s, sent))
        served = sum(inference_ok(client) for _ in range(20))
        rows.append(("+ 4 endless chunk extensions",
                     rss_kib(proc.pid),
                     "sent before the cut: " + ", ".join(f"{x // 1024} KiB" for _, x in floods),
                     f"{served}/20"))
        for s in held:
            s.close()
        for s, _ in floods:
            s.close()
        deadline = time.time() + 10
        while time.time() < deadline and metric(admin, "sluice_unauthenticated_connection_bytes"):
            time.sleep(0.2)
        rows.append(("all closed", rss_kib(proc.pid),
                     f"server's account {metric(admin, 'sluice_unauthenticated_connection_bytes'):.0f} B",
                     f"{sum(inference_ok(client) for _ in range(20))}/20"))
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()

    print(f"`bench/hostile_memory.py --connections {args.connections} --header-bytes "
          f"{args.header_bytes} --budget-mib {args.budget_mib}` (server: `{args.bin}`, "
          "config/sluice.yaml with the request log in memory)\n")
    print("| phase | server RSS | growth over idle | notes | authenticated requests answered 200 |")
    print("|---|---:|---:|---|---:|")
    base = rows[0][1]
    for name, rss, note, ok in rows:
        print(f"| {name} | {rss / 1024:.1f} MiB | {(rss - base) / 1024:+.1f} MiB | {note} | {ok} |")


if __name__ == "__main__":
    main()
