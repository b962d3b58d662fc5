"""The layers of DESIGN.md and the groups of engine/, checked on the source.

Imports are read from every module's syntax tree, those inside functions
included, so a late import cannot hide an arrow that runs the wrong way.
The README's architecture section draws the same rules.
"""
from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Between engine's groups, arrows run only these ways (lower groups never
# import higher ones): quality settles and reopens tasks in dispatch and
# records webhook events in delivery's outbox; intake makes tasks in dispatch
# and records job events in the outbox; everything stores through store.
GROUP_ARROWS = {
    "store": set(),
    "dispatch": {"store"},
    "delivery": {"store"},
    "quality": {"store", "dispatch", "delivery"},
    "intake": {"store", "dispatch", "delivery"},
    "accounts": {"store"},
}
# The root's shared vocabulary (config, errors, services, identity, ...)
# builds on storage and on the building blocks Services holds; a project's
# moves and edits (engine.lifecycle) publish under dispatch's rebuild lock.
ROOT_MAY_USE = {"engine.dispatch.dispatcher", "engine.dispatch.rebuild", "engine.intake.media",
                "engine.intake.uploads"}
# The volunteer's door sits on top of dispatch and quality: nothing below calls it.
DOORS = {"engine.volunteering"}


def module_name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


def modules(package: str) -> dict[str, Path]:
    return {module_name(path): path for path in (ROOT / package).rglob("*.py")
            if "migrations" not in path.parts}


def imported(path: Path, known: set[str]) -> set[str]:
    """Every module `path` imports, at any depth (top level or inside a function)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in known else node.module)
    return found


@pytest.fixture(scope="module")
def engine_graph() -> dict[str, set[str]]:
    known = modules("engine")
    return {name: {m for m in imported(path, set(known)) if m in known}
            for name, path in known.items()}


def group(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 else "root"


def test_engine_groups_are_the_documented_ones():
    packages = {path.parent.name for path in (ROOT / "engine").glob("*/__init__.py")}
    assert packages == set(GROUP_ARROWS)
    flat = sorted(path.stem for path in (ROOT / "engine").glob("*.py"))
    assert len(flat) <= 10, f"engine's root is for the shared vocabulary only: {flat}"


def test_no_import_cycle_in_engine(engine_graph):
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for target in sorted(engine_graph[module]):
            if state.get(target) == "open":
                cycle = trail[trail.index(target):] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, trail + [target])
        state[module] = "done"

    for module in sorted(engine_graph):
        if module not in state:
            visit(module, [module])


def test_arrows_between_groups_run_one_way(engine_graph):
    wrong = defaultdict(list)
    for module, targets in engine_graph.items():
        source = group(module)
        for target in targets:
            into = group(target)
            if target in DOORS and module not in DOORS:
                wrong[module].append(target)
            elif source == "root" and into != "root":
                if into != "store" and target not in ROOT_MAY_USE and module not in DOORS:
                    wrong[module].append(target)
            elif source not in ("root", into) and into != "root":
                if into not in GROUP_ARROWS[source]:
                    wrong[module].append(target)
    assert not wrong, f"imports against the arrows: {dict(wrong)}"


def test_the_allowed_arrows_themselves_have_no_cycle():
    order = []
    pending = dict(GROUP_ARROWS)
    while pending:
        ready = [g for g, needs in pending.items() if needs <= set(order)]
        assert ready, f"the group arrows loop: {pending}"
        order.extend(sorted(ready))
        for g in ready:
            del pending[g]
    assert order[0] == "store"


@pytest.mark.parametrize(("package", "forbidden"), [
    ("engine", {"flask", "web", "workers"}),
    ("task_types", {"flask", "redis", "sqlalchemy", "rq", "engine", "web", "workers"}),
    ("workers", {"flask", "web"}),
])
def test_layers_point_down(package, forbidden):
    """DESIGN.md: web and workers -> engine -> task_types; task types are plain."""
    known = set(modules(package))
    offenders = {name: sorted(top for top in {m.split(".")[0] for m in imported(path, known)}
                              if top in forbidden)
                 for name, path in modules(package).items()}
    assert not {name: tops for name, tops in offenders.items() if tops}
