"""The ``xnatnode`` entry point: --version, help, unknown commands, lazy imports."""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from collections.abc import Iterator
from contextlib import redirect_stdout

import pytest
from xnatnode import __version__
from xnatnode.cli import COMMAND_MODULES, _load, build_parser, main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"xnatnode {__version__}"
    with pytest.raises(SystemExit) as info:  # among other flags, argparse answers it
        main(["--version", "--help"])
    assert info.value.code == 0


def test_version_alone_imports_only_the_package_and_the_cli() -> None:
    """The modules ``--version`` adds to those Python imported at start-up: no ``typing`` (which
    pulls in ``re``, ``enum``, ``functools``, ``collections``), ``importlib``, argparse or command
    module, each costing more than the answer (benchmarks/label_validation.md); and its output byte
    for byte, the line argparse's version action prints, as before the fast path."""
    code = ("import sys\nbefore = set(sys.modules)\nfrom xnatnode.cli import main\n"
            "status = main(['--version'])\nprint(sorted(set(sys.modules) - before), status)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60, check=True)
    version_line, added = result.stdout.decode().split("\n", 1)
    assert added == "['__future__', 'xnatnode', 'xnatnode.cli'] 0\n"
    assert f"{version_line}\n" == f"xnatnode {__version__}\n"
    assert result.stderr == b""
    with pytest.raises(SystemExit), redirect_stdout(io.StringIO()) as out:
        build_parser().parse_args(["--version"])
    assert out.getvalue() == f"{version_line}\n"


def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for name in COMMAND_MODULES:
        module = _load(name)
        assert module.NAME in out
        assert callable(module.run)
        assert callable(module.add_arguments)
        assert module.HELP


def test_no_command_prints_help_and_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: xnatnode" in capsys.readouterr().err


def test_unknown_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["frobnicate"])
    assert info.value.code == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


def option_strings(parser: argparse.ArgumentParser) -> Iterator[str]:
    for action in parser._actions:
        yield from action.option_strings
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from option_strings(sub)


def test_no_command_takes_a_password_flag() -> None:
    flags = set(option_strings(build_parser()))
    assert "--xnat-host" in flags, "the connection flags are there"
    assert not {f for f in flags if "pass" in f or "secret" in f or "token" in f}


def test_version_and_help_do_not_import_xnatpy() -> None:
    code = (
        "import sys\n"
        "from xnatnode.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('xnat', 'nibabel', 'pydicom', 'numpy') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_module_entry_point() -> None:
    result = subprocess.run([sys.executable, "-m", "xnatnode", "--version"], capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0
    assert result.stdout.strip() == f"xnatnode {__version__}"
