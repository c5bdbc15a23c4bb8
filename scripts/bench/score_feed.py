#!/usr/bin/env python3
"""Writes a receivables history for the risk score benchmark: DEBTORS debtors, ITEMS invoices spread
evenly over them, issued over 2025 and 2026 on 30-day terms, each debtor with its own habit; every
invoice due before 2026-11-30 paid (on time or late, by that habit), the rest open.
Usage: score_feed.py FILE DEBTORS ITEMS"""
import datetime, json, random, sys
random.seed(11)
n_debtors = int(sys.argv[2]); n_items = int(sys.argv[3])
out = open(sys.argv[1], "w")
start = datetime.date(2025, 1, 1)
end = datetime.date(2026, 11, 30)
per = n_items // n_debtors
for d in range(n_debtors):
    debtor = f"S{d:06d}"
    out.write(json.dumps({"type": "debtor", "id": debtor, "name": f"Debtor {d}", "email": f"s{d}@example.fr", "kind": "business"}) + "\n")
    habit = random.choice([0.02, 0.05, 0.1, 0.3, 0.6, 0.9])
    for k in range(per):
        issued = start + datetime.timedelta(days=random.randint(0, (end - start).days - 1))
        due = issued + datetime.timedelta(days=30)
        number = f"G{d:06d}-{k:03d}"
        amount = f"{random.randint(20, 5000)}.00"
        out.write(json.dumps({"type": "invoice", "number": number, "debtor": debtor, "issued_on": issued.isoformat(), "due_on": due.isoformat(),
                              "amount": amount, "currency": "EUR"}) + "\n")
        paid = due + datetime.timedelta(days=random.randint(1, 60)) if random.random() < habit else issued + datetime.timedelta(days=random.randint(0, 30))
        if paid < end:
            out.write(json.dumps({"type": "payment", "id": "P" + number, "debtor": debtor, "amount": amount, "currency": "EUR",
                                  "paid_on": paid.isoformat(), "invoice": number}) + "\n")
