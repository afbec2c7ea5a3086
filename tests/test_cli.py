"""The tapefit command line: demo, fit and limit."""
import json

import pytest

from models.cli import main

SPEC = {"channels": [{"name": "c", "samples": [
    {"name": "sig", "data": [5.0, 10.0], "modifiers": [{"name": "mu", "type": "normfactor", "data": None}]},
    {"name": "bkg", "data": [50.0, 60.0], "modifiers": [
        {"name": "bkg_norm", "type": "normsys", "data": {"hi": 1.1, "lo": 0.9}}]}]}],
    "observations": [{"name": "c", "data": [55.0, 70.0]}],
    "measurements": [{"name": "m", "config": {"poi": "mu", "parameters": []}}], "version": "1.0.0"}


def test_demo_runs_end_to_end(capsys):
    assert main(["demo", "--events", "3000"]) == 0
    out = capsys.readouterr().out
    assert "NLL at a start point" in out and "trust-region Newton" in out and "mu" in out


def test_fit_and_limit_of_a_workspace(tmp_path, capsys):
    path = tmp_path / "ws.json"
    path.write_text(json.dumps(SPEC))
    patch = tmp_path / "patch.json"
    patch.write_text(json.dumps([{"op": "replace", "path": "/channels/0/samples/0/data",
                                  "value": [6.0, 11.0]}]))
    assert main(["fit", str(path), "--patch", str(patch)]) == 0
    out = capsys.readouterr().out
    assert "valid: True" in out and "(POI)" in out
    assert main(["limit", str(path), "--scan", "0", "5", "11"]) == 0
    out = capsys.readouterr().out
    assert "observed" in out and "expected median" in out


def test_bad_arguments(tmp_path):
    with pytest.raises(SystemExit):
        main(["demo", "--events", "0"])
    with pytest.raises(SystemExit):
        main(["limit", str(tmp_path / "x.json"), "--scan", "3", "1", "5"])


def test_background_only_workspace_fits_without_its_poi_and_has_no_limit(tmp_path, capsys):
    """A measurement naming a POI that no sample uses (published background-only workspaces):
    ``fit`` says so and fits without one; ``limit`` exits with an error that names the POI."""
    spec = json.loads(json.dumps(SPEC))
    spec["channels"][0]["samples"][0]["modifiers"] = []      # the signal loses its normfactor
    path = tmp_path / "bkgonly.json"
    path.write_text(json.dumps(spec))
    assert main(["fit", str(path)]) == 0
    captured = capsys.readouterr()
    assert "valid: True" in captured.out and "'mu'" in captured.err
    assert main(["limit", str(path)]) == 2
    assert "'mu'" in capsys.readouterr().err
    assert main(["fit", str(tmp_path / "missing.json")]) == 2
    assert "missing.json" in capsys.readouterr().err
