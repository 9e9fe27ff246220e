"""Mutation testing of the core modules with mutmut ([tool.mutmut] in pyproject.toml).

mutmut changes the code of the modules listed in ``only_mutate`` one small edit at a
time (a mutant: ``<`` for ``<=``, a string for another, an argument dropped, ...) and runs
the fast tests listed in ``pytest_add_cli_args_test_selection`` against each. A mutant
some test fails on is killed; one every test passes on survived. Mutants that change
nothing anyone can observe are listed, with the reason, in
``benchmarks/mutation-equivalents.txt`` and left out of the score.

score = (killed + timed out) / (mutants - listed equivalents)

Run from the repository's root, after ``pip install -e '.[dev]'``::

    # every mutant (about 20 minutes on 2 cores); results are kept in mutants/ and a
    # second run only tries mutants whose function changed
    python benchmarks/mutation.py

    # the same from scratch (mutants/ removed first)
    python benchmarks/mutation.py --fresh

    # the figures of the last run, without running anything
    python benchmarks/mutation.py --report

    # CI (.ci/run): a fixed random sample of 200 mutants (about 1.5 minutes), failing
    # below a score of 0.9
    python benchmarks/mutation.py --sample 200 --seed 13 --min-score 0.9 --fresh

The exit code is 1 when the score is below ``--min-score`` (default 0.9), 2 when mutmut
itself fails.
"""

from __future__ import annotations

import argparse
import collections
import io
import json
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EQUIVALENTS = ROOT / "benchmarks" / "mutation-equivalents.txt"

#: mutmut's exit codes per mutant, by what they mean here.
KILLED = {1, 3}
TIMEOUT = {24, -24, 152, 255, 36}
SURVIVED = {0}
NO_TESTS = {5, 33}


def mutable_files() -> list[Path]:
    """The modules [tool.mutmut] mutates, relative to the root."""
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["mutmut"]
    return [Path(name) for name in config["only_mutate"]]


def all_mutants() -> dict[str, str]:
    """Every mutant's name, mapped to its module's path, generated without running."""
    from mutmut.__main__ import get_mutant_name, write_all_mutants_to_file

    names: dict[str, str] = {}
    for path in mutable_files():
        source = (ROOT / path).read_text("utf-8")
        mutated = write_all_mutants_to_file(out=io.StringIO(), source=source, filename=path)
        for name in mutated.mutant_names:
            names[get_mutant_name(path, name)] = str(path)
    return names


def equivalents() -> dict[str, str]:
    """The listed equivalent mutants: name -> reason."""
    listed: dict[str, str] = {}
    for line in EQUIVALENTS.read_text("utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, reason = line.partition(" ")
            listed[name] = reason.strip()
    return listed


def results() -> dict[str, int | None]:
    """Each mutant's exit code from mutmut's records in mutants/ (None: not tried)."""
    codes: dict[str, int | None] = {}
    for path in mutable_files():
        meta = ROOT / "mutants" / (str(path) + ".meta")
        if meta.exists():
            codes.update(json.loads(meta.read_text("utf-8"))["exit_code_by_key"])
    return codes


def kind(code: int | None) -> str:
    if code in KILLED:
        return "killed"
    if code in TIMEOUT:
        return "timeout"
    if code in SURVIVED:
        return "survived"
    if code in NO_TESTS:
        return "no tests"
    return "not tried" if code is None else f"other ({code})"


def run_mutmut(names: list[str], children: int) -> None:
    command = [sys.executable, "-m", "mutmut", "run", "--max-children", str(children), *names]
    shown = " ".join(command[:6]) + (f" <{len(names)} mutant names>" if names else "")
    print(f"$ {shown}", flush=True)
    done = subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        print(f"mutmut failed (exit code {done.returncode})", file=sys.stderr)
        sys.exit(2)


def report(names: dict[str, str], listed: dict[str, str]) -> float:
    """Print the figures of ``names`` by module and the survivors; return the score."""
    codes = results()
    rows: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    survivors: list[str] = []
    for name, path in sorted(names.items()):
        status = "equivalent" if name in listed else kind(codes.get(name))
        rows[Path(path).name][status] += 1
        if status not in ("killed", "timeout", "equivalent"):
            survivors.append(f"{name}: {status}")
    columns = ["mutants", "killed", "timeout", "survived", "equivalent", "other", "score"]
    print(f"{'module':<20}" + "".join(f"{c:>11}" for c in columns))
    total: collections.Counter[str] = collections.Counter()
    for module in [*sorted(rows), "total"]:
        row = total if module == "total" else rows[module]
        if module != "total":
            total.update(row)
        mutants = sum(row.values())
        other = mutants - sum(row[k] for k in ("killed", "timeout", "survived", "equivalent"))
        scored = mutants - row["equivalent"]
        score = (row["killed"] + row["timeout"]) / scored if scored else 1.0
        cells = [mutants, row["killed"], row["timeout"], row["survived"], row["equivalent"]]
        print(
            f"{module:<20}"
            + "".join(f"{c:>11}" for c in [*cells, other])
            + f"{100 * score:>10.1f}%"
        )
    print(f"\n{len(survivors)} survivors (not listed as equivalent):")
    for line in survivors:
        print(f"  {line}")
    scored = sum(total.values()) - total["equivalent"]
    return (total["killed"] + total["timeout"]) / scored if scored else 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=int, metavar="N", help="try N random mutants only")
    parser.add_argument("--seed", type=int, default=0, help="the sample's random seed")
    parser.add_argument("--min-score", type=float, default=0.9, help="fail below this score")
    parser.add_argument("--fresh", action="store_true", help="remove mutants/ first")
    parser.add_argument("--report", action="store_true", help="only print the last figures")
    parser.add_argument("--children", type=int, default=2, help="mutmut's worker processes")
    args = parser.parse_args()

    started = time.monotonic()
    names = all_mutants()
    listed = equivalents()
    unknown = sorted(set(listed) - set(names))
    if unknown:
        print(f"{EQUIVALENTS.name} names mutants that no longer exist: {unknown}")
        sys.exit(2)
    if args.fresh:
        shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    if args.sample is not None:
        pool = sorted(set(names) - set(listed))
        chosen = sorted(random.Random(args.seed).sample(pool, min(args.sample, len(pool))))
        print(f"sample: {len(chosen)} of {len(pool)} mutants (seed {args.seed})")
        run_mutmut(chosen, args.children)
        names = {name: names[name] for name in chosen}
    elif not args.report:
        run_mutmut([], args.children)
    score = report(names, listed)
    print(
        f"\nscore {100 * score:.1f}% (minimum {100 * args.min_score:.1f}%), "
        f"{time.monotonic() - started:.0f} s"
    )
    if score < args.min_score:
        sys.exit(1)


if __name__ == "__main__":
    main()
