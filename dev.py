#!/usr/bin/env python3
"""Two commands on a fresh machine with only Python 3.11+:

    python3 dev.py run     # install what is needed into .venv, then `dealkeeper run`
    python3 dev.py test    # install what is needed into .venv, then the whole test suite

Also: `python3 dev.py lint` (ruff, mypy, import-linter's layers, hadolint on the
Dockerfile), `python3 dev.py bench` (benchmarks in bench/), `python3 dev.py test
--under-load` (the whole suite three times in a row beside a CPU hog on every core, as on a
busy CI machine), `python3 dev.py mutate` (mutation testing of the pure core, with a score
per module), and `python3 dev.py dealkeeper ARGS...` (any dealkeeper command inside the
environment).
Arguments after the command are passed on (e.g. `python3 dev.py test -k web`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".dealkeeper-installed"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def fail(message: str) -> None:
    print(f"dev.py: {message}", file=sys.stderr)
    raise SystemExit(2)


def wanted_stamp() -> str:
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


def ensure_environment() -> None:
    """Create .venv and install the project with its dev tools, once per pyproject change."""
    if sys.version_info < (3, 11):  # noqa: UP036 - this script must also run on older Pythons to say so
        fail(f"Python 3.11 or newer is needed, this is {sys.version.split()[0]}")
    if not (BIN / "python").exists():
        print("dev.py: creating .venv", file=sys.stderr)
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    if STAMP.exists() and STAMP.read_text() == wanted_stamp():
        return
    print("dev.py: installing dealkeeper and its dev tools into .venv", file=sys.stderr)
    pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True, cwd=ROOT)
    subprocess.run([*pip, "-e", ".[dev]"], check=True, cwd=ROOT)
    install_dev_packages()
    STAMP.write_text(wanted_stamp())


def install_dev_packages() -> None:
    """Put the checkout on the environment's path, for the packages the wheel leaves out:
    the fake Close (`python -m fakeclose`), the tests' helpers and the benchmarks."""
    where = [str(BIN / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
    site = Path(subprocess.run(where, check=True, capture_output=True, text=True).stdout.strip())
    (site / "dealkeeper-dev.pth").write_text(f"{ROOT}\n")


BROWSER_FILES = (Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver"))
BROWSER_PACKAGES = ("chromium", "chromium-driver")


def ensure_browser() -> None:
    """The console's browser tests drive Debian's Chromium: install it when it is missing and
    this user may (root with apt-get). Otherwise those tests skip, saying how to install it."""
    if all(path.exists() for path in BROWSER_FILES):
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        print(
            "dev.py: no Chromium here, so tests/browser/ will be skipped; "
            "`sudo apt-get install chromium chromium-driver` runs them",
            file=sys.stderr,
        )
        return
    print("dev.py: installing Debian's chromium and chromium-driver", file=sys.stderr)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", *BROWSER_PACKAGES]
    done = subprocess.run(install, stdout=subprocess.DEVNULL, env=env).returncode == 0
    if not done:  # the package lists may be missing on a fresh image
        subprocess.run(["apt-get", "update", "-q"], stdout=subprocess.DEVNULL, env=env)
        done = subprocess.run(install, stdout=subprocess.DEVNULL, env=env).returncode == 0
    if not done:
        print(
            "dev.py: apt-get could not install Chromium; tests/browser/ will be skipped",
            file=sys.stderr,
        )


def run_in_environment(program: str, args: list[str]) -> None:
    """Replace this process, so signals (Ctrl-C) go straight to the program."""
    path = str(BIN / program)
    os.chdir(ROOT)
    os.execv(path, [path, *args])


def lint() -> None:
    steps = [
        [str(BIN / "ruff"), "check", "."],
        [str(BIN / "ruff"), "format", "--check", "."],
        [str(BIN / "mypy")],
        [str(BIN / "lint-imports")],  # the layers of docs/architecture.md (pyproject.toml)
    ]
    hadolint = BIN / "hadolint"
    if hadolint.exists():
        steps.append([str(hadolint), "Dockerfile"])
    else:
        print("dev.py: no hadolint wheel for this platform, so the Dockerfile is not linted")
    for step in steps:
        print("$", " ".join(Path(step[0]).name if i == 0 else a for i, a in enumerate(step)))
        if subprocess.run(step, cwd=ROOT).returncode:
            raise SystemExit(1)


UNDER_LOAD_ROUNDS = 3


def test_under_load(args: list[str]) -> None:
    """The suite UNDER_LOAD_ROUNDS times in a row, each core kept busy by a spinning process
    (stress-ng's --cpu, without needing it): a test that holds only on an idle machine
    fails here first."""
    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"])
        for _ in range(os.cpu_count() or 2)
    ]
    try:
        for round_number in range(1, UNDER_LOAD_ROUNDS + 1):
            print(f"dev.py: round {round_number} of {UNDER_LOAD_ROUNDS}, {len(hogs)} CPU hogs")
            pytest = [str(BIN / "python"), "-m", "pytest", *args]
            if subprocess.run(pytest, cwd=ROOT).returncode:
                print(f"dev.py: round {round_number} failed under load", file=sys.stderr)
                raise SystemExit(1)
        print(f"dev.py: {UNDER_LOAD_ROUNDS} rounds green under load")
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


# mutmut's exit codes for one mutant (mutmut/stats.py): 1 and 3 a test failed, 0 none did,
# 5 and 33 no test runs the code. Anything else (timeouts, ...) is shown as it is.
MUTANT_STATUS = {0: "survived", 1: "killed", 3: "killed", 5: "no tests", 33: "no tests"}


def mutate(args: list[str]) -> None:
    """Mutation testing of the pure core with mutmut ([tool.mutmut] in pyproject.toml): it
    works in mutants/ (a copy; git ignores it), remembers results between runs, and tests
    each mutant with the unit tests that run its function. Then a score per module."""
    code = subprocess.run([str(BIN / "mutmut"), "run", *args], cwd=ROOT).returncode
    if code:
        raise SystemExit(code)
    print(mutation_report())


def mutation_report() -> str:
    """Killed / survived / no tests per mutated module, and the score: killed of all."""
    import json

    rows, totals = [], {"killed": 0, "survived": 0, "no tests": 0, "other": 0}
    for meta in sorted((ROOT / "mutants").glob("service/**/*.py.meta")):
        counts = dict.fromkeys(totals, 0)
        for exit_code in json.loads(meta.read_text())["exit_code_by_key"].values():
            counts[MUTANT_STATUS.get(exit_code, "other")] += 1
        if sum(counts.values()):
            rows.append((str(meta.relative_to(ROOT / "mutants"))[: -len(".meta")], counts))
            totals = {k: totals[k] + counts[k] for k in totals}
    lines = [f"{'module':48} {'mutants':>7} {'killed':>7} {'survived':>8} {'no tests':>8}"]
    for name, c in [*rows, ("all", totals)]:
        lines.append(
            f"{name:48} {sum(c.values()):7} {c['killed']:7} {c['survived']:8} {c['no tests']:8}"
        )
    score = totals["killed"] / max(1, sum(totals.values()))
    lines.append(f"mutation score: {score:.1%} killed (survived and untested count against it)")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return
    command, rest = argv[0], argv[1:]
    ensure_environment()
    if command == "run":
        run_in_environment("dealkeeper", ["run", *rest])
    elif command == "test" and "--under-load" in rest:
        test_under_load([a for a in rest if a != "--under-load"])
    elif command == "test":
        ensure_browser()
        run_in_environment("python", ["-m", "pytest", *rest])
    elif command == "lint":
        lint()
    elif command == "bench":
        run_in_environment("python", ["-m", "bench", *rest])
    elif command == "mutate":
        mutate(rest)
    elif command == "dealkeeper":
        run_in_environment("dealkeeper", rest)
    else:
        fail(f"unknown command {command!r}; expected run, test, lint, bench, mutate or dealkeeper")


if __name__ == "__main__":
    main(sys.argv[1:])
