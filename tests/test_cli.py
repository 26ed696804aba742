import io
import logging
import re
import subprocess
import sys

import numpy as np
import pytest

from sklearn_alnm import __version__
from sklearn_alnm.cli import build_parser, main, run_demo


def test_demo_prints_train_and_test_table():
    out = io.StringIO()
    table = run_demo(
        n_patients=160, test_size=0.3, random_state=1, stream=out, studies=["clinical"]
    )
    table = table["clinical"]
    text = out.getvalue()
    assert list(table.index) == ["Training", "Test"]
    for header in ("AUC", "Accuracy", "Sensitivity", "Specificity", "PPV", "NPV", "F1"):
        assert header in text
    assert "Hosmer" in text and "Youden" in text
    assert table.loc["Test", "n"] == 48
    # the same threshold (chosen on training) is applied to the test cohort
    assert table.loc["Training", "threshold"] == table.loc["Test", "threshold"]
    # the synthetic clinical factors carry real signal
    assert table.loc["Test", "auc"] > 0.65
    assert table.loc["Test", "auc_low"] < table.loc["Test", "auc"] < table.loc["Test", "auc_high"]


def test_demo_is_deterministic():
    first, second = io.StringIO(), io.StringIO()
    run_demo(n_patients=120, random_state=3, stream=first, studies=["clinical"])
    run_demo(n_patients=120, random_state=3, stream=second, studies=["clinical"])
    assert first.getvalue() == second.getvalue()


class _UsesFitted:
    """Fitted after ``inner`` in the same group; records the coefficients it saw."""

    def __init__(self, inner):
        self.inner = inner

    def fit(self, X, y):
        self.seen_ = self.inner.coef_.copy()  # AttributeError if inner were not fitted
        return self


def test_demo_fits_groups_in_worker_processes_and_keeps_shared_models():
    from sklearn.linear_model import LogisticRegression

    from sklearn_alnm._demo import _DemoStudy, _fit_plans

    X, y = np.random.default_rng(0).normal(size=(40, 3)), np.repeat([0, 1], 20)
    inner = LogisticRegression()
    first = _DemoStudy("first", {"inner": inner, "outer": _UsesFitted(inner)}, (), None, cost=2.0)
    groups = ((("a",), 1.0), (("b",), 3.0))
    second = _DemoStudy(
        "second",
        {"a": LogisticRegression(C=0.1), "b": LogisticRegression()},
        (),
        None,
        groups=groups,
    )
    _fit_plans([first, second], X, y, n_jobs=2)
    # the fitted models replaced the unfitted ones, and a model holding another of its
    # group holds the fitted one (the group came back in one piece)
    fitted_inner, outer = first.models["inner"], first.models["outer"]
    assert fitted_inner is not inner and outer.inner is fitted_inner
    np.testing.assert_array_equal(outer.seen_, fitted_inner.coef_)
    assert all(hasattr(m, "coef_") for m in second.models.values())
    # the same fits as one after another in this process
    one = _DemoStudy("one", {"a": LogisticRegression(C=0.1)}, (), None)
    _fit_plans([one], X, y, n_jobs=2)
    np.testing.assert_allclose(one.models["a"].coef_, second.models["a"].coef_)
    bad = _DemoStudy("bad", {"a": LogisticRegression()}, (), None, groups=((("b",), 1.0),))
    with pytest.raises(ValueError, match="do not cover"):
        _fit_plans([bad], X, y, n_jobs=1)


def test_console_script_entry_point():
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sklearn_alnm.cli",
            "demo",
            "--n-patients",
            "100",
            "--studies",
            "clinical",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Test" in result.stdout and "AUC" in result.stdout


def test_version_and_argument_errors(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and __version__ in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--studies", "nomogram"])
    assert exc.value.code == 2 and "unknown studies" in capsys.readouterr().err
    for bad in (["demo", "--test-size", "1.5"], ["demo", "--n-patients", "0"], []):
        with pytest.raises(SystemExit) as exc:
            build_parser().parse_args(bad)
        assert exc.value.code == 2


def _options(parser):
    """(subcommand, action) for every option of the parser and its subcommands."""
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from ((name, a) for a in sub._actions if a.option_strings)
        elif action.option_strings:
            yield "alnm", action


def test_help_states_every_default_and_explains_the_configuration(capsys):
    import argparse

    parser = build_parser()
    for command, action in _options(parser):
        if isinstance(action, argparse._HelpAction | argparse._VersionAction):
            continue
        sub = parser if command == "alnm" else parser._subparsers._group_actions[0].choices[command]
        text = sub.format_help()
        options = text[text.index("options:") :]  # past the usage line
        flag = action.option_strings[-1]
        entry = options[options.index(flag) :].split("\n  -")[0]
        assert action.help and "default" in " ".join(entry.split()), (command, flag, entry)
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    for needle in ("manifest:", "split:", "recipe:", "factory:", "primary:", "examples/", "trust"):
        assert needle in text, needle
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 300)" in text and "(default: clinical,ultrasound," in text


def test_verbose_and_progress_reach_the_demo(monkeypatch):
    from sklearn_alnm import cli

    calls, levels = [], []

    def fake_demo(*args, **kwargs):
        """Record the call."""
        calls.append(kwargs)

    monkeypatch.setattr(cli, "run_demo", fake_demo)
    monkeypatch.setattr(cli, "enable_console_logging", levels.append)
    assert main(["demo", "-v"]) == 0  # -v after the subcommand
    assert main(["-v", "demo", "-v", "--no-progress"]) == 0  # before and after: -vv
    assert main(["demo"]) == 0
    assert [c["verbose"] for c in calls] == [1, 2, 0]
    assert [c["progress"] for c in calls] == [True, False, True]
    assert levels == [logging.INFO, logging.DEBUG]
    assert build_parser().parse_args(["run", "x.yaml", "-v"]).sub_verbose == 1


def test_demo_progress_bar_goes_to_stderr(capsys):
    out = io.StringIO()
    run_demo(n_patients=60, random_state=0, stream=out, studies=["clinical"], progress=True)
    err = capsys.readouterr().err
    assert "fitting models" in err and "1/1" in err and "scoring 1 models" in err
    assert "fitting models" not in out.getvalue()
    run_demo(n_patients=60, random_state=0, stream=out, studies=["clinical"])
    assert capsys.readouterr().err == ""


def test_demo_mammography_study_compares_fusion_models():
    out = io.StringIO()
    table = run_demo(n_patients=100, random_state=0, stream=out, studies=["mammography"], n_jobs=1)[
        "mammography"
    ]
    assert list(table.index) == [
        "Clinical",
        "Radiomics (CC+MLO)",
        "Deep (CC+MLO)",
        "Pre-fusion",
        "Post-fusion",
    ]
    assert table.loc["Post-fusion", "delong_p"] != table.loc["Post-fusion", "delong_p"]  # NaN
    assert table["delong_p"].drop("Post-fusion").between(0, 1).all()
    assert (table["n"] == 30).all()
    # every modality carries signal on the synthetic cohort
    assert (table["auc"] > 0.6).all(), table["auc"]
    text = out.getvalue()
    assert "DeLong p vs Post-fusion" in text and "Mammography study" in text


def test_demo_out_writes_the_html_report_with_the_ultrasound_nomogram(tmp_path, capsys):
    import pandas as pd

    out = tmp_path / "report"
    argv = ["demo", "--n-patients", "90", "--studies", "clinical,ultrasound", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "Ultrasound study" in printed and "DeLong p vs Combined nomogram (US)" in printed
    dice = re.search(r"automatic segmentation, test Dice vs reference masks: fused (\S+)", printed)
    assert dice and float(dice.group(1)) > 0.5
    assert str(out / "index.html") in printed
    for name in (
        "index.html",
        "roc.png",
        "calibration.png",
        "decision_curve.png",
        "confusion_matrices.png",
        "metrics.csv",
        "delong.csv",
        "nomogram_combined_nomogram_us.png",
        "gradcam_cnn_us.png",
    ):
        assert (out / name).is_file(), name
    metrics = pd.read_csv(out / "metrics.csv")
    assert set(metrics["model"]) == {
        "Clinical",
        "DL signature (US)",
        "CNN (US)",
        "Combined nomogram (US)",
        "Auto-segmentation nomogram (US)",
    }
    assert set(metrics["cohort"]) == {"Training", "Test"}
    page = (out / "index.html").read_text()
    assert "nomogram_combined_nomogram_us.png" in page and "synthetic ALNM cohort" in page


def test_demo_video_study_compares_the_video_model_with_its_key_frame(tmp_path):
    out = io.StringIO()
    report = tmp_path / "report"
    table = run_demo(n_patients=100, random_state=0, stream=out, studies=["video"], out=report)[
        "video"
    ]
    assert list(table.index) == ["TIN (video)", "Static CNN (key frame)"]
    assert table.loc["Static CNN (key frame)", "delong_p"] <= 1.0
    assert (table["n"] == 30).all()
    text = out.getvalue()
    assert "Ultrasound video study" in text and "DeLong p vs TIN (video)" in text
    page = (report / "index.html").read_text()
    assert "gradcam_tin_video.png" in page and "Key frame of each clip" in page
    assert (report / "gradcam_static_cnn_key_frame.png").is_file()


def test_demo_multimodal_study_tables_both_modalities_and_every_fusion(tmp_path):
    out = io.StringIO()
    report = tmp_path / "report"
    table = run_demo(n_patients=60, random_state=0, stream=out, studies=["multimodal"], out=report)[
        "multimodal"
    ]
    fusions = [
        f"{name} fusion" for name in ("Concat", "Weighted", "Attention", "Voting", "Multilayer")
    ]
    assert list(table.index) == ["ULNet (US)", "PLNet (H&E)", *fusions]
    # Table 4's precision and recall are PPV and sensitivity
    for column in ("ppv", "sensitivity", "f1", "accuracy", "auc", "auc_low", "delong_p"):
        assert column in table.columns, column
    # the reference (the better single modality) has no p-value against itself
    singles = table.loc[["ULNet (US)", "PLNet (H&E)"], "delong_p"]
    assert singles.isna().sum() == 1 and table.loc[fusions, "delong_p"].between(0, 1).all()
    text = out.getvalue()
    assert "Ultrasound + H&E study" in text and "DeLong p vs" in text
    page = (report / "index.html").read_text()
    assert "gradcam_multilayer_fusion.png" in page


def test_demo_bag_study_compares_the_two_stage_model_with_its_comparators(tmp_path):
    out = io.StringIO()
    table = run_demo(n_patients=60, random_state=0, stream=out, studies=["bags"])["bags"]
    assert list(table.index) == [
        "MTL-MIL (transformer)",
        "Stage 1 alone (image mean)",
        "Single T (tumour image)",
        "Clinical (BI-RADS, T stage)",
    ]
    assert np.isnan(table.loc["MTL-MIL (transformer)", "delong_p"])
    assert table["delong_p"].iloc[1:].between(0, 1).all()
    assert "Multi-task + multi-instance study" in out.getvalue()
