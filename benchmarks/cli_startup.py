"""Start-up time of the command line's help, for one or more source trees side by side.

Each run is a fresh ``python -m captum_bilinear ...`` with ``PYTHONPATH`` set to the tree;
runs of the trees are interleaved (tree 1, tree 2, tree 1, ...) so that the machine's load
falls on all of them alike; the median of ``--repeats`` runs is printed per tree and command.

Usage::

    python benchmarks/cli_startup.py                                   # this checkout
    python benchmarks/cli_startup.py --trees /path/to/main /path/to/branch --repeats 5
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from typing import Dict, List

COMMANDS = (["--help"], ["explain", "--help"])


def time_once(tree: str, arguments: List[str]) -> float:
    environment = dict(os.environ, PYTHONPATH=tree)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "captum_bilinear", *arguments], env=environment, cwd=tree,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", nargs="+", default=[os.path.dirname(os.path.dirname(os.path.abspath(__file__)))])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    times: Dict[str, Dict[str, List[float]]] = {tree: {" ".join(c): [] for c in COMMANDS} for tree in args.trees}
    for _ in range(args.repeats):
        for command in COMMANDS:
            for tree in args.trees:
                times[tree][" ".join(command)].append(time_once(tree, command))
    print(f"median of {args.repeats} runs (s), python {sys.version.split()[0]}")
    for tree, by_command in times.items():
        cells = ", ".join(f"{command}: {statistics.median(values):.2f} (min {min(values):.2f})"
                          for command, values in by_command.items())
        print(f"{tree}: {cells}")


if __name__ == "__main__":
    main()
