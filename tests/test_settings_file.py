"""--config FILE: a settings file sets any option, the command line overrides it, the effective settings round-trip."""

import json

import pytest

from fairbinn.cli import build_parser, main
from fairbinn.settings_file import effective_settings, read_settings, settings_tokens, with_settings_file


def _parse(argv):
    parser = build_parser()
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    argv, path = with_settings_file(argv, commands.choices[argv[0]])
    args = parser.parse_args(argv)
    args.argv, args.config = argv, path
    return args


def test_a_toml_file_sets_options_and_the_command_line_wins(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('data = "Health"\nmode = ["erm", "lagrangian"]\nbudget = 0.05\nbudget_metric = "eo"\n'
                    "epochs = 7\nno-progress = true\n--seed = 2\n")
    args = _parse(["train", "--config", str(path), "--epochs", "3", "--mode", "bilevel"])
    assert (args.data, args.budget, args.budget_metric, args.progress, args.seed) == ("health", 0.05, "eo", False, 2)
    assert args.epochs == 3 and args.mode == ["bilevel"]  # the command line overrides the file
    assert args.config == path
    assert _parse(["train", f"--config={path}"]).epochs == 7


def test_effective_settings_round_trip_as_a_settings_file(tmp_path):
    args = _parse(["sweep", "--data", "Adult", "--etas", "0", "10", "--seeds", "0", "1", "--budgets", "0.05",
                   "--no-stack", "--epochs", "4", "--lr", "0.01"])
    settings = effective_settings(args)
    assert settings["etas"] == [0.0, 10.0] and settings["lr"] == 0.01 and "argv" not in settings
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(settings))
    again = _parse(["sweep", "--config", str(path)])
    assert effective_settings(again) == settings


@pytest.mark.parametrize("text, message", [
    ("etaa = 3\n", "unknown option 'etaa' (did you mean 'eta'?)"),
    ("no-progress = 3\n", "'no-progress' is a switch; give true or false, got 3"),
    ("eta = [1, 2]\n", "'eta' takes one value, got a list of 2"),
    ("eta = true\n", "'eta' takes a value, not true"),
    ("[train]\neta = 1\n", "'train' (did you mean"),
    ("eta = \n", "not valid TOML"),
])
def test_bad_settings_are_named(tmp_path, capsys, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--config", str(path)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"--config {path}" in err and message in err


def test_files_that_are_not_settings(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        read_settings(tmp_path / "missing.toml")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="must hold one table of options, got list"):
        read_settings(tmp_path / "list.json")
    (tmp_path / "run.ini").write_text("eta = 1")
    with pytest.raises(ValueError, match="unknown format .ini; use .toml, .json, .yaml or .yml"):
        read_settings(tmp_path / "run.ini")
    with pytest.raises(ValueError, match="--config needs a file"):
        with_settings_file(["train", "--config"], build_parser())
    with pytest.raises(ValueError, match="unknown option 'config'"):
        settings_tokens({"config": "x.toml"}, build_parser(), "f.toml")


def test_train_writes_its_settings_beside_its_results(tmp_path, capsys, data_dir):
    path = tmp_path / "run.toml"
    path.write_text('mode = ["erm"]\nepochs = 1\nno-progress = true\n')
    assert main(["train", "--config", str(path), "--data-dir", str(data_dir), "--output", str(tmp_path / "r.json"),
                 "--save", str(tmp_path / "m")]) == 0
    written = json.loads((tmp_path / "m" / "settings.json").read_text())
    assert written == json.loads((tmp_path / "r.json").read_text())["settings"]
    assert written["mode"] == ["erm"] and written["epochs"] == 1 and written["data_dir"] == str(data_dir)
