#!/usr/bin/env python3
"""make bench: Relance against the tools it replaces, on this machine, on loopback.

Every figure is the median of BENCH_RUNS runs (3); the runs of a group are interleaved (run 1 of
every figure, then run 2, ...) so that a drift of the machine weighs on all of them alike. Servers
(Postfix smtp-sink, a private Postfix relay, an nginx SMS gateway stub, Relance's gateway
simulator) are started here on free loopback ports and stopped after; no system service is used.

Groups (BENCH_GROUPS, default all, in this order):
  email     smtp-source -> smtp-sink (ceiling), a private Postfix relay, the Python smtplib sender
            with 4 processes, and `relance serve --once` (spool -> smtp-sink)
  sms       wrk -> nginx stub (ceiling), Python requests (1 thread), curl --parallel 16, and
            `relance serve --once` (spool -> nginx stub, Twilio profile); clock from start-up to
            the last request, intake included
  flat      `relance serve --once` with 10,000 and with 200,000 pending (interleaved)
  scale     intake of 1,000,000 reminders, start-up to READY=1 with 1,000,000 pending, and peak
            RSS of the daemon sending with 1,000,000 pending
  webhooks  signed Twilio callbacks for distinct messages, each applied in the ledger, against a
            bare Hummingbird endpoint (wrk, 64 connections)
  cluster   `relance serve --once` over N reminders with 3 nodes on one PostgreSQL database (a
            throwaway cluster, fsync and synchronous_commit on), each node with its own spool of
            N/3, against 1 node on SQLite, interleaved; the clock runs until the sink has them all
  plan      `relance import` of a receivables feed (100,000 debtors, 1,000,000 invoices), then
            `relance plan --format json` over it, then `relance report --format html` with
            2,000,000 deliveries as well, then `relance score --train` and `relance score` over it

Environment: BENCH_N (20000), BENCH_RUNS (3), BENCH_GROUPS, BENCH_SMTP_CONNECTIONS (24),
BENCH_CLUSTER_NODES (3), BENCH_PG_CONNECTIONS (8 per node),
BENCH_CONCURRENCY (256), BENCH_CLUSTER_CONCURRENCY (64), BENCH_SMS_CONNECTIONS (32), BENCH_FLAT_N (200000), BENCH_SCALE_N (1000000),
BENCH_PLAN_DEBTORS (100000), BENCH_PLAN_ITEMS (1000000).
Results: one `NAME VALUE UNIT` line per figure as it is measured, then a summary with the ratios the
performance targets name; also written to .build/bench/latest.md. See docs/PERFORMANCE.md.
"""
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PEERS = os.path.join(ROOT, "scripts", "bench", "peers")
RELANCE = os.path.join(ROOT, ".build", "release", "relance")
SIM = os.path.join(ROOT, ".build", "release", "relance-gateway-sim")
N = int(os.environ.get("BENCH_N", "20000"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SMTP_CONNECTIONS = int(os.environ.get("BENCH_SMTP_CONNECTIONS", "24"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "256"))
# The cluster group keeps the settings it was measured with (issue 16): 64 per node.
CLUSTER_CONCURRENCY = int(os.environ.get("BENCH_CLUSTER_CONCURRENCY", "64"))
SMS_CONNECTIONS = int(os.environ.get("BENCH_SMS_CONNECTIONS", "32"))
FLAT_N = int(os.environ.get("BENCH_FLAT_N", "200000"))
SCALE_N = int(os.environ.get("BENCH_SCALE_N", "1000000"))
PG_CONNECTIONS = int(os.environ.get("BENCH_PG_CONNECTIONS", "8"))
CLUSTER_NODES = int(os.environ.get("BENCH_CLUSTER_NODES", "3"))
GROUPS = os.environ.get("BENCH_GROUPS", "email sms flat scale webhooks cluster plan").split()
HOST = "127.0.0.1"
SMS_PATH = "/2010-04-01/Accounts/AC123/Messages.json"
SMS_USER, SMS_TOKEN = "AC123", "bench-token"
STATE = tempfile.mkdtemp(prefix="relance-bench-")
os.chmod(STATE, 0o755)  # the Postfix relay's processes run as postfix
RESULTS = {}  # name -> {"value": median, "unit": ..., "runs": [...], "cpu_ms": ..., "rss_mib": ...}


def log(text):
    print(text, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex((HOST, port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {HOST}:{port} after {timeout} s")


class Server:
    """A process in its own session, stopped with its whole group."""

    def __init__(self, argv, out, env=None, cwd=None):
        self.out = open(out, "wb")
        self.proc = subprocess.Popen(argv, stdout=self.out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)

    def peak_rss_mib(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) / 1024
        except OSError:
            return None

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        self.out.close()


class Sink:
    """Postfix smtp-sink counting messages (-c rewrites `... mesg=M` after each one)."""

    def __init__(self):
        self.port = free_port()
        self.path = f"{STATE}/sink.{self.port}.out"
        argv = ["smtp-sink", "-c"] + (["-u", "nobody"] if os.geteuid() == 0 else []) + [f"{HOST}:{self.port}", "1000"]
        self.server = Server(argv, self.path)
        wait_port(self.port)

    def count(self):
        with open(self.path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 256))
            found = re.findall(rb"mesg=(\d+)", f.read())
        return max(int(x) for x in found) if found else 0

    def stop(self):
        self.server.stop()


class Stub:
    """nginx answering Twilio's Messages.json POST with 201 and a sid unique to each request
    ($request_id), keep-alive without a request limit; stub_status counts requests."""

    def __init__(self):
        self.port = free_port()
        d = f"{STATE}/nginx"
        os.makedirs(d, exist_ok=True)
        body = ('{"account_sid":"AC123","api_version":"2010-04-01","body":"Exemple SAS : votre facture est echue.",'
                '"direction":"outbound-api","error_code":null,"from":"+33700000000","num_segments":"1",'
                '"sid":"SM$request_id","status":"queued","to":"+33612345678"}')
        conf = f"""worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
    keepalive_timeout 65s;
    keepalive_requests 1000000;
    server {{
        listen {HOST}:{self.port} backlog=1024;
        location = {SMS_PATH} {{
            if ($request_method != POST) {{ return 405; }}
            default_type application/json;
            return 201 '{body}';
        }}
        location = /nginx_status {{ stub_status; }}
    }}
}}
"""
        with open(f"{d}/nginx.conf", "w") as f:
            f.write(conf)
        self.server = Server(["nginx", "-c", f"{d}/nginx.conf", "-e", f"{d}/error.log"], f"{d}/stdout")
        wait_port(self.port)
        self.url = f"http://{HOST}:{self.port}{SMS_PATH}"
        self.base_url = f"http://{HOST}:{self.port}"

    def requests(self):
        """Requests served so far, this poll excluded."""
        with urllib.request.urlopen(f"http://{HOST}:{self.port}/nginx_status", timeout=5) as r:
            return int(r.read().decode().splitlines()[2].split()[2]) - 1

    def stop(self):
        self.server.stop(signal.SIGQUIT)


class Relay:
    """A private Postfix (own configuration and queue under STATE) relaying everything to the sink."""

    def __init__(self, sink):
        self.port = free_port()
        self.dir = f"{STATE}/postfix"
        self.conf = f"{self.dir}/conf"
        shutil.rmtree(self.dir, ignore_errors=True)
        for sub in ("conf", "queue", "data"):
            os.makedirs(f"{self.dir}/{sub}")
        os.chmod(self.dir, 0o755)
        shutil.chown(f"{self.dir}/data", "postfix")
        os.chmod(f"{self.dir}/data", 0o700)
        with open(f"{self.conf}/main.cf", "w") as f:
            f.write(f"""compatibility_level = 3.6
queue_directory = {self.dir}/queue
data_directory = {self.dir}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = relay.bench.invalid
mydestination =
local_recipient_maps =
local_transport = error:5.1.1 local delivery disabled
alias_maps =
alias_database =
inet_interfaces = loopback-only
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
relayhost = [{HOST}]:{sink.port}
smtp_tls_security_level = none
smtpd_tls_security_level = none
maillog_file_prefixes = {self.dir}/
maillog_file = {self.dir}/maillog
biff = no
""")
        services = ["pickup unix n - n 60 1 pickup", "cleanup unix n - n - 0 cleanup", "qmgr unix n - n 300 1 qmgr",
                    "rewrite unix - - n - - trivial-rewrite", "bounce unix - - n - 0 bounce", "defer unix - - n - 0 bounce",
                    "trace unix - - n - 0 bounce", "verify unix - - n - 1 verify", "flush unix n - n 1000? 0 flush",
                    "proxymap unix - - n - - proxymap", "proxywrite unix - - n - 1 proxymap", "smtp unix - - n - - smtp",
                    "relay unix - - n - - smtp", "showq unix n - n - - showq", "error unix - - n - - error",
                    "retry unix - - n - - error", "discard unix - - n - - discard", "local unix - n n - - local",
                    "anvil unix - - n - 1 anvil", "scache unix - - n - 1 scache", "postlog unix-dgram n - n - 1 postlogd"]
        with open(f"{self.conf}/master.cf", "w") as f:
            f.write(f"{HOST}:{self.port} inet n - n - - smtpd\n" + "\n".join(services) + "\n")
        self.postfix("check")  # creates the queue's subdirectories with their owners
        self.postfix("start")
        wait_port(self.port)

    def postfix(self, command):
        # postfix prints its errors to a terminal only: run it under script(1).
        cmd = f"postfix -c {self.conf} {command}"
        r = subprocess.run(["script", "-qec", cmd, "/dev/null"], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
        if r.returncode != 0:
            raise RuntimeError(f"{cmd}: {r.stdout.strip()[-500:]}")

    def stop(self):
        try:
            self.postfix("stop")
        except RuntimeError as e:
            log(f"bench: {e}")


def timed(argv, env=None, done=None, timeout=600):
    """Runs argv; the clock stops when it has exited (status 0 required) and `done()` holds.
    Returns (seconds, CPU seconds of the command and its children, peak RSS MiB)."""
    # Peak RSS from GNU time: a child forked from this (large) Python process would count the
    # parent's pages at fork time in its own ru_maxrss.
    rss_file = f"{STATE}/rss.{os.getpid()}.{time.monotonic_ns()}"
    start = time.perf_counter()
    proc = subprocess.Popen(["/usr/bin/time", "-q", "-o", rss_file, "-f", "%M", *argv], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    end = time.perf_counter()
    stderr = proc.stderr.read().decode(errors="replace")
    proc.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{argv[0]} exited with {os.waitstatus_to_exitcode(status)}: {stderr[-800:]}")
    with open(rss_file) as f:
        peak_mib = int(f.read().split()[-1]) / 1024
    if done is not None:
        deadline = start + timeout
        while not done():
            if time.perf_counter() > deadline:
                raise RuntimeError(f"{argv[0]}: the servers did not count everything within {timeout} s")
            time.sleep(0.002)
        end = time.perf_counter()
    return end - start, usage.ru_utime + usage.ru_stime, peak_mib


def record(name, unit, runs, n=None):
    """runs: list of (seconds, cpu, rss) or of plain values (rates already)."""
    values = [(n / r[0]) if n else r for r in runs]
    entry = {"value": statistics.median(values), "unit": unit, "runs": values}
    if n and isinstance(runs[0], tuple):
        entry["cpu_ms"] = statistics.median(r[1] for r in runs) / n * 1000
        entry["rss_mib"] = max(r[2] for r in runs)
    RESULTS[name] = entry
    extra = ""
    if "cpu_ms" in entry:
        extra = f"  (CPU {entry['cpu_ms']:.3f} ms/msg, peak RSS {entry['rss_mib']:.0f} MiB)"
    print(f"{name} {entry['value']:.0f} {unit}{extra}", flush=True)


def interleaved(figures):
    """Each figure RUNS times: run 1 of every figure, then run 2..., so that a drift of the
    machine weighs on all of them alike. figures: name -> function returning one run."""
    runs = {name: [] for name in figures}
    for _ in range(RUNS):
        for name, run in figures.items():
            runs[name].append(run())
    return runs


# Reminders and configuration


def write_spool(spool, n, channel, per_file=1000, prefix="B", first=0):
    """n reminders due now (numbers first..first+n-1, one debtor each), in JSON-lines files of
    `per_file`, written in tmp/ then renamed."""
    os.makedirs(f"{spool}/incoming", exist_ok=True)
    os.makedirs(f"{spool}/tmp", exist_ok=True)
    stages = ["pre_due", "reminder_1", "reminder_2", "final_notice"]
    for start in range(first, first + n, per_file):
        lines = []
        for i in range(start, min(first + n, start + per_file)):
            lines.append(json.dumps({
                "id": f"{prefix}-{i:07d}", "stage": stages[i % 4], "channels": [channel],
                "debtor": {"id": f"C-{i:07d}", "name": f"Débiteur {i}", "email": f"d{i}@example.org",
                           "phone": "+336%08d" % (12340000 + i), "locale": "fr-FR" if i % 3 else "en-GB",
                           "timezone": "Europe/Paris", "kind": "business" if i % 2 else "consumer"},
                "invoices": [{"number": f"F-{i:07d}", "amount": "%d.%02d" % (100 + i % 9000, i % 100), "currency": "EUR",
                              "issued_on": "2026-09-01", "due_on": "2026-10-01"}]}, ensure_ascii=False))
        name = f"{prefix.lower()}-{(start - first) // per_file:05d}.jsonl"
        with open(f"{spool}/tmp/{name}", "w") as f:
            f.write("\n".join(lines) + "\n")
        os.rename(f"{spool}/tmp/{name}", f"{spool}/incoming/{name}")


def config(run, *, smtp=None, sms=None, webhooks=None, store_url=None, concurrency=None):
    """A relance.yaml for one run: spool and ledger in `run` (or the ledger on PostgreSQL at
    `store_url`), the contact policy lifted (throughput, not restraint: quiet hours would hold a
    night-time benchmark)."""
    store = f'url: "{store_url}", connections: {PG_CONNECTIONS}' if store_url else f'path: "{run}/ledger.sqlite"'
    text = f"""spool: {{ root: "{run}/spool", keep_done: false }}
store: {{ {store} }}
templates: {{ path: "{ROOT}/templates" }}
delivery: {{ concurrency: {concurrency or CONCURRENCY} }}
log: {{ level: warning }}
policy: {{ windows: {{ sms: always, email: always }}, holidays: none, caps: {{ per_day: none, per_7_days: none, per_30_days: none }} }}
"""
    if smtp:
        text += f"""email:
  transport: smtp
  from: "Exemple SAS <relances@example.fr>"
  smtp: {{ url: "smtp://{HOST}:{smtp}", starttls: none, connections: {SMTP_CONNECTIONS} }}
"""
    if sms:
        text += f"""sms:
  provider: twilio
  sender: "+33700000000"
  base_url: "{sms}"
  connections: {SMS_CONNECTIONS}
  twilio: {{ account_sid: {SMS_USER}, auth_token: {SMS_TOKEN} }}
"""
    if webhooks:
        text += f"""webhooks: {{ listen: "{HOST}:{webhooks}", public_base_url: "http://{HOST}:{webhooks}" }}
"""
    os.makedirs(run, exist_ok=True)
    with open(f"{run}/relance.yaml", "w") as f:
        f.write(text)
    return f"{run}/relance.yaml"


def fresh_run(name):
    run = f"{STATE}/runs/{name}"
    shutil.rmtree(run, ignore_errors=True)
    os.makedirs(run)
    return run


def relance(*args, check=True):
    r = subprocess.run([RELANCE, *args], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"relance {' '.join(args)}: {r.stderr[-800:]}")
    return r


def sent_count(conf):
    out = relance("receipts", "--config", conf, "--status", "sent", "--format", "csv").stdout
    return max(0, len(out.strip().splitlines()) - 1)


# Groups


def group_email():
    sink = Sink()
    relay = None
    if os.geteuid() == 0 and shutil.which("postfix"):
        relay = Relay(sink)
    try:
        figures = {
            "smtp.ceiling.smtp_source.s4": lambda: smtp_source(sink, sink.port),
            "smtp.python_smtplib.k4": lambda: python_smtp(sink),
            "relance.email.once": lambda: relance_once(sink, None, "email", N),
        }
        if relay:
            figures["smtp.postfix_relay"] = lambda: smtp_source(sink, relay.port)
        runs = interleaved(figures)
        for name in figures:
            record(name, "msg/s", runs[name], n=N)
    finally:
        if relay:
            relay.stop()
        sink.stop()


def smtp_source(sink, port):
    before = sink.count()
    return timed(["smtp-source", "-d", "-N", "-s", "4", "-m", str(N), "-l", "3000", f"{HOST}:{port}"],
                 done=lambda: sink.count() - before >= N)


def python_smtp(sink):
    before = sink.count()
    return timed([sys.executable, f"{PEERS}/smtp_sender.py", "--port", str(sink.port), "--n", str(N), "--k", "4"],
                 done=lambda: sink.count() - before >= N)


def relance_once(sink, stub, channel, n, name=None, concurrency=None):
    run = fresh_run(name or f"{channel}-once")
    write_spool(f"{run}/spool", n, channel)
    conf = config(run, smtp=sink.port if sink else None, sms=stub.base_url if stub else None, concurrency=concurrency)
    if sink:
        before = sink.count()
        done = lambda: sink.count() - before >= n  # noqa: E731
    else:
        before = stub.requests()
        done = lambda: stub.requests() - before >= n  # noqa: E731
    result = timed([RELANCE, "serve", "--once", "--config", conf], done=done, timeout=60)
    sent = sent_count(conf)
    if sent != n:
        raise RuntimeError(f"relance sent {sent} of {n}")
    return result


def group_sms():
    stub = Stub()
    try:
        curl_cfg = f"{STATE}/curl.cfg"
        auth = f"{SMS_USER}:{SMS_TOKEN}"
        with open(curl_cfg, "w") as f:
            for i in range(N):
                data = urllib.parse.urlencode({"To": "+336%08d" % (12340000 + i), "From": "+33700000000",
                                               "Body": f"Exemple SAS : votre facture F-{i:06d} est échue. Merci de régler sous 8 jours."})
                f.write(f'url = "{stub.url}"\nuser = "{auth}"\ndata = "{data}"\noutput = "/dev/null"\n')
                if i != N - 1:  # a trailing `next` would be one more, empty transfer
                    f.write("next\n")
        lua = f"{STATE}/post.lua"
        with open(lua, "w") as f:
            f.write('wrk.method = "POST"\nwrk.body = "To=%2B33612345678&From=%2B33700000000&Body=Exemple+SAS+%3A+votre+facture+est+%C3%A9chue."\n'
                    'wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"\n'
                    f'wrk.headers["Authorization"] = "Basic {base64.b64encode(auth.encode()).decode()}"\n')
        figures = {
            "http.ceiling.wrk.c64": lambda: wrk(stub.url, lua),
            "http.python_requests.t1": lambda: counted(stub, [sys.executable, f"{PEERS}/sms_sender.py", "--url", stub.url, "--user", SMS_USER,
                                                              "--token", SMS_TOKEN, "--n", str(N), "--threads", "1"]),
            "http.curl_parallel.p16": lambda: counted(stub, ["curl", "--parallel", "--parallel-max", "16", "--no-progress-meter", "--fail", "-K", curl_cfg]),
            "relance.sms.once": lambda: relance_once(None, stub, "sms", N),
        }
        runs = interleaved(figures)
        for name in figures:
            if name.startswith("http.ceiling"):
                record(name, "req/s", runs[name])
            else:
                record(name, "msg/s" if name.startswith("relance") else "req/s", runs[name], n=N)
    finally:
        stub.stop()


def counted(stub, argv):
    """A peer run that must have made the stub serve N requests."""
    before = stub.requests()
    return timed(argv, done=lambda: stub.requests() - before >= N, timeout=10)


def wrk(url, script, connections=64, seconds=5):
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", script, url], capture_output=True, text=True, check=True).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"wrk saw errors: {out[-600:]}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))


def group_flat():
    sink = Sink()
    try:
        runs = {"relance.email.pending_10k": [], f"relance.email.pending_{FLAT_N // 1000}k": []}
        for _ in range(RUNS):
            runs["relance.email.pending_10k"].append(relance_once(sink, None, "email", 10000, name="flat-small"))
            runs[f"relance.email.pending_{FLAT_N // 1000}k"].append(relance_once(sink, None, "email", FLAT_N, name="flat-big"))
        record("relance.email.pending_10k", "msg/s", runs["relance.email.pending_10k"], n=10000)
        record(f"relance.email.pending_{FLAT_N // 1000}k", "msg/s", runs[f"relance.email.pending_{FLAT_N // 1000}k"], n=FLAT_N)
    finally:
        sink.stop()


def group_scale():
    sink = Sink()
    try:
        intake, ready, rss = [], [], []
        for r in range(RUNS):
            run = fresh_run("scale")
            write_spool(f"{run}/spool", SCALE_N, "email", per_file=5000, prefix="S")
            conf = config(run, smtp=sink.port)
            relance("pause", "--all", "--config", conf)  # intake only: nothing is sent
            seconds, cpu, peak = timed([RELANCE, "serve", "--once", "--config", conf], timeout=900)
            intake.append((seconds, cpu, peak))
            # Start-up with everything pending: from exec to READY=1 on $NOTIFY_SOCKET.
            relance("resume", "--all", "--config", conf)
            notify = f"{run}/notify.sock"
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.bind(notify)
                sock.settimeout(60)
                env = dict(os.environ, NOTIFY_SOCKET=notify)
                start = time.perf_counter()
                daemon = Server([RELANCE, "serve", "--config", conf], f"{run}/daemon.log", env=env)
                try:
                    while b"READY=1" not in sock.recv(4096):
                        pass
                    ready.append(time.perf_counter() - start)
                    # Sending with the whole backlog pending: peak RSS after 15 s of work.
                    before = sink.count()
                    time.sleep(15)
                    log(f"bench scale: the daemon sent {sink.count() - before} messages in 15 s with {SCALE_N} pending")
                    rss.append(daemon.peak_rss_mib())
                finally:
                    daemon.stop()
        RESULTS["relance.intake"] = {"value": statistics.median(SCALE_N / s for s, _, _ in intake), "unit": "reminders/s",
                                     "runs": [SCALE_N / s for s, _, _ in intake], "rss_mib": max(p for _, _, p in intake)}
        print(f"relance.intake {RESULTS['relance.intake']['value']:.0f} reminders/s ({SCALE_N} reminders, peak RSS "
              f"{RESULTS['relance.intake']['rss_mib']:.0f} MiB)", flush=True)
        RESULTS["relance.ready"] = {"value": statistics.median(ready), "unit": "s", "runs": ready}
        print(f"relance.ready {statistics.median(ready):.3f} s (start-up to READY=1 with {SCALE_N} pending)", flush=True)
        RESULTS["relance.rss_pending"] = {"value": max(rss), "unit": "MiB", "runs": rss}
        print(f"relance.rss_pending {max(rss):.0f} MiB (daemon sending, {SCALE_N} pending)", flush=True)
    finally:
        sink.stop()


class Postgres:
    """A throwaway PostgreSQL cluster: initdb in STATE, its own loopback port and socket directory,
    run as `postgres` when this runs as root (the server refuses root). Durable as shipped (fsync
    and synchronous_commit on): the ledger's commits reach the disk, as SQLite's do."""

    def __init__(self, settings=()):
        versions = sorted(int(v) for v in os.listdir("/usr/lib/postgresql") if v.isdigit())
        self.bin = f"/usr/lib/postgresql/{versions[-1]}/bin"
        self.dir = f"{STATE}/pg"
        self.port = free_port()
        os.makedirs(self.dir)
        self.owner = None
        if os.geteuid() == 0:
            import pwd
            pw = pwd.getpwnam("postgres")
            self.owner = (pw.pw_uid, pw.pw_gid)
            os.chown(self.dir, *self.owner)
        subprocess.run(self.as_owner([f"{self.bin}/initdb", "-D", f"{self.dir}/data", "-U", "relance", "--auth=trust", "-E", "UTF8",
                                      "--no-locale"]), check=True, capture_output=True)
        self.server = Server(self.as_owner([f"{self.bin}/postgres", "-D", f"{self.dir}/data", "-p", str(self.port), "-k", self.dir,
                                            "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=100",
                                            *[a for kv in settings for a in ("-c", kv)]]), f"{STATE}/postgres.log")
        wait_port(self.port)
        deadline = time.monotonic() + 30
        while self.psql("SELECT 1", check=False).returncode != 0:  # accepting connections lags the socket
            if time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL did not accept connections")
            time.sleep(0.1)

    def as_owner(self, argv):
        if not self.owner:
            return argv
        return ["setpriv", f"--reuid={self.owner[0]}", f"--regid={self.owner[1]}", "--init-groups", "--", *argv]

    def psql(self, sql, database="postgres", check=True):
        return subprocess.run([f"{self.bin}/psql", "-h", HOST, "-p", str(self.port), "-U", "relance", "-d", database, "-v", "ON_ERROR_STOP=1",
                               "-Atq", "-c", sql], capture_output=True, text=True, check=check)

    def fresh_database(self, name):
        self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.psql(f"CREATE DATABASE {name}")
        return f"postgres://relance@{HOST}:{self.port}/{name}?sslmode=disable"

    def stop(self):
        self.server.stop(signal.SIGINT)


def group_cluster():
    """Several nodes on PostgreSQL against one node on SQLite (issue 16: at least 1,000 deliveries/s)."""
    sink = Sink()
    pg = Postgres()
    try:
        name = f"relance.email.postgres_{CLUSTER_NODES}_nodes"
        figures = {"relance.email.sqlite_1_node": lambda: relance_once(sink, None, "email", N, name="cluster-sqlite", concurrency=CLUSTER_CONCURRENCY),
                   name: lambda: relance_nodes(sink, pg, CLUSTER_NODES, N)}
        runs = interleaved(figures)
        for figure in figures:
            record(figure, "msg/s", runs[figure], n=N)
    finally:
        pg.stop()
        sink.stop()


def relance_nodes(sink, pg, nodes, n):
    """`relance serve --once` on `nodes` nodes at once, each with its own spool (n/nodes reminders)
    and the one database; CPU and peak RSS are the nodes' (PostgreSQL's own CPU is not counted)."""
    run = fresh_run(f"cluster-{nodes}")
    url = pg.fresh_database("bench")
    confs = []
    first = 0
    for k in range(nodes):
        # Distinct reminders and debtors on each node (a debtor's messages go one at a time).
        share = n // nodes + (1 if k < n % nodes else 0)
        write_spool(f"{run}/node{k}/spool", share, "email", prefix=f"N{k}", first=first)
        first += share
        confs.append(config(f"{run}/node{k}", smtp=sink.port, store_url=url, concurrency=CLUSTER_CONCURRENCY))
    relance("migrate", "--config", confs[0])
    before = sink.count()
    start = time.perf_counter()
    procs = []
    for k, conf in enumerate(confs):
        rss_file = f"{run}/node{k}/rss"
        env = dict(os.environ, RELANCE_STORE_NODE_ID=f"node-{k}")
        procs.append((subprocess.Popen(["/usr/bin/time", "-q", "-o", rss_file, "-f", "%M", RELANCE, "serve", "--once", "--config", conf], env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), rss_file))
    cpu, peak = 0.0, 0.0
    for proc, rss_file in procs:
        _, status, usage = os.wait4(proc.pid, 0)
        stderr = proc.stderr.read().decode(errors="replace")
        proc.stderr.close()
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"a node exited with {os.waitstatus_to_exitcode(status)}: {stderr[-800:]}")
        cpu += usage.ru_utime + usage.ru_stime
        with open(rss_file) as f:
            peak = max(peak, int(f.read().split()[-1]) / 1024)
    deadline = time.perf_counter() + 60
    while sink.count() - before < n:
        if time.perf_counter() > deadline:
            raise RuntimeError("the sink did not count every message")
        time.sleep(0.002)
    seconds = time.perf_counter() - start
    sent = int(pg.psql("SELECT COUNT(*) FROM delivery WHERE status = 'sent'", database="bench").stdout.strip())
    by_node = pg.psql("SELECT string_agg(node || '=' || n, ' ') FROM (SELECT node, COUNT(*) n FROM attempt GROUP BY node ORDER BY node) a",
                      database="bench").stdout.strip()
    log(f"bench cluster: {nodes} nodes sent {sent} in {seconds:.2f} s; attempts per node: {by_node}")
    if sent != n:
        raise RuntimeError(f"the nodes sent {sent} of {n}")
    return seconds, cpu, peak


PLAN_DEBTORS = int(os.environ.get("BENCH_PLAN_DEBTORS", "100000"))
PLAN_ITEMS = int(os.environ.get("BENCH_PLAN_ITEMS", "1000000"))


def group_plan():
    """relance plan over a receivables ledger of PLAN_DEBTORS debtors and PLAN_ITEMS open items
    (issue 12: under 10 s, peak RSS under 300 MiB), after one import of the feed."""
    run = fresh_run("plan")
    feed = f"{run}/feed.jsonl"
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "bench", "receivables_feed.py"), feed, str(PLAN_DEBTORS), str(PLAN_ITEMS)], check=True)
    conf = config(run)
    seconds, _, peak = timed([RELANCE, "import", "--config", conf, feed], timeout=1800)
    RESULTS["relance.receivables_import"] = {"value": (PLAN_ITEMS + PLAN_DEBTORS) / seconds, "unit": "records/s", "runs": [seconds], "rss_mib": peak}
    print(f"relance.receivables_import {(PLAN_ITEMS + PLAN_DEBTORS) / seconds:.0f} records/s ({seconds:.1f} s, peak RSS {peak:.0f} MiB)", flush=True)
    runs = []
    for r in range(RUNS):
        seconds, _, peak = timed([RELANCE, "plan", "--config", conf, "--as-of", "2026-11-30T09:00:00+01:00", "--format", "json"], timeout=600)
        runs.append((seconds, peak))
    RESULTS["relance.plan"] = {"value": statistics.median(s for s, _ in runs), "unit": "s", "runs": [s for s, _ in runs],
                               "rss_mib": max(p for _, p in runs)}
    print(f"relance.plan {RESULTS['relance.plan']['value']:.2f} s ({PLAN_DEBTORS} debtors, {PLAN_ITEMS} items, peak RSS "
          f"{RESULTS['relance.plan']['rss_mib']:.0f} MiB)", flush=True)
    # The report (issue 13: under 15 s and 400 MiB) over the same receivables and 2 deliveries for
    # each item: PLAN_ITEMS reminders on email and SMS to the same debtors, taken in while paused.
    write_report_spool(f"{run}/spool", PLAN_ITEMS, PLAN_DEBTORS)
    relance("pause", "--all", "--config", conf)
    timed([RELANCE, "serve", "--once", "--config", conf], timeout=1800)
    runs = []
    for r in range(RUNS):
        seconds, _, peak = timed([RELANCE, "report", "--config", conf, "--as-of", "2026-11-30", "--format", "html", "--out", f"{run}/report.html"], timeout=600)
        runs.append((seconds, peak))
    RESULTS["relance.report"] = {"value": statistics.median(s for s, _ in runs), "unit": "s", "runs": [s for s, _ in runs],
                                 "rss_mib": max(p for _, p in runs)}
    print(f"relance.report {RESULTS['relance.report']['value']:.2f} s ({PLAN_DEBTORS} debtors, {PLAN_ITEMS} items, {2 * PLAN_ITEMS} deliveries, "
          f"peak RSS {RESULTS['relance.report']['rss_mib']:.0f} MiB)", flush=True)
    # The risk score (issue 15: training under 30 s, scoring the open items under 5 s), over a history
    # of the same size with payments allocated to invoices, on time or late, in a ledger of its own.
    score_run = fresh_run("score")
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "bench", "score_feed.py"), f"{score_run}/feed.jsonl", str(PLAN_DEBTORS), str(PLAN_ITEMS)],
                   check=True)
    conf = config(score_run)
    timed([RELANCE, "import", "--config", conf, f"{score_run}/feed.jsonl"], timeout=1800)
    for name, argv in (("relance.score_train", ["score", "--train", "--as-of", "2026-11-30"]),
                       ("relance.score", ["score", "--as-of", "2026-11-30", "--format", "csv"])):
        runs = []
        for r in range(RUNS):
            seconds, _, peak = timed([RELANCE, *argv, "--config", conf], timeout=900)
            runs.append((seconds, peak))
        RESULTS[name] = {"value": statistics.median(s for s, _ in runs), "unit": "s", "runs": [s for s, _ in runs], "rss_mib": max(p for _, p in runs)}
        print(f"{name} {RESULTS[name]['value']:.2f} s ({PLAN_ITEMS} invoices, peak RSS {RESULTS[name]['rss_mib']:.0f} MiB)", flush=True)


def write_report_spool(spool, n, debtors, per_file=5000):
    """n reminders on email and SMS to the plan feed's debtors (D000000…), for the report's scale."""
    os.makedirs(f"{spool}/incoming", exist_ok=True)
    os.makedirs(f"{spool}/tmp", exist_ok=True)
    for start in range(0, n, per_file):
        lines = []
        for i in range(start, min(n, start + per_file)):
            d = i % debtors
            lines.append(json.dumps({
                "id": f"R-{i:07d}", "stage": "reminder_1", "channels": ["email", "sms"],
                "debtor": {"id": f"D{d:06d}", "name": f"Debtor {d}", "email": f"d{d}@example.fr", "phone": "+336%08d" % (12340000 + d),
                           "locale": "fr-FR", "timezone": "Europe/Paris", "kind": "business"},
                "invoices": [{"number": f"F{d:06d}-{i // debtors:02d}", "amount": "100.00", "currency": "EUR",
                              "issued_on": "2026-09-01", "due_on": "2026-10-01"}]}))
        name = f"r-{start // per_file:05d}.jsonl"
        with open(f"{spool}/tmp/{name}", "w") as f:
            f.write("\n".join(lines) + "\n")
        os.rename(f"{spool}/tmp/{name}", f"{spool}/incoming/{name}")


def group_webhooks():
    stub = Stub()
    sim_port = free_port()
    sim = Server([SIM, "--port", str(sim_port)], f"{STATE}/sim.log")
    try:
        wait_port(sim_port)
        # Messages to call back about: sent through the stub (each gets its own sid).
        messages = max(N, 40000)
        run = fresh_run("webhooks")
        write_spool(f"{run}/spool", messages, "sms", prefix="W")
        port = free_port()
        conf = config(run, sms=stub.base_url, webhooks=port)
        timed([RELANCE, "serve", "--once", "--config", conf], timeout=300)
        out = subprocess.run(["sqlite3", f"{run}/ledger.sqlite", "SELECT provider_id FROM attempt WHERE provider_id IS NOT NULL"],
                             capture_output=True, text=True, check=True).stdout.split()
        url = f"http://{HOST}:{port}/webhooks/twilio"
        requests_file = f"{STATE}/callbacks.txt"
        with open(requests_file, "w") as f:
            for sid in out:
                for status in ("sent", "delivered"):
                    params = {"AccountSid": SMS_USER, "MessageSid": sid, "MessageStatus": status, "To": "+33612345678"}
                    signed = url + "".join(k + v for k, v in sorted(params.items()))
                    signature = base64.b64encode(hmac.new(SMS_TOKEN.encode(), signed.encode(), hashlib.sha1).digest()).decode()
                    f.write(signature + " " + urllib.parse.urlencode(params) + "\n")
        lua = f"{STATE}/callbacks.lua"
        with open(lua, "w") as f:
            f.write(f"""local list = {{}}
for line in io.lines("{requests_file}") do
  local signature, body = line:match("^(%S+) (.+)$")
  list[#list + 1] = {{signature, body}}
end
local i = 0
request = function()
  i = i % #list + 1
  local item = list[i]
  return wrk.format("POST", nil, {{["Content-Type"] = "application/x-www-form-urlencoded", ["X-Twilio-Signature"] = item[1]}}, item[2])
end
""")
        daemon_runs, bare_runs = [], []
        for r in range(RUNS):
            daemon = Server([RELANCE, "serve", "--config", conf], f"{run}/daemon-{r}.log")
            try:
                wait_port(port)
                before = int(subprocess.run(["sqlite3", f"{run}/ledger.sqlite", "SELECT COUNT(*) FROM callback"], capture_output=True,
                                            text=True).stdout.strip() or 0)
                daemon_runs.append(wrk(url, lua))
            finally:
                daemon.stop()
            after = int(subprocess.run(["sqlite3", f"{run}/ledger.sqlite", "SELECT COUNT(*) FROM callback"], capture_output=True,
                                       text=True).stdout.strip() or 0)
            log(f"bench webhooks: run {r + 1}: {after - before} callbacks recorded in the ledger ({2 * len(out)} distinct signed requests)")
            bare_runs.append(wrk(f"http://{HOST}:{sim_port}/bare", lua))
        record("relance.webhooks.twilio", "req/s", daemon_runs)
        record("http.hummingbird.bare", "req/s", bare_runs)
    finally:
        sim.stop()
        stub.stop()


def ratio(a, b):
    if a in RESULTS and b in RESULTS and RESULTS[b]["value"]:
        return RESULTS[a]["value"] / RESULTS[b]["value"]
    return None


def summary():
    lines = ["# make bench", "", f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, N={N}, runs={RUNS}, "
             f"SMTP connections {SMTP_CONNECTIONS}, SMS connections {SMS_CONNECTIONS}, concurrency {CONCURRENCY}; "
             f"{os.cpu_count()} CPUs; {subprocess.run(['uname', '-sr'], capture_output=True, text=True).stdout.strip()}", "",
             "| figure | median | unit | runs | CPU ms/msg | peak RSS MiB |", "|---|---:|---|---|---:|---:|"]
    for name, e in RESULTS.items():
        runs = ", ".join(f"{v:.0f}" if v > 10 else f"{v:.3f}" for v in e["runs"])
        value = f"{e['value']:.0f}" if e["value"] > 10 else f"{e['value']:.3f}"
        lines.append(f"| {name} | {value} | {e['unit']} | {runs} | {e.get('cpu_ms', float('nan')):.3f} | {e.get('rss_mib', float('nan')):.0f} |")
    checks = [
        ("email vs Python smtplib k4", ratio("relance.email.once", "smtp.python_smtplib.k4"), 1.5),
        ("email vs Postfix relay", ratio("relance.email.once", "smtp.postfix_relay"), 3.0),
        ("SMS vs Python requests t1", ratio("relance.sms.once", "http.python_requests.t1"), 5.0),
        ("SMS vs curl --parallel 16", ratio("relance.sms.once", "http.curl_parallel.p16"), 0.35),
        (f"{FLAT_N // 1000}k pending vs 10k", ratio(f"relance.email.pending_{FLAT_N // 1000}k", "relance.email.pending_10k"), 0.85),
        ("webhooks vs bare Hummingbird", ratio("relance.webhooks.twilio", "http.hummingbird.bare"), 0.35),
    ]
    lines += ["", "| target | measured | goal | met |", "|---|---:|---:|---|"]
    for label, value, goal in checks:
        if value is not None:
            lines.append(f"| {label} | {value:.2f}× | ≥ {goal}× | {'yes' if value >= goal else 'no'} |")
    for name, goal, unit, higher in ((f"relance.email.postgres_{CLUSTER_NODES}_nodes", 1000, "msg/s", True), ("relance.intake", 50000, "reminders/s", True), ("relance.ready", 1.0, "s", False),
                                     ("relance.rss_pending", 100, "MiB", False)):
        if name in RESULTS:
            v = RESULTS[name]["value"]
            met = v >= goal if higher else v <= goal
            lines.append(f"| {name} | {v:.3f} {unit} | {'≥' if higher else '≤'} {goal} {unit} | {'yes' if met else 'no'} |")
    if "relance.plan" in RESULTS:
        plan = RESULTS["relance.plan"]
        lines.append(f"| relance.plan ({PLAN_DEBTORS} debtors, {PLAN_ITEMS} items) | {plan['value']:.2f} s | ≤ 10 s | {'yes' if plan['value'] <= 10 else 'no'} |")
        lines.append(f"| relance.plan peak RSS | {plan['rss_mib']:.0f} MiB | ≤ 300 MiB | {'yes' if plan['rss_mib'] <= 300 else 'no'} |")
    if "relance.report" in RESULTS:
        report = RESULTS["relance.report"]
        lines.append(f"| relance.report ({PLAN_DEBTORS} debtors, {PLAN_ITEMS} items, {2 * PLAN_ITEMS} deliveries) | {report['value']:.2f} s | ≤ 15 s | {'yes' if report['value'] <= 15 else 'no'} |")
        lines.append(f"| relance.report peak RSS | {report['rss_mib']:.0f} MiB | ≤ 400 MiB | {'yes' if report['rss_mib'] <= 400 else 'no'} |")
    for name, target in (("relance.score_train", 30), ("relance.score", 5)):
        if name in RESULTS:
            r = RESULTS[name]
            lines.append(f"| {name} ({PLAN_ITEMS} invoices) | {r['value']:.2f} s | ≤ {target} s | {'yes' if r['value'] <= target else 'no'} |")
    text = "\n".join(lines) + "\n"
    print("\n" + text)
    os.makedirs(f"{ROOT}/.build/bench", exist_ok=True)
    with open(f"{ROOT}/.build/bench/latest.md", "w") as f:
        f.write(text)
    with open(f"{ROOT}/.build/bench/latest.json", "w") as f:
        json.dump(RESULTS, f, indent=1)


def main():
    for tool in (RELANCE, SIM):
        if not os.access(tool, os.X_OK):
            sys.exit(f"bench: {tool} is missing (make release)")
    try:
        for group in GROUPS:
            log(f"bench: group {group}")
            {"email": group_email, "sms": group_sms, "flat": group_flat, "scale": group_scale, "webhooks": group_webhooks, "cluster": group_cluster,
             "plan": group_plan}[group]()
    finally:
        summary()
        shutil.rmtree(STATE, ignore_errors=True)


if __name__ == "__main__":
    main()
