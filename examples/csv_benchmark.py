"""Add a dataset as a benchmark: a CSV file, the paper's MLP; then run it by name (library and command line)."""

import tempfile
from pathlib import Path

import pandas as pd

import fairbinn
from fairbinn.benchmark import Benchmark, register_benchmark
from fairbinn.cli import main
from toy_data import make_split  # examples/toy_data.py

# a CSV file standing in for yours: 6 numeric columns, a 0/1 label "y" and a group column "g"
toy = make_split(1000, 0)
folder = Path(tempfile.mkdtemp())
frame = pd.DataFrame(toy.x.numpy(), columns=[f"x{i}" for i in range(6)]).assign(y=toy.y.int(), g=toy.s)
frame.to_csv(folder / "toy.csv", index=False)

register_benchmark(Benchmark(
    "toy_csv", "tabular",
    load=lambda data_dir=None, seed=0: fairbinn.load_csv(Path(data_dir or folder) / "toy.csv", "y", ["g"], seed=seed),
    build_model=fairbinn.paper_mlp,
    paper_settings=lambda data: {"epochs": 20, "lr": 1e-2},  # the settings a run starts from
), overwrite=True)

if __name__ == "__main__":
    result = fairbinn.run("toy_csv", strategy="lagrangian", eta=1, progress=False)
    print(result.test)
    main(["train", "--data", "toy_csv", "--mode", "erm", "bilevel", "--eta", "1", "--no-progress"])
