"""Check that every requirement of picasso-vision's chosen extras is installed.

Usage: python scripts/check_extras.py all,dev
Exits non-zero, naming what is missing, so a failed install cannot pass as skipped tests.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, requires, version

from packaging.requirements import Requirement

PROJECT = "picasso-vision"


def needed(extras: set[str], seen: set[str] | None = None) -> list[Requirement]:
    """The requirements of the base install and of ``extras``, self-references expanded."""
    seen = set() if seen is None else seen
    found: list[Requirement] = []
    for line in requires(PROJECT) or []:
        requirement = Requirement(line)
        marker = requirement.marker
        chosen = [e for e in extras | {""} if marker is None or marker.evaluate({"extra": e})]
        if not chosen:
            continue
        if requirement.name == PROJECT:
            more = set(requirement.extras) - seen
            seen |= more
            found += needed(more, seen)
        else:
            found.append(requirement)
    return found


def main() -> int:
    extras = (
        {e.strip() for e in sys.argv[1].split(",") if e.strip()} if len(sys.argv) > 1 else set()
    )
    missing = []
    for requirement in needed(extras):
        try:
            installed = version(requirement.name)
        except PackageNotFoundError:
            missing.append(f"{requirement} (not installed)")
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            missing.append(f"{requirement} (found {installed})")
    for problem in missing:
        print(f"missing: {problem}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
