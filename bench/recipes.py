"""Test error of the seed recipe and of ``--preset best`` over seeds 0-9 (README's table).

Each seed draws its own data, initialization and shuffling. This is one
``pyfw sweep`` call::

    python -m pyfw sweep --grid preset=seed,best --seeds 0-9 --out recipes.jsonl

run with pyfw_rs when it is built (same bits as pyfw, much faster), else with pyfw.
Usage: ``python bench/recipes.py [--seeds 10] [--out recipes.jsonl] [more pyfw sweep options]``
(``--resume`` continues a stopped run, ``--plot recipes.svg`` draws it).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pyfw import cli  # noqa: E402


def main() -> int:
    """Run the sweep of both presets over seeds 0 .. N-1 and print its summary table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1 (default: 10)")
    p.add_argument("--out", default="recipes.jsonl", help="the results file (default: recipes.jsonl)")
    args, more = p.parse_known_args()
    backend = "rs" if importlib.util.find_spec("pyfw_rs") is not None else "py"
    return cli.main(["sweep", "--grid", "preset=seed,best", "--seeds", f"0-{args.seeds - 1}", "--out", args.out,
                     "--backend", backend, *more])


if __name__ == "__main__":
    sys.exit(main())
