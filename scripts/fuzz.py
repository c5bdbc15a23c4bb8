#!/usr/bin/env python3
"""make fuzz: hostile input against the real binary, then checks that nothing was lost, sent twice,
leaked or crashed.

Phase 1, the spool: HOSTILE hostile spool files (Unicode digits in every date and amount, huge and
truncated JSON, deep nesting, invalid UTF-8, BOM, duplicate keys, path escapes and symlinks in
attachments, header injection, absurd dates, unknown enums, wrong types) are dropped next to VALID
valid records, and `relance serve --once` takes them all. It must exit 0; every hostile file must
be quarantined with its reason file (or taken, if it was in fact valid); every valid record must be
sent exactly once; no file outside attachments_root (a canary) may appear in any message.

Phase 2, the HTTP side: REQUESTS hostile webhook and API requests (unsigned, forged, truncated,
2 MB bodies, wrong types, wrong methods and paths) against the running daemon: no 5xx, nothing
forged changes the ledger, /healthz answers 200 afterwards.

Phase 3, the bounce pipe: BOUNCES hostile messages on `relance bounce`'s standard input (the
bounce corpus cut, flipped, doubled and mixed with random bytes, invalid UTF-8, NULs, 2 MB; DSNs
whose VERP token is forged or altered for real deliveries; auto-replies, read receipts and
challenges carrying a genuine token): every one exits 0 (never a crash, never a bounce of a
bounce), and none changes a delivery or suppresses an address.

Prints one `fuzz:` line of counts and exits 0 when every check holds, 1 otherwise.
"""
import argparse
import base64
import email
import email.policy
import hashlib
import hmac
import http.client
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--relance", default=".build/debug/relance")
parser.add_argument("--templates", default="templates")
parser.add_argument("--hostile", type=int, default=10000)
parser.add_argument("--valid", type=int, default=1000)
parser.add_argument("--requests", type=int, default=5000)
parser.add_argument("--bounces", type=int, default=1000)
parser.add_argument("--fixtures", default="Tests/Fixtures/bounces")
parser.add_argument("--seed", type=int, default=1)
parser.add_argument("--work", help="keep the work directory here (default: a temporary one, removed when all is well)")
args = parser.parse_args()
rng = random.Random(args.seed)
relance = os.path.abspath(args.relance)
templates = os.path.abspath(args.templates)
work = os.path.abspath(args.work) if args.work else tempfile.mkdtemp(prefix="relance-fuzz-")
if os.path.exists(work) and args.work:
    shutil.rmtree(work)
os.makedirs(work, exist_ok=True)
failures = []


def fail(what):
    failures.append(what)


# ---------------------------------------------------------------------------------------------
# The sandbox: attachments root, a canary outside it, the configuration.

spool = os.path.join(work, "spool")
attachments = os.path.join(work, "attachments")
os.makedirs(attachments)
for sub in ("tmp", "incoming", "cancel"):
    os.makedirs(os.path.join(spool, sub))
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
with open(os.path.join(attachments, "ok.pdf"), "wb") as f:
    f.write(PDF)
CANARY = "CANARY-%d-%s" % (args.seed, "".join(rng.choice(string.ascii_uppercase) for _ in range(16)))
canary_path = os.path.join(work, "canary.pdf")
with open(canary_path, "wb") as f:
    f.write(PDF + CANARY.encode() + b"\n")
os.symlink(canary_path, os.path.join(attachments, "link.pdf"))
os.symlink(work, os.path.join(attachments, "up"))

port = socket.socket()
port.bind(("127.0.0.1", 0))
PORT = port.getsockname()[1]
port.close()
BASE = "http://127.0.0.1:%d" % PORT
TWILIO_TOKEN = "fuzz-twilio-token"
VONAGE_SECRET = "fuzz-vonage-signature"
WHSEC_KEY = b"fuzz-standard-webhooks-key-0123456789"
WHSEC = "whsec_" + base64.b64encode(WHSEC_KEY).decode()
API_TOKEN = "fuzz-api-token-0123456789abcdef"
BOUNCE_DOMAIN = "relances.example.fr"
BOUNCE_SECRET = "fuzz-bounce-secret-0123456789abcdef"


def write_config(path, sms):
    with open(path, "w") as f:
        f.write("""
spool: {{ root: "{spool}", attachments_root: "{attachments}", max_file_bytes: 1048576, rescan_interval: 1s }}
store: {{ path: "{work}/ledger.sqlite" }}
templates: {{ path: "{templates}" }}
email: {{ transport: outbox, from: "Exemple SAS <relances@example.fr>", outbox: {{ maildir: "{work}/outbox/mail" }}, bounce: {{ domain: "{bounce_domain}", secret: "{bounce_secret}" }} }}
{sms}
delivery: {{ concurrency: 8 }}
policy: {{ windows: {{ sms: always, email: always }}, holidays: none, caps: {{ per_day: none, per_7_days: none, per_30_days: none }}, group: false }}
webhooks: {{ listen: "127.0.0.1:{port}", public_base_url: "{base}", secret: "{whsec}", api_token: "{api}" }}
log: {{ level: warning }}
""".format(spool=spool, attachments=attachments, work=work, templates=templates, sms=sms, port=PORT, base=BASE, whsec=WHSEC, api=API_TOKEN,
           bounce_domain=BOUNCE_DOMAIN, bounce_secret=BOUNCE_SECRET))


config_spool = os.path.join(work, "spool.yaml")
write_config(config_spool, 'sms: {{ provider: outbox, outbox: {{ path: "{0}/outbox/sms.jsonl" }} }}'.format(work))
config_http = os.path.join(work, "http.yaml")
write_config(config_http, """sms:
  provider: twilio
  base_url: "http://127.0.0.1:9"
  twilio: {{ account_sid: AC00000000000000000000000000000000, auth_token: {0} }}
  vonage: {{ api_key: k, api_secret: s, signature_secret: {1} }}
  secondary: {{ provider: vonage, base_url: "http://127.0.0.1:9" }}
  outbox: {{ path: "{2}/outbox/sms.jsonl" }}""".format(TWILIO_TOKEN, VONAGE_SECRET, work))

# ---------------------------------------------------------------------------------------------
# Records.


def record(rid, channels=("email",), n=0, attachments_list=None):
    r = {
        "id": rid, "stage": ["pre_due", "reminder_1", "reminder_2", "final_notice"][n % 4], "channels": list(channels),
        "debtor": {"id": "D-" + rid, "name": "Élodie Martin %d" % n, "email": "d%d@example.fr" % n, "phone": "06 12 34 %02d %02d" % (n // 100 % 100, n % 100),
                   "country": "FR", "locale": ["fr-FR", "en-GB"][n % 2], "timezone": "Europe/Paris", "kind": ["consumer", "business"][n % 2]},
        "invoices": [{"number": "INV-" + rid, "amount": "%d.%02d" % (10 + n, n % 100), "currency": "EUR", "issued_on": "2026-09-01", "due_on": "2026-10-01"}],
    }
    if attachments_list is not None:
        r["attachments"] = attachments_list
    return r


def dump(obj):
    return json.dumps(obj, ensure_ascii=False).encode()


DIGITS = {"arabic": "٠١٢٣٤٥٦٧٨٩", "fullwidth": "０１２３４５６７８９", "devanagari": "०१२३४५६७८९", "superscript": "⁰¹²³⁴⁵⁶⁷⁸⁹"}


def unicode_digits(text):
    table = rng.choice(list(DIGITS.values()))
    return "".join(table[int(c)] if c.isascii() and c.isdigit() and rng.random() < 0.7 else c for c in text)


def hostile(i):
    """One hostile file: (name, bytes, kind). Some are valid after all; the checks allow that."""
    rid = "H%05d" % i
    base = record(rid, channels=rng.choice([("email",), ("email", "sms"), ("sms",)]), n=i)
    kind = rng.choice([
        "unicode-date", "unicode-amount", "truncated", "deep", "utf8", "bom", "dupkeys", "escape", "symlink", "absolute", "injection",
        "absurd-date", "enum", "types", "empty", "garbage", "many-invoices", "long-strings", "nul", "jsonl-mixed",
    ])
    name = "%s-%s.json" % (rid, kind)
    if kind == "unicode-date":
        field = rng.choice(["not_before", "expires_at", "issued_on", "due_on"])
        if field in ("issued_on", "due_on"):
            base["invoices"][0][field] = unicode_digits(base["invoices"][0][field])
        else:
            base[field] = unicode_digits("2026-11-29T10:00:00+01:00")
        data = dump(base)
    elif kind == "unicode-amount":
        base["invoices"][0]["amount"] = unicode_digits(base["invoices"][0]["amount"])
        data = dump(base)
    elif kind == "truncated":
        full = dump(base)
        data = full[: rng.randrange(1, len(full))]
    elif kind == "deep":
        depth = rng.choice([100, 1000, 20000])
        if rng.random() < 0.5:
            base["vars"] = "PLACEHOLDER"
            data = dump(base).replace(b'"PLACEHOLDER"', b"[" * depth + b"]" * depth)
        else:
            data = b'{"a":' * depth + b"1" + b"}" * depth
    elif kind == "utf8":
        full = dump(base)
        at = rng.randrange(0, len(full))
        data = full[:at] + rng.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xc0\xaf"]) + full[at:]
    elif kind == "bom":
        data = b"\xef\xbb\xbf" + dump(base)
    elif kind == "dupkeys":
        text = dump(base).decode()
        data = text.replace('"id": "%s"' % rid, '"id": "%s", "id": "%s-B"' % (rid, rid), 1).encode()
    elif kind == "escape":
        base["attachments"] = [rng.choice([attachments + "/../canary.pdf", attachments + "/up/canary.pdf", attachments + "/./../canary.pdf",
                                           "../canary.pdf", attachments + "/ok.pdf/../../canary.pdf"])]
        data = dump(base)
    elif kind == "symlink":
        base["attachments"] = [attachments + "/link.pdf"]
        data = dump(base)
    elif kind == "absolute":
        base["attachments"] = [rng.choice([canary_path, "/etc/passwd", "/proc/self/environ", "/dev/zero", attachments])]
        data = dump(base)
    elif kind == "injection":
        where = rng.choice(["name", "number", "payment_url", "id", "email"])
        evil = rng.choice(["\r\nBcc: everyone@example.org", "\nSubject: hijack", "\u2028X: y", "\u202Eevil", "=?UTF-8?B?AAAA?=\r\n"])
        if where == "name":
            base["debtor"]["name"] += evil
        elif where == "number":
            base["invoices"][0]["number"] += evil
        elif where == "payment_url":
            base["payment_url"] = "https://pay.example.fr/x" + evil
        elif where == "id":
            base["id"] += evil
        else:
            base["debtor"]["email"] = "x@example.fr" + evil
        data = dump(base)
    elif kind == "absurd-date":
        field = rng.choice(["not_before", "expires_at", "due_on", "issued_on"])
        value = rng.choice(["0000-01-01", "9999-12-31", "1899-12-31", "2026-02-30", "2026-13-01", "+275760-09-13", "-0001-01-01", "2026-1-1"])
        if field in ("due_on", "issued_on"):
            base["invoices"][0][field] = value
        else:
            base[field] = value + "T00:00:00Z" if rng.random() < 0.7 else value
        data = dump(base)
    elif kind == "enum":
        mutation = rng.choice(["channel", "kind", "stage", "currency", "locale", "timezone", "country"])
        if mutation == "channel":
            base["channels"] = ["fax"]
        elif mutation == "kind":
            base["debtor"]["kind"] = "robot"
        elif mutation == "stage":
            base["stage"] = "pre_due\u200b"
        elif mutation == "currency":
            base["invoices"][0]["currency"] = rng.choice(["XXX", "eur", "EURO", "€"])
        elif mutation == "locale":
            base["debtor"]["locale"] = rng.choice(["zz-ZZ", "fr_FR", "", "x" * 300])
        elif mutation == "timezone":
            base["debtor"]["timezone"] = rng.choice(["Mars/Base", "../../etc/passwd", "UTC+25"])
        else:
            base["debtor"]["country"] = rng.choice(["ZZ", "fra", "fr"])
        data = dump(base)
    elif kind == "types":
        mutation = rng.choice(["amount-number", "channels-string", "debtor-array", "invoices-object", "id-number", "vars-array", "null-debtor"])
        if mutation == "amount-number":
            base["invoices"][0]["amount"] = 12.5
        elif mutation == "channels-string":
            base["channels"] = "email"
        elif mutation == "debtor-array":
            base["debtor"] = [base["debtor"]]
        elif mutation == "invoices-object":
            base["invoices"] = base["invoices"][0]
        elif mutation == "id-number":
            base["id"] = 12345
        elif mutation == "vars-array":
            base["vars"] = [1, 2, 3]
        else:
            base["debtor"] = None
        data = dump(base)
    elif kind == "empty":
        data = rng.choice([b"", b"   \n\t\n", b"null", b"[]", b"{}", b"\n\n\n", b"0"])
    elif kind == "garbage":
        data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4096)))
    elif kind == "many-invoices":
        base["invoices"] = [dict(base["invoices"][0], number="N%d" % k) for k in range(rng.choice([501, 5000]))]
        data = dump(base)
    elif kind == "long-strings":
        field = rng.choice(["name", "id", "number", "email"])
        long = "é" * rng.choice([300, 10000, 200000])
        if field == "name":
            base["debtor"]["name"] = long
        elif field == "id":
            base["id"] = long
        elif field == "number":
            base["invoices"][0]["number"] = long
        else:
            base["debtor"]["email"] = long + "@example.fr"
        data = dump(base)
    elif kind == "nul":
        base["debtor"]["name"] = "Élodie\u0000Martin"
        data = dump(base)
    else:  # jsonl-mixed: a valid line, a hostile line, a valid line
        name = "%s-%s.jsonl" % (rid, kind)
        good = [record(rid + "-a", n=i), record(rid + "-b", n=i + 1)]
        data = dump(good[0]) + b"\n" + b'{"id": "' + rid.encode() + b'-bad", "stage": 7}\n' + dump(good[1]) + b"\n"
    return name, data, kind


def drop(name, data):
    tmp = os.path.join(spool, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, os.path.join(spool, "incoming", name))


hostile_names = {}
for i in range(args.hostile):
    name, data, kind = hostile(i)
    hostile_names[name] = kind
    drop(name, data)
# A few that are not files at all, and huge files over spool.max_file_bytes.
huge_count = max(1, args.hostile // 500)
for k in range(huge_count):
    name = "HUGE%03d.jsonl" % k
    with open(os.path.join(spool, "tmp", name), "wb") as f:
        line = dump(record("HUGE%03d-x" % k)) + b"\n"
        f.write(line * (1200000 // len(line) + 1))
    os.rename(os.path.join(spool, "tmp", name), os.path.join(spool, "incoming", name))
    hostile_names[name] = "huge"
os.symlink(canary_path, os.path.join(spool, "incoming", "SYMLINKED.json"))
hostile_names["SYMLINKED.json"] = "symlink-file"

valid_ids = {}
per_file = 10
for f in range((args.valid + per_file - 1) // per_file):
    lines = []
    for j in range(per_file):
        n = f * per_file + j
        if n >= args.valid:
            break
        channels = ("email", "sms") if n % 3 == 0 else ("email",)
        r = record("VALID%05d" % n, channels=channels, n=n + 100000, attachments_list=[attachments + "/ok.pdf"] if n % 5 == 0 else None)
        valid_ids[r["id"]] = channels
        lines.append(dump(r))
    drop("VALID%04d.jsonl" % f, b"\n".join(lines) + b"\n")

# ---------------------------------------------------------------------------------------------
# Phase 1: one pass.

started = time.time()
run = subprocess.run([relance, "serve", "--once", "--config", config_spool], capture_output=True, text=True, env=dict(os.environ, STATE_DIRECTORY=""))
spool_seconds = time.time() - started
if run.returncode != 0:
    fail("serve --once exited %d: %s" % (run.returncode, run.stderr[-2000:]))

left = [n for n in os.listdir(os.path.join(spool, "incoming")) if not n.startswith(".")]
if left:
    fail("files left in incoming/: %s" % left[:5])
active = os.path.join(spool, "active")
left_active = [os.path.join(d, n) for d in os.listdir(active) for n in os.listdir(os.path.join(active, d))] if os.path.isdir(active) else []
if left_active:
    fail("files left in active/: %s" % left_active[:5])
failed_dir = os.listdir(os.path.join(spool, "failed"))
done_dir = set(os.listdir(os.path.join(spool, "done")))
quarantined = ingested = 0
kinds_quarantined = {}
kinds_taken = {}
# What can never be a valid record, whatever the draw.
ALWAYS_REFUSED = {"truncated", "utf8", "escape", "symlink", "absolute", "injection", "types", "enum", "many-invoices", "nul", "huge",
                  "symlink-file", "jsonl-mixed", "deep", "dupkeys", "absurd-date"}
for name, kind in hostile_names.items():
    if name in failed_dir:
        if name + ".error.json" not in failed_dir:
            fail("%s quarantined without its reason file" % name)
        else:
            report = json.load(open(os.path.join(spool, "failed", name + ".error.json")))
            if not report.get("errors") or not all(e.get("reason") for e in report["errors"]):
                fail("%s: a reason file without reasons" % name)
        quarantined += 1
        kinds_quarantined[kind] = kinds_quarantined.get(kind, 0) + 1
    elif name in done_dir:
        ingested += 1
        kinds_taken[kind] = kinds_taken.get(kind, 0) + 1
        if kind in ALWAYS_REFUSED:
            fail("%s (%s) was taken, not quarantined" % (name, kind))
    else:
        fail("%s (%s) is neither quarantined nor taken" % (name, kind))

# What went out: the Maildir (decoded) and the SMS outbox.
sent = {}
leaks = 0
maildir = os.path.join(work, "outbox", "mail", "new")
messages = os.listdir(maildir) if os.path.isdir(maildir) else []
for name in messages:
    raw = open(os.path.join(maildir, name), "rb").read()
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    rid = msg["X-Relance-Reminder"]
    sent[(rid, "email")] = sent.get((rid, "email"), 0) + 1
    if CANARY.encode() in raw:
        leaks += 1
    for part in msg.walk():
        payload = part.get_payload(decode=True)
        if payload and CANARY.encode() in payload:
            leaks += 1
    if msg["Bcc"] is not None or len(msg.get_all("To", [])) != 1:
        fail("%s: an injected header" % name)
sms_path = os.path.join(work, "outbox", "sms.jsonl")
if os.path.exists(sms_path):
    for line in open(sms_path, encoding="utf-8"):
        rid = json.loads(line)["reminder_id"]
        sent[(rid, "sms")] = sent.get((rid, "sms"), 0) + 1
if leaks:
    fail("the canary outside attachments_root appears in %d message(s)" % leaks)
valid_once = 0
for rid, channels in valid_ids.items():
    counts = [sent.get((rid, c), 0) for c in channels]
    if counts == [1] * len(channels):
        valid_once += 1
    else:
        fail("valid %s sent %s times on %s" % (rid, counts, channels))
twice = [k for k, v in sent.items() if v > 1]
if twice:
    fail("sent more than once: %s" % twice[:5])

# ---------------------------------------------------------------------------------------------
# Phase 2: the HTTP side of the running daemon.

db = sqlite3.connect(os.path.join(work, "ledger.sqlite"))
before = db.execute("SELECT reminder_id, channel, status FROM delivery ORDER BY 1, 2").fetchall()
suppressed_before = db.execute("SELECT COUNT(*) FROM suppression").fetchone()[0]
db.close()
daemon = subprocess.Popen([relance, "serve", "--config", config_http], stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "daemon.log"), "w"))


def request(method, path, body=b"", headers=None, truncate=None, timeout=10):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
        if truncate is not None:
            conn.putrequest(method, path)
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            conn.putheader("Content-Length", str(len(body)))
            conn.endheaders()
            conn.send(body[:truncate])
            conn.sock.shutdown(socket.SHUT_WR)
        else:
            conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        response.read()
        conn.close()
        return response.status
    except (ConnectionError, socket.timeout, http.client.HTTPException, OSError):
        return "closed"


deadline = time.time() + 60
while request("GET", "/healthz") != 200:
    if time.time() > deadline or daemon.poll() is not None:
        fail("the daemon's webhook server did not come up: %s" % open(os.path.join(work, "daemon.log")).read()[-2000:])
        break
    time.sleep(0.1)


def twilio_signature(url, params, token=TWILIO_TOKEN):
    payload = url + "".join(k + v for k, v in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()).decode()


def hostile_request(k):
    """(method, path, body, headers, truncate, legitimate)."""
    r = random.Random(args.seed * 1000003 + k)
    kind = r.choice(["twilio-unsigned", "twilio-forged", "twilio-other-token", "twilio-stop-forged", "vonage-unsigned", "vonage-forged", "generic-unsigned",
                     "generic-forged", "generic-stale", "brevo", "big", "truncated", "garbage", "wrong-type", "api-no-token", "api-bad-token",
                     "api-bad-body", "bad-path", "bad-method", "generic-signed"])
    sid = "SM%032x" % r.getrandbits(128)
    form = [("MessageSid", sid), ("MessageStatus", r.choice(["delivered", "undelivered", "failed"]))]
    if kind == "twilio-unsigned":
        return "POST", "/webhooks/twilio", urllib.parse.urlencode(form).encode(), {"Content-Type": "application/x-www-form-urlencoded"}, None, False
    if kind == "twilio-forged":
        return "POST", "/webhooks/twilio", urllib.parse.urlencode(form).encode(), {"Content-Type": "application/x-www-form-urlencoded",
                                                                                  "X-Twilio-Signature": base64.b64encode(os.urandom(20)).decode()}, None, False
    if kind == "twilio-other-token":
        return "POST", "/webhooks/twilio", urllib.parse.urlencode(form).encode(), {
            "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": twilio_signature(BASE + "/webhooks/twilio", form, "wrong")}, None, False
    if kind == "twilio-stop-forged":
        inbound = [("From", "+336%08d" % r.randrange(10 ** 8)), ("Body", "STOP"), ("SmsStatus", "received")]
        return "POST", "/webhooks/twilio", urllib.parse.urlencode(inbound).encode(), {"Content-Type": "application/x-www-form-urlencoded",
                                                                                     "X-Twilio-Signature": "AAAA"}, None, False
    if kind == "vonage-unsigned":
        body = json.dumps({"messageId": sid, "status": "delivered", "timestamp": str(int(time.time()))}).encode()
        return "POST", "/webhooks/vonage", body, {"Content-Type": "application/json"}, None, False
    if kind == "vonage-forged":
        body = json.dumps({"messageId": sid, "status": "failed", "timestamp": str(int(time.time())), "sig": "%032x" % r.getrandbits(128)}).encode()
        return "POST", "/webhooks/vonage", body, {"Content-Type": "application/json"}, None, False
    body = json.dumps({"message_id": sid, "status": "delivered"}).encode()
    wid = "msg_%d" % k
    if kind == "generic-unsigned":
        return "POST", "/webhooks/generic", body, {"Content-Type": "application/json"}, None, False
    if kind in ("generic-forged", "generic-stale", "generic-signed"):
        ts = str(int(time.time()) - (3600 if kind == "generic-stale" else 0))
        key = WHSEC_KEY if kind != "generic-forged" else b"not-the-key"
        sig = "v1," + base64.b64encode(hmac.new(key, ("%s.%s." % (wid, ts)).encode() + body, hashlib.sha256).digest()).decode()
        return "POST", "/webhooks/generic", body, {"Content-Type": "application/json", "webhook-id": wid, "webhook-timestamp": ts,
                                                    "webhook-signature": sig}, None, kind == "generic-signed"
    if kind == "brevo":
        return "POST", "/webhooks/brevo?token=guess", b'{"event":"delivered","messageId":1}', {"Content-Type": "application/json"}, None, False
    if kind == "big":
        return "POST", r.choice(["/webhooks/twilio", "/webhooks/generic", "/api/cancellations"]), os.urandom(2 * 1024 * 1024), {
            "Content-Type": "application/json"}, None, False
    if kind == "truncated":
        return "POST", "/webhooks/generic", body, {"Content-Type": "application/json"}, r.randrange(0, len(body)), False
    if kind == "garbage":
        return "POST", r.choice(["/webhooks/twilio", "/webhooks/vonage", "/webhooks/generic"]), bytes(r.randrange(256) for _ in range(r.randrange(1, 2000))), {
            "Content-Type": r.choice(["application/json", "application/x-www-form-urlencoded", "text/plain", "multipart/form-data"])}, None, False
    if kind == "wrong-type":
        weird = r.choice([b'{"message_id": [1,2], "status": {"a": 1}}', b'["delivered"]', b"null", b'{"message_id": 1e999, "status": true}'])
        return "POST", "/webhooks/generic", weird, {"Content-Type": "application/json"}, None, False
    cancel = json.dumps({"cancel": {"debtor": "D-VALID00001", "reason": "paid"}}).encode()
    if kind == "api-no-token":
        return "POST", "/api/cancellations", cancel, {"Content-Type": "application/json"}, None, False
    if kind == "api-bad-token":
        return "POST", "/api/cancellations", cancel, {"Content-Type": "application/json", "Authorization": "Bearer " + API_TOKEN[:-1] + "x"}, None, False
    if kind == "api-bad-body":
        bad = r.choice([b'{"cancel": {"debtor": 7}}', b'{"cancel": {}}', b"{", b'{"cancel": {"invoice": "X", "reason": "paid", "until": "2000-01-01T00:00:00Z"}}'])
        return "POST", "/api/cancellations", bad, {"Content-Type": "application/json", "Authorization": "Bearer " + API_TOKEN}, None, False
    if kind == "bad-path":
        return "POST", r.choice(["/webhooks/../api/cancellations", "/webhooks/%2e%2e/x", "/webhooks/", "/webhooks/twilio/extra", "/" + "a" * 4000]), body, {}, None, False
    return r.choice(["GET", "PUT", "DELETE"]), r.choice(["/webhooks/twilio", "/api/cancellations", "/metrics/x"]), b"", {}, None, False


statuses = {}
bad = []
accepted_forged = []
lock = threading.Lock()


def worker(indices):
    for k in indices:
        method, path, body, headers, truncate, legitimate = hostile_request(k)
        status = request(method, path, body, headers, truncate)
        with lock:
            statuses[status] = statuses.get(status, 0) + 1
            if isinstance(status, int) and status >= 500:
                bad.append((k, method, path, status))
            if isinstance(status, int) and 200 <= status < 300 and not legitimate:
                accepted_forged.append((k, method, path, status))


if daemon.poll() is None:
    threads = [threading.Thread(target=worker, args=(range(t, args.requests, 8),)) for t in range(8)]
    started = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    http_seconds = time.time() - started
    health = request("GET", "/healthz")
    if health != 200:
        fail("/healthz answers %s after the requests" % health)
    if daemon.poll() is not None:
        fail("the daemon died during the requests (exit %s)" % daemon.returncode)
    daemon.send_signal(signal.SIGTERM)
    try:
        if daemon.wait(timeout=60) != 0:
            fail("the daemon exited %d on SIGTERM" % daemon.returncode)
    except subprocess.TimeoutExpired:
        daemon.kill()
        fail("the daemon did not stop on SIGTERM")
else:
    http_seconds = 0
    health = "down"
# ---------------------------------------------------------------------------------------------
# Phase 3: the bounce pipe.


def verp_token(reminder_id, secret=BOUNCE_SECRET):
    """The token Relance puts in the return path (docs/bounces.md): base32 of the id, '-', 80 bits of HMAC-SHA256."""
    b32 = lambda data: base64.b32encode(data).decode().rstrip("=").lower()
    message = b"relance-verp-v1\0" + reminder_id.encode() + b"\0email"
    return b32(reminder_id.encode()) + "-" + b32(hmac.new(secret.encode(), message, hashlib.sha256).digest()[:10])


corpus = {}
fixtures_dir = os.path.abspath(args.fixtures)
expected = json.load(open(os.path.join(fixtures_dir, "expected.json")))
for name in sorted(os.listdir(fixtures_dir)):
    if name.endswith(".eml"):
        corpus[name] = open(os.path.join(fixtures_dir, name), "rb").read()
bounce_fixtures = [n for n in corpus if "bounce" in expected.get(n, {})]
never_fixtures = [n for n in corpus if "not" in expected.get(n, {})]
targets = sorted(valid_ids) or ["nobody"]
VERP_RE = __import__("re").compile(rb"bounces\+[A-Za-z0-9._=-]*@[A-Za-z0-9.-]+")


def with_token(data, token):
    data = VERP_RE.sub(("bounces+%s@%s" % (token, BOUNCE_DOMAIN)).encode(), data)
    return b"X-Relance-Delivery: " + token.encode() + b"\n" + data if rng.random() < 0.3 else data


def hostile_bounce(k):
    r = random.Random(args.seed * 1_000_003 + k)
    target = r.choice(targets)
    kind = k % 8
    if kind == 0:  # a real bounce, its token forged (another key)
        return "forged", with_token(corpus[r.choice(bounce_fixtures)], verp_token(target, "not-the-secret-of-this-ledger"))
    if kind == 1:  # a real bounce, its genuine token altered by one character
        token = list(verp_token(target))
        i = r.randrange(len(token))
        token[i] = "a" if token[i] != "a" else "b"
        if token[i - 1:i + 1] == ["-", "-"]:
            token[i] = "c"
        return "altered", with_token(corpus[r.choice(bounce_fixtures)], "".join(token))
    if kind == 2:  # never a bounce, even with a genuine token
        return "never", with_token(corpus[r.choice(never_fixtures)], verp_token(target))
    data = bytearray(with_token(corpus[r.choice(list(corpus))], verp_token(target, "forger")))
    if kind == 3:  # cut short
        return "cut", bytes(data[: r.randrange(len(data) + 1)])
    if kind == 4:  # bytes flipped, NULs and invalid UTF-8
        for _ in range(r.randrange(1, 40)):
            data[r.randrange(len(data))] = r.choice([0, 0xFF, 0xC3, 0x80, 0x0A, 0x0D, r.randrange(256)])
        return "flipped", bytes(data)
    if kind == 5:  # lines doubled, boundaries removed
        lines = bytes(data).split(b"\n")
        lines = [l for l in lines if not l.startswith(b"--") or r.random() < 0.5]
        for _ in range(r.randrange(1, 10)):
            i = r.randrange(len(lines))
            lines.insert(i, lines[i])
        return "doubled", b"\n".join(lines)
    if kind == 6:  # huge: a 2 MB header line or body
        return "huge", b"Subject: " + b"x" * (2 << 20) + b"\n\n" + bytes(data)
    return "random", bytes(r.randrange(256) for _ in range(r.randrange(0, 4096)))


bounce_exits = {}
bounce_bad = []


def bounce_worker(indices):
    for k in indices:
        what, data = hostile_bounce(k)
        try:
            p = subprocess.run([relance, "bounce", "--config", config_spool], input=data, capture_output=True, timeout=60)
            code = p.returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
        with lock:
            bounce_exits[code] = bounce_exits.get(code, 0) + 1
            if code != 0:
                bounce_bad.append((k, what, code, (p.stderr[-300:] if code != "timeout" else b"")))


bounce_started = time.time()
threads = [threading.Thread(target=bounce_worker, args=(range(t, args.bounces, 8),)) for t in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
bounce_seconds = time.time() - bounce_started
if bounce_bad:
    fail("%d hostile bounces did not exit 0: %s" % (len(bounce_bad), bounce_bad[:5]))

if bad:
    fail("%d answers were 5xx: %s" % (len(bad), bad[:5]))
if accepted_forged:
    fail("%d forged or malformed requests were accepted: %s" % (len(accepted_forged), accepted_forged[:5]))
db = sqlite3.connect(os.path.join(work, "ledger.sqlite"))
after = db.execute("SELECT reminder_id, channel, status FROM delivery ORDER BY 1, 2").fetchall()
suppressed_after = db.execute("SELECT COUNT(*) FROM suppression").fetchone()[0]
forged_callbacks = db.execute("SELECT COUNT(*) FROM callback WHERE provider != 'generic'").fetchone()[0]
db.close()
if after != before:
    fail("the requests or the hostile bounces changed delivery statuses: %d rows differ" % len(set(after) ^ set(before)))
if suppressed_after != suppressed_before:
    fail("a forged STOP or a forged bounce suppressed an address")
if forged_callbacks:
    fail("%d unsigned or forged callbacks were kept" % forged_callbacks)

print(
    "fuzz: seed=%d hostile-files=%d quarantined=%d taken=%d (valid after all: %s) valid-records=%d sent-once=%d canary-leaks=%d spool-pass=%.1fs "
    "requests=%d answers=%s 5xx=%d forged-accepted=%d healthz=%s http=%.1fs bounces=%d bounce-exits=%s bounce-pipe=%.1fs"
    % (args.seed, len(hostile_names), quarantined, ingested, ",".join("%s:%d" % kv for kv in sorted(kinds_taken.items())) or "none", len(valid_ids), valid_once, leaks, spool_seconds, args.requests,
       json.dumps({str(k): v for k, v in sorted(statuses.items(), key=lambda kv: str(kv[0]))}, separators=(",", ":")), len(bad), len(accepted_forged),
       health, http_seconds, args.bounces, json.dumps({str(k): v for k, v in bounce_exits.items()}, separators=(",", ":")), bounce_seconds))
if failures:
    print("FUZZ FAILED (work directory kept: %s):" % work)
    for f in failures[:40]:
        print("  - " + f)
    sys.exit(1)
if not args.work:
    shutil.rmtree(work, ignore_errors=True)
