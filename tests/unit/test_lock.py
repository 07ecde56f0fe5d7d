from __future__ import annotations

from pathlib import Path

from conjure_sandbox.lock import browser_lock_argv, lock_argv, locked_names

LOCK = """\
numpy==2.5.5 \\
    --hash=sha256:aa
    # via pandas
typing-extensions==4.15.0 ; python_full_version < '3.14' \\
    --hash=sha256:bb
"""


def test_locked_names_reads_the_pins_in_file_order() -> None:
    assert locked_names(LOCK) == ("numpy", "typing-extensions")


def test_the_venv_lock_leaves_debians_pycairo_out() -> None:
    argv = lock_argv(Path("docker"))
    assert argv[argv.index("--no-emit-package") + 1] == "pycairo"
    assert argv[argv.index("--output-file") + 1] == "docker/requirements.lock"


def test_the_browser_lock_is_held_to_the_venv_pins_and_omits_them() -> None:
    argv = browser_lock_argv(Path("docker"), LOCK, upgrade=True)
    omitted = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--no-emit-package"]
    assert omitted == ["pycairo", "numpy", "typing-extensions"]
    assert argv[argv.index("--constraint") + 1] == "docker/requirements.lock"
    assert argv[argv.index("--output-file") + 1] == "docker/requirements-browser.lock"
    assert "--upgrade" in argv
