"""The package's folders are its layers (README, Layout), and no import runs up them.

Read from the source with ``ast`` (nothing is imported), counting every import: at the top of
a module, inside a function, or under ``TYPE_CHECKING``. From the bottom: ``sim/core`` (the
model) imports no other part of ``sim`` and neither Hydra, OmegaConf nor matplotlib;
``sim/running`` (replications, the store, sweeps) uses the core; ``sim/reporting``
(statistics, analyses, the summary, charts) and ``sim/checks`` (validation) use what is below
them; ``sim/config`` (the Hydra layer: the command, experiments) uses them all; ``sim/app``
(the workshop app) sits on top. A module may import its own folder and the folders below.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator

import pytest

SIM = Path(__file__).resolve().parents[1] / "sim"

LAYERS = {"core": 0, "running": 1, "reporting": 2, "checks": 2, "config": 3, "app": 4}
"""Each folder's height; ``sim/__init__.py`` stands on the core alone."""

FORBIDDEN_IN_CORE = ("hydra", "omegaconf", "matplotlib")

KNOWN_UPWARD: dict[tuple[str, str], str] = {}
"""Upward imports that were there when this test was written, each with the way out; they are
in files this test's author could not change. Remove an entry once it is gone (the test
below says so); no new ones."""


def _module(path: Path, root: Path = SIM) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str, root: Path) -> bool:
    where = root.parent.joinpath(*name.split("."))
    return where.with_suffix(".py").is_file() or (where / "__init__.py").is_file()


def _imports(path: Path, root: Path = SIM) -> Iterator[str]:
    """Every module ``path`` imports, relative imports resolved: ``from a.b import c`` gives
    ``a.b.c`` if that is a module of ``sim``, else ``a.b``."""
    package = _module(path, root).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                name = f"{base}.{alias.name}"
                yield name if _is_module(name, root) else base


def _layer(module: str) -> str | None:
    """The folder of a ``sim`` module (``""`` for ``sim`` itself); None outside ``sim``."""
    parts = module.split(".")
    if parts[0] != "sim":
        return None
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else ""


def _upward(root: Path = SIM) -> set[tuple[str, str]]:
    """(importer, imported) for every import of a folder not below the importer's own; the
    package ``sim`` itself (which re-exports the core) counts as the core."""
    found = set()
    for path in sorted(root.rglob("*.py")):
        importer = _module(path, root)
        mine = _layer(importer)
        height = LAYERS.get(mine, 0.5)  # sim/__init__.py: just above the core
        for target in _imports(path, root):
            theirs = _layer(target)
            if theirs is None or theirs == mine:
                continue
            if LAYERS.get(theirs, 0) >= height:
                found.add((importer, target))
    return found


def test_every_folder_of_sim_is_a_layer():
    folders = {p.name for p in SIM.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert folders == set(LAYERS), "a new folder: give it its place in LAYERS"


def _core_problems(path: Path, root: Path = SIM) -> list[str]:
    """What a core module imports that the core may not: Hydra, OmegaConf, matplotlib, or any
    other part of ``sim`` (the package ``sim`` itself too)."""
    return [target for target in _imports(path, root)
            if target.split(".")[0] in FORBIDDEN_IN_CORE or _layer(target) not in (None, "core")]


@pytest.mark.parametrize("path", sorted((SIM / "core").rglob("*.py")), ids=lambda p: p.name)
def test_the_core_imports_no_hydra_no_matplotlib_and_nothing_else_of_sim(path):
    assert _core_problems(path) == [], path.name


def test_no_module_imports_a_layer_above_its_own():
    new = sorted(_upward() - set(KNOWN_UPWARD))
    assert not new, "imports up the layers (README, Layout): " + "; ".join(
        f"{a} imports {b}" for a, b in new)


def test_the_known_upward_imports_are_still_there():
    """Once one is gone, remove it from KNOWN_UPWARD, so that it cannot come back."""
    gone = sorted(set(KNOWN_UPWARD) - _upward())
    assert not gone, "no longer imported, remove from KNOWN_UPWARD: " + "; ".join(
        f"{a} -> {b}" for a, b in gone)


def test_the_checker_sees_an_upward_import(tmp_path):
    """The check itself, on a made-up package: a core module importing the reporting layer
    relatively inside a function, and Hydra, is found; reporting importing the core is not."""
    fake = tmp_path / "sim"
    for folder in (fake, fake / "core", fake / "reporting"):
        folder.mkdir(exist_ok=True)
        (folder / "__init__.py").write_text("")
    (fake / "reporting" / "stats.py").write_text("from sim.core import model\n")
    (fake / "core" / "model.py").write_text(
        "import numpy\n\ndef f():\n    from ..reporting import stats\n    import hydra.utils\n")
    imports = set(_imports(fake / "core" / "model.py", fake))
    assert imports == {"numpy", "sim.reporting.stats", "hydra.utils"}
    assert set(_imports(fake / "reporting" / "stats.py", fake)) == {"sim.core.model"}
    assert _upward(fake) == {("sim.core.model", "sim.reporting.stats")}
    assert _core_problems(fake / "core" / "model.py", fake) == ["sim.reporting.stats",
                                                                 "hydra.utils"]
