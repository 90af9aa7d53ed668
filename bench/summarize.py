#!/usr/bin/env python3
"""Turn one bench/identity.sh results folder into docs/benchmarks.md (markdown on stdout).

usage: bench/summarize.py RESULTS_DIR > docs/benchmarks.md
       bench/summarize.py --text RESULTS_DIR      (a short plain-text summary)

RESULTS_DIR holds meta.tsv and one folder per server (onestack/, keystone-nocache/,
keystone-cache-memory/), each with a results.tsv of NAME<TAB>RUN<TAB>VALUE lines (the
baseline's format) beside the raw wrk / hyperfine outputs.
"""
import math
import os
import re
import statistics
import sys

SERVERS = [("onestack", "onestack"), ("keystone-nocache", "Keystone (no cache)"),
           ("keystone-cache-memory", "Keystone (cache-memory)")]


def load_tsv(path):
    vals = {}
    if not os.path.exists(path):
        return None
    for line in open(path):
        parts = line.rstrip("\n").split("\t")
        if len(parts) != 3:
            continue
        try:
            vals.setdefault(parts[0], []).append(float(parts[2]))
        except ValueError:
            pass
    return vals


def load_meta(path):
    meta = {}
    if os.path.exists(path):
        for line in open(path):
            k, _, v = line.rstrip("\n").partition("\t")
            meta[k] = v
    return meta


class Data:
    def __init__(self, d):
        self.meta = load_meta(os.path.join(d, "meta.tsv"))
        self.res = {k: load_tsv(os.path.join(d, k, "results.tsv")) for k, _ in SERVERS}
        m = re.search(r"CONN=(\d+)", self.meta.get("settings", ""))
        self.conn = m.group(1) if m else "8"

    def present(self, server):
        return self.res.get(server) is not None

    def vals(self, server, metric):
        r = self.res.get(server)
        return r.get(metric) if r else None

    def med(self, server, metric):
        v = self.vals(server, metric)
        return statistics.median(v) if v else None


def fmt_num(x, unit):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if unit == "s":
        return f"{x / 1000:.3f} s" if x < 1000 else f"{x / 1000:.2f} s"
    if unit == "ms":
        if x < 1:
            return f"{x * 1000:.0f} µs"
        if x >= 1000:
            return f"{x / 1000:.2f} s"
        return f"{x:.2f} ms" if x < 10 else (f"{x:.1f} ms" if x < 100 else f"{x:.0f} ms")
    if unit == "req/s":
        return f"{x:.2f} req/s" if x < 10 else (f"{x:.1f} req/s" if x < 1000 else f"{x:,.0f} req/s")
    if unit == "MiB":
        return f"{x:.1f} MiB"
    if unit == "n":
        return f"{x:.0f}"
    return f"{x:g}"


def cell(data, server, metric, unit):
    v = data.vals(server, metric)
    if not data.present(server):
        return "not run"
    if not v:
        return "–"
    s = "**" + fmt_num(statistics.median(v), unit) + "**"
    if len(v) > 1 and unit != "n":
        s += f" ({fmt_num(min(v), unit)} – {fmt_num(max(v), unit)})"
    return s


def ratio(data, metric, other, higher_is_better, other_metric=None):
    a = data.med("onestack", metric)
    b = data.med(other, other_metric or metric)
    if a is None or b is None or a == 0 or b == 0 or math.isnan(a) or math.isnan(b):
        return "–"
    r = a / b if higher_is_better else b / a
    return f"{r:,.1f}×" if r < 100 else f"{r:,.0f}×"


def table(data, rows, out, compare=None):
    """rows: (label, metric, unit, higher_is_better[, keystone metric]).
    compare: which Keystone columns; default both variants, each followed by its ratio."""
    ks = [k for k, _ in SERVERS[1:] if (compare is None or k in compare) and data.present(k)]
    head = ["", "onestack"]
    for k in ks:
        head += [dict(SERVERS)[k], "ratio"]
    out.append("| " + " | ".join(head) + " |")
    out.append("|" + " --- |" * len(head))
    for row in rows:
        label, metric, unit, hib = row[:4]
        kmetric = row[4] if len(row) > 4 else metric
        cells = [label, cell(data, "onestack", metric, unit)]
        for k in ks:
            cells += [cell(data, k, kmetric, unit),
                      ratio(data, metric, k, hib, kmetric) if unit != "n" else ""]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")


def bad_note(data, prefixes, out):
    notes = []
    for server, name in SERVERS:
        for p in prefixes:
            b = data.vals(server, f"{p}.bad")
            if b and sum(b) > 0:
                notes.append(f"{name} `{p}`: {sum(b):.0f} failed requests (non-2xx, connect/write errors or timeouts)")
    if notes:
        out.append("**Suspect runs:** " + "; ".join(notes) + ".")
        out.append("")


def targets(data):
    c = data.conn
    t = []

    def add(what, value, goal, ok):
        t.append((what, value, goal, "–" if ok is None else ("yes" if ok else "**no**")))

    v = data.med("onestack", "cold_start_ms")
    add("cold start (existing data dir)", fmt_num(v, "s"), "< 0.3 s", None if v is None else v < 300)
    v = data.med("onestack", "mem_idle.rss_mib")
    add("RSS idle, 5 s after start", fmt_num(v, "MiB"), "< 30 MiB", None if v is None else v < 30)
    a, b = data.med("onestack", f"validate_c{c}.rps"), data.med("keystone-cache-memory", f"validate_c{c}.rps")
    add(f"token validation, {c} conn, vs Keystone cache-memory", fmt_ratio(a, b), "≥ 25×",
        None if not (a and b) else a / b >= 25)
    v = data.med("onestack", f"validate_c{c}.p99_ms")
    add(f"token validation p99, {c} conn", fmt_num(v, "ms"), "< 5 ms", None if v is None else v < 5)
    a = data.med("onestack", f"version_c{c}.rps")
    b = best(data, f"version_c{c}.rps")
    add(f"GET /identity/v3, {c} conn, vs Keystone GET /v3", fmt_ratio(a, b), "≥ 10×", None if not (a and b) else a / b >= 10)
    for n in ("1", c):
        a, b = data.med("onestack", f"issue_c{n}.rps"), best(data, f"issue_c{n}.rps")
        add(f"token issue (password, bcrypt 12), {n} conn", fmt_ratio(a, b), "≥ 1×", None if not (a and b) else a / b >= 1)
    kp = best(data, f"issue_c{c}.rps")
    for m, label in (("appcred", "application_credential"), ("tokenauth", "token method")):
        a = data.med("onestack", f"{m}_c{c}.rps")
        add(f"token issue ({label}), {c} conn, vs Keystone password issue", fmt_ratio(a, kp), "≥ 20×",
            None if not (a and kp) else a / kp >= 20)
    return t


def best(data, metric):
    """The Keystone figure to beat: the better of the variants that ran."""
    vs = [data.med(k, metric) for k, _ in SERVERS[1:]]
    vs = [v for v in vs if v]
    return max(vs) if vs else None


def fmt_ratio(a, b):
    if not (a and b):
        return "–"
    return f"{a / b:,.1f}× ({fmt_num(a, 'req/s')} vs {fmt_num(b, 'req/s')})"


def markdown(data, d):
    m, c = data.meta, data.conn
    out = []
    out.append("# Benchmarks: onestack identity vs Keystone")
    out.append("")
    out.append("<!-- Generated by bench/summarize.py from bench/identity.sh results; re-run the bench to refresh. -->")
    out.append("")
    settings = m.get("settings", "")
    quick = not re.search(r"\bRUNS=3\b", settings) or not re.search(r"\bDUR=20s\b", settings) \
        or not re.search(r"\bCOLD_RUNS=5\b", settings)
    if quick:
        out.append("> **Quick run** (shorter or fewer runs than the baseline's RUNS=3 COLD_RUNS=5 DUR=20s): "
                   "good for spotting regressions, not for quoting.")
        out.append("")
    out.append("onestack and the real Keystone measured **in the same run** on the same machine, with the "
               "methods of the Keystone baseline (`../shared/baseline`): the same wrk scripts and durations, "
               f"{c} connections with keep-alive, the same cold-start loop and `tools/procmem.py` for memory. "
               "Keystone runs under uwsgi (master + 2 workers + HTTP router, SQLite, fernet tokens, bcrypt 12) "
               "through the baseline's own `keystone/bench.sh`; onestack is one process on an SQLite data dir, "
               "bcrypt cost 12.")
    out.append("")
    out.append("Figures are medians (min – max over the runs). **ratio** = how many times better onestack is "
               "than that Keystone column: higher req/s, or lower time / memory.")
    out.append("")
    out.append("## Machine and run")
    out.append("")
    out.append(f"- date: {m.get('date', '?')}")
    out.append(f"- machine: {m.get('nproc', '?')} CPUs ({m.get('cpu', '?')}), {m.get('mem', '?')} RAM, "
               f"{m.get('os', '?')}, {m.get('kernel', '?')}")
    out.append(f"- load average at start / end: {m.get('load_start', '?')} / {m.get('load_end', '?')}")
    out.append(f"- onestack: {m.get('onestack', '?')}, git {m.get('git', '?')}"
               + (f"; env {m['onestack_env'].strip()}" if m.get("onestack_env", "").strip() else ""))
    if m.get("keystone_version"):
        out.append(f"- Keystone: {m['keystone_version']}")
    out.append(f"- clients: wrk {m.get('wrk', '?')}, hyperfine {m.get('hyperfine', '?')}, {m.get('cli', '?')}")
    out.append("")
    out.append("## Targets")
    out.append("")
    out.append("| what | measured | target | met |")
    out.append("| --- | --- | --- | --- |")
    for row in targets(data):
        out.append("| " + " | ".join(row) + " |")
    out.append("")
    out.append("Keystone reference for a ratio: the cache-memory variant for validation (as the target says), "
               "otherwise the better of the Keystone variants that ran.")
    out.append("")

    out.append("## Cold start")
    out.append("")
    out.append("Launch → first `GET /identity/v3` (Keystone: `GET /v3`) answering 200, polled every 20 ms with curl; "
               "onestack restarts on an existing data dir (bootstrapped once before), Keystone restarts uwsgi.")
    out.append("")
    table(data, [("cold start", "cold_start_ms", "s", False)], out)

    out.append("## Memory")
    out.append("")
    out.append("`tools/procmem.py PID`: sum over the process and all its descendants of VmRSS and of PSS, "
               "5 s after start (idle) and after the load below. Keystone is 4 processes; PSS counts pages its "
               "forked workers share once.")
    out.append("")
    table(data, [("RSS idle", "mem_idle.rss_mib", "MiB", False),
                 ("PSS idle", "mem_idle.pss_mib", "MiB", False),
                 ("RSS after load", "mem_after_load.rss_mib", "MiB", False),
                 ("PSS after load", "mem_after_load.pss_mib", "MiB", False),
                 ("processes", "mem_idle.procs", "n", False)], out)

    def wrk_section(title, text, prefix, compare=None, krefs=()):
        out.append(f"## {title}")
        out.append("")
        out.append(text)
        out.append("")
        table(data, [("throughput", f"{prefix}.rps", "req/s", True),
                     ("latency p50", f"{prefix}.p50_ms", "ms", False),
                     ("latency p99", f"{prefix}.p99_ms", "ms", False)], out, compare)
        for label, kmetric in krefs:
            table(data, [(label, f"{prefix}.rps", "req/s", True, kmetric)], out, compare)
        bad_note(data, [prefix], out)

    wrk_section(f"Token validation, {c} connections",
                "`GET /identity/v3/auth/tokens` with X-Auth-Token + X-Subject-Token (two project-scoped tokens), "
                f"`wrk -t2 -c{c} --latency -s bench/wrk/validate.lua` (Keystone: the baseline's validate.lua).",
                f"validate_c{c}")
    wrk_section(f"GET /identity/v3, {c} connections",
                f"The unauthenticated version document, `wrk -t2 -c{c} --latency -s bench/wrk/version.lua`: the "
                "HTTP stack's floor.", f"version_c{c}")
    wrk_section("Token issue, password method, 1 connection",
                "`POST /identity/v3/auth/tokens`, password method, project-scoped, catalog included; bcrypt cost 12 "
                "on both sides. `wrk -t1 -c1 --latency -s bench/wrk/issue.lua`: service time, no queueing.",
                "issue_c1")
    wrk_section(f"Token issue, password method, {c} connections",
                f"The same with `wrk -t2 -c{c}`: with bcrypt on every request, throughput is bounded by the cores "
                "(2 here) divided by one bcrypt check.", f"issue_c{c}")
    wrk_section(f"Token issue, application_credential method, {c} connections",
                "`bench/wrk/issue_appcred.lua`: an application credential (id + secret) of admin in project admin, "
                "created just before with `POST /v3/users/{id}/application_credentials`, its secret generated by the "
                "server (as `openstack application credential create` does); the baseline does not "
                "cover this method, so the Keystone figures come from the same lua script run by bench/identity.sh "
                "against the baseline's Keystone. The last table compares with Keystone's **password** issue (the target).",
                f"appcred_c{c}", krefs=[("vs Keystone password issue", f"issue_c{c}.rps")])
    wrk_section(f"Token issue, token method, {c} connections",
                "`bench/wrk/issue_token.lua`: an existing token exchanged for a new project-scoped one (catalog "
                "included), as keystoneauth re-scopes. Keystone measured the same way as the row above.",
                f"tokenauth_c{c}", krefs=[("vs Keystone password issue", f"issue_c{c}.rps")])

    out.append("## `openstack token issue`, end to end")
    out.append("")
    out.append("`hyperfine -N --warmup 1 --runs 10 'openstack token issue -f value -c id' 'openstack --version'` "
               "with the OS_* variables of the baseline; the CLI's own Python start-up "
               "(`openstack --version`) is the floor both share.")
    out.append("")
    table(data, [("`openstack token issue`", "cli_token_issue_ms", "s", False),
                 ("`openstack --version` (floor)", "cli_version_ms", "s", False)], out)

    out.append("## How this was produced")
    out.append("")
    env = settings.replace("KEYSTONE_EXTRA=1", "").strip()
    out.append("```sh")
    out.append(f"{env} bench/identity.sh" if env else "bench/identity.sh")
    out.append("```")
    out.append("")
    out.append("`bench/identity.sh` (settings in its header: RUNS, COLD_RUNS, DUR, SHORT_DUR, CONN, DRAIN_S, CLI_RUNS, "
               "KEYSTONE_VARIANTS) builds `target/release/onestack` only if missing, copies `../shared/baseline` to a "
               "writable place (or reuses `/tmp/baseline`), and in one run:")
    out.append("")
    out.append("1. onestack: bootstraps a fresh data dir once (checks the admin hash is bcrypt cost 12), then "
               "COLD_RUNS × (start, poll `GET /identity/v3` every 20 ms, procmem 5 s later, stop), then RUNS × (start, "
               "4 warm-up tokens, `wrk` issue c1 (SHORT_DUR), issue c8 (DUR), validate c8 (DUR), version c8 (SHORT_DUR), "
               "application_credential issue c8 (DUR), token-method issue c8 (DUR), procmem, stop), DRAIN_S seconds "
               "after every wrk, then hyperfine of the CLI;")
    out.append("2. for each Keystone variant: `CACHE=none|memory keystone/setup.sh`, then the baseline's unchanged "
               "`keystone/bench.sh` with the same RUNS, COLD_RUNS, DUR, CONN, DRAIN_S (it fixes issue c1 and version "
               "at 10 s and hyperfine at 10 runs), then RUNS × the application_credential and token-method issue "
               "runs above;")
    out.append("3. `bench/summarize.py RESULTS_DIR > docs/benchmarks.md`.")
    out.append("")
    out.append(f"Raw outputs (every wrk / hyperfine output, results.tsv per server): `{display_path(d)}` "
               "(gitignored; not kept in the repository).")
    out.append("")
    ports = (m.get("ports") or "5100 5000").split()
    out.append(f"Exact load commands, as run (URL `http://127.0.0.1:{ports[0]}` for onestack, "
               f"`http://127.0.0.1:{ports[-1]}` for Keystone):")
    out.append("")
    dur = (re.search(r"\bDUR=(\S+)", settings) or [None, "20s"])[1]
    short = (re.search(r"\bSHORT_DUR=(\S+)", settings) or [None, "10s"])[1]
    out.append("```sh")
    out.append(f"wrk -t1 -c1 -d{short} --timeout 30s --latency -s bench/wrk/issue.lua URL   # Keystone: -d10s; onestack: PATH_PREFIX=/identity ADMIN_PASSWORD=…")
    out.append(f"wrk -t2 -c{c} -d{dur} --timeout 30s --latency -s bench/wrk/issue.lua URL")
    out.append(f"AUTH_TOKEN=<token A> SUBJECT_TOKEN=<token B> wrk -t2 -c{c} -d{dur} --timeout 30s --latency -s bench/wrk/validate.lua URL")
    out.append(f"wrk -t2 -c{c} -d{short} --timeout 30s --latency -s bench/wrk/version.lua URL   # Keystone: -d10s")
    out.append(f"APPCRED_ID=<id> APPCRED_SECRET=<secret> wrk -t2 -c{c} -d{dur} --timeout 30s --latency -s bench/wrk/issue_appcred.lua URL")
    out.append(f"AUTH_TOKEN=<token> wrk -t2 -c{c} -d{dur} --timeout 30s --latency -s bench/wrk/issue_token.lua URL")
    out.append("```")
    out.append("")
    out.append("The machine is shared and noisy (the baseline saw up to ~1.5× between runs): compare only figures "
               "from the same run, and look at the min – max.")
    out.append("")
    return "\n".join(out)


def display_path(d):
    d = os.path.abspath(d)
    root = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
    return os.path.relpath(d, root) if d.startswith(root + os.sep) else d


def text(data):
    c = data.conn
    rows = [("cold start", "cold_start_ms", "s"), ("RSS idle", "mem_idle.rss_mib", "MiB"),
            ("RSS after load", "mem_after_load.rss_mib", "MiB"), ("PSS idle", "mem_idle.pss_mib", "MiB")]
    for p, label in ((f"validate_c{c}", f"validate c{c}"), (f"version_c{c}", f"GET /v3 c{c}"),
                     ("issue_c1", "issue password c1"), (f"issue_c{c}", f"issue password c{c}"),
                     (f"appcred_c{c}", f"issue appcred c{c}"), (f"tokenauth_c{c}", f"issue token-method c{c}")):
        rows += [(f"{label} req/s", f"{p}.rps", "req/s"), (f"{label} p50", f"{p}.p50_ms", "ms"),
                 (f"{label} p99", f"{p}.p99_ms", "ms"), (f"{label} bad", f"{p}.bad", "n")]
    rows += [("openstack token issue", "cli_token_issue_ms", "s"), ("openstack --version", "cli_version_ms", "s")]
    servers = [(k, n) for k, n in SERVERS if data.present(k)]
    print(f"{'':28}" + "".join(f"{n:>26}" for _, n in servers))
    for label, metric, unit in rows:
        print(f"{label:28}" + "".join(f"{fmt_num(data.med(k, metric), unit):>26}" for k, _ in servers))
    print()
    for what, value, goal, ok in targets(data):
        print(f"target {what}: {value} (goal {goal}) met: {ok.strip('*')}")


def main():
    args = sys.argv[1:]
    as_text = "--text" in args
    args = [a for a in args if a != "--text"]
    if len(args) != 1:
        sys.exit(__doc__)
    data = Data(args[0])
    if as_text:
        text(data)
    else:
        print(markdown(data, args[0]) + kept_image_section())


def kept_image_section():
    """The "Image service" section bench/image.sh keeps in the same file (between its markers), so
    that regenerating the identity part does not drop it. The file: $OUT_MD or docs/benchmarks.md."""
    path = os.environ.get("OUT_MD") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docs", "benchmarks.md")
    try:
        old = open(path).read()
    except OSError:
        return ""
    b, e = old.find("<!-- image-bench:begin"), old.find("<!-- image-bench:end -->")
    if b < 0 or e < b:
        return ""
    return "\n" + old[b:e + len("<!-- image-bench:end -->")] + "\n"


if __name__ == "__main__":
    main()
