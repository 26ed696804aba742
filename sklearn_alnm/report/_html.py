"""The HTML page of a :class:`~sklearn_alnm.report.StudyReport`: a jinja2 template, inline
CSS, no JavaScript.

Figures are referenced by relative paths to PNG files in the same folder; nothing is loaded
from the web. The template escapes every value (autoescape); tables are rendered by pandas
with escaping and passed in as markup.
"""

import functools

import pandas as pd
from markupsafe import Markup

from .. import __version__
from ..metrics._table import _fmt, _fmt_p

# File name -> (alt text, caption) of the standard figures.
FIGURES = {
    "forest.png": (
        "Forest plot of the AUCs",
        "AUC of every model in every cohort with its DeLong confidence interval; the primary "
        "model is outlined.",
    ),
    "roc.png": (
        "ROC curves",
        "ROC curves of every model in each cohort. Legend: AUC with its DeLong confidence "
        "interval. Dots: each model's operating point at its threshold; dark markers: "
        "readers. Shaded (up to three models): pointwise bootstrap band of the sensitivity.",
    ),
    "precision_recall.png": (
        "Precision-recall curves",
        "Precision (PPV) against recall (sensitivity) over all thresholds; legend: average "
        "precision. The dashed line is the prevalence (a model without skill).",
    ),
    "calibration.png": (
        "Calibration curves",
        "Calibration: smooth observed risk against predicted risk with its confidence band; "
        "circles: observed fraction positive in groups of predicted risk. Slope 1 and "
        "intercept 0 are ideal; a slope below 1 means too extreme predictions; a small "
        "Hosmer-Lemeshow p-value signals miscalibration.",
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
h1 { border-bottom: 2px solid #444; padding-bottom: .2em; margin-bottom: .2em; }
h2 { margin-top: 2em; border-bottom: 1px solid #bbb; }
ul.findings { font-size: 1.05em; }
table.report { border-collapse: collapse; margin: .8em 0; font-size: .9em; }
table.report th, table.report td { border: 1px solid #ccc; padding: .3em .6em; text-align: right; }
table.report th { background: #f0f0f0; }
table.report td:first-child, table.report th:first-child { text-align: left; }
details { margin: .8em 0; }
summary { cursor: pointer; color: #245; }
figure { margin: 1.2em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figure.lead img { max-height: 58vh; width: auto; }
figcaption { font-size: .9em; color: #444; margin-top: .3em; }
.meta { color: #666; font-size: .9em; margin-top: 0; }
""".strip()

_ADJUST_NAMES = {"holm": "Holm", "fdr_bh": "Benjamini-Hochberg", "bonferroni": "Bonferroni"}


@functools.cache
def _environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(
        loader=PackageLoader("sklearn_alnm.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _table(frame, **kwargs):
    """A DataFrame as an escaped HTML table (markup for the template)."""
    kwargs.setdefault("index", False)
    return Markup(frame.to_html(escape=True, border=0, classes="report", na_rep="NA", **kwargs))


#: Tables longer than this many rows are collapsed (``<details>``) under a one-line summary.
_COLLAPSE_ROWS = 12


def _block(frame, summary, *, always=False, **kwargs):
    """A table, collapsed under ``summary`` when it is long (or ``always``)."""
    table = _table(frame, **kwargs)
    if not always and len(frame) <= _COLLAPSE_ROWS:
        return table
    return Markup("<details><summary>{}</summary>\n{}\n</details>").format(summary, table)


def _figure(src):
    alt, caption = FIGURES[src]
    return {"src": src, "alt": alt, "caption": caption}


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


def _interval(value, low, high, decimals=3):
    return f"{_fmt(value, decimals)} ({_fmt(low, decimals)} to {_fmt(high, decimals)})"


def _findings_items(findings, decimals=3):
    """The key findings, one dict of display strings per evaluation cohort."""
    items = []
    for cohort, row in findings.iterrows():
        item = {
            "cohort": cohort,
            "n": int(row["n"]),
            "model": row["model"],
            "auc": _fmt(row["auc"], decimals),
            "auc_ci": f"{_fmt(row['auc_low'], decimals)}-{_fmt(row['auc_high'], decimals)}",
            "sensitivity": _fmt(row["sensitivity"], decimals),
            "specificity": _fmt(row["specificity"], decimals),
            "threshold": _fmt(row["threshold"], 3),
            "comparator": row["comparator"] if isinstance(row["comparator"], str) else None,
            "comparator_auc": _fmt(row["comparator_auc"], decimals),
            "comparator_ci": f"{_fmt(row['comparator_auc_low'], decimals)}-"
            f"{_fmt(row['comparator_auc_high'], decimals)}",
            "delong_p": _fmt_p(row["delong_p"], decimals),
            "p_adjusted": None if pd.isna(row["p_adjusted"]) else _fmt_p(row["p_adjusted"], 3),
            "nri": None,
            "idi": None,
        }
        if pd.notna(row.get("nri", float("nan"))):
            item["nri"] = _interval(row["nri"], row["nri_low"], row["nri_high"], 2)
            item["idi"] = _interval(row["idi"], row["idi_low"], row["idi_high"], 3)
        items.append(item)
    return items


def _reclassification_display(reclassification, decimals=3):
    rows = []
    for (cohort, model), row in reclassification.iterrows():
        rows.append(
            {
                "Cohort": cohort,
                "Comparator": model,
                "NRI (CI)": _interval(row["nri"], row["nri_low"], row["nri_high"], decimals),
                "NRI events": _fmt(row["nri_events"], decimals),
                "NRI non-events": _fmt(row["nri_nonevents"], decimals),
                "NRI p": _fmt_p(row["nri_pvalue"], decimals),
                "IDI (CI)": _interval(row["idi"], row["idi_low"], row["idi_high"], decimals),
                "IDI p": _fmt_p(row["idi_pvalue"], decimals),
            }
        )
    return pd.DataFrame(rows)


def _agreement_display(agreement, decimals=3):
    rows = []
    for (cohort, first, second), row in agreement.iterrows():
        rows.append(
            {
                "Cohort": cohort,
                "Rater 1": first,
                "Rater 2": second,
                "Kind": row["kind"],
                "n": int(row["n"]),
                "Agreement": _fmt(row["agreement"], decimals),
                "Kappa (CI)": _interval(
                    row["kappa"], row["kappa_low"], row["kappa_high"], decimals
                ),
                "p (kappa = 0)": _fmt_p(row["pvalue"], decimals),
            }
        )
    return pd.DataFrame(rows)


def _calibration_display(calibration, decimals=3):
    rows = []
    for (model, cohort), row in calibration.iterrows():
        rows.append(
            {
                "Model": model,
                "Cohort": cohort,
                "Intercept (CI)": _interval(
                    row["intercept"], row["intercept_low"], row["intercept_high"], decimals
                ),
                "Slope (CI)": _interval(
                    row["slope"], row["slope_low"], row["slope_high"], decimals
                ),
                "Brier": _fmt(row["brier"], decimals),
                "Scaled Brier": _fmt(row["brier_scaled"], decimals),
                "HL p-value": _fmt_p(row["hl_pvalue"], decimals),
            }
        )
    return pd.DataFrame(rows)


def _segmentation_display(segmentation, decimals=3):
    rows = []
    for (segmenter, cohort), row in segmentation.iterrows():
        rows.append(
            {
                "Segmenter": segmenter,
                "Cohort": cohort,
                "Images": int(row["n"]),
                "Dice": f"{_fmt(row['dice'], decimals)} ± {_fmt(row['dice_sd'], decimals)}",
                "IoU": f"{_fmt(row['iou'], decimals)} ± {_fmt(row['iou_sd'], decimals)}",
            }
        )
    return pd.DataFrame(rows)


def _thresholds_text(report):
    youden = [name for name in report.models if report._youden[name]]
    given = [name for name in report.models if not report._youden[name]]
    parts = []
    if youden:
        parts.append(
            f"chosen by Youden's index on the first cohort, {report.first_cohort}, for "
            + ", ".join(f"{n} ({_fmt(report.thresholds_[n], 3)})" for n in youden)
        )
    if given:
        parts.append(
            "given for " + ", ".join(f"{n} ({_fmt(report.thresholds_[n], 3)})" for n in given)
        )
    return "; ".join(parts)


_GRADCAM_CAPTIONS = {
    "video": "Key frame of each clip (the frame holding the largest share of the clip's "
    "Grad-CAM map) and its part of the map",
    "multimodal": "Each modality's image of the patient and the fused model's Grad-CAM map on it",
    "bag": "Each image of the patient's bag with the class activation map of the multi-task "
    "model's image-level head, its predicted kind and probability (p) and, after the MIL "
    "stage, its attention weight (w)",
    None: "Network input and Grad-CAM heat map",
}


def render_page(
    report,
    *,
    metrics,
    formatted,
    delong,
    readers,
    figures,
    nomograms,
    files,
    generated,
    findings=None,
    comparison=None,
    reclassification=None,
    agreement=None,
    calibration=None,
    segmentation=None,
    baseline=None,
    odds_ratios=None,
    forest=None,
    gradcams=(),
):
    """The HTML text of the report page."""
    level = f"{report.confidence * 100:g}%"
    has_comparison = comparison is not None and len(comparison)
    has_reclassification = reclassification is not None and len(reclassification)
    context = {
        "title": report.title or "Study report",
        "css": Markup(_CSS),
        "version": __version__,
        "generated": generated,
        "positive": report.label_name(report.pos_label_),
        "level": level,
        "adjust_name": _ADJUST_NAMES.get(report.adjust),
        "findings": _findings_items(findings) if findings is not None else [],
        "forest": _figure(forest) if forest is not None else None,
        "models": list(report.models),
        "cohorts_table": _table(_cohort_summary(report, metrics)),
        "thresholds": _thresholds_text(report),
        "n_groups": report.n_groups,
        "has_readers": bool(report.readers),
        "performance": _block(
            formatted.reset_index().rename(columns={"model": "Model", "cohort": "Cohort"}),
            f"Every model in every cohort ({len(formatted)} rows; also in metrics.csv)",
        ),
        "primary": report.primary_,
        "comparison": _block(
            _comparison_display(report, comparison),
            f"{report.primary_} against each other model ({len(comparison)} comparisons; "
            "also in comparison.csv)",
        )
        if has_comparison
        else None,
        "reclassification": _block(
            _reclassification_display(reclassification),
            f"NRI and IDI of {report.primary_} over each other model ({len(reclassification)} "
            "rows; also in reclassification.csv)",
        )
        if has_reclassification
        else None,
        "delong": _block(
            _delong_display(delong),
            f"Every pair of models in every cohort ({len(delong)} tests, unadjusted; also in "
            "delong.csv)",
            always=True,
        )
        if len(delong)
        else None,
        "readers": _block(
            _readers_display(readers),
            f"Each reader against each model ({len(readers)} rows; also in readers.csv)",
        )
        if readers is not None
        else None,
        "agreement": _block(
            _agreement_display(agreement),
            f"Cohen's kappa of every pair ({len(agreement)} rows; also in agreement.csv)",
        )
        if agreement is not None
        else None,
        "figures": [_figure(src) for src in figures],
        "calibration": _block(
            _calibration_display(calibration),
            "Calibration of every model in every cohort (also in calibration.csv)",
            always=True,
        )
        if calibration is not None
        else None,
        "segmentation": _table(_segmentation_display(segmentation))
        if segmentation is not None and len(segmentation)
        else None,
        "baseline": _block(
            baseline,
            "Characteristics by outcome in each cohort (Table 1; also in baseline.csv)",
            always=True,
            index=True,
        )
        if baseline is not None
        else None,
        "odds_ratios": _block(
            odds_ratios,
            "Odds ratios with 95% CI (also in odds_ratios.csv)",
            always=True,
            index=True,
        )
        if odds_ratios is not None
        else None,
        "first_cohort": report.first_cohort,
        "nomograms": [
            {
                "model": model,
                "figure": {
                    "src": png,
                    "alt": f"Nomogram of {model}",
                    "caption": f"Nomogram of the model {model}.",
                },
                "points": Markup(
                    points.to_html(
                        index=False,
                        escape=True,
                        border=0,
                        classes="report",
                        na_rep="NA",
                        float_format="{:.1f}".format,
                    )
                )
                if points is not None
                else None,
            }
            for model, png, points, _ in nomograms
        ],
        "gradcams": [
            {
                "model": model,
                "figure": {
                    "src": png,
                    "alt": f"Grad-CAM of {model}",
                    "caption": f"{_GRADCAM_CAPTIONS[kind]}, for cases of the last cohort "
                    "chosen among the true positives, false positives and false negatives "
                    f"of {model} at its threshold; each titled with the patient, the true "
                    "label, the call and the predicted probability.",
                },
            }
            for model, png, kind in gradcams
        ],
        "files": [name for name in files if name.endswith(".csv")],
    }
    return _environment().get_template("report.html.j2").render(**context)
