"""Dependencies point one way (docs/ARCHITECTURE.md): contract <- golden <- hw <- sim, boards <- host.

Every import in the package, at module level or inside a function, is read from the source and resolved to
its layer; an import of a higher layer, of the other side of sim/boards, or of a bare top-level name
(`golden`, `hw`, ...: the old layout, which would load a second copy of a module) fails the test.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Package -> layer; a module belongs to the longest package that prefixes it.
LAYERS = {"dpfm.golden.contract": 0, "dpfm.golden": 1, "dpfm.hw": 2, "dpfm.sim": 3, "dpfm.boards": 3, "dpfm.host": 4}
FOLDERS = {"golden": "dpfm.golden", "hw": "dpfm.hw", "sim": "dpfm.sim", "boards": "dpfm.boards", "host": "dpfm.host"}
BARE = tuple(FOLDERS)


def package_of(module: str) -> str | None:
    best = None
    for pkg in LAYERS:
        if (module == pkg or module.startswith(pkg + ".")) and (best is None or len(pkg) > len(best)):
            best = pkg
    return best


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT)
    parts = [FOLDERS[rel.parts[0]], *rel.parts[1:]]
    parts[-1] = parts[-1][:-3]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, module: str) -> list[tuple[int, str]]:
    """`(line, imported module)` of every import in `path` (relative imports resolved against `module`)."""
    tree = ast.parse(path.read_text(), str(path))
    is_package = path.name == "__init__.py"
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            out.append((node.lineno, target))
            # `from dpfm.golden import checkpoint` imports the submodule dpfm.golden.checkpoint
            out += [(node.lineno, f"{target}.{a.name}") for a in node.names
                    if package_of(f"{target}.{a.name}") and (ROOT / _folder_path(f"{target}.{a.name}")).exists()]
    return out


def _folder_path(module: str) -> Path:
    """The file (or folder) of a dpfm module, relative to the repository root."""
    folder = {pkg: f for f, pkg in FOLDERS.items()}[".".join(module.split(".")[:2])]
    candidate = Path(folder, *module.split(".")[2:])
    return candidate if (ROOT / candidate).is_dir() else candidate.with_suffix(".py")


def violations(path: Path) -> list[str]:
    module = module_name(path)
    own = package_of(module)
    found = []
    for line, target in imports_of(path, module):
        where = f"{path.relative_to(ROOT)}:{line}"
        if target.split(".")[0] in BARE:
            found.append(f"{where} imports '{target}' by its bare name; write dpfm.{target}")
            continue
        pkg = package_of(target)
        if pkg is None or pkg == own:
            continue
        if LAYERS[pkg] > LAYERS[own] or (LAYERS[pkg] == LAYERS[own] and not own.startswith(pkg)):
            found.append(f"{where}: {own} (layer {LAYERS[own]}) imports {target} (layer {LAYERS[pkg]})")
    return found


def package_files():
    return sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*.py"))


def test_every_package_module_is_checked():
    files = package_files()
    assert len(files) > 40
    assert {module_name(p).split(".")[1] for p in files} == {"golden", "hw", "sim", "boards", "host"}


@pytest.mark.parametrize("path", package_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_point_down(path):
    assert violations(path) == []


def test_tests_import_the_namespace_only():
    bad = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and not node.level and node.module
                     else [])
            bad += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names if n.split(".")[0] in BARE]
    assert bad == []


@pytest.mark.parametrize("source, module, expect", [
    ("from dpfm.host.link import LinkClient\n", "dpfm.hw.framing", "dpfm.hw (layer 2) imports dpfm.host.link"),
    ("def f():\n    from dpfm.sim.runner import run_cocotb\n", "dpfm.hw.bench", "imports dpfm.sim.runner"),
    ("from dpfm.boards import top\n", "dpfm.sim.runner", "dpfm.sim (layer 3) imports dpfm.boards"),
    ("from dpfm.golden.mlp import GoldenTrainer\n", "dpfm.golden.contract.net", "imports dpfm.golden.mlp"),
    ("from golden.net import NetSpec\n", "dpfm.golden.mlp", "by its bare name"),
    ("from ..host import cli\n", "dpfm.hw.core", "imports dpfm.host"),
])
def test_the_checker_finds_upward_imports(monkeypatch, source, module, expect):
    """The check itself can fail: each of these lines, in that module, is refused."""
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: source)
    found = violations(ROOT / _folder_path(module))
    assert found and expect in found[0], found


@pytest.mark.parametrize("source, module", [
    ("from dpfm.golden.contract.errors import DpfmError\n", "dpfm.host.cli"),
    ("from dpfm.hw.config import CoreConfig\n", "dpfm.boards.top"),
    ("import numpy as np\n", "dpfm.golden.contract.net"),
])
def test_the_checker_accepts_downward_imports(monkeypatch, source, module):
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: source)
    assert violations(ROOT / _folder_path(module)) == []


def test_every_package_is_installed():
    """pyproject.toml lists each subpackage (a non-editable install ships only those): one missing here
    would import in development and fail in a wheel."""
    import tomllib
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {module_name(p) for folder in FOLDERS for p in (ROOT / folder).rglob("__init__.py")}
    assert found == listed
