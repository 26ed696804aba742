"""Figures of a :class:`~sklearn_alnm.report.StudyReport`.

Drawn with matplotlib's object-oriented API on :class:`matplotlib.figure.Figure` objects (Agg
canvas), never through pyplot, so building a report changes no global state and leaks no
figure; a returned Figure still displays in a notebook and saves with ``fig.savefig``. Every
statistic comes from :mod:`sklearn_alnm.metrics`; only curve coordinates are computed here.
"""

import inspect
import math
import textwrap

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import LinearSegmentedColormap, to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_curve

from ..metrics import (
    binary_metrics,
    calibration_metrics,
    calibration_table,
    decision_curve,
    roc_curve_ci,
    smooth_calibration_curve,
)
from ..metrics._table import _fmt, _fmt_p

# Readers: dark markers of distinct shapes, distinguishable from the coloured model curves.
_READER_MARKERS = ("s", "^", "D", "v", "P", "X", "*", "p", "h", "<", ">", "8")
_READER_COLOR = "0.15"
_CHANCE_COLOR = "0.55"
_MAX_COLUMNS = 3


def model_colors(names):
    """A colour per model (tab10, or tab20 beyond ten models), in the models' order."""
    cmap = colormaps["tab10"] if len(names) <= 10 else colormaps["tab20"]
    return {name: to_rgba(cmap(i % cmap.N)) for i, name in enumerate(names)}


def release(fig):
    """Drop ``fig`` from pyplot's registry if something put it there (e.g. a nomogram)."""
    if getattr(fig.canvas, "manager", None) is not None:
        import matplotlib.pyplot as plt

        plt.close(fig)


def _panels(n, width, height):
    """A figure with ``n`` panels, at most three per row; unused grid cells are removed."""
    ncols = min(n, _MAX_COLUMNS)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        fig.delaxes(ax)
    return fig, list(axes[:n])


def _cohort_subtitle(report, cohort):
    is_pos = report._is_positive[cohort]
    # counts on a second line, so long cohort names stay inside the panel
    return f"{cohort}\n(n={is_pos.shape[0]}, {int(is_pos.sum())} positive)"


# Beyond this many models, or with longer entries, a legend goes below its axes instead of
# over the curves (a legend wider than its axes pushes titles and labels off the figure).
_INSIDE_LEGEND_MODELS = 3
_INSIDE_LEGEND_CHARS = 44


def _identical_to(report, cohort):
    """``{model: earlier model}`` for models whose probabilities in ``cohort`` equal an
    earlier model's: their curves coincide, so they are dashed and named in the legend."""
    same, names = {}, list(report.models)
    for j, name in enumerate(names):
        prob = report.probabilities_[name][cohort]
        for other in names[:j]:
            if other not in same and np.array_equal(prob, report.probabilities_[other][cohort]):
                same[name] = other
                break
    return same


def _curve_style(report, name, same):
    """Colour, line style and legend suffix of a model's curve."""
    if name in same:
        return report.colors_[name], (0, (4, 3)), f" (same as {same[name]})"
    return report.colors_[name], "-", ""


def _place_legend(ax, handles, labels, n_models, inside_loc, **kwargs):
    """Legend over the axes for a few models, below them (outside the data) for more."""
    longest = max((len(str(label)) for label in labels), default=0)
    if n_models <= _INSIDE_LEGEND_MODELS and longest <= _INSIDE_LEGEND_CHARS:
        return ax.legend(handles, labels, loc=inside_loc, fontsize="small", **kwargs)
    return ax.legend(
        handles,
        labels,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.15),
        fontsize="small",
        ncols=1,
        frameon=False,
        **kwargs,
    )


#: Height (inches) of one legend entry of "small" font, for a legend below its axes, and the
#: gap between the axes and such a legend (the tick labels and the axis label).
_LEGEND_LINE = 0.2
_LEGEND_GAP = 0.8


def _legend_height(report, n_entries, longest):
    """Extra panel height for a legend of ``n_entries`` whose longest label has ``longest``
    characters, when :func:`_place_legend` puts it below the axes (0 when it stays inside):
    the figure grows instead of the axes shrinking."""
    if len(report.models) <= _INSIDE_LEGEND_MODELS and longest <= _INSIDE_LEGEND_CHARS:
        return 0.0
    return _LEGEND_GAP + _LEGEND_LINE * n_entries


def _longest(names, extra):
    return max((len(str(name)) + extra for name in names), default=0)


def _reader_marker(report, reader):
    return _READER_MARKERS[list(report.readers).index(reader) % len(_READER_MARKERS)]


def _draw_readers(ax, report, cohort, point, describe):
    """Each reader who read ``cohort`` as a dark marker at ``point(metrics)`` of their calls'
    :func:`~sklearn_alnm.metrics.binary_metrics`, labelled ``"reader (describe(metrics))"``."""
    is_pos = report._is_positive[cohort]
    for reader, calls_by_cohort in report.readers.items():
        if cohort not in calls_by_cohort:
            continue
        read = binary_metrics(is_pos, calls_by_cohort[cohort], 0.5, pos_label=True)
        x, y = point(read)
        ax.plot(
            x,
            y,
            linestyle="none",
            marker=_reader_marker(report, reader),
            color=_READER_COLOR,
            mec="white",
            mew=0.8,
            ms=10,
            zorder=5,
            label=f"{reader} ({describe(read)})",
        )


def roc_figure(report, cohorts, bands=False, n_bootstraps=1000, random_state=0):
    """ROC curves of every model per cohort, readers' operating points, chance line; with
    ``bands`` each curve's pointwise bootstrap band (:func:`~sklearn_alnm.metrics.roc_curve_ci`)."""
    table = report.metrics_table()
    level = f"{report.confidence * 100:g}% CI"
    entries = len(report.models) + len(report.readers) + 3  # + chance, operating point, title
    # "name AUC 0.85 (0.80-0.90) (same as other)", "reader (Se 0.84, Sp 0.76)"
    longest = max(_longest(report.models, 48), _longest(report.readers, 21), 22)
    fig, axes = _panels(len(cohorts), 5.2, 5.2 + _legend_height(report, entries, longest))
    for ax, cohort in zip(axes, cohorts):
        is_pos = report._is_positive[cohort]
        same = _identical_to(report, cohort)
        for name in report.models:
            prob = report.probabilities_[name][cohort]
            fpr, tpr, _ = roc_curve(is_pos, prob, pos_label=True)
            row = table.loc[(name, cohort)]
            color, style, suffix = _curve_style(report, name, same)
            if bands and name not in same:
                band = roc_curve_ci(
                    is_pos,
                    prob,
                    confidence=report.confidence,
                    n_bootstraps=n_bootstraps,
                    random_state=random_state,
                    pos_label=True,
                )
                ax.fill_between(
                    1.0 - band["specificity"],
                    band["low"],
                    band["high"],
                    color=color,
                    alpha=0.15,
                    lw=0,
                    label="_nolegend_",
                )
            ax.plot(
                fpr,
                tpr,
                color=color,
                ls=style,
                lw=2,
                label=f"{name} AUC {_fmt(row['auc'], 2)} "
                f"({_fmt(row['auc_low'], 2)}-{_fmt(row['auc_high'], 2)}){suffix}",
            )
            # The model's operating point at its fixed threshold.
            ax.plot(
                1.0 - row["specificity"],
                row["sensitivity"],
                "o",
                color=color,
                mec="white",
                mew=1.2,
                ms=8,
                zorder=4,
                label="_nolegend_",
            )
        _draw_readers(
            ax,
            report,
            cohort,
            lambda read: (1.0 - read["specificity"], read["sensitivity"]),
            lambda read: f"Se {_fmt(read['sensitivity'], 2)}, Sp {_fmt(read['specificity'], 2)}",
        )
        ax.plot([0, 1], [0, 1], ls="--", lw=1, color=_CHANCE_COLOR, label="Chance")
        handles, labels = ax.get_legend_handles_labels()
        handles.append(Line2D([], [], ls="none", marker="o", color="0.5", mec="white", ms=8))
        labels.append("Model at its threshold")
        _place_legend(
            ax,
            handles,
            labels,
            len(report.models),
            "lower right",
            title=f"AUC ({level})",
            title_fontsize="small",
        )
        ax.set(
            xlim=(-0.01, 1.01),
            ylim=(-0.01, 1.01),
            xlabel="1 - Specificity (false positive rate)",
            ylabel="Sensitivity (true positive rate)",
            title=f"ROC - {_cohort_subtitle(report, cohort)}",
        )
        ax.set_box_aspect(1)  # square panels that constrained layout can still fit
        ax.set_anchor("N")  # spare height goes below, to the legend
        ax.grid(True, alpha=0.3)
    return fig


#: Beyond this many models the calibration figure has one small panel per model and cohort.
_CALIBRATION_OVERLAY_MODELS = 3


def _calibration_text(stats, hl_p):
    """``slope 0.92 (0.71-1.13), intercept -0.05, Brier 0.180, HL p 0.41``, on two lines."""
    hl_text = _fmt_p(hl_p, 3)
    if not np.isfinite(stats["slope"]):
        return (
            "classes separated: no slope, intercept\n"
            f"Brier {_fmt(stats['brier'], 3)}, HL p {hl_text}"
        )
    return (
        f"slope {_fmt(stats['slope'], 2)} ({_fmt(stats['slope_low'], 2)} to "
        f"{_fmt(stats['slope_high'], 2)}), intercept {_fmt(stats['intercept'], 2)}\n"
        f"Brier {_fmt(stats['brier'], 3)}, HL p {hl_text}"
    )


def _draw_calibration(ax, report, name, cohort, n_bins, strategy, style="-"):
    """One model's smooth calibration curve, its band and its binned points on ``ax``."""
    y = report._labels(cohort)
    prob = report.probabilities_[name][cohort]
    color = report.colors_[name]
    curve = smooth_calibration_curve(
        y, prob, confidence=report.confidence, pos_label=report.pos_label_
    )
    ax.fill_between(curve["predicted"], curve["low"], curve["high"], color=color, alpha=0.15, lw=0)
    ax.plot(curve["predicted"], curve["observed"], color=color, ls=style, lw=2)
    bins = calibration_table(y, prob, n_bins, strategy=strategy, pos_label=report.pos_label_)
    bins = bins[bins["n"] > 0]
    ax.plot(bins["mean_predicted"], bins["observed"], "o", color=color, mfc="none", ms=4.5, mew=1.1)
    return calibration_metrics(y, prob, confidence=report.confidence, pos_label=report.pos_label_)


def _calibration_axes(ax, title):
    ax.plot([0, 1], [0, 1], ls="--", lw=1, color=_CHANCE_COLOR)
    ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), title=title)
    ax.set_box_aspect(1)
    ax.set_anchor("N")  # spare height goes below, to the legend
    ax.grid(True, alpha=0.3)


def calibration_figure(report, cohorts, n_bins, strategy, layout="auto"):
    """Smooth calibration curves with confidence bands and binned points.

    ``layout="overlay"``: one panel per cohort with every model; ``"grid"``: one small panel
    per model and cohort (each model's cohorts side by side), the model's slope, intercept,
    Brier score and Hosmer-Lemeshow p-value written in the panel; ``"auto"``: overlay for up
    to three models.
    """
    if layout == "auto":
        layout = "overlay" if len(report.models) <= _CALIBRATION_OVERLAY_MODELS else "grid"
    table = report.metrics_table()
    if layout == "grid":
        fig, grid = _model_cohort_grid(report, cohorts, 3.1, 3.7)
        for (name, cohort), ax in grid.items():
            stats = _draw_calibration(ax, report, name, cohort, n_bins, strategy)
            _calibration_axes(ax, "\n".join([textwrap.fill(name, 30), textwrap.fill(cohort, 30)]))
            ax.title.set_fontsize("medium")
            ax.text(
                0.03,
                0.97,
                _calibration_text(stats, table.loc[(name, cohort), "hl_pvalue"]).replace(
                    ", intercept", "\nintercept"
                ),
                transform=ax.transAxes,
                ha="left",
                va="top",
                fontsize=7,
                bbox={"boxstyle": "round", "fc": "white", "ec": "0.8", "alpha": 0.85},
            )
        fig.supxlabel("Mean predicted probability")
        fig.supylabel("Observed fraction positive")
        return fig
    fig, axes = _panels(
        len(cohorts), 5.2, 5.2 + _LEGEND_GAP + _LEGEND_LINE * (3 * len(report.models) + 1)
    )
    for ax, cohort in zip(axes, cohorts):
        handles, labels = [], []
        same = _identical_to(report, cohort)
        for name in report.models:
            color, style, suffix = _curve_style(report, name, same)
            stats = _draw_calibration(ax, report, name, cohort, n_bins, strategy, style)
            handles.append(Line2D([], [], color=color, ls=style, lw=2))
            text = _calibration_text(stats, table.loc[(name, cohort), "hl_pvalue"])
            labels.append(f"{name}{suffix}\n{text}")
        _calibration_axes(ax, f"Calibration - {_cohort_subtitle(report, cohort)}")
        handles.append(Line2D([], [], ls="--", lw=1, color=_CHANCE_COLOR))
        labels.append("Perfect calibration")
        # the statistics make long entries: below the axes, never over the curves
        ax.legend(
            handles,
            labels,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.15),
            fontsize="small",
            frameon=False,
        )
        ax.set(xlabel="Mean predicted probability", ylabel="Observed fraction positive")
    return fig


def precision_recall_figure(report, cohorts):
    """Precision-recall curves of every model per cohort, the readers' points and the
    prevalence (a model without skill)."""
    entries = len(report.models) + len(report.readers) + 2  # + no skill, title
    # "name AP 0.85 (same as other)", "reader (recall 0.84, precision 0.79)", "No skill ..."
    longest = max(_longest(report.models, 32), _longest(report.readers, 31), 29)
    fig, axes = _panels(len(cohorts), 5.2, 5.2 + _legend_height(report, entries, longest))
    for ax, cohort in zip(axes, cohorts):
        is_pos = report._is_positive[cohort]
        same = _identical_to(report, cohort)
        for name in report.models:
            prob = report.probabilities_[name][cohort]
            precision, recall, _ = precision_recall_curve(is_pos, prob, pos_label=True)
            ap = average_precision_score(is_pos, prob, pos_label=True)
            color, style, suffix = _curve_style(report, name, same)
            ax.plot(
                recall,
                precision,
                color=color,
                ls=style,
                lw=2,
                drawstyle="steps-post",
                label=f"{name} AP {_fmt(ap, 2)}{suffix}",
            )
        _draw_readers(
            ax,
            report,
            cohort,
            lambda read: (read["sensitivity"], read["ppv"]),
            lambda read: f"recall {_fmt(read['sensitivity'], 2)}, precision {_fmt(read['ppv'], 2)}",
        )
        prevalence = float(is_pos.mean())
        ax.axhline(
            prevalence,
            ls="--",
            lw=1,
            color=_CHANCE_COLOR,
            label=f"No skill (prevalence {_fmt(prevalence, 2)})",
        )
        handles, labels = ax.get_legend_handles_labels()
        _place_legend(
            ax,
            handles,
            labels,
            len(report.models),
            "lower left",
            title="AP: average precision",
            title_fontsize="small",
        )
        ax.set(
            xlim=(-0.01, 1.01),
            ylim=(-0.01, 1.01),
            xlabel="Recall (sensitivity)",
            ylabel="Precision (PPV)",
            title=f"Precision-recall - {_cohort_subtitle(report, cohort)}",
        )
        ax.set_box_aspect(1)
        ax.set_anchor("N")  # spare height goes below, to the legend
        ax.grid(True, alpha=0.3)
    return fig


#: Threshold probabilities of the decision curves unless given: the clinically relevant range
#: (a surgeon does not operate at a 70 % risk threshold of nodal metastasis, nor forgo it).
DECISION_THRESHOLDS = np.round(np.arange(0.0, 0.605, 0.01), 2)


def decision_curve_figure(report, cohorts, thresholds):
    """Net benefit of each model, of treating all and of treating none, per cohort."""
    if thresholds is None:
        thresholds = DECISION_THRESHOLDS
    fig, axes = _panels(
        len(cohorts), 6.0, 5.2 + _LEGEND_GAP + _LEGEND_LINE * (len(report.models) + 2)
    )
    names = list(report.models)
    for ax, cohort in zip(axes, cohorts):
        y = report._labels(cohort)
        # Neutral column keys: model names could clash with the reserved column names.
        keys = {f"model_{i}": name for i, name in enumerate(names)}
        curves = decision_curve(
            y,
            {key: report.probabilities_[name][cohort] for key, name in keys.items()},
            thresholds,
            pos_label=report.pos_label_,
        )
        x = curves["threshold"]
        same = _identical_to(report, cohort)
        for key, name in keys.items():
            color, style, suffix = _curve_style(report, name, same)
            ax.plot(x, curves[key], color=color, ls=style, lw=2, label=name + suffix)
        ax.plot(x, curves["treat_all"], color="0.45", lw=1.3, label="Treat all")
        ax.plot(x, curves["treat_none"], color="black", lw=1.3, ls="--", label="Treat none")
        prevalence = float(report._is_positive[cohort].mean())
        best = max(prevalence, float(np.nanmax(curves[list(keys)].to_numpy())))
        top = 1.1 * best + 0.02
        ax.set(
            xlim=(float(np.min(x)), float(np.max(x))),
            ylim=(-0.1 * top - 0.01, top),
            xlabel="Threshold probability",
            ylabel="Net benefit",
            title=f"Decision curve - {_cohort_subtitle(report, cohort)}",
        )
        # below the axes, never over the curves (beside them would narrow the panel and clip
        # a long cohort name in the title)
        ax.legend(
            loc="upper center",
            bbox_to_anchor=(0.5, -0.15),
            fontsize="small",
            frameon=False,
        )
        ax.grid(True, alpha=0.3)
    return fig


def _is_dark(rgba):
    """Whether black text would be hard to read on ``rgba`` (WCAG relative luminance)."""
    channels = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgba[:3]]
    luminance = 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]
    return luminance < 0.18


def _class_names(report):
    neg = report.classes_[1] if report.classes_[0] == report.pos_label_ else report.classes_[0]
    return (
        f"Negative\n({report.label_name(neg)})",
        f"Positive\n({report.label_name(report.pos_label_)})",
    )


#: Panels per row of the confusion-matrix grid (each model's cohorts side by side).
_CONFUSION_COLUMNS = 6


def _model_cohort_grid(report, cohorts, width, height):
    """A figure with one panel per model and cohort: each model's cohorts side by side, as
    many models per row as fit in ``_CONFUSION_COLUMNS`` panels. Returns the figure and
    ``{(model, cohort): axes}`` in the models' order."""
    names = list(report.models)
    per_row = max(1, _CONFUSION_COLUMNS // len(cohorts))
    nrows = math.ceil(len(names) / per_row)
    ncols = min(per_row, len(names)) * len(cohorts)
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.ravel()[len(names) * len(cohorts) :]:
        fig.delaxes(ax)
    grid = {}
    for i, name in enumerate(names):
        for j, cohort in enumerate(cohorts):
            grid[name, cohort] = axes[i // per_row, (i % per_row) * len(cohorts) + j]
    return fig, grid


def confusion_figure(report, cohorts):
    """Confusion matrices at the fixed thresholds in a grid: each model's cohorts side by side,
    as many models per row as fit in ``_CONFUSION_COLUMNS`` panels."""
    names = list(report.models)
    fig, grid = _model_cohort_grid(report, cohorts, 3.4, 3.3)
    tick_labels = _class_names(report)
    for i, name in enumerate(names):
        cmap = LinearSegmentedColormap.from_list(f"cm_{i}", ["white", report.colors_[name]])
        threshold = report.thresholds_[name]
        for cohort in cohorts:
            ax = grid[name, cohort]
            res = binary_metrics(
                report._labels(cohort),
                report.probabilities_[name][cohort],
                threshold,
                pos_label=report.pos_label_,
            )
            counts = np.array([[res["tn"], res["fp"]], [res["fn"], res["tp"]]])
            totals = counts.sum(axis=1, keepdims=True)
            share = np.divide(counts, totals, out=np.zeros((2, 2)), where=totals > 0)
            ax.imshow(share, cmap=cmap, vmin=0.0, vmax=1.0)
            for r in range(2):
                for c in range(2):
                    ax.text(
                        c,
                        r,
                        f"{counts[r, c]}\n({share[r, c]:.0%})",
                        ha="center",
                        va="center",
                        fontsize=11,
                        color="white" if _is_dark(cmap(share[r, c])) else "black",
                    )
            ax.set_xticks([0, 1], tick_labels)
            ax.set_yticks([0, 1], tick_labels)
            ax.set_xlabel("Predicted")
            ax.set_ylabel("Actual")
            # each part on its own (wrapped) lines: a grid panel is narrow
            title = "\n".join(
                [
                    textwrap.fill(name, 30),
                    textwrap.fill(cohort, 30),
                    f"threshold {_fmt(threshold, 3)}",
                ]
            )
            ax.set_title(title, fontsize="medium")
    return fig


def nomogram_figure(nomogram, name):
    """Let ``nomogram`` draw itself: ``plot()`` when ``ax`` is optional, else ``plot(ax=...)``.

    Calling ``plot()`` without arguments lets the nomogram size its own figure to its number
    of axes; it must then return a Figure or an Axes.
    """
    plot = nomogram.plot
    try:
        ax_param = inspect.signature(plot).parameters.get("ax")
    except (TypeError, ValueError):
        ax_param = None
    if ax_param is not None and ax_param.default is inspect.Parameter.empty:
        fig = Figure(figsize=(10, 6), layout="constrained")
        ax = fig.add_subplot()
        plot(ax=ax)
        if not ax.get_title():
            ax.set_title(f"Nomogram - {name}")
        return fig
    out = plot()
    if isinstance(out, Figure):
        return out
    if isinstance(out, Axes):
        return out.figure
    raise TypeError(
        f"model {name!r}: plot() returned {type(out).__name__}; a nomogram's plot() must "
        "return a matplotlib Figure or Axes (or require an ax= argument to draw into)."
    )


def forest_figure(report, cohorts):
    """AUC and its confidence interval of every model (rows) in each cohort (markers)."""
    table = report.metrics_table()
    names = list(report.models)
    n = len(names)
    # compact rows (a cohort's markers side by side on one row) so that the plot of a study
    # with twenty models still fits the page's first screen
    row = 0.2 + 0.09 * max(1, len(cohorts))
    fig = Figure(figsize=(7.5, 1.1 + row * n), layout="constrained")
    ax = fig.add_subplot()
    markers = "osD^vP*X"
    step = 0.6 / max(1, len(cohorts))
    for k, cohort in enumerate(cohorts):
        offset = (k - (len(cohorts) - 1) / 2) * step
        for i, name in enumerate(names):
            row = table.loc[(name, cohort)]
            y = n - 1 - i + offset
            color = report.colors_[name]
            ax.plot([row["auc_low"], row["auc_high"]], [y, y], color=color, lw=2)
            ax.plot(
                row["auc"],
                y,
                markers[k % len(markers)],
                color=color,
                mec="black" if name == report.primary_ else "white",
                ms=7,
                label=cohort if i == 0 else None,
            )
    ax.axvline(0.5, color="0.6", ls=":", lw=1)
    ax.set_yticks(
        range(n),
        [f"{name} (primary)" if name == report.primary_ else name for name in reversed(names)],
    )
    ax.set_xlabel(f"AUC ({report.confidence * 100:g}% CI, DeLong)")
    ax.set_xlim(min(0.4, float(table["auc_low"].min()) - 0.02), 1.02)  # AUC 1 stays whole
    ax.set_ylim(-0.7, n - 0.3)
    ax.grid(axis="x", alpha=0.3)
    handles = [
        Line2D([], [], marker=markers[k % len(markers)], color="0.3", ls="", label=cohort)
        for k, cohort in enumerate(cohorts)
    ]
    ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title="cohort"
    )
    ax.set_title("Discrimination of every model", fontsize=11)
    return fig


def delong_heatmap_figure(report, cohorts):
    """Unadjusted DeLong p-values between every pair of models, one matrix per cohort."""
    square = report.delong_table(layout="square")
    names = list(report.models)
    n = len(names)
    side = 1.2 + 0.45 * n
    fig, axes = _panels(len(cohorts), side + 2.2, side + 1.2)
    cmap = colormaps["viridis_r"]
    image = None
    for ax, cohort in zip(axes, cohorts):
        matrix = square.loc[cohort].loc[names, names].to_numpy(dtype=float)
        # -log10(p): darker is smaller; the diagonal (a model against itself) stays blank
        shown = -np.log10(np.clip(matrix, 1e-4, 1.0))
        image = ax.imshow(np.ma.masked_invalid(shown), cmap=cmap, vmin=0.0, vmax=4.0)
        if n <= 12:
            for i in range(n):
                for j in range(n):
                    if np.isfinite(matrix[i, j]):
                        ax.text(
                            j,
                            i,
                            _fmt_p(matrix[i, j], 2),
                            ha="center",
                            va="center",
                            fontsize=7,
                            color="white" if _is_dark(cmap(shown[i, j] / 4.0)) else "black",
                        )
        labels = [textwrap.shorten(name, 28, placeholder="...") for name in names]
        ax.set_xticks(range(n), labels, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(n), labels, fontsize=8)
        ax.set_title(f"DeLong p-values - {_cohort_subtitle(report, cohort)}", fontsize="medium")
    if image is not None:
        bar = fig.colorbar(image, ax=axes, shrink=0.7, ticks=[0, 1, 2, 3, 4])
        bar.ax.set_yticklabels(["1", "0.1", "0.01", "0.001", "<0.0001"])
        bar.set_label("p (unadjusted, log scale)")
    return fig
