#!/usr/bin/env python3
"""Writes a receivables feed for the plan benchmark: DEBTORS debtors, ITEMS invoices spread evenly
over them (issued in 2026, due by the default terms), a payment on every third debtor.
Usage: receivables_feed.py FILE DEBTORS ITEMS"""
import json, random, sys
random.seed(7)
n_debtors = int(sys.argv[2]); n_items = int(sys.argv[3])
out = open(sys.argv[1], "w")
for d in range(n_debtors):
    out.write(json.dumps({"type": "debtor", "id": f"D{d:06d}", "name": f"Debtor {d}", "email": f"d{d}@example.fr", "kind": "business"}) + "\n")
per = n_items // n_debtors
for d in range(n_debtors):
    for k in range(per):
        day = random.randint(1, 300)
        issued = f"2026-{1 + day // 31 % 12:02d}-{1 + day % 28:02d}"
        out.write(json.dumps({"type": "invoice", "number": f"F{d:06d}-{k:02d}", "debtor": f"D{d:06d}", "issued_on": issued, "amount": f"{random.randint(20, 5000)}.00", "currency": "EUR"}) + "\n")
    if d % 3 == 0:
        out.write(json.dumps({"type": "payment", "id": f"P{d:06d}", "debtor": f"D{d:06d}", "amount": "500.00", "currency": "EUR", "paid_on": "2026-10-01"}) + "\n")
