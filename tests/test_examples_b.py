"""Examples 5-8 in examples/, checked as tests/test_examples.py checks examples 1-4: each runs in
its quick mode, its FINDING lines match the patterns below, the claim over the numbers they print
holds, and it saves its figures when matplotlib is installed. The entries are
``test_examples.Example``s, so they can join its ``EXAMPLES`` list as they are.

The measured times of example 5 are matched but never compared (a loaded machine may turn them);
its words follow its numbers in the script.
"""

from __future__ import annotations

import pytest
from test_examples import NUMBER, Example, number
from test_examples import test_example_runs_quick_and_prints_its_finding as check_example

EXAMPLES_B = [
    Example(
        "05_batch_size.py",
        [
            rf"large batch has (?:less|more) time per epoch: {NUMBER} ms .* against {NUMBER} ms",
            rf"and (?:more|less) time per update: {NUMBER} ms against {NUMBER} ms",
            rf"small batch is better on validation: accuracy {number('small_acc')} .* against "
            rf"{number('large_acc')} ",
            rf"small batch reached a flatter minimum: top Hessian eigenvalue {number('small_top')} against "
            rf"{number('large_top')}, loss increase under 5% perturbations {number('small_rise')} against "
            rf"{number('large_rise')} ",
        ],
        lambda v: (
            v["small_acc"] > v["large_acc"]
            and v["small_top"] < v["large_top"]
            and v["small_rise"] < v["large_rise"]
        ),
        "batches of 8 end better on validation and in a flatter minimum than the whole training set",
    ),
    Example(
        "06_saddle_point.py",
        [
            r"the worked example at \(0, 0\) is a saddle point: Hessian eigenvalues -2 and 2$",
            rf"u = \({number('u1')}, {number('u2')}\); escape lowers the loss from {number('before')} to "
            rf"{number('after')}$",
            r"the all-zero tanh network is a saddle point",
            rf"gradient descent alone stays at the saddle: loss {number('stuck_start')} -> "
            rf"{number('stuck_end')} in",
            rf"SaddleEscape escaped at epoch {NUMBER} \(λ = {number('escape_eigenvalue')}\): loss "
            rf"{number('escape_before')} -> {number('escape_after')}, and {number('escape_end')} after",
        ],
        lambda v: (
            abs(v["u1"] - 2**-0.5) < 1e-4
            and abs(v["u2"] - 2**-0.5) < 1e-4
            and v["before"] == 1
            and v["after"] < 1e-3
            and v["stuck_start"] == v["stuck_end"]
            and v["escape_eigenvalue"] < 0
            and abs(v["escape_before"] - v["stuck_start"]) <= 1e-3 * v["stuck_start"]
            and v["escape_end"] < v["escape_after"] < v["escape_before"] / 2
        ),
        "the worked example escapes along u = (1, 1)/√2 to a loss near 0; gradient descent stays at the "
        "zero network's saddle, SaddleEscape leaves it and training goes on",
    ),
    Example(
        "07_general_guidance.py",
        [
            r"FINDING: checkerboard: model bias \(",
            r"FINDING: deep sigmoid: optimization \(",
            r"FINDING: few noisy samples: overfitting \(",
            r"FINDING: shifted test: mismatch \(",
        ],
        None,
        "each guidance data set gets the verdict it was made for",
    ),
    Example(
        "08_cnn_vs_dense.py",
        [
            rf"the CNN beats the dense network: test accuracy {number('cnn')} against {number('dense')}, "
            rf"with {number('cnn_parameters')} against {number('dense_parameters')} parameters",
            rf"shift augmentation (?:helps|does not help) the dense network: test accuracy {NUMBER} against",
            rf"shift augmentation (?:helps|does not help) the CNN: test accuracy {number('shift')} against",
            rf"flip augmentation hurts the CNN: test accuracy {number('flip')} against {number('shift_alone')} ",
        ],
        lambda v: (
            v["cnn"] > v["dense"]
            and v["cnn_parameters"] < 1.5 * v["dense_parameters"]
            and v["flip"] < v["shift_alone"] == v["shift"]
        ),
        "the CNN beats a dense network of about as many parameters; flipping digits hurts",
    ),
]


@pytest.mark.parametrize("example", EXAMPLES_B, ids=[e.script for e in EXAMPLES_B])
def test_example_b_runs_quick_and_prints_its_finding(example, tmp_path):
    check_example(example, tmp_path)
