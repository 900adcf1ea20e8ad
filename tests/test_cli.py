import json
import subprocess
import sys

import pytest

from fairbinn.cli import main


def run_cli(capsys, *args):
    code = main(list(args))
    return code, capsys.readouterr()


def test_train_prints_table_and_writes_json(capsys, tmp_path, data_dir):
    out = tmp_path / "run.json"
    code, captured = run_cli(
        capsys, "train", "--data", "Adult", "--data-dir", str(data_dir), "--epochs", "2",
        "--mode", "erm", "bilevel", "--no-progress", "--output", str(out), "--plot", str(tmp_path / "curves"),
    )
    assert code == 0
    assert (tmp_path / "curves.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "curves.svg").is_file()
    table = captured.out
    assert "adult: test metrics, 15060 rows, groups ['Female', 'Male']" in table
    assert "accuracy" in table and "DP" in table and "EO" in table and "AUC" in table
    assert any(line.startswith("erm ") for line in table.splitlines())
    assert any(line.startswith("bilevel (eta=100)") for line in table.splitlines())
    payload = json.loads(out.read_text())
    assert payload["command"][:3] == ["fairbinn", "train", "--data"]
    runs = {run["config"]["strategy"]: run for run in payload["runs"]}
    assert set(runs) == {"erm", "bilevel"}
    assert len(runs["bilevel"]["history"]) == 2
    assert runs["bilevel"]["config"]["eta"] == 100.0 and runs["bilevel"]["config"]["fairness_lr"] == 1e-5
    assert runs["bilevel"]["model"]["follower_parameters"] == 102 * 102 + 102
    # the table shows the same test accuracy as the JSON
    accuracy = runs["erm"]["test"]["accuracy"]
    assert f"{accuracy:.4f}" in next(line for line in table.splitlines() if line.startswith("erm "))


def test_compile_flag_reaches_the_training_configuration(capsys, tmp_path, data_dir):
    out = tmp_path / "run.json"
    code, _ = run_cli(capsys, "train", "--data", "Adult", "--data-dir", str(data_dir), "--epochs", "1",
                      "--mode", "erm", "--no-progress", "--compile", "aot_eager", "--output", str(out))
    assert code == 0
    assert json.loads(out.read_text())["runs"][0]["config"]["compile"] == "aot_eager"


def test_authors_flags_map_to_the_network(capsys, tmp_path, data_dir):
    out = tmp_path / "run.json"
    # the authors' command-line style: no sub-command, their mode names and width lists
    code, _ = run_cli(
        capsys, "--mode", "reg", "linear", "--data", "Adult", "--data_dir", str(data_dir), "--epochs", "1",
        "--acc_layers", "102", "64", "32", "1", "--fairness_layers", "64", "64", "64",
        "--fairness_position", "2", "--batch_size", "256", "--leader-penalty", "--eta", "5",
        "--no-progress", "--output", str(out),
    )
    assert code == 0
    runs = json.loads(out.read_text())["runs"]
    assert [r["config"]["strategy"] for r in runs] == ["lagrangian", "bilevel"]
    model = runs[1]["model"]
    assert model["hidden_dims"] == [64, 32] and model["fairness_position"] == 1
    assert model["num_fairness_layers"] == 2
    assert model["follower_parameters"] == 2 * (64 * 64 + 64)
    assert runs[1]["config"]["batch_size"] == 256
    # the released code's game is the default bilevel (--leader-penalty is kept for the authors' scripts)
    assert runs[1]["config"]["leader_penalty"] is True and runs[1]["label"] == "bilevel (eta=5)"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--acc_layers", "10", "1"], "--acc_layers must run from the input width 102 of adult to 1"),
        (["--fairness_layers", "102", "50"], "--fairness_layers widths must all equal 102"),
        (["--fairness_position", "5"], "--fairness_position must be from 1 to 3"),
        (["--fairness_layers", "0"], "num_layers must be a positive integer, got 0"),
        (["--eta", "-1"], "eta must be a finite number >= 0"),
        (["--epochs", "0"], "epochs must be a positive integer"),
        (["--compile", "nope"], "compile must be True, False or a torch.compile backend's name (one of aot_eager"),
        (["--mode", "stackelberg", "--unroll-steps", "0"], "unroll_steps must be an integer >= 1, got 0"),
        (["--mode", "stackelberg", "--cg-iters", "0"], "cg_iters must be an integer >= 1, got 0"),
        (["--mode", "stackelberg", "--cg-damping", "-1"], "cg_damping must be a finite number >= 0, got -1.0"),
        (["--surrogate", "rate", "--temperature", "-0.5"], "temperature must be a finite number > 0, got -0.5"),
    ],
)
def test_bad_arguments_exit_with_clear_message(capsys, data_dir, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data-dir", str(data_dir), "--no-progress", *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_stackelberg_follower_and_surrogate_flags_reach_each_mode(capsys, tmp_path, data_dir):
    out = tmp_path / "run.json"
    code, captured = run_cli(
        capsys, "train", "--data", "Adult", "--data-dir", str(data_dir), "--epochs", "1", "--no-progress",
        "--mode", "stackelberg", "bilevel", "erm", "--hypergradient", "implicit", "--cg-iters", "2",
        "--cg-damping", "0.5", "--follower-optimizer", "adam", "--follower-bce", "--surrogate", "rate",
        "--temperature", "0.05", "--output", str(out),
    )
    assert code == 0
    assert any(line.startswith("stackelberg (eta=100)") for line in captured.out.splitlines())
    configs = {run["config"]["strategy"]: run["config"] for run in json.loads(out.read_text())["runs"]}
    game = ("hypergradient", "cg_iters", "cg_damping", "follower_optimizer", "follower_bce", "surrogate",
            "temperature")
    assert [configs["stackelberg"][k] for k in game] == ["implicit", 2, 0.5, "adam", True, "rate", 0.05]
    assert [configs["bilevel"][k] for k in game] == ["unrolled", 10, 1.0, "adam", True, "rate", 0.05]
    assert [configs["erm"][k] for k in game] == ["unrolled", 10, 1.0, "sgd", False, "rate", 0.05]


def test_unknown_mode_and_missing_data(capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["train", "--mode", "minimax"])
    assert "unknown mode 'minimax'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data-dir", str(tmp_path), "--no-progress"])
    assert exit_info.value.code == 2
    assert f"adult: expected adult.data + adult.test in {tmp_path / 'adult'}" in capsys.readouterr().err


def test_module_entry_point_help():
    result = subprocess.run([sys.executable, "-m", "fairbinn", "train", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for flag in ("--mode", "--eta", "--data", "--fairness_layers", "--acc_layers", "--fairness_position",
                 "--device", "--epochs", "--batch_size", "--seed", "--data-dir", "--output"):
        assert flag in result.stdout
    # the constraint's help lists the registered names
    constraint_help = " ".join(result.stdout.split("  --constraint NAME", 1)[1].split("  --", 1)[0].split())
    assert constraint_help.startswith("fairness loss: one of demographic_parity, dp, eo, eopp,")
    assert "register_constraint" in constraint_help


def test_train_on_nba_uses_the_graph_settings(capsys, tmp_path, data_dir):
    out = tmp_path / "nba.json"
    code, captured = run_cli(
        capsys, "train", "--data", "NBA", "--data-dir", str(data_dir), "--epochs", "3", "--backbone", "gat",
        "--mode", "erm", "bilevel", "--no-progress", "--output", str(out),
    )
    assert code == 0
    assert "nba (gat): test metrics, 213 test nodes, 100 training nodes" in captured.out
    assert "epoch chosen by last epoch (the validation nodes are the test nodes" in captured.out
    assert "EOpp" in captured.out and "FairGNN's 'EO'" in captured.out
    runs = json.loads(out.read_text())["runs"]
    config = runs[1]["config"]
    # flags given win; the rest are the paper's graph settings
    assert (config["epochs"], config["lr"], config["fairness_lr"], config["eta"]) == (3, 1e-2, 1e-5, 1000.0)
    assert config["selection_metric"] is None
    assert runs[1]["model"]["backbone"] == "gat" and runs[1]["model"]["dropout"] == 0.5
    assert runs[1]["dataset"]["val_is_test"] is True


def test_train_on_nba_with_disjoint_validation(capsys, data_dir):
    code, captured = run_cli(
        capsys, "train", "--data", "nba", "--data-dir", str(data_dir), "--epochs", "2", "--disjoint-val",
        "--select", "auc", "--no-progress",
    )
    assert code == 0
    assert "79 test nodes" in captured.out and "epoch chosen by validation auc" in captured.out


def test_missing_pokec_files_exit_with_the_expected_names(capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data", "Pokec_z", "--data-dir", str(tmp_path), "--no-progress"])
    assert exit_info.value.code == 2
    assert "expected region_job.csv + region_job_relationship.txt" in capsys.readouterr().err


def test_train_on_celeba_uses_the_attribute_settings(capsys, tmp_path, data_dir):
    out = tmp_path / "celeba.json"
    code, captured = run_cli(
        capsys, "train", "--data", "CelebA", "--target", "Smiling", "--data-dir", str(data_dir),
        "--max-images", "200", "--image-size", "32", "--epochs", "1", "--cache-dir", str(tmp_path / "cache"),
        "--no-progress", "--output", str(out),
    )
    assert code == 0
    assert "CelebA Smiling vs Male (resnet18, torchvision, 32x32" in captured.out
    assert "164 / 18 / 18 train / val / test images" in captured.out
    (run,) = json.loads(out.read_text())["runs"]
    config = run["config"]
    # Smiling: the paper's eta 100, fairness lr 1e-5, batch 128; the epochs flag wins
    assert (config["eta"], config["fairness_lr"], config["batch_size"], config["epochs"]) == (100.0, 1e-5, 128, 1)
    assert run["dataset"]["train"]["images"] == 164


def test_unknown_celeba_attribute_lists_the_valid_ones(capsys, tmp_path, data_dir):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data", "CelebA", "--target", "Smile", "--data-dir", str(data_dir),
              "--max-images", "50", "--cache-dir", str(tmp_path), "--no-progress"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Smile" in err and "Smiling" in err and "Wavy_Hair" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data", "Adult", "--backbone", "gat"], "--backbone does not apply to adult (tabular data)"),
        (["--data", "NBA", "--batch_size", "64"], "--batch-size does not apply to nba (graph data)"),
        (["--data", "NBA", "--target", "Smiling"], "--target does not apply to nba (graph data)"),
        (["--data", "CelebA", "--disjoint-val"], "--disjoint-val does not apply to celeba (vision data)"),
        (["--data", "Health", "--image-size", "32"], "--image-size does not apply to health (tabular data)"),
        (["--data", "Adult", "--fairness-nodes", "all"], "--fairness-nodes does not apply to adult (tabular data)"),
    ],
)
def test_flags_of_another_modality_are_refused(capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--no-progress", *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_sweep_prints_the_front_and_writes_table_and_plot(capsys, tmp_path, data_dir):
    pytest.importorskip("matplotlib")
    csv, plot = tmp_path / "adult.csv", tmp_path / "front"
    code, captured = run_cli(
        capsys, "sweep", "--data", "Adult", "--data-dir", str(data_dir), "--epochs", "1",
        "--mode", "bilevel", "lagrangian", "--etas", "0", "100", "--seeds", "0", "1", "--no-progress",
        "--budgets", "0.05", "1.0", "--table", str(csv), "--plot", str(plot),
    )
    assert code == 0
    assert "adult: 8 models, 8 checkpoints, up to 1 epochs; each model's epoch chosen by validation accuracy" \
        in captured.out
    import pandas as pd

    table = pd.read_csv(csv)
    assert len(table) == 8 and set(table["strategy"]) == {"bilevel", "lagrangian"}
    assert table["stack_size"].eq(4).all()
    assert sorted(table["eta"].unique()) == [0.0, 100.0] and sorted(table["seed"].unique()) == [0, 1]
    # every model meets a budget of 1.0: the budget table reports all 2 seeds of both strategies
    lines = [line for line in captured.out.splitlines() if line.strip().endswith(" 2") and "1.00" in line]
    assert len(lines) == 2
    assert (tmp_path / "front.png").is_file() and (tmp_path / "front.svg").is_file()


def test_sweep_trains_stackelberg_stacks(capsys, tmp_path, data_dir):
    csv = tmp_path / "adult.csv"
    code, captured = run_cli(
        capsys, "sweep", "--data", "Adult", "--data-dir", str(data_dir), "--epochs", "1", "--mode", "stackelberg",
        "--etas", "0", "100", "--unroll-steps", "2", "--no-progress", "--table", str(csv),
    )
    assert code == 0
    import pandas as pd

    table = pd.read_csv(csv)
    assert len(table) == 2 and set(table["strategy"]) == {"stackelberg"} and table["stack_size"].eq(2).all()
    assert table["test_accuracy"].between(0.7, 1.0).all()


@pytest.mark.parametrize("args, message", [
    (["--eta", "10"], "takes --etas (a list), not --eta"),
    (["--seed", "3"], "takes --seeds (a list), not --seed"),
    (["--backbone", "gat"], "--backbone does not apply to adult"),
])
def test_sweep_refuses_single_run_flags(capsys, data_dir, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["sweep", "--data-dir", str(data_dir), "--no-progress", *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_checkpoint_and_resume_from_the_command_line(capsys, tmp_path, data_dir):
    common = ["train", "--data", "Adult", "--data-dir", str(data_dir), "--mode", "erm", "bilevel", "--no-progress"]
    main([*common, "--epochs", "1", "--checkpoint-dir", str(tmp_path)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bilevel", "erm"]
    capsys.readouterr()
    main([*common, "--epochs", "3", "--checkpoint-dir", str(tmp_path), "--resume"])
    def rows(out):  # the table's rows and the intervals under it
        return [line for line in out.splitlines() if line.startswith(("erm ", "bilevel ", "  erm:", "  bilevel "))]

    resumed = rows(capsys.readouterr().out)
    main([*common, "--epochs", "3"])
    whole = rows(capsys.readouterr().out)
    assert resumed == whole and whole[0].startswith("erm ") and len(whole) == 4
    with pytest.raises(SystemExit):
        main([*common, "--resume"])
    assert "--resume needs --checkpoint-dir" in capsys.readouterr().err


def test_budget_run_searches_eta_and_saves_models_that_load_for_prediction(capsys, tmp_path, data_dir):
    import fairbinn

    code, captured = run_cli(
        capsys, "train", "--data", "Adult", "--data-dir", str(data_dir), "--epochs", "2", "--mode", "erm",
        "lagrangian", "--budget", "0.1", "--confidence", "0", "--no-progress", "--save", str(tmp_path / "models"),
        "--output", str(tmp_path / "run.json"),
    )
    assert code == 0
    out = captured.out
    assert "epoch chosen by validation accuracy among the epochs over automatically searched etas whose " \
           "validation dp is <= 0.1" in out
    assert "val DP  met" in out
    lagrangian = next(line for line in out.splitlines() if line.startswith("lagrangian (eta="))
    runs = {run["config"]["strategy"]: run for run in json.loads((tmp_path / "run.json").read_text())["runs"]}
    chosen = runs["lagrangian"]
    assert chosen["budget_met"] is True and chosen["val"]["dp"] <= 0.1 and " yes " in lagrangian
    assert chosen["config"]["fairness_budget"] == 0.1 and f"{chosen['test']['accuracy']:.4f}" in lagrangian
    # the saved model predicts what was reported
    data = fairbinn.load_adult(data_dir)
    model = fairbinn.load_model(tmp_path / "models" / "lagrangian")
    saved = fairbinn.read_saved(tmp_path / "models" / "lagrangian")
    report = fairbinn.Trainer().evaluate(model, data.test)
    # the stack evaluated the reported metrics, rounding differently from the model alone: continuous ones only
    for key in ("soft_dp", "soft_eo"):
        assert report[key] == pytest.approx(saved["metrics"]["test"][key], abs=1e-6)
        assert report[key] == pytest.approx(chosen["test"][key], abs=1e-6)
    assert saved["config"]["eta"] == chosen["config"]["eta"] and saved["model"]["info"]["group_names"] == [
        "Female", "Male"]
    assert fairbinn.load_model(tmp_path / "models" / "erm") is not None


def test_budget_with_a_fixed_eta_and_the_paper_game(capsys, data_dir):
    code, captured = run_cli(
        capsys, "train", "--data", "Adult", "--data-dir", str(data_dir), "--epochs", "2", "--mode", "bilevel",
        "--paper-game", "--eta", "5", "--budget", "0.5", "--budget-metric", "soft_dp", "--no-progress",
    )
    assert code == 0
    assert "epoch chosen by validation accuracy among the epochs certified to have a population soft_dp <= 0.5 " \
           "at 95% confidence" in captured.out
    row = next(line for line in captured.out.splitlines() if line.startswith("bilevel-paper (eta=5) "))
    assert "val soft DP" in captured.out and "val bound" in captured.out
    assert row.split()[6] == "yes"  # certified: 6,032 validation rows bound a soft DP near 0.2 well below 0.5


@pytest.mark.parametrize("args, message", [
    (["--budget", "0.05", "--select", "auc"], "it cannot be combined with --select"),
    (["--budget", "0"], "--budget bounds a gap between groups' rates, so it must be in (0, 1]; got 0"),
    (["--budget", "nan"], "--budget bounds a gap between groups' rates, so it must be in (0, 1]; got nan"),
    (["--budget", "inf"], "--budget bounds a gap between groups' rates, so it must be in (0, 1]; got inf"),
    (["--budget", "0.1", "--checkpoint-dir", "x"], "--budget without --eta searches eta over many models"),
    (["--paper-game", "--leader-penalty"], "argument --leader-penalty: not allowed with argument --paper-game"),
])
def test_bad_budget_arguments(capsys, data_dir, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data-dir", str(data_dir), "--no-progress", "--epochs", "1", *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_budget_metric_must_be_known_and_measurable(capsys, data_dir):
    with pytest.raises(SystemExit):
        main(["train", "--budget", "0.1", "--budget-metric", "parity"])
    assert "invalid choice: 'parity'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--data", "NBA", "--data-dir", str(data_dir), "--budget", "0.1", "--no-progress"])
    assert "validation nodes are its test nodes; add --disjoint-val" in capsys.readouterr().err


def test_sweep_with_automatic_etas(capsys, tmp_path, data_dir):
    code, captured = run_cli(
        capsys, "sweep", "--data", "Adult", "--data-dir", str(data_dir), "--epochs", "1", "--mode", "lagrangian",
        "--etas", "auto", "--no-progress", "--table", str(tmp_path / "t.csv"), "--rows", "models",
    )
    assert code == 0 and "adult: 16 models, 16 checkpoints" in captured.out
    import pandas as pd

    table = pd.read_csv(tmp_path / "t.csv")
    assert len(table) == 16 and set(table["search"]) == {"coarse", "refined"}
    with pytest.raises(SystemExit):
        main(["sweep", "--data-dir", str(data_dir), "--etas", "auto", "10", "--no-progress"])
    assert "--etas takes numbers or 'auto' alone" in capsys.readouterr().err


def test_graph_fairness_nodes_and_sparse_adjacency_flags(capsys, tmp_path, data_dir):
    out = tmp_path / "nba.json"
    code, _ = run_cli(
        capsys, "train", "--data", "NBA", "--data-dir", str(data_dir), "--epochs", "2", "--disjoint-val",
        "--mode", "lagrangian", "--fairness-nodes", "all", "--sparse-adjacency", "--no-progress",
        "--output", str(out),
    )
    assert code == 0
    run = json.loads(out.read_text())["runs"][0]
    assert run["adjacency"] == "sparse csr" and run["fairness_nodes"] > 100
    graph = ["train", "--data", "NBA", "--data-dir", str(data_dir), "--disjoint-val", "--mode", "lagrangian",
             "--fairness-nodes", "all", "--no-progress"]
    for extra, message in ((["--constraint", "eo", "--epochs", "1"], "reads no labels"),
                           (["--budget", "0.05"], "give --eta")):
        with pytest.raises(SystemExit) as exit_info:
            main([*graph, *extra])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_threshold_postprocessing_certifies_saves_and_loads(capsys, tmp_path, data_dir):
    import fairbinn

    code, captured = run_cli(
        capsys, "train", "--data", "Adult", "--data-dir", str(data_dir), "--epochs", "2", "--mode", "erm",
        "--budget", "0.05", "--postprocess", "thresholds", "--no-progress", "--save", str(tmp_path / "models"),
        "--output", str(tmp_path / "run.json"),
    )
    assert code == 0
    out = captured.out
    assert "epoch chosen by last epoch, then group thresholds fitted on the training rows and certified" in out
    line = next(line for line in out.splitlines() if line.startswith("erm + thresholds"))
    run = json.loads((tmp_path / "run.json").read_text())["runs"][0]
    assert run["label"] == "erm + thresholds" and run["config"]["selection_metric"] is None
    certificate = run["certificate"]
    assert certificate["metric"] == "dp" and certificate["budget"] == 0.05 and certificate["confidence"] == 0.95
    verdict = "yes" if certificate["certified"] else "no"
    assert f"{certificate['upper_bound']:.4f} {verdict:>9}" in line
    assert f"{run['test']['accuracy']:.4f}" in line and set(run["test_intervals"]) >= {"dp", "eo", "eopp"}
    assert run["thresholds"]["groups"] == ["Female", "Male"]
    # the saved model carries the thresholds and needs the group to decide
    model = fairbinn.load_model(tmp_path / "models" / "erm")
    assert model.thresholds.to_dict()["high"] == run["thresholds"]["high"]
    data = fairbinn.load_adult(data_dir)
    report = fairbinn.Trainer().evaluate(model, data.test)  # the scores are the model's own
    assert report["soft_dp"] == pytest.approx(run["test"]["soft_dp"], abs=1e-6)
    with pytest.raises(ValueError, match="pass each row's group"):
        model.predict(data.test.x)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--postprocess", "thresholds"], "--postprocess thresholds fits the thresholds to a fairness budget"),
        (["--postprocess", "thresholds", "--budget", "0.1", "--budget-metric", "soft_dp"],
         "--postprocess thresholds cannot control --budget-metric soft_dp"),
        (["--postprocess", "thresholds", "--budget", "0.1", "--budget-metric", "eo", "--randomized-thresholds"],
         "--randomized-thresholds supports --budget-metric dp and eopp"),
        (["--randomized-thresholds", "--budget", "0.1"], "--randomized-thresholds applies to --postprocess"),
        (["--postprocess", "thresholds", "--budget", "0.1", "--select", "auc"],
         "--postprocess thresholds chooses the epoch itself"),
        (["--mode", "best"], "--mode best chooses among certified candidates: give --budget B"),
        (["--mode", "best", "--budget", "0.1", "--confidence", "0"], "--mode best chooses among certified candidates"),
        (["--mode", "best", "--budget", "0.1", "--eta", "3"], "--mode best chooses among certified candidates"),
    ],
)
def test_bad_threshold_and_best_arguments(capsys, data_dir, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--data-dir", str(data_dir), "--epochs", "1", "--no-progress", *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_mode_best_names_the_certified_winner(capsys, tmp_path, data_dir):
    import fairbinn

    code, captured = run_cli(
        capsys, "train", "--data", "Adult", "--data-dir", str(data_dir), "--epochs", "1", "--mode", "best",
        "--budget", "0.05", "--no-progress", "--output", str(tmp_path / "run.json"), "--save", str(tmp_path / "m"),
    )
    assert code == 0
    run = json.loads((tmp_path / "run.json").read_text())["runs"][0]
    chosen = run["chosen"]
    assert chosen in {"erm", "lagrangian", "bilevel", "erm + thresholds", "lagrangian + thresholds",
                      "bilevel + thresholds"}
    assert run["label"].startswith(f"best: {chosen}") and run["certificate"]["budget"] == 0.05
    line = next(line for line in captured.out.splitlines() if line.startswith("best: "))
    assert f"{run['test']['accuracy']:.4f}" in line
    model = fairbinn.load_model(tmp_path / "m" / "best")
    assert hasattr(model, "thresholds") == chosen.endswith("thresholds")


def test_threshold_postprocessing_on_a_graph(capsys, tmp_path, data_dir):
    code, captured = run_cli(
        capsys, "train", "--data", "NBA", "--data-dir", str(data_dir), "--disjoint-val", "--epochs", "3",
        "--mode", "erm", "--budget", "0.1", "--postprocess", "thresholds", "--no-progress",
        "--output", str(tmp_path / "run.json"),
    )
    assert code == 0
    run = json.loads((tmp_path / "run.json").read_text())["runs"][0]
    assert run["label"] == "erm + thresholds" and run["thresholds"]["metric"] == "dp"
    # 78 validation nodes cannot certify a DP of 0.1 (see benchmarks/results/certifiable.md): said, not hidden
    assert run["certificate"]["certified"] is False and run["certificate"]["upper_bound"] > 0.1
    assert "erm + thresholds" in captured.out and " no " in captured.out
