#!/usr/bin/env python3
"""Parses a message with Python's email package in strict mode and prints what a test checks, as JSON."""
import email
import email.policy
import json
import sys

raw = open(sys.argv[1], "rb").read()
# Drop the envelope lines the test server prepends.
lines = raw.split(b"\r\n")
while lines and lines[0].startswith(b"X-Envelope-"):
    lines.pop(0)
raw = b"\r\n".join(lines)
msg = email.message_from_bytes(raw, policy=email.policy.strict)
out = {
    "subject": str(msg["Subject"]),
    "from": str(msg["From"]),
    "to": str(msg["To"]),
    "to_addresses": [a.addr_spec for a in msg["To"].addresses],
    "date": str(msg["Date"]),
    "message_id": str(msg["Message-ID"]),
    "mime_version": str(msg["MIME-Version"]),
    "headers": [k for k in msg.keys()],
    "bcc": msg.get_all("Bcc"),
    "content_type": msg.get_content_type(),
    "max_line_octets": max(len(l) for l in raw.split(b"\r\n")),
    "bare_lf": b"\n" in raw.replace(b"\r\n", b""),
    "parts": [],
    "attachments": [],
}
for part in msg.walk():
    if part.is_multipart():
        out["parts"].append({"type": part.get_content_type()})
        continue
    disposition = part.get_content_disposition()
    if disposition == "attachment":
        payload = part.get_payload(decode=True)
        out["attachments"].append({"filename": part.get_filename(), "type": part.get_content_type(), "size": len(payload),
                                   "starts_pdf": payload.startswith(b"%PDF-")})
    else:
        encoded_lines = part.get_payload(decode=False).split("\r\n") if isinstance(part.get_payload(decode=False), str) else []
        out["parts"].append({"type": part.get_content_type(), "charset": part.get_content_charset(),
                             "cte": part["Content-Transfer-Encoding"], "text": part.get_content(),
                             "max_encoded_line": max((len(l) for l in encoded_lines), default=0)})
print(json.dumps(out, ensure_ascii=False))
