#!/usr/bin/env python3
"""Peer "Python sender" for `make bench`: what a team would write instead of Relance.

K worker processes, each with one reused smtplib connection, render each reminder (French text and
HTML from string.Template), build a multipart/alternative message with the stdlib email.mime
classes (UTF-8 quoted-printable parts, RFC 2047 subject and names, Date, Message-ID) and send it,
then the next one. Exit status 0 only when every message was accepted.

  smtp_sender.py --host 127.0.0.1 --port 2525 --n 20000 --k 4
"""
import argparse
import multiprocessing
import smtplib
import string
import sys
from email import charset
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, make_msgid

SUBJECT = string.Template("Rappel : facture $number échue – $amount restant dû")
TEXT = string.Template(
    "Bonjour $name,\n\nSauf erreur de notre part, la facture $number arrivée à échéance le $due reste impayée.\n"
    "Le montant restant dû s'élève à $amount.\n\nMerci de procéder à son règlement par virement :\n"
    "IBAN FR76 3000 6000 0112 3456 7890 189, en rappelant le numéro de facture.\n\n"
    "Si votre règlement a été effectué entre-temps, ne tenez pas compte de ce message.\n\n"
    "Cordialement,\nService relances clients — Exemple SAS\n12 rue des Lilas, 75011 Paris\n")
HTML = string.Template(
    "<!DOCTYPE html><html lang=\"fr\"><body><p>Bonjour $name,</p><p>Sauf erreur de notre part, la facture "
    "<strong>$number</strong> arrivée à échéance le $due reste impayée.</p><p>Montant restant dû : "
    "<strong>$amount</strong>.</p><p>Merci de procéder à son règlement par virement : IBAN FR76 3000 6000 0112 "
    "3456 7890 189.</p><p>Si votre règlement a été effectué entre-temps, ne tenez pas compte de ce message.</p>"
    "<p>Cordialement,<br>Service relances clients — Exemple SAS<br>12 rue des Lilas, 75011 Paris</p></body></html>\n")

charset.add_charset("utf-8", charset.QP, charset.QP, "utf-8")


def message(i):
    values = {"name": "Débiteur %d" % i, "number": "F-%06d" % i, "due": "1 octobre 2026",
              "amount": "%d,%02d €" % (100 + i % 9000, i % 100)}
    msg = MIMEMultipart("alternative")
    msg["Subject"] = Header(SUBJECT.substitute(values), "utf-8")
    msg["From"] = formataddr((str(Header("Exemple SAS – Relances", "utf-8")), "relances@example.fr"))
    msg["To"] = formataddr((str(Header(values["name"], "utf-8")), "d%d@example.org" % i))
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain="example.fr")
    msg.attach(MIMEText(TEXT.substitute(values), "plain", "utf-8"))
    msg.attach(MIMEText(HTML.substitute(values), "html", "utf-8"))
    return msg


def worker(args):
    host, port, indices = args
    with smtplib.SMTP(host, port) as smtp:
        for i in indices:
            msg = message(i)
            refused = smtp.send_message(msg, from_addr="relances@example.fr", to_addrs=["d%d@example.org" % i])
            if refused:
                return False
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=2525)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--k", type=int, default=4)
    a = ap.parse_args()
    shares = [(a.host, a.port, range(w, a.n, a.k)) for w in range(a.k)]
    with multiprocessing.Pool(a.k) as pool:
        ok = all(pool.map(worker, shares))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
