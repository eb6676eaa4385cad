"""The layout yardstick the code is kept to: no module in `bot/` over 300 lines, no class over
about 200, no function over 60 — so a module that grows a second job is split when it does."""

from __future__ import annotations

import ast
from pathlib import Path

BOT = Path(__file__).parent.parent / "bot"
MODULE_LINES, CLASS_LINES, FUNCTION_LINES = 300, 220, 60


def sources() -> list[Path]:
    return sorted(BOT.rglob("*.py"))


def test_no_module_is_over_300_lines() -> None:
    """Every module of the package stays within 300 lines."""
    long = {
        str(p.relative_to(BOT)): n
        for p in sources()
        if (n := len(p.read_text().splitlines())) > MODULE_LINES
    }
    assert long == {}


def test_no_class_or_function_is_too_long() -> None:
    """Classes stay within about 200 lines and functions within 60."""
    found: dict[str, int] = {}
    for path in sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                size = node.end_lineno - node.lineno + 1
                limit = CLASS_LINES if isinstance(node, ast.ClassDef) else FUNCTION_LINES
                if size > limit:
                    found[f"{path.relative_to(BOT)}:{node.name}"] = size
    assert found == {}
