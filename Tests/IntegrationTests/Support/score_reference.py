#!/usr/bin/env python3
"""The reference fits of the risk score's two models, for ScoreReferenceTests.

Reads a JSON object on standard input: {"rows": [[...]], "labels": [0|1], "lambdas": [...],
"durations": [...], "events": [0|1]}. Writes {"logit": {"<lambda>": [b0, b1, ...]}, "km":
{"times": [...], "survival": [...]}}:
- lambda 0: statsmodels' Logit, Newton's method (the maximum-likelihood fit);
- lambda > 0: scikit-learn's LogisticRegression with C = 1/lambda (the intercept not penalised),
  the objective Relance minimises: -loglik + lambda/2 * |beta|^2;
- lifelines' KaplanMeierFitter, at its event times.
"""
import json
import sys
import warnings

import numpy as np

warnings.filterwarnings("ignore")
import os
os.environ.setdefault("PYTHONWARNINGS", "ignore")
data = json.load(sys.stdin)
X = np.array(data["rows"], dtype=float)
y = np.array(data["labels"], dtype=float)
out = {"logit": {}}
for lam in data["lambdas"]:
    if lam == 0:
        import statsmodels.api as sm
        fit = sm.Logit(y, sm.add_constant(X, has_constant="add")).fit(method="newton", maxiter=200, tol=1e-14, disp=0)
        out["logit"][str(lam)] = [float(b) for b in fit.params]
    else:
        from sklearn.linear_model import LogisticRegression
        model = LogisticRegression(C=1.0 / lam, tol=1e-12, max_iter=100000, solver="lbfgs")
        model.fit(X, y)
        out["logit"][str(lam)] = [float(model.intercept_[0])] + [float(b) for b in model.coef_[0]]
from lifelines import KaplanMeierFitter
km = KaplanMeierFitter().fit(np.array(data["durations"], dtype=float), event_observed=np.array(data["events"], dtype=int))
sf = km.survival_function_
observed = km.event_table[km.event_table["observed"] > 0].index
out["km"] = {"times": [float(t) for t in observed], "survival": [float(sf.loc[t].iloc[0]) for t in observed]}
json.dump(out, sys.stdout)
