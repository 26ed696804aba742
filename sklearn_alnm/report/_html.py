"""The HTML page of a :class:`~sklearn_alnm.report.StudyReport` (one file, inline CSS, no JS).

Figures are referenced by relative paths to PNG files in the same folder; nothing is loaded
from the web. Every piece of user text (title, model, cohort and reader names) is escaped.
"""

import html

import pandas as pd

from .. import __version__
from ..metrics._table import _fmt, _fmt_p

# File name -> (alt text, caption) of the standard figures.
FIGURES = {
    "roc.png": (
        "ROC curves",
        "ROC curves of every model in each cohort. Legend: AUC with its DeLong confidence "
        "interval. Dots: each model's operating point at its threshold; dark markers: readers.",
    ),
    "calibration.png": (
        "Calibration curves",
        "Calibration curves: observed fraction of positive patients against mean predicted "
        "probability in groups of predicted risk, with Wilson intervals. Legend: "
        "Hosmer-Lemeshow p-value (a small p-value signals miscalibration).",
    ),
    "decision_curve.png": (
        "Decision curves",
        "Decision curves: net benefit of treating the patients whose predicted probability "
        "reaches the threshold probability, against treating all or none.",
    ),
    "confusion_matrices.png": (
        "Confusion matrices",
        "Confusion matrices at each model's threshold: counts and percentage of the actual "
        "class (row).",
    ),
    "delong_heatmap.png": (
        "DeLong p-values between every pair of models",
        "Unadjusted DeLong p-values between every pair of models in each cohort (darker: "
        "smaller); many pairs make some small p-values likely by chance.",
    ),
}

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto;
       max-width: 1200px; padding: 0 1em; color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #bbb; }
table.report { border-collapse: collapse; margin: .8em 0; font-size: .9em; }
table.report th, table.report td { border: 1px solid #ccc; padding: .3em .6em; text-align: right; }
table.report th { background: #f0f0f0; }
table.report td:first-child, table.report th:first-child { text-align: left; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: .9em; color: #444; margin-top: .3em; }
.meta { color: #666; font-size: .9em; }
""".strip()


def _e(text):
    return html.escape(str(text), quote=True)


def _table(frame):
    return frame.to_html(index=False, escape=True, border=0, classes="report", na_rep="NA")


def _cohort_summary(report, metrics):
    first_model = next(iter(report.models))
    rows = []
    for cohort in report.cohorts:
        row = metrics.loc[(first_model, cohort)]
        n, n_pos = int(row["n"]), int(row["n_positive"])
        readers = [r for r, calls in report.readers.items() if cohort in calls]
        rows.append(
            {
                "Cohort": cohort,
                "Role": "threshold selection" if cohort == report.first_cohort else "evaluation",
                "N": n,
                "Positive": n_pos,
                "Negative": n - n_pos,
                "Prevalence": _fmt(n_pos / n, 3),
                "Readers": ", ".join(readers) if readers else "-",
            }
        )
    return pd.DataFrame(rows)


def _delong_display(delong, decimals=3):
    level = delong.attrs.get("confidence", 0.95) * 100
    rows = []
    for (cohort, m1, m2), row in delong.iterrows():
        rows.append(
            {
                "Cohort": cohort,
                "Model 1": m1,
                "Model 2": m2,
                "AUC 1": _fmt(row["auc_1"], decimals),
                "AUC 2": _fmt(row["auc_2"], decimals),
                f"Difference ({level:g}% CI)": f"{_fmt(row['difference'], decimals)} "
                f"({_fmt(row['ci_low'], decimals)} to {_fmt(row['ci_high'], decimals)})",
                "z": _fmt(row["statistic"], 2),
                "p-value": _fmt_p(row["pvalue"], decimals),
            }
        )
    return pd.DataFrame(rows)


def _readers_display(readers, decimals=3):
    rows = []
    for (cohort, reader, model), row in readers.iterrows():
        rows.append(
            {
                "Cohort": cohort,
                "Reader": reader,
                "Model": model,
                "Reader Se": _fmt(row["reader_sensitivity"], decimals),
                "Reader Sp": _fmt(row["reader_specificity"], decimals),
                "Reader Acc": _fmt(row["reader_accuracy"], decimals),
                "Model Se": _fmt(row["model_sensitivity"], decimals),
                "Model Sp": _fmt(row["model_specificity"], decimals),
                "Model Acc": _fmt(row["model_accuracy"], decimals),
                "Only reader correct": int(row["reader_only_correct"]),
                "Only model correct": int(row["model_only_correct"]),
                "McNemar p": _fmt_p(row["mcnemar_pvalue"], decimals)
                + (" (exact)" if row["mcnemar_exact"] else " (chi-square)"),
            }
        )
    return pd.DataFrame(rows)


def _key_findings(report, findings, decimals=3):
    """One sentence per evaluation cohort: the primary model, and its best comparator."""
    level = f"{report.confidence * 100:g}%"
    method = {"holm": "Holm", "fdr_bh": "Benjamini-Hochberg", "bonferroni": "Bonferroni"}
    items = []
    for cohort, row in findings.iterrows():
        text = (
            f"<li><strong>{_e(cohort)}</strong> (n = {int(row['n'])}): "
            f"<strong>{_e(row['model'])}</strong> AUC {_fmt(row['auc'], decimals)} "
            f"({level} CI {_fmt(row['auc_low'], decimals)}-{_fmt(row['auc_high'], decimals)}); "
            f"sensitivity {_fmt(row['sensitivity'], decimals)}, specificity "
            f"{_fmt(row['specificity'], decimals)} at its threshold "
            f"{_fmt(row['threshold'], 3)}"
        )
        if isinstance(row["comparator"], str):
            adjusted = (
                f", {method[report.adjust]}-adjusted p {_fmt_p(row['p_adjusted'], decimals)}"
                if report.adjust is not None
                else ""
            )
            text += (
                f". Best comparator: {_e(row['comparator'])}, AUC "
                f"{_fmt(row['comparator_auc'], decimals)} "
                f"({_fmt(row['comparator_auc_low'], decimals)}-"
                f"{_fmt(row['comparator_auc_high'], decimals)}); DeLong p "
                f"{_fmt_p(row['delong_p'], decimals)}{adjusted}"
            )
        items.append(text + ".</li>")
    return '<ul class="findings">' + "".join(items) + "</ul>"


def _comparison_display(report, comparison, decimals=3):
    level = f"{report.confidence * 100:g}%"
    rows = []
    for (cohort, model), row in comparison.iterrows():
        rows.append(
            {
                "Cohort": cohort,
                "Model": model,
                f"AUC {report.primary_}": _fmt(row["auc_primary"], decimals),
                "AUC": _fmt(row["auc"], decimals),
                f"Difference ({level} CI)": f"{_fmt(row['difference'], decimals)} "
                f"({_fmt(row['ci_low'], decimals)} to {_fmt(row['ci_high'], decimals)})",
                "p-value": _fmt_p(row["pvalue"], decimals),
                "adjusted p": "-" if report.adjust is None else _fmt_p(row["p_adjusted"], decimals),
            }
        )
    return pd.DataFrame(rows)


def _figure(src, alt, caption):
    return (
        f'<figure><img src="{_e(src)}" alt="{_e(alt)}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def render_page(
    report,
    *,
    metrics,
    formatted,
    delong,
    readers,
    figures,
    findings=None,
    comparison=None,
    forest=None,
    nomograms,
    files,
    generated,
    gradcams=(),
):
    """The HTML text of the report page."""
    title = report.title or "Study report"
    level = f"{report.confidence * 100:g}%"
    youden = [name for name in report.models if report._youden[name]]
    given = [name for name in report.models if not report._youden[name]]
    threshold_items = []
    if youden:
        threshold_items.append(
            "chosen by Youden's index on the first cohort, "
            f"<em>{_e(report.first_cohort)}</em>, for "
            + ", ".join(f"{_e(n)} ({_fmt(report.thresholds_[n], 3)})" for n in youden)
        )
    if given:
        threshold_items.append(
            "given for " + ", ".join(f"{_e(n)} ({_fmt(report.thresholds_[n], 3)})" for n in given)
        )
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{_e(title)}</title>",
        f"<style>\n{_CSS}\n</style>",
        "</head>",
        "<body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">Generated by sklearn_alnm {_e(__version__)} on {_e(generated)}.</p>',
        *(
            ["<h2>Key findings</h2>", _key_findings(report, findings)]
            if findings is not None
            else []
        ),
        *(
            [
                _figure(
                    forest,
                    "Forest plot of the AUCs",
                    "AUC of every model in every cohort with its DeLong confidence interval; "
                    "the primary model is outlined.",
                )
            ]
            if forest is not None
            else []
        ),
        "<h2>Cohorts</h2>",
        f"<p>Positive class: <strong>{_e(report.label_name(report.pos_label_))}</strong>. Models: "
        f"{_e(', '.join(report.models))}.</p>",
        _table(_cohort_summary(report, metrics)),
        "<h2>Methods</h2>",
        "<ul>",
        f"<li>AUC with {_e(level)} confidence interval by DeLong's method; models compared "
        "with the paired DeLong test (two-sided).</li>",
        "<li>A patient is classified positive when the predicted probability reaches the "
        "model's threshold, the same in every cohort. Thresholds: "
        + "; ".join(threshold_items)
        + ".</li>",
        f"<li>Calibration: Hosmer-Lemeshow test with {report.n_groups} groups of predicted "
        "risk.</li>",
        *(
            [
                "<li>Readers against models: McNemar's test on the paired correct / incorrect "
                "classifications (exact binomial when fewer than 25 discordant pairs, "
                "chi-square with continuity correction otherwise).</li>"
            ]
            if report.readers
            else []
        ),
        "</ul>",
        "<h2>Performance</h2>",
        _table(formatted.reset_index().rename(columns={"model": "Model", "cohort": "Cohort"})),
        "<h2>Model comparison (DeLong test)</h2>",
    ]
    if comparison is not None and len(comparison):
        parts.append(
            f"<p>The primary model, <strong>{_e(report.primary_)}</strong>, against each other "
            "model on the same patients of each evaluation cohort.</p>"
        )
        parts.append(_table(_comparison_display(report, comparison)))
    if len(delong):
        parts.append(
            f"<details><summary>Every pair of models in every cohort ({len(delong)} tests, "
            "unadjusted; also in delong.csv)</summary>"
        )
        parts.append(_table(_delong_display(delong)))
        parts.append("</details>")
    else:
        parts.append("<p>A single model: nothing to compare.</p>")
    if readers is not None:
        parts.append("<h2>Readers against models</h2>")
        parts.append(_table(_readers_display(readers)))
    parts.append("<h2>Figures</h2>")
    for src in figures:
        parts.append(_figure(src, *FIGURES[src]))
    if nomograms:
        parts.append("<h2>Nomograms</h2>")
        for model, png, points, _ in nomograms:
            parts.append(f"<h3>{_e(model)}</h3>")
            parts.append(_figure(png, f"Nomogram of {model}", f"Nomogram of the model {model}."))
            if points is not None:
                parts.append(
                    points.to_html(
                        index=False,
                        escape=True,
                        border=0,
                        classes="report",
                        na_rep="NA",
                        float_format="{:.1f}".format,
                    )
                )
    if gradcams:
        parts.append("<h2>Grad-CAM</h2>")
        captions = {
            "video": "Key frame of each clip (the frame holding the largest share of the "
            "clip's Grad-CAM map) and its part of the map",
            "multimodal": "Each modality's image of the patient and the fused model's "
            "Grad-CAM map on it",
            "bag": "Each image of the patient's bag with the class activation map of the "
            "multi-task model's image-level head, its predicted kind and probability (p) and, "
            "after the MIL stage, its attention weight (w)",
            None: "Network input and Grad-CAM heat map",
        }
        for model, png, kind in gradcams:
            shown = captions[kind]
            parts.append(f"<h3>{_e(model)}</h3>")
            parts.append(
                _figure(
                    png,
                    f"Grad-CAM of {model}",
                    f"{shown}, for the {report.gradcam} positive patients of the last cohort "
                    f"with the highest probability under {model}.",
                )
            )
    parts.append("<h2>Files</h2>")
    parts.append("<ul>")
    for name in files:
        if name.endswith(".csv"):
            parts.append(f'<li><a href="{_e(name)}">{_e(name)}</a></li>')
    parts.append("</ul>")
    parts.extend(["</body>", "</html>", ""])
    return "\n".join(parts)
