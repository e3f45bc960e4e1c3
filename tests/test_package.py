"""The package's shape: a public API, one job per folder, every runtime requirement used, no library patched,
tests through public names. Each of these once went wrong; the scans are over the source, so they fail the
moment it goes wrong again."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import kbang_egov

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "kbang_egov"
SUBPACKAGES = {"reading", "rules", "reporting", "forms", "operations"}
TOP_LEVEL = {"__init__.py", "cli.py", "text.py", "settings.py"}
# Requirement name -> the module it is imported as.
IMPORT_NAMES = {"PyYAML": "yaml", "python-calamine": "python_calamine"}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_every_public_name_resolves():
    assert len(set(kbang_egov.__all__)) == len(kbang_egov.__all__)
    for name in kbang_egov.__all__:
        assert getattr(kbang_egov, name) is not None, name
    with pytest.raises(AttributeError):
        kbang_egov.no_such_name  # noqa: B018


def test_each_module_sits_in_the_folder_of_its_job():
    for path in _modules():
        rel = path.relative_to(PACKAGE)
        if len(rel.parts) == 1:
            assert rel.name in TOP_LEVEL, f"{rel}: put it in the subpackage of its job ({sorted(SUBPACKAGES)})"
        else:
            assert rel.parts[0] in SUBPACKAGES | {"mail"}, rel
            init = PACKAGE / rel.parts[0] / "__init__.py"
            if rel.name != "__init__.py":  # the folder's docstring names each of its modules and its job
                assert f"`{rel.stem}`" in ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))), rel


def test_every_runtime_requirement_is_imported_by_the_package():
    used = set().union(*(_imported(p) for p in _modules()))
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        name = re.split(r"[<>=!~\[;# ]", line.strip(), maxsplit=1)[0]
        if name and not name.startswith("-"):
            assert IMPORT_NAMES.get(name, name.lower()) in used, f"{name} is required but never imported"


# Process-wide tweaks and library internals the house style rules out (STYLE.md, point 13).
FORBIDDEN = [
    (r"\bos\._exit\(", "os._exit skips the interpreter's clean-up"),
    (r"\bgc\.(freeze|disable)\(", "a process-wide garbage-collector tweak"),
    (r"\bmallopt\b", "an allocator call through ctypes"),
    (r"\bregister_at_fork\(", "a fork hook"),
    (r"\b(xlsxwriter|openpyxl|pandas|pd|np|numpy|python_calamine|zipfile|csv)\.[A-Za-z_.]*\b_[a-z]\w*",
     "a library's private name"),
    (r"\._get_xf_index\(", "xlsxwriter's private format index"),
    (r"setattr\((xlsxwriter|openpyxl|pandas|pd|zipfile|csv)\b", "a library's module patched"),
]


@pytest.mark.parametrize(("pattern", "why"), FORBIDDEN)
def test_no_library_is_patched_and_no_process_wide_tweak(pattern, why):
    hits = [f"{p.relative_to(ROOT)}:{n}" for p in _modules()
            for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
            if re.search(pattern, line) and not line.lstrip().startswith("#")]
    assert not hits, f"{why}: {hits}"


def test_tests_use_public_names_only():
    """No test imports or reaches into a private name of the package."""
    offenders = []
    for path in sorted((ROOT / "tests").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        ours = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("kbang_egov"):
                for a in node.names:
                    if a.name.startswith("_") and a.name != "__version__":
                        offenders.append(f"{path.name}: imports {a.name}")
                    ours.add(a.asname or a.name)
            elif isinstance(node, ast.Import):
                ours.update(a.asname or a.name for a in node.names if a.name.startswith("kbang_egov"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                    and isinstance(node.value, ast.Name) and node.value.id in ours):
                offenders.append(f"{path.name}:{node.lineno}: {node.value.id}.{node.attr}")
    assert not offenders, offenders


def test_the_readme_layout_names_every_module():
    layout = (ROOT / "README.md").read_text(encoding="utf-8").split("## Layout", 1)[1].split("\n## ", 1)[0]
    missing = [str(p.relative_to(PACKAGE)) for p in _modules() if p.name != "__init__.py" and p.name not in layout]
    assert not missing, f"README's layout section does not name {missing}"
