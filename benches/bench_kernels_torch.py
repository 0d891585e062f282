"""The memory-bound and exponential-bound kernels against NumPy and PyTorch, side by side: softmax
cross-entropy forward + backward, every optimizer update at 100k and 10M parameters, and batch
norm (training forward + backward), with the memory bandwidth measured in the same run.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benches/bench_kernels_torch.py [--threads 2]

PyTorch is found when importable (or from a virtual environment named by ``--torch-site``, its
``site-packages`` appended to the path). It is the rows of ``saddlepoint bench --only
memory,optim,norm`` plus the cross-entropy rows of its kernels group, without the GEMMs.
"""

from __future__ import annotations

import argparse
import sys

from threadpoolctl import threadpool_limits

from saddlepoint import set_num_threads
from saddlepoint.bench import kernels, report
from saddlepoint.bench.timing import FULL, SHORT

from common import machine_description, torch_or_none


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--full", action="store_true", help="the bandwidth over 100M floats, more repeats")
    parser.add_argument("--torch-site", help="a site-packages folder holding torch")
    parser.add_argument("--only", default="memory,cross_entropy,optim,norm")
    args = parser.parse_args()
    if args.torch_site:
        sys.path.append(args.torch_site)
    torch = torch_or_none()
    set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    sizes = FULL if args.full else SHORT
    only = args.only.split(",")
    print(machine_description())
    print(f"threads: {args.threads} (saddlepoint, NumPy's BLAS, PyTorch); torch: {torch is not None}")
    rows, bandwidth = [], None
    with threadpool_limits(args.threads, user_api="blas"):
        if "memory" in only:
            found, bandwidth = kernels.memory(sizes, torch)
            rows += found
        if "cross_entropy" in only:
            rows += kernels.softmax_cross_entropy(sizes, torch)
        if "optim" in only:
            rows += kernels.optimizers(sizes, torch, bandwidth)
        if "norm" in only:
            rows += kernels.batch_norm(sizes, torch)
    print("\n".join(report.table(rows)))


if __name__ == "__main__":
    main()
