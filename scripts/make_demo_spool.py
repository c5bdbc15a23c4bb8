#!/usr/bin/env python3
"""Writes the demo spool: sample reminders with dates relative to today, a PDF to attach, and one
invalid file. Usage: make_demo_spool.py STATE_DIR"""
import datetime as dt
import json
import os
import sys

state = sys.argv[1]
today = dt.date.today()
tz = dt.timezone(dt.timedelta(hours=1))
now = dt.datetime.now(tz).replace(microsecond=0)


def day(offset):
    return (today + dt.timedelta(days=offset)).isoformat()


def reminder(rid, stage, debtor, invoices, **extra):
    record = {
        "id": rid,
        "stage": stage,
        "channels": extra.pop("channels", ["email"]),
        "not_before": (now - dt.timedelta(minutes=5)).isoformat(),
        "expires_at": (now + dt.timedelta(days=10)).isoformat(),
        "debtor": debtor,
        "invoices": invoices,
    }
    record.update(extra)
    return record


def inv(number, amount, issued, due, currency="EUR"):
    return {"number": number, "amount": amount, "currency": currency, "issued_on": day(issued), "due_on": day(due)}


elodie = {"id": "C-1017", "name": "Élodie Martin", "email": "elodie.martin@example.fr", "phone": "06 12 34 56 78",
          "country": "FR", "locale": "fr-FR", "timezone": "Europe/Paris", "kind": "consumer"}
garage = {"id": "C-2040", "name": "Garage Dupont & Fils SARL", "email": "compta@garage-dupont.example.fr",
          "phone": "+33 1 45 67 89 10", "country": "FR", "locale": "fr-FR", "timezone": "Europe/Paris", "kind": "business"}
francois = {"id": "C-1022", "name": "François Lefèvre", "email": "f.lefevre@example.fr", "phone": "07 98 76 54 32",
            "locale": "fr-FR", "timezone": "Europe/Paris", "kind": "consumer"}
boulangerie = {"id": "C-2051", "name": "Boulangerie Aux Délices", "email": "contact@auxdelices.example.fr",
               "country": "FR", "locale": "fr-FR", "timezone": "Europe/Paris", "kind": "business"}
james = {"id": "C-3001", "name": "James O'Connor", "email": "james.oconnor@example.co.uk", "phone": "07700 900123",
         "country": "GB", "locale": "en-GB", "timezone": "Europe/London", "kind": "consumer"}
acme = {"id": "C-3010", "name": "Acme Widgets Ltd", "email": "accounts@acme-widgets.example.com",
        "country": "GB", "locale": "en-GB", "timezone": "Europe/London", "kind": "business"}
lucie = {"id": "C-1030", "name": "Lucie Bernard", "email": "lucie.bernard@example.fr", "phone": "0611223344",
         "country": "FR", "locale": "fr-FR", "timezone": "Europe/Paris", "kind": "consumer"}

reminders = [
    reminder("F2026-0101-P", "pre_due", elodie, [inv("F2026-0101", "89.90", -20, 5)], payment_url="https://pay.example.fr/F2026-0101"),
    reminder("F2026-0102-P", "pre_due", garage, [inv("F2026-0102", "2450.00", -25, 3)]),
    reminder("F2026-0042-R1", "reminder_1", francois, [inv("F2026-0042", "1234.50", -45, -15)],
             payment_url="https://pay.example.fr/F2026-0042", channels=["email", "sms"]),
    reminder("F2026-0077-R1", "reminder_1", boulangerie, [inv("F2026-0077", "312.40", -40, -10), inv("F2026-0081", "98.00", -35, -5)]),
    reminder("F2026-0055-R2", "reminder_2", lucie, [inv("F2026-0055", "450.00", -70, -40)],
             payment_url="https://pay.example.fr/F2026-0055", attachments=[os.path.join(state, "attachments", "F2026-0055.pdf")]),
    reminder("F2026-0060-R2", "reminder_2", garage, [inv("F2026-0060", "5120.75", -75, -45)], vars={"account_manager": "Paul Durand"}),
    reminder("F2026-0012-FN", "final_notice", elodie, [inv("F2026-0012", "1234.50", -100, -70)],
             payment_url="https://pay.example.fr/F2026-0012"),
    reminder("F2026-0015-FN", "final_notice", boulangerie, [inv("F2026-0015", "780.00", -110, -80), inv("F2026-0019", "1500.00", -100, -70)]),
    reminder("INV-2026-501-P", "pre_due", james, [inv("INV-2026-501", "120.00", -20, 4, "GBP")], channels=["email", "sms"]),
    reminder("INV-2026-470-R1", "reminder_1", acme, [inv("INV-2026-470", "3400.00", -50, -20, "GBP")]),
    reminder("INV-2026-455-R2", "reminder_2", james, [inv("INV-2026-455", "65.50", -80, -50, "GBP")]),
    reminder("INV-2026-430-FN", "final_notice", acme, [inv("INV-2026-430", "12800.00", -120, -90, "EUR")],
             payment_url="https://pay.example.com/INV-2026-430"),
]

spool = os.path.join(state, "spool")
for sub in ["tmp", "incoming", "incoming/urgent", "active", "done", "failed", "cancel"]:
    os.makedirs(os.path.join(spool, sub), exist_ok=True)
os.makedirs(os.path.join(state, "attachments"), exist_ok=True)

# A small but valid one-page PDF.
pdf_body = b"""%PDF-1.4
1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj
2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj
3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >> endobj
4 0 obj << /Length 58 >> stream
BT /F1 18 Tf 72 770 Td (Facture F2026-0055 - 450,00 EUR) Tj ET
endstream endobj
5 0 obj << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> endobj
trailer << /Root 1 0 R >>
%%EOF
"""
with open(os.path.join(state, "attachments", "F2026-0055.pdf"), "wb") as f:
    f.write(pdf_body)


def drop(name, lines, queue=""):
    tmp = os.path.join(spool, "tmp", name)
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(lines)
    os.rename(tmp, os.path.join(spool, "incoming", queue, name))


drop("batch-" + today.isoformat() + ".jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in reminders[:11]))
drop("urgent-" + today.isoformat() + ".json", json.dumps(reminders[11], ensure_ascii=False, indent=2), queue="urgent")

# The invalid file: a name with CRLF and a Bcc header (header injection attempt), a bad currency, a bad phone.
bad = [
    reminder("BAD-1", "reminder_1", dict(elodie, id="C-9001", name="Mallory\r\nBcc: everyone@example.org"), [inv("F-BAD-1", "10.00", -40, -10)]),
    reminder("BAD-2", "reminder_1", dict(lucie, id="C-9002"), [inv("F-BAD-2", "10.00", -40, -10, "EUROS")]),
    reminder("BAD-3", "reminder_1", dict(lucie, id="C-9003", phone="12345"), [inv("F-BAD-3", "10.00", -40, -10)], channels=["sms"]),
]
drop("broken-" + today.isoformat() + ".jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in bad))
print(f"demo spool written under {spool}: {len(reminders)} reminders in 2 files, 1 invalid file")

# The receivables feed (docs/receivables.md): debtors, invoices (one with instalments), payments,
# a credit note, a dispute, a promise, and one bad line, dated relative to today.
def rec(**fields):
    return json.dumps(fields, ensure_ascii=False) + "\n"

receivables = "".join([
    rec(type="debtor", id="R-100", name="Boulangerie Martin SARL", email="compta@boulangerie-martin.example.fr", phone="06 12 34 56 78", kind="business", payment_terms="30d"),
    rec(type="debtor", id="R-200", name="Élodie Martin", email="elodie.martin@example.fr", kind="consumer"),
    rec(type="debtor", id="R-300", name="Garage Dupont", phone="01 44 55 66 77", kind="business", payment_terms="45d-eom"),
    # The customers of the sample FEC (Tests/Fixtures/sample-fec.txt), whose export names no contact details.
    rec(type="debtor", id="CLI001", name="Boulangerie Martin (FEC)", email="factures@boulangerie-martin.example.fr", kind="business", payment_terms="30d"),
    rec(type="debtor", id="CLI002", name="Garage Dupont (FEC)", email="compta@garage-dupont.example.fr", phone="06 98 76 54 32", kind="business", payment_terms="45d-eom"),
    rec(type="invoice", number="FA-2001", debtor="R-100", issued_on=day(-50), amount="1840.00", currency="EUR"),
    rec(type="invoice", number="FA-2002", debtor="R-100", issued_on=day(-40), due_on=day(-10), amount="600.00", currency="EUR",
        instalments=[{"due_on": day(-10), "amount": "200.00"}, {"due_on": day(20), "amount": "200.00"}, {"due_on": day(50), "amount": "200.00"}]),
    rec(type="payment", id="VIR-881", debtor="R-100", amount="200.00", currency="EUR", paid_on=day(-8), invoice="FA-2002"),
    rec(type="invoice", number="FA-2010", debtor="R-200", issued_on=day(-30), due_on=day(2), amount="89.90", currency="EUR"),
    rec(type="invoice", number="FA-2011", debtor="R-200", issued_on=day(-60), due_on=day(-30), amount="12.00", currency="EUR"),
    rec(type="invoice", number="FA-2020", debtor="R-300", issued_on=day(-120), amount="3120.00", currency="EUR"),
    rec(type="credit_note", id="AV-77", invoice="FA-2020", amount="120.00", issued_on=day(-70)),
    rec(type="invoice", number="FA-2021", debtor="R-300", issued_on=day(-90), amount="450.00", currency="EUR"),
    rec(type="dispute", invoice="FA-2021", opened_on=day(-20), reason="pièce non livrée"),
    rec(type="invoice", number="FA-2030", debtor="R-400", issued_on=day(-45), amount="75.00", currency="EUR"),
    rec(type="promise", debtor="R-400", until=day(5), on=day(-2)),
    rec(type="payment", id="VIR-882", debtor="R-100", amount="-50", currency="EUR", paid_on=day(-1)),
])
with open(os.path.join(state, "receivables.jsonl"), "w") as f:
    f.write(receivables)
print(f"receivables feed written to {os.path.join(state, 'receivables.jsonl')}")
