#!/usr/bin/env python3
"""Receives gateway status callbacks for the tests: records each POST as a JSON line in --out (path,
headers, form or JSON body) and answers 200. With --twilio-token it checks X-Twilio-Signature
independently of Relance, with Python's hmac: base64(HMAC-SHA1(token, URL + sorted name+value)).
Prints "READY <port>"."""
import argparse
import base64
import hashlib
import hmac
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

parser = argparse.ArgumentParser()
parser.add_argument("--out", required=True)
parser.add_argument("--twilio-token", default="")
args = parser.parse_args()
lock = threading.Lock()


def twilio_signature(token, url, params):
    payload = url + "".join(k + v for k, v in sorted(params))
    return base64.b64encode(hmac.new(token.encode(), payload.encode(), hashlib.sha1).digest()).decode()


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        record = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}
        if self.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded"):
            pairs = urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True)
            record["form"] = dict(pairs)
            if "X-Twilio-Signature" in self.headers:
                url = "http://%s%s" % (self.headers["Host"], self.path)
                expected = twilio_signature(args.twilio_token, url, pairs)
                record["twilio_signature_valid"] = hmac.compare_digest(expected, self.headers["X-Twilio-Signature"])
        else:
            record["json"] = json.loads(raw or b"null")
        with lock, open(args.out, "a") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("READY %d" % server.server_address[1], flush=True)
server.serve_forever()
