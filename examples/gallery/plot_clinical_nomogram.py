"""
Clinical model: stepwise logistic regression, odds ratios and a nomogram
========================================================================

The clinical signature of the ALNM papers: a logistic regression on the clinical factors,
terms chosen by AIC in both directions (as R's ``step``), reported as odds ratios with 95 %
Wald intervals and drawn as a nomogram. The labels are strings, as a clinic exports them; the
event is named with ``pos_label``.
"""

import numpy as np
from sklearn.model_selection import train_test_split

from sklearn_alnm.clinical import Nomogram, StepwiseLogisticRegression
from sklearn_alnm.datasets import make_alnm_cohort
from sklearn_alnm.metrics import roc_auc_ci

X, y = make_alnm_cohort(300, modalities=("clinical",), random_state=0)
X = X[["age", "tumor_size_mm", "ki67"]]
labels = np.where(y == 1, "N+", "N0")
X_train, X_test, y_train, y_test = train_test_split(
    X, labels, test_size=0.3, stratify=labels, random_state=0
)

# %%
# Terms chosen by AIC, odds ratios of N+ (not of N0: the event is named, never guessed)
stepwise = StepwiseLogisticRegression(pos_label="N+").fit(X_train, y_train)
print(stepwise.summary_[["odds_ratio", "ci_low", "ci_high", "p_value"]].round(3))

column = list(stepwise.classes_).index("N+")
auc, low, high = roc_auc_ci(y_test, stepwise.predict_proba(X_test)[:, column], pos_label="N+")
print(f"test AUC {auc:.3f} (95% DeLong CI {low:.3f}-{high:.3f})")

# %%
# The nomogram: points per factor, total points, predicted risk of N+
nomogram = Nomogram(StepwiseLogisticRegression(pos_label="N+"), pos_label="N+")
nomogram.fit(X_train, y_train)
fig = nomogram.plot()
