#!/usr/bin/env python3
"""A real SMTP server for Relance's integration tests (aiosmtpd).

Every accepted message is written to OUT_DIR as NNNNNN.eml (written then renamed, so a reader never
sees half a file), with X-Envelope-From, X-Envelope-To and X-Peer (the client's address and port:
one per connection) lines first. Behaviour is chosen by the recipient's local part:
  tempfail-once-*   answers 451 at end of DATA the first time, accepts afterwards
  reject-*          answers 550 at RCPT TO
  slow-*            waits --slow seconds before accepting (lets a test kill the client mid-send)
  hang-after-data-* reads the whole message, then never answers (the client times out)
  drop-after-data-* reads the whole message, then drops the connection without a reply
With --cert/--key it offers STARTTLS (and requires it); with --implicit-tls it speaks TLS from the
first byte (smtps). With --auth USER:PASSWORD it requires AUTH (PLAIN or LOGIN) with those
credentials; each accepted message records the authenticated user in an X-Auth-User line.
It offers PIPELINING (aiosmtpd reads commands one after the other from the stream, which is what
RFC 2920 asks of a server) unless --no-pipelining. With --idle-timeout SECONDS it closes a
connection idle that long, as real relays do, and notes each closed connection in a closed-N file.
Prints "READY <port>" on stdout once listening. Stops on SIGTERM.
"""
import argparse
import asyncio
import itertools
import os
import signal
import threading

import ssl

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult

parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True)
parser.add_argument("--port", type=int, default=0)
parser.add_argument("--slow", type=float, default=2.0)
parser.add_argument("--cert")
parser.add_argument("--key")
parser.add_argument("--implicit-tls", action="store_true")
parser.add_argument("--auth")
parser.add_argument("--no-pipelining", action="store_true")
parser.add_argument("--idle-timeout", type=float)
args = parser.parse_args()
os.makedirs(args.out, exist_ok=True)
counter = itertools.count(1)
lock = threading.Lock()
seen_tempfail = set()


def record(envelope, suffix):
    """Notes a message that arrived whole but was never answered (never a delivery)."""
    with lock:
        n = next(counter)
    with open(os.path.join(args.out, "%06d-%d.%s" % (n, os.getpid(), suffix)), "wb") as f:
        f.write(envelope.original_content)


class Handler:
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if not args.no_pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.split("@")[0].startswith("reject-"):
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        rcpt = envelope.rcpt_tos[0] if envelope.rcpt_tos else ""
        local = rcpt.split("@")[0]
        if local.startswith("tempfail-once-"):
            with lock:
                first = rcpt not in seen_tempfail
                seen_tempfail.add(rcpt)
            if first:
                return "451 4.3.0 Temporary local problem, try again later"
        if local.startswith("slow-"):
            await asyncio.sleep(args.slow)
        if local.startswith("hang-after-data-"):
            record(envelope, "received-no-reply")
            await asyncio.sleep(3600)
        if local.startswith("drop-after-data-"):
            record(envelope, "received-no-reply")
            server.transport.abort()
            return "250 2.0.0 never seen"
        with lock:
            n = next(counter)
        name = "%06d-%d.eml" % (n, os.getpid())
        tmp = os.path.join(args.out, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(b"X-Envelope-From: " + envelope.mail_from.encode() + b"\r\n")
            f.write(b"X-Envelope-To: " + ",".join(envelope.rcpt_tos).encode() + b"\r\n")
            f.write(b"X-Peer: " + ("%s:%s" % tuple(session.peer[:2])).encode() + b"\r\n")
            if session.authenticated:
                f.write(b"X-Auth-User: " + str(session.auth_data.login, "utf-8").encode() + b"\r\n")
            f.write(envelope.original_content)
        os.rename(tmp, os.path.join(args.out, name))
        return "250 2.0.0 Ok: queued as Q%06d" % n


tls = None
if args.cert:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(args.cert, args.key)


def authenticate(server, session, envelope, mechanism, auth_data):
    user, _, password = args.auth.partition(":")
    ok = auth_data.login == user.encode() and auth_data.password == password.encode()
    return AuthResult(success=ok, handled=False, auth_data=auth_data)


class Controller0(Controller):
    def factory(self):
        options = dict(enable_SMTPUTF8=True, decode_data=False)
        if tls is not None and not args.implicit_tls:
            options.update(tls_context=tls, require_starttls=True)
        if args.auth:
            options.update(authenticator=authenticate, auth_required=True, auth_require_tls=tls is not None)
        if args.idle_timeout:
            options.update(timeout=args.idle_timeout)
        return RecordingSMTP(self.handler, **options)


class RecordingSMTP(SMTP):
    def connection_lost(self, error):
        with lock:
            n = next(counter)
        open(os.path.join(args.out, "closed-%06d" % n), "w").close()
        super().connection_lost(error)


port = args.port
if port == 0:
    # aiosmtpd's Controller cannot report an ephemeral port: take a free one from the kernel.
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
controller = Controller0(Handler(), hostname="127.0.0.1", port=port,
                         ssl_context=tls if args.implicit_tls else None)
controller.start()
print("READY %d" % port, flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
stop.wait()
controller.stop()
