#!/usr/bin/env python3
"""Peer "Python requests sender" for `make bench`: N Twilio-shaped POSTs (personalised To and
Body, basic auth), one requests.Session per thread (keep-alive), each answer checked (201 and a
JSON sid). Exit status 0 only when every request succeeded.

  sms_sender.py --url http://127.0.0.1:8080/2010-04-01/Accounts/AC123/Messages.json --n 20000 --threads 1
"""
import argparse
import concurrent.futures
import sys

import requests


def body(i):
    return {"To": "+336%08d" % (12340000 + i), "From": "+33700000000",
            "Body": "Exemple SAS : votre facture F-%06d de %d,%02d EUR est échue depuis le 1er octobre. "
                    "Merci de régler sous 8 jours : https://pay.example.fr/F-%06d" % (i, 100 + i % 9000, i % 100, i)}


def worker(url, user, token, indices):
    session = requests.Session()
    session.auth = (user, token)
    for i in indices:
        r = session.post(url, data=body(i), timeout=30)
        if r.status_code != 201 or not r.json().get("sid"):
            return False
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--user", default="AC123")
    ap.add_argument("--token", default="bench-token")
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    with concurrent.futures.ThreadPoolExecutor(a.threads) as pool:
        futures = [pool.submit(worker, a.url, a.user, a.token, range(t, a.n, a.threads)) for t in range(a.threads)]
        ok = all(f.result() for f in futures)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
