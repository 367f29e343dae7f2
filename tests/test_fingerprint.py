"""The replication store's fingerprint covers every setting that determines a replication's
numbers (issue 24): each leaf field of the parameters, found by walking the dataclasses (so a
field added later is walked without anyone listing it), is changed in turn, and a folder made
with the defaults must refuse the changed system. Only the settings that say how many
replications to run (``Run.HOW_MANY``) may change without a refusal.

Each field is checked twice: with a valid change (the field alone, or with the companion changes
the parameters' own checks ask for, such as another pathway's share so that the shares still sum
to 1), as a user would make it; and with the field alone changed, unchecked, so that a companion
change cannot hide a field the fingerprint leaves out. No simulation is run: the store's
constructor checks the fingerprint."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import asdict, fields, is_dataclass, replace
from pathlib import Path
from typing import Any, Iterator, NamedTuple, Union, get_args, get_origin, get_type_hints

import pytest

from conftest import small_params
from sim import simulate
from sim.core.params import DISTRIBUTION_KINDS, HOME, ParameterError, Params, Run, override
from sim.running.store import ReplicationStore, StoreMismatch

Step = str | int
"""One step of a field's path: a dataclass field or a table's key (str), a list's index (int)."""

REMOVE = object()
"""A candidate "value" of a table entry: the entry is taken out of its table."""

NO_VALID_CHANGE: dict[str, str] = {}
"""Fields (dotted, list indices as numbers) for which no valid change is searched, with the
reason. Each is still checked changed alone, unchecked. (None today: keep it that way.)"""


class Leaf(NamedTuple):
    path: tuple[Step, ...]
    value: Any
    hint: Any
    """The declared type (from the dataclass's annotations)."""

    @property
    def name(self) -> str:
        return ".".join(map(str, self.path))


def walk(node: Any, hint: Any = Params, path: tuple[Step, ...] = ()) -> Iterator[Leaf]:
    """Every leaf field under ``node``: through dataclasses (their declared fields), tables
    (dicts, by key) and lists of dataclasses (by index). A number, text, flag, None, a list of
    numbers and an empty table or list are leaves."""
    if is_dataclass(node):
        hints = get_type_hints(type(node))
        for f in fields(node):
            yield from walk(getattr(node, f.name), hints[f.name], (*path, f.name))
    elif isinstance(node, dict) and node:
        item = get_args(_plain(hint))[1]
        for key, value in node.items():
            yield from walk(value, item, (*path, key))
    elif isinstance(node, (list, tuple)) and node and is_dataclass(node[0]):
        item = get_args(_plain(hint))[0]
        for i, value in enumerate(node):
            yield from walk(value, item, (*path, i))
    else:
        yield Leaf(path, node, hint)


def _plain(hint: Any) -> Any:
    """``X`` for ``Optional[X]``."""
    if get_origin(hint) is Union:
        (hint,) = [a for a in get_args(hint) if a is not type(None)]
    return hint


def count_leaves(value: Any) -> int:
    """The leaves of ``dataclasses.asdict(params)``, counted apart from :func:`walk`."""
    if isinstance(value, dict) and value:
        return sum(count_leaves(v) for v in value.values())
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], dict):
        return sum(count_leaves(v) for v in value)
    return 1


def how_many(leaf: Leaf) -> bool:
    """A setting that says how many replications to run, not what one computes."""
    return len(leaf.path) == 2 and leaf.path[0] == "run" and leaf.path[1] in Run.HOW_MANY


# ----------------------------------------------------------------------------- changing a field
def changed(node: Any, changes: dict[tuple[Step, ...], Any], prefix: str = "") -> Any:
    """``node`` with the changes (by path) made together, every dataclass on their way built
    again, and so checked, with :func:`~sim.core.params.override`; a refusal names the field in
    full, as the command line does."""
    if () in changes:
        return changes[()]
    by_step: dict[Step, dict[tuple[Step, ...], Any]] = {}
    for path, value in changes.items():
        by_step.setdefault(path[0], {})[path[1:]] = value
    built = {}
    for step, rest in by_step.items():
        if rest.get(()) is REMOVE:
            continue
        inner = getattr(node, step) if is_dataclass(node) else node[step]
        built[step] = changed(inner, rest, f"{prefix}{step}.")  # its refusals named in full
    if is_dataclass(node):
        try:
            return override(node, {str(k): v for k, v in built.items()})
        except ParameterError as error:  # named within this record
            raise error.within(prefix[:-1]) from None
    if isinstance(node, dict):
        table = {k: v for k, v in node.items() if by_step.get(k, {}).get(()) is not REMOVE}
        return {**table, **built}
    return type(node)(built.get(i, v) for i, v in enumerate(node))


def changed_alone(node: Any, path: tuple[Step, ...], value: Any) -> Any:
    """A copy of ``node`` with one field changed, not checked (the store does not check)."""
    if not path:
        return value
    step, rest = path[0], path[1:]
    if is_dataclass(node):
        copied = copy.copy(node)
        object.__setattr__(copied, step, changed_alone(getattr(node, step), rest, value))
        return copied  # (set as a frozen dataclass's own constructor does)
    if isinstance(node, dict):
        table = dict(node)
        if not rest and value is REMOVE:
            del table[step]
        else:
            table[step] = changed_alone(node[step], rest, value)
        return table
    items = list(node)
    items[step] = changed_alone(node[step], rest, value)
    return type(node)(items)


def names_in(params: Params) -> tuple[list[str], list[str]]:
    """The names the parameters use: their tables' keys and ``home`` (the keys a new table
    entry may take), and every text in them with the distribution kinds (the values a text
    field may take)."""
    keys: list[str] = [HOME]
    texts: list[str] = [*DISTRIBUTION_KINDS]

    def visit(value: Any) -> None:
        if is_dataclass(value):
            for f in fields(value):
                visit(getattr(value, f.name))
        elif isinstance(value, str):
            texts.append(value)
        elif isinstance(value, dict):
            keys.extend(map(str, value))
            for v in value.values():
                visit(v)
        elif isinstance(value, (list, tuple)):
            for v in value:
                visit(v)

    visit(params)
    return list(dict.fromkeys(keys)), list(dict.fromkeys(texts + keys))


def candidates(leaf: Leaf, names: tuple[list[str], list[str]], in_table: bool) -> list[Any]:
    """Values other than the field's own, by its type: a number nudged up or down, a flag
    flipped, another name, a list with an item changed, dropped or added, a table entry
    taken out, an empty table or list given an entry."""
    value, hint = leaf.value, _plain(leaf.hint)
    keys, texts = names
    options: list[Any] = []
    if is_dataclass(value):  # a record that may be unset (only ever a companion change)
        options = []
    elif isinstance(value, bool):
        options = [not value]
    elif isinstance(value, int):
        options = [value + 1, value - 1]
    elif isinstance(value, float):
        options = ([value * 1.1, value * 0.9, value + 0.01, value - 0.01, value + 1, value - 1]
                   if value else [0.01, 1.0, 0.5])
    elif isinstance(value, str):
        options = [n for n in texts if n != value] + [f"{value}_changed"]
    elif value is None:
        if hint is float:
            options = [1.0, 0.5, 0.0]
        elif hint is str:
            options = list(texts)
        elif is_dataclass(hint):
            options = [hint()]
    elif isinstance(value, (list, tuple)):
        item, seq = (get_args(hint) or (float,))[0], type(value)
        if is_dataclass(item):  # an empty list of records: one record
            options = [seq([item()])] + [seq([replace(item(), **{f.name: n})])
                                         for f in fields(item)
                                         if get_type_hints(item)[f.name] is str for n in texts]
        elif not value:
            options = [seq([1.0])]
        else:
            options = [value[::-1], value[:-1], value[1:], seq([*value, value[-1]])]
            if len(value) > 1:
                d = abs(value[0]) * 0.1 or 1
                options.append(seq([value[0] + d, value[1] - d, *value[2:]]))
                options.append(seq([value[0] - d, value[1] + d, *value[2:]]))
    elif isinstance(value, dict):  # an empty table of shares: one entry
        options = [{n: 1.0} for n in keys]
    if value is not None and type(None) in get_args(leaf.hint):
        options.append(None)
    if in_table:
        options.append(REMOVE)
    return [o for o in options if o is REMOVE or _differs(o, value)]


def _differs(a: Any, b: Any) -> bool:
    return type(a) is not type(b) or a != b


class Finder:
    """Finds, for each field, a valid change: the field alone, or with companion changes (at
    most ``depth`` changes in all, the fewest first). A companion is a field that the
    parameters' refusal names (a share of the same table: it gives up what the field gains);
    if the refusal names only fields already changed, another field of the same record, then
    of the records around it (a service's ``capacity`` for its ``staff``)."""

    def __init__(self, params: Params, depth: int = 3) -> None:
        self.params = params
        walked = {leaf.path: leaf for leaf in walk(params)}
        self.tables = {path[:-1] for path in walked if isinstance(_at(params, path[:-1]), dict)}
        # Records that may be unset (a service's staff): a companion may unset them.
        self.leaves = {**walked, **{leaf.path: leaf for leaf in _optional_records(params)}}
        self.names = names_in(params)
        self.depth = depth

    def options(self, leaf: Leaf) -> list[Any]:
        return candidates(leaf, self.names, leaf.path[:-1] in self.tables)

    def change(self, leaf: Leaf) -> dict[tuple[Step, ...], Any] | None:
        for depth in range(1, self.depth + 1):
            for value in self.options(leaf):
                found = self._complete({leaf.path: value}, depth)
                if found is not None:
                    return found
        return None

    def _complete(self, changes: dict, depth: int) -> dict | None:
        try:
            changed(self.params, changes)
            return changes
        except ParameterError as error:
            if len(changes) >= depth:
                return None
            gained = sum(_delta(self.leaves[p].value, v) for p, v in changes.items())
            for leaf in self._companions(error, changes):
                values = self.options(leaf)
                if gained and isinstance(leaf.value, float):
                    values = [leaf.value - gained, *values]  # shares: give up what they gain
                for value in values:
                    found = self._complete({**changes, leaf.path: value}, depth)
                    if found is not None:
                        return found
        return None

    def _companions(self, error: ParameterError, changes: dict) -> list[Leaf]:
        named = [n for n in re.split(r"[ +]+", error.field_name) if n]

        def is_named(path: tuple[Step, ...]) -> bool:
            name = _unindexed(path)
            return any(name == n or name.startswith(n + ".") for n in named)

        free = [leaf for path, leaf in self.leaves.items()
                if not any(_overlap(path, p) for p in changes)]
        by_name = [leaf for leaf in free if is_named(leaf.path)]
        if by_name:
            return by_name
        around = [p for p in changes if is_named(p)] or list(changes)
        near: list[Leaf] = []
        for level in range(3):  # the same record, then the records around it
            records = {p[:len(p) - 1 - level] for p in around if len(p) > level}
            near += [leaf for leaf in free if leaf.path[:-1] in records and leaf not in near]
        return near


def _at(node: Any, path: tuple[Step, ...]) -> Any:
    for step in path:
        node = getattr(node, step) if is_dataclass(node) else node[step]
    return node


def _overlap(a: tuple[Step, ...], b: tuple[Step, ...]) -> bool:
    """One path is the other or lies under it."""
    return a[:len(b)] == b or b[:len(a)] == a


def _optional_records(node: Any, path: tuple[Step, ...] = ()) -> Iterator[Leaf]:
    """The records set in fields that may be unset (``Optional``), by path."""
    if is_dataclass(node):
        hints = get_type_hints(type(node))
        for f in fields(node):
            value = getattr(node, f.name)
            if is_dataclass(value) and type(None) in get_args(hints[f.name]):
                yield Leaf((*path, f.name), value, hints[f.name])
            yield from _optional_records(value, (*path, f.name))
    elif isinstance(node, (dict, list, tuple)):
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            yield from _optional_records(value, (*path, key))


def _named(changes: dict[tuple[Step, ...], Any]) -> dict[str, Any]:
    return {".".join(map(str, path)): "(taken out)" if value is REMOVE else value
            for path, value in changes.items()}


def _unindexed(path: tuple[Step, ...]) -> str:
    """A field's name as the parameters' refusals give it: list indices left out."""
    return ".".join(str(s) for s in path if not isinstance(s, int))


def _delta(old: Any, new: Any) -> float:
    """What a change adds to a number (a share): taking an entry out takes its value away."""
    if new is REMOVE and isinstance(old, float):
        return -old
    if isinstance(old, float) and isinstance(new, float):
        return new - old
    return 0.0


# ----------------------------------------------------------------------------- the systems walked
DEFAULT = Params()


def _with_every_record_kind(params: Params) -> Params:
    """``params`` with one record in each list of records that is empty by default (a market's
    closures), so that the fields of those records are walked too."""
    finder = Finder(params)
    changes: dict = {}
    for leaf in finder.leaves.values():
        sequence = get_origin(_plain(leaf.hint)) in (list, tuple)
        item = get_args(_plain(leaf.hint))[0] if sequence else None
        if sequence and not leaf.value and is_dataclass(item):
            changes.update(finder.change(leaf) or {})
    return changed(params, changes)


FILLED = _with_every_record_kind(DEFAULT)
SYSTEMS = {"default": DEFAULT, "filled": FILLED}


def _leaves(system: str) -> list[Leaf]:
    """The system's leaves; of the filled system, only those the default does not have."""
    leaves = list(walk(SYSTEMS[system]))
    if system == "filled":
        default = {leaf.path for leaf in walk(DEFAULT)}
        leaves = [leaf for leaf in leaves if leaf.path not in default]
    return leaves


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    """A store folder made by each system."""
    made = {}
    for system, params in SYSTEMS.items():
        made[system] = tmp_path_factory.mktemp(system)
        ReplicationStore(made[system], params)
    return made


def refuses(folder: Path, params: Params) -> bool:
    try:
        ReplicationStore(folder, params)
    except StoreMismatch as error:
        assert str(folder) in str(error) and "different configuration" in str(error)
        return True
    return False


# ----------------------------------------------------------------------------- the tests
def test_every_field_is_walked():
    """The walk finds every leaf of the parameters, and reaches every field of every kind of
    record the parameters can hold (a record kind only reachable through a field left empty or
    unset by default would fail here, not be skipped)."""
    for params in SYSTEMS.values():
        assert len(list(walk(params))) == count_leaves(asdict(params))
    reached = {(type(node).__name__, f.name) for node in _records(FILLED) for f in fields(node)}
    declared = set(_declared(Params))
    assert declared - reached == set(), "record fields no system walked holds"
    assert {leaf.name for leaf in walk(FILLED)} >= {f"run.{name}" for name in Run.HOW_MANY}
    assert set(NO_VALID_CHANGE) <= {leaf.name for s in SYSTEMS for leaf in _leaves(s)}, \
        "an exception names a field that no longer exists"


def _records(node: Any) -> Iterator[Any]:
    if is_dataclass(node):
        yield node
        for f in fields(node):
            yield from _records(getattr(node, f.name))
    elif isinstance(node, dict):
        for value in node.values():
            yield from _records(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _records(value)


def _declared(kind: type, seen: set | None = None) -> Iterator[tuple[str, str]]:
    """Every (record kind, field) the parameters' annotations allow, from ``kind`` down."""
    seen = set() if seen is None else seen
    if kind in seen:
        return
    seen.add(kind)
    for name, hint in get_type_hints(kind).items():
        if name not in {f.name for f in fields(kind)}:
            continue  # a ClassVar
        yield kind.__name__, name
        for inner in [_plain(hint), *get_args(_plain(hint))]:
            if is_dataclass(inner):
                yield from _declared(inner, seen)


@pytest.mark.parametrize("system", SYSTEMS)
def test_changing_any_field_alone_is_refused(system, folders):
    """Each leaf changed alone (not checked: the store does not check), against a folder of
    the same system: every field but the replications' number is in the fingerprint."""
    finder = Finder(SYSTEMS[system])
    walked, reused = 0, []
    for leaf in _leaves(system):
        if how_many(leaf):
            continue
        value = finder.options(leaf)[0]
        if not refuses(folders[system], changed_alone(SYSTEMS[system], leaf.path, value)):
            reused.append(f"{leaf.name}: {leaf.value!r} -> {value!r}")
        walked += 1
    assert not reused, f"changed alone, these reuse the folder: {reused}"
    assert walked == len(_leaves(system)) - (len(Run.HOW_MANY) if system == "default" else 0)


@pytest.mark.parametrize("system", SYSTEMS)
def test_a_valid_change_of_any_field_is_refused(system, folders):
    """Each leaf changed as a user could change it (valid parameters, with the companion
    changes the checks ask for), against a folder of the same system."""
    finder = Finder(SYSTEMS[system])
    walked, missing, reused = 0, [], []
    for leaf in _leaves(system):
        if how_many(leaf) or leaf.name in NO_VALID_CHANGE:
            continue
        changes = finder.change(leaf)
        if changes is None:
            missing.append(leaf.name)
            continue
        if not refuses(folders[system], changed(SYSTEMS[system], changes)):
            reused.append(f"{leaf.name}: {_named(changes)}")
        walked += 1
    assert not reused, f"changed validly, these reuse the folder: {reused}"
    assert not missing, f"no valid change found (add to NO_VALID_CHANGE with a reason): {missing}"
    exceptions = sum(leaf.name in NO_VALID_CHANGE for leaf in _leaves(system))
    skipped = len(Run.HOW_MANY) if system == "default" else 0
    assert walked == len(_leaves(system)) - skipped - exceptions


def test_changing_how_many_replications_reuses_the_folder(folders):
    """More replications, or a precision rule, reuse what the folder holds: each such setting
    changed (validly) alone, then all of them together."""
    finder = Finder(DEFAULT)
    together: dict = {}
    for leaf in filter(how_many, walk(DEFAULT)):
        changes = finder.change(leaf)
        assert changes is not None and all(how_many(finder.leaves[p]) for p in changes), leaf
        assert not refuses(folders["default"], changed(DEFAULT, changes)), changes
        together.update(changes)
    assert len(together) == len(Run.HOW_MANY)
    assert not refuses(folders["default"], changed(DEFAULT, together))


def _tables(node: Any, path: tuple[Step, ...] = ()) -> Iterator[tuple[tuple[Step, ...], Any]]:
    """Every table (dict) and list of records with two entries or more, by path."""
    if is_dataclass(node):
        for f in fields(node):
            yield from _tables(getattr(node, f.name), (*path, f.name))
    elif isinstance(node, dict):
        if len(node) > 1:
            yield path, node
        for key, value in node.items():
            yield from _tables(value, (*path, key))
    elif isinstance(node, list) and node and is_dataclass(node[0]):
        if len(node) > 1:
            yield path, node
        for i, value in enumerate(node):
            yield from _tables(value, (*path, i))


def test_the_same_entries_in_another_order_are_refused(folders):
    """The order of a table's entries decides which entry a random draw picks (a patient's
    pathway, where a step-down client goes next), so a folder is not reused by the same
    entries in another order."""
    tables = list(_tables(DEFAULT))
    assert {".".join(map(str, path)) for path, _ in tables} >= {
        "pathways", "services", "services.step_down.then", "pathways.p1.escalates_to"}
    for path, table in tables:
        reordered = (dict(reversed(list(table.items()))) if isinstance(table, dict)
                     else table[::-1])
        assert refuses(folders["default"], changed(DEFAULT, {path: reordered})), path


def test_the_order_of_the_pathways_changes_the_numbers():
    """Why the order is fingerprinted: the pathways in another order, the same shares, give
    other numbers."""
    params = small_params(run__days=40.0, run__warmup_days=5.0)
    reordered = replace(params, pathways=dict(reversed(list(params.pathways.items()))))
    assert (simulate(params, 0).value("delayed_days_per_30d")
            != simulate(reordered, 0).value("delayed_days_per_30d"))


def test_a_folder_of_the_same_system_is_reused(folders, tmp_path):
    """The check is not a refusal of everything: the same system (built again, and read back
    from the folder's own record) is accepted, and a new folder gets the record."""
    for system, params in SYSTEMS.items():
        assert not refuses(folders[system], copy.deepcopy(params))
    ReplicationStore(tmp_path, DEFAULT)
    assert json.loads((tmp_path / "params.json").read_text())["run"]["warmup_days"] == \
        DEFAULT.run.warmup_days


def test_the_calibrations_study_is_tied_to_every_field_too():
    """The calibration's resumable study has a fingerprint of its own (with the targets, the
    fitted parameters and the search's settings): each leaf changed alone changes it, and the
    same tables in another order; the number of replications to run does not."""
    from sim.running.calibration import _fingerprint

    def fingerprint(params: Params) -> str:
        return _fingerprint(params, [], [], replications=1, seed=0, batch=1)

    for system, params in SYSTEMS.items():
        finder, base, same = Finder(params), fingerprint(params), []
        for leaf in _leaves(system):
            value = finder.options(leaf)[0]
            if (fingerprint(changed_alone(params, leaf.path, value)) == base) != how_many(leaf):
                same.append(leaf.name)
        assert not same, f"these leave the calibration's fingerprint as it was, or not: {same}"
    base = fingerprint(DEFAULT)
    for path, table in _tables(DEFAULT):
        reordered = (dict(reversed(list(table.items()))) if isinstance(table, dict)
                     else table[::-1])
        assert fingerprint(changed(DEFAULT, {path: reordered})) != base, path
