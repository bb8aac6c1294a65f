"""report.html: one self-contained page per finished results folder, and mpsim open."""

import base64
import json
import shutil

import pandas as pd
import pytest

from model.cli import main
from model.errors import RunFolderError
from model.report import REPORT_NAME, changed_parameters, write_report
from model.runner import finished_run

SMALL_RUN = ["--workers", "1", "--quiet", "--replicates", "1", "--draws", "1",
             "--agents", "1000"]


@pytest.fixture(scope="module")
def scenario_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("scenarios") / "half_envelopes.toml"
    path.write_text('description = "Red envelopes at half strength (test)."\n'
                    'extends = "tiny"\n\n[red_envelope]\nstrength = 0.5\n')
    return path


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory, scenario_file):
    out = tmp_path_factory.mktemp("results")
    assert main(["run", str(scenario_file), "--out", str(out), *SMALL_RUN]) == 0
    [folder] = (out / "half_envelopes").iterdir()
    return folder


def _section(page: str, heading: str) -> str:
    start = page.index(f"<h2>{heading}")
    end = page.find("<h2>", start + 4)
    return page[start:end if end > 0 else None]


def test_a_run_writes_a_self_contained_report_with_every_plot(run_folder):
    page = (run_folder / REPORT_NAME).read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    # no external asset of any kind
    for marker in ('src="http', "src='http", "<link", "<script", "url(http", "@import"):
        assert marker not in page
    pngs = sorted(run_folder.glob("*.png"))
    assert len(pngs) >= 7
    for png in pngs:
        assert base64.b64encode(png.read_bytes()).decode() in page
        assert f"<figcaption>{png.name}</figcaption>" in page
    assert "half_envelopes" in page and "Red envelopes at half strength" in page
    assert not [p for p in run_folder.iterdir() if p.name.startswith(".")]  # no temp file left


def test_the_report_names_the_changed_parameters_with_their_sources(run_folder):
    changed = _section((run_folder / REPORT_NAME).read_text(), "Parameters that differ")
    assert "red_envelope.strength" in changed and "0.5" in changed
    from model.params import BY_NAME

    assert BY_NAME["red_envelope.strength"].source[:40] in changed
    assert "traffic_sharing.exposure_weekly" not in changed  # left at its default


def test_changed_parameters_compares_values_as_the_manifest_holds_them():
    from model.params import defaults

    values = json.loads(json.dumps(defaults(), default=str))  # dates become text
    assert changed_parameters(values).empty
    values["traffic_sharing.apps"] = ["taobao"]
    values["red_envelope.strength"] = 2
    assert sorted(changed_parameters(values)["parameter"]) == ["red_envelope.strength",
                                                              "traffic_sharing.apps"]


def test_the_run_report_sets_key_figures_against_the_reported_ones(run_folder):
    key = _section((run_folder / REPORT_NAME).read_text(), "Key figures")
    targets = pd.read_csv("calibration/data/targets.csv")
    inside = targets[targets["date"].str[:4].astype(int) <= 2020]
    assert f"of {len(inside)}</b> reported figures within 15%" in key
    assert "miniprogram_dau" in key and "simulated_mean" in key


def test_the_report_does_not_make_a_finished_folder_look_corrupt(run_folder):
    manifest = (run_folder / "manifest.json").read_bytes()
    write_report(run_folder)  # rewriting it too
    assert (run_folder / "manifest.json").read_bytes() == manifest
    finished_run(run_folder)  # still verifies against its file record
    assert main(["plot", str(run_folder)]) == 0


def test_unfinished_or_corrupt_folders_are_refused_with_one_line(run_folder, tmp_path, capsys):
    partial = tmp_path / ".20260101T000000Z.partial"
    shutil.copytree(run_folder, partial)
    (partial / REPORT_NAME).unlink()
    with pytest.raises(RunFolderError, match="unfinished results folder"):
        write_report(partial)
    assert main(["open", str(partial), "--print"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unfinished" in err
    assert not (partial / REPORT_NAME).exists()

    corrupt = tmp_path / "corrupt"
    shutil.copytree(run_folder, corrupt)
    (corrupt / REPORT_NAME).unlink()
    with (corrupt / "summary.csv").open("a") as handle:
        handle.write("extra,row\n")
    assert main(["open", str(corrupt), "--print"]) == 2
    assert "summary.csv" in capsys.readouterr().err and not (corrupt / REPORT_NAME).exists()

    assert main(["open", str(tmp_path / "missing"), "--print"]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_open_writes_a_missing_report_and_prints_its_path(run_folder, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(run_folder, copy)
    (copy / REPORT_NAME).unlink()
    assert main(["open", str(copy), "--print"]) == 0
    out = capsys.readouterr().out
    assert (copy / REPORT_NAME).is_file() and str((copy / REPORT_NAME).resolve()) in out


def test_an_unknown_kind_of_folder_shows_its_tables_plots_and_fit(run_folder, tmp_path):
    folder = tmp_path / "backtest" / "20260101T000000Z"
    folder.mkdir(parents=True)
    shutil.copy(run_folder / "shares.png", folder / "holdout.png")
    pd.DataFrame({"horizon": [1, 2], "score": [0.25, 0.5]}).to_csv(folder / "scores.csv",
                                                                  index=False)
    pd.DataFrame({"date": ["2019-01-15", "2020-06-15"], "platform": ["wechat", "alipay"],
                  "series": ["miniprogram_dau", "app_users"], "kind": ["exact", "lower"],
                  "reported": [200.0, 1000.0], "simulated_mean": [210.0, 900.0],
                  "within_15pct": [True, False]}).to_csv(folder / "fit_table.csv", index=False)
    (folder / "manifest.json").write_text(json.dumps({"note": "made by hand"}))
    page = write_report(folder).read_text()
    assert "mpsim backtest 20260101T000000Z" in page
    assert "<figcaption>holdout.png</figcaption>" in page
    assert "<h3>scores.csv</h3>" in page and "0.25" in page
    assert "<b>1 of 2</b> reported figures" in _section(page, "Key figures")
    assert "made by hand" in _section(page, "Manifest")


def test_compare_writes_reports_for_itself_and_its_runs(scenario_file, tmp_path):
    assert main(["compare", "tiny", str(scenario_file), "--out", str(tmp_path),
                 *SMALL_RUN]) == 0
    [folder] = (tmp_path / "compare").iterdir()
    page = (folder / REPORT_NAME).read_text()
    assert "compare_overlay.png" in page and "alipay.miniprogram_dau_share" in page
    key = _section(page, "Key figures")
    last = pd.read_csv(folder / "differences.csv")["date"].max()  # tiny ends in 2020
    assert f"first at {last}, paired" in key and "half_envelopes" in key
    changed = _section(page, "Parameters that differ")
    assert "scenario half_envelopes" in changed and "red_envelope.strength" in changed
    for run in (tmp_path / "tiny", tmp_path / "half_envelopes"):
        [run_folder] = run.iterdir()
        assert (run_folder / REPORT_NAME).is_file()


def test_open_has_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["open", "--help"])
    assert exc.value.code == 0 and "--print" in capsys.readouterr().out


def test_a_fit_table_with_columns_of_its_own_shows_them(tmp_path):
    folder = tmp_path / "calibration" / "20260101T000000Z"
    folder.mkdir(parents=True)
    pd.DataFrame({"date": ["2019-01-15"], "platform": ["wechat"], "series": ["miniprogram_dau"],
                  "kind": ["exact"], "reported": [200.0], "predictive_p05": [150.0],
                  "predictive_p95": [260.0], "inside_90pct": [True],
                  "source": ["a long citation"]}).to_csv(folder / "fit_table.csv", index=False)
    (folder / "manifest.json").write_text(json.dumps({"calibration_id": "20260101T000000Z"}))
    key = _section(write_report(folder).read_text(), "Key figures")
    assert "predictive_p05" in key and "260" in key and "a long citation" not in key
    assert "<b>1 of 1</b> reported figures inside 90pct" in key
