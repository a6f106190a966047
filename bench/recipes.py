"""Test error of the seed recipe and of ``--preset best`` over seeds 0-9 (README's table).

Each seed draws its own data, initialization and shuffling. Runs with pyfw_rs
when it is built (same bits as pyfw, much faster), else with pyfw.
Usage: ``python bench/recipes.py [--seeds 10]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pyfw import task  # noqa: E402


def main() -> None:
    """Print mean, median and worst test error of each preset, and every seed's error."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=10, help="seeds 0 .. N-1 (default: 10)")
    args = p.parse_args()
    try:
        import pyfw_rs as fw
    except ImportError:
        import pyfw as fw
    print(f"backend {fw.__name__}, seeds 0-{args.seeds - 1}, test error in %")
    print(f"{'preset':8} {'mean':>6} {'median':>6} {'worst':>6}  per seed")
    for name, (_, fields) in task.PRESETS.items():
        errors = [100 * task.train(fw, task.Config(seed=s, **fields))["test_error"] for s in range(args.seeds)]
        print(f"{name:8} {statistics.mean(errors):6.2f} {statistics.median(errors):6.2f} {max(errors):6.2f}  "
              + " ".join(f"{e:.1f}" for e in errors), flush=True)


if __name__ == "__main__":
    main()
