"""The ``saddlepoint bench`` command, at the tiny sizes of its hidden ``--quick`` (no timing
assertions: the machine is shared)."""

import json
import os
import subprocess
import sys

import pytest

from saddlepoint import bench
from saddlepoint.cli import main

RECORD_FIELDS = {
    "cpu",
    "architecture",
    "flags",
    "logical_cores",
    "saddlepoint_threads",
    "numpy_blas",
    "environment",
    "versions",
}


def test_machine_and_kernels_print_one_table_and_write_json(capsys, tmp_path):
    path = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--only", "machine,kernels", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("machine: ")
    assert "numpy BLAS: " in out and "versions: python " in out
    assert "row" in out and "saddlepoint" in out and "ratio" in out
    assert "dense fwd+bwd 16x32->8" in out and "softmax cross-entropy 16x10" in out
    assert "GEMM 64" not in out and "MLP epoch" not in out  # only the groups asked for
    doc = json.loads(path.read_text())
    assert doc["mode"] == "quick"
    assert RECORD_FIELDS <= set(doc["machine"])
    assert {"python", "numpy", "saddlepoint"} <= set(doc["machine"]["versions"])
    assert "internal_api" in doc["machine"]["numpy_blas"] or doc["machine"]["numpy_blas"] == {}
    names = [r["name"] for r in doc["rows"]]
    assert names == ["dense fwd+bwd 16x32->8", "softmax cross-entropy 16x10"]
    for r in doc["rows"]:
        assert r["seconds"] > 0 and r["median"] >= r["seconds"]
        assert r["competitors"]["numpy"] > 0 and r["ratios"]["numpy"] > 0
    # Without the GEMM group there is no peak to take a share of.
    assert doc["rows"][0]["limit"] == "GEMM peak" and doc["rows"][0]["share"] is None
    assert doc["limits"] == {"gemm_peak_flops": None, "bandwidth_bytes_per_second": None}


def test_every_group_runs_and_shares_the_limits(capsys, tmp_path):
    path = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--threads", "1", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    texts = (
        "GEMM 64x64x64",
        "memory 0.1M float32",
        "Adam step 1,000 params",
        "batch norm",
        "MLP epoch",
        "LeNet-5",
    )
    for text in texts:
        assert text in out, text
    doc = json.loads(path.read_text())
    assert doc["machine"]["saddlepoint_threads"] == 1
    assert doc["limits"]["gemm_peak_flops"] > 0 and doc["limits"]["bandwidth_bytes_per_second"] > 0
    groups = {r["group"] for r in doc["rows"]}
    assert groups == {"gemm", "memory", "kernels", "optim", "norm", "epoch", "cnn"}
    optimizers = [r for r in doc["rows"] if r["group"] == "optim"]
    assert [r["name"].split()[0] for r in optimizers] == ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"]
    assert all(r["limit"] == "bandwidth" and r["share"] > 0 for r in optimizers)
    epoch = next(r for r in doc["rows"] if r["group"] == "epoch")
    assert {"numpy", "products only"} <= set(epoch["competitors"]) and epoch["share"] > 0
    assert all(r["limit"] == "GEMM peak" and r["share"] > 0 for r in doc["rows"] if r["group"] == "cnn")


def test_the_cnn_rows(capsys, tmp_path):
    path = tmp_path / "bench.json"
    assert main(["bench", "--quick", "--only", "cnn", "--json", str(path)]) == 0
    names = [
        "LeNet-5 fwd+bwd, batch 4, 1x28x28",
        "conv 3x3 4->4 fwd+bwd, batch 2, 6x6",
        "LeNet-5 epoch Adam, 32 samples, batch 4",
    ]
    out = capsys.readouterr().out
    assert all(name in out for name in names)
    rows = json.loads(path.read_text())["rows"]
    assert [r["name"] for r in rows] == names and {r["group"] for r in rows} == {"cnn"}
    for r in rows:
        assert r["seconds"] > 0 and r["median"] >= r["seconds"] and r["rate"].endswith("GFLOP/s")
        assert set(r["ratios"]) == set(r["competitors"]) and all(v > 0 for v in r["ratios"].values())
    # The step and the convolution against NumPy always, PyTorch where installed.
    assert all("numpy" in r["competitors"] for r in rows[:2])


def test_the_openblas_variables_are_recorded_and_named_in_the_table(tmp_path):
    variables = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "512"}
    path = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "saddlepoint.cli", "bench", "--quick", "--only", "norm", "--json", str(path)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=os.environ | variables, check=True)
    assert (
        "OPENBLAS_CORETYPE=Haswell" in done.stdout
        and "env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE" in done.stdout
    )
    assert json.loads(path.read_text())["machine"]["environment"] == variables


@pytest.mark.parametrize("argv", [["--only", "gpu"], ["--only", ""], ["--threads", "0"]])
def test_bad_options_are_refused(argv, capsys):
    assert main(["bench", *argv]) == 2
    assert "saddlepoint: error: argument" in capsys.readouterr().err


def test_the_groups_are_documented():
    assert bench.GROUPS == ("machine", "gemm", "memory", "kernels", "optim", "norm", "epoch", "cnn")
