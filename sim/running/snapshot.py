"""Reading a snapshot of today: who is in the hospital and the community services, from the
files a trust already has, checked line by line (the columns: docs/forecast.md).

A snapshot is a YAML file (``configs/snapshots/example.yaml``) with the date, the service
occupancy and waiting lists, and either a patient list (``patients:``, a CSV file, one row per
patient in an acute bed) or the counts of the daily discharge situation report (``sitrep:``, a
CSV file of patients with no criteria to reside by length-of-stay band and pathway, with
``occupied_beds``). Any fault is refused with one line naming the file, the line and the
column (:class:`SnapshotError`). Also here: the snapshot of a model's own state part-way
through a run (:func:`snapshot_of`), for back-tests.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from sim.core.model import Model
from sim.core.params import Params
from sim.core.start import WAITING_FOR, Snapshot, StartPatient, StartService

PATIENT_COLUMNS = {"admitted": True, "medically_fit": True, "fit_since": False,
                   "pathway": False, "waiting_for": False, "complex": False, "id": False}
"""The patient list's columns, and whether each is required."""
SITREP_COLUMNS = {"pathway": True, "los_band": True, "patients": True}
SNAPSHOT_KEYS = ("date", "patients", "sitrep", "occupied_beds", "waiting_for_bed", "services")
SERVICE_KEYS = ("in_service", "waiting", "by_segment")
UNKNOWN = ("", "unknown")
YES, NO = ("yes", "y", "true", "1"), ("no", "n", "false", "0")


class SnapshotError(ValueError):
    """A fault in a snapshot file: one line naming the file, the line and the column."""


@dataclass(frozen=True)
class DatedSnapshot:
    """A snapshot read from files, with the date it was taken (the forecast's day 0)."""

    date: dt.date
    snapshot: Snapshot
    source: str


def read_snapshot(path: str | Path, params: Params, today: dt.date | None = None) -> DatedSnapshot:
    """Read and check the snapshot YAML file at ``path`` (and the CSV file it names) for the
    system ``params``; ``today``: dates after it are refused (default: today's date)."""
    path = Path(path)
    if not path.is_file():
        raise SnapshotError(f"{path}: no such snapshot file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise SnapshotError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise SnapshotError(f"{path}: a mapping of {', '.join(SNAPSHOT_KEYS)} expected")
    _known_keys(data, SNAPSHOT_KEYS, f"{path}")
    date = _date(data.get("date"), f"{path}, key 'date'")
    today = today or dt.date.today()
    if date > today:
        raise SnapshotError(f"{path}, key 'date': {date} is in the future (today is {today})")
    if ("patients" in data) == ("sitrep" in data):
        raise SnapshotError(f"{path}: give either 'patients' (a patient list) or 'sitrep' "
                            "(situation report counts), not both or neither")
    beds = params.acute.beds
    if "patients" in data:
        if "occupied_beds" in data:
            raise SnapshotError(f"{path}, key 'occupied_beds': only with 'sitrep' (a patient "
                                "list counts its own)")
        patients = read_patients(path.parent / str(data["patients"]), date, params)
    else:
        patients = read_sitrep(path.parent / str(data["sitrep"]), params,
                               data.get("occupied_beds"), f"{path}, key 'occupied_beds'")
    if len(patients) > beds:  # (a patient list stops at the first row beyond: read_patients)
        raise SnapshotError(f"{path}, key 'occupied_beds': {len(patients)} patients, more than "
                            f"the {beds} acute beds (acute.beds)")
    services = _services(data.get("services") or {}, params, f"{path}, services")
    waiting = _count(data.get("waiting_for_bed", 0), f"{path}, key 'waiting_for_bed'")
    snapshot = Snapshot(weekday=date.weekday(), patients=tuple(patients), services=services,
                        waiting_for_bed=waiting)
    return DatedSnapshot(date, snapshot, str(path))


def read_patients(path: Path, date: dt.date, params: Params) -> list[StartPatient]:
    """The patient list: one row per patient in an acute bed (columns: docs/forecast.md)."""
    rows = _rows(path, PATIENT_COLUMNS)
    pathways = list(params.pathways)
    patients: list[StartPatient] = []
    for line, row in rows:
        where = f"{path}, line {line}"
        if len(patients) == params.acute.beds:
            raise SnapshotError(f"{where}, column 'admitted': patient {len(patients) + 1}, more "
                                f"than the {params.acute.beds} acute beds (acute.beds)")
        admitted = _date(row["admitted"], f"{where}, column 'admitted'")
        if admitted > date:
            raise SnapshotError(f"{where}, column 'admitted': {admitted} is after the "
                                f"snapshot's date {date}")
        fit = _yes_no(row["medically_fit"], f"{where}, column 'medically_fit'")
        since = (row.get("fit_since") or "").strip()
        fit_days: float | None = None
        if fit:
            if since:
                fit_since = _date(since, f"{where}, column 'fit_since'")
                if fit_since > date:
                    raise SnapshotError(f"{where}, column 'fit_since': {fit_since} is after "
                                        f"the snapshot's date {date}")
                if fit_since < admitted:
                    raise SnapshotError(f"{where}, column 'fit_since': {fit_since} is before "
                                        f"'admitted' {admitted} (a negative stay)")
                fit_days = float((date - fit_since).days)
            else:
                fit_days = math.nan
        elif since:
            raise SnapshotError(f"{where}, column 'fit_since': given for a patient not "
                                "medically fit (medically_fit: no)")
        pathway = _pathway(row.get("pathway"), pathways, f"{where}, column 'pathway'")
        waiting = (row.get("waiting_for") or "").strip().lower()
        if waiting not in WAITING_FOR:
            raise SnapshotError(f"{where}, column 'waiting_for': {waiting!r} is not allowed: "
                                "one of " + ", ".join(w for w in WAITING_FOR if w) + " or empty")
        if waiting and not fit:
            raise SnapshotError(f"{where}, column 'waiting_for': given for a patient not "
                                "medically fit (medically_fit: no)")
        text = (row.get("complex") or "").strip()
        complex_ = None if not text else _yes_no(text, f"{where}, column 'complex'")
        patients.append(StartPatient(float((date - admitted).days), fit_days, pathway, waiting,
                                     complex=complex_))
    return patients


def read_sitrep(path: Path, params: Params, occupied: Any, where_occupied: str) -> list[StartPatient]:
    """The situation report's counts of patients with no criteria to reside, by length-of-stay
    band and pathway, and the occupied beds: a patient list with days drawn within each band
    (and the patients not fit, ``occupied_beds`` less those counted, with days in drawn)."""
    rows = _rows(path, SITREP_COLUMNS)
    pathways = list(params.pathways)
    patients = []
    for line, row in rows:
        where = f"{path}, line {line}"
        pathway = _pathway(row["pathway"], pathways, f"{where}, column 'pathway'")
        lo, hi = _band(row["los_band"], f"{where}, column 'los_band'")
        count = _count(row["patients"], f"{where}, column 'patients'")
        patients += [StartPatient(lo, math.nan, pathway, "", hi)] * count
    if occupied is None:
        raise SnapshotError(f"{where_occupied}: missing (the occupied acute beds, with 'sitrep')")
    occupied = _count(occupied, where_occupied)
    if occupied < len(patients):
        raise SnapshotError(f"{where_occupied}: {occupied} is fewer than the {len(patients)} "
                            f"patients with no criteria to reside in {path}")
    return patients + [StartPatient(math.nan)] * (occupied - len(patients))


def _services(data: Any, params: Params, where: str) -> dict[str, StartService]:
    if not isinstance(data, dict):
        raise SnapshotError(f"{where}: a mapping of service name to in_service and waiting")
    services = {}
    for name, state in data.items():
        if name not in params.services:
            raise SnapshotError(f"{where}, {name!r}: unknown service; one of "
                                + ", ".join(params.services))
        if not isinstance(state, dict):
            raise SnapshotError(f"{where}, {name}: a mapping of in_service and waiting")
        _known_keys(state, SERVICE_KEYS, f"{where}, {name}")
        in_service = _count(state.get("in_service", 0), f"{where}, {name}, key 'in_service'")
        waiting = _count(state.get("waiting", 0), f"{where}, {name}, key 'waiting'")
        segments = state.get("by_segment") or {}
        market = params.services[name].market
        names = [g.name for g in market.segments] if market.enabled else []
        if not isinstance(segments, dict):
            raise SnapshotError(f"{where}, {name}, key 'by_segment': a mapping of segment to "
                                "clients")
        by_segment = {}
        for segment, count in segments.items():
            if not market.enabled:  # one pool: the clients are in in_service already
                _count(count, f"{where}, {name}, by_segment {segment!r}")
                continue
            if segment not in names:
                raise SnapshotError(f"{where}, {name}, by_segment {segment!r}: unknown segment; "
                                    + "one of " + ", ".join(names))
            by_segment[str(segment)] = _count(count, f"{where}, {name}, by_segment {segment!r}")
        if sum(by_segment.values()) > in_service:
            raise SnapshotError(f"{where}, {name}, key 'by_segment': {sum(by_segment.values())} "
                                f"clients, more than in_service ({in_service})")
        services[name] = StartService(in_service, waiting, by_segment)
    return services


def _rows(path: Path, columns: dict[str, bool]) -> list[tuple[int, dict[str, str]]]:
    """The CSV file's rows with their line numbers, its header checked against ``columns``."""
    if not path.is_file():
        raise SnapshotError(f"{path}: no such file")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        for name in header:
            if name not in columns:
                raise SnapshotError(f"{path}, line 1, column {name!r}: unknown column; allowed: "
                                    + ", ".join(columns))
        for name, required in columns.items():
            if required and name not in header:
                raise SnapshotError(f"{path}, line 1, column {name!r}: missing (required: "
                                    + ", ".join(c for c, r in columns.items() if r) + ")")
        rows = []
        for row in reader:
            clean = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
            if None in row:
                raise SnapshotError(f"{path}, line {reader.line_num}: more values than columns")
            rows.append((reader.line_num, clean))
    return rows


def _known_keys(mapping: dict, allowed: Sequence[str], where: str) -> None:
    """Refuse a key of ``mapping`` outside ``allowed``, naming it and the allowed ones."""
    for key in mapping:
        if key not in allowed:
            raise SnapshotError(f"{where}, key {key!r}: unknown; allowed: " + ", ".join(allowed))


def _date(value: Any, where: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise SnapshotError(f"{where}: {value!r} is not a date (YYYY-MM-DD)") from None


def _yes_no(value: str, where: str) -> bool:
    text = (value or "").strip().lower()
    if text in YES:
        return True
    if text in NO:
        return False
    raise SnapshotError(f"{where}: {value!r} is not allowed: yes or no")


def _pathway(value: str | None, pathways: list[str], where: str) -> str | None:
    text = (value or "").strip()
    if text.lower() in UNKNOWN:
        return None
    if text not in pathways:
        raise SnapshotError(f"{where}: {text!r} is not a pathway: one of "
                            + ", ".join(pathways) + " or empty (unknown)")
    return text


def _band(value: str, where: str) -> tuple[float, float]:
    """A length-of-stay band in days: ``7-13`` (7 to 13 days in: drawn in [7, 14)) or ``21+``."""
    text = value.strip()
    try:
        if text.endswith("+"):
            lo, hi = float(text[:-1]), math.inf
        else:
            a, b = text.split("-")
            lo, hi = float(a), float(b) + 1.0
    except ValueError:
        raise SnapshotError(f"{where}: {value!r} is not a band of days: like 0-6, 7-13 or "
                            "21+") from None
    if not (math.isfinite(lo) and lo >= 0 and hi > lo):
        raise SnapshotError(f"{where}: {value!r} is not allowed: days >= 0, low to high "
                            "(a negative stay?)")
    return lo, hi


def _count(value: Any, where: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise SnapshotError(f"{where}: {value!r} is not a count") from None
    if not (math.isfinite(number) and number >= 0 and number == int(number)):
        raise SnapshotError(f"{where}: {value!r} is not allowed: a whole number >= 0")
    return int(number)


# ----------------------------------------------------------------------------- from a model
def snapshot_of(model: Model) -> Snapshot:
    """The snapshot of a model's state now (a midnight), as a trust would record it: each
    patient in a bed with days in, days since fit, pathway and the step waited for; each
    service's clients in service and its community waiting list. What a trust's files do not
    hold (each remaining stay, what each patient will need) is left out, to be drawn again."""
    now = model.env.now
    patients = []
    for p in model.patients:
        if not (p.bed <= now) or not math.isnan(p.left) or not math.isnan(p.died):
            continue
        fit = p.fit <= now
        waiting = ""
        if fit:
            if not p.assessed <= now:
                waiting = "assessment"
            elif not p.chosen <= now:
                waiting = "funding" if not p.funded <= now else "choice"
            elif p.service and not p.ready <= now:
                waiting = "service"
            else:
                waiting = "equipment"
        patients.append(StartPatient(now - p.bed, (now - p.fit) if fit else None, p.pathway,
                                     waiting, complex=p.complex if fit else None))
    services = {}
    for name in model.params.services:
        requests = [r for r in model.requests if r.service == name]
        held = [r for r in requests if r.granted <= now and math.isnan(r.released)
                and r.moved_to is None]
        segments = model.params.services[name].market.segments
        by_segment: dict[str, int] = {}
        if model.params.services[name].market.enabled and len(segments) > 1:
            for r in held:
                if r.placement is None:  # (a client of the first day: no placement drawn)
                    continue
                key = segments[r.placement.segment].name
                by_segment[key] = by_segment.get(key, 0) + 1
        in_service = len(held)
        waiting = sum(1 for r in requests if r.source != "hospital" and math.isnan(r.granted)
                      and math.isnan(r.cancelled) and r.moved_to is None)
        services[name] = StartService(in_service, waiting, by_segment)
    return Snapshot(weekday=int(math.floor(now + 1e-9)) % 7, patients=tuple(patients),
                    services=services, waiting_for_bed=len(model.beds.queue))
