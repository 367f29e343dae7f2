"""Parameters of the discharge system: plain, typed, validated dataclasses.

Every time is in days (floats) counted from a Monday 00:00, so that the hour of the day and the
day of the week are always known. Every capacity, rule and duration of the model lives here;
the model reads nothing else. Each dataclass checks its own ranges in ``__post_init__`` and
raises :class:`ParameterError` naming the field, the bad value and what is allowed.

The defaults describe a plausible English acute trust's flow of older emergency patients; the
sources of each default and what was tuned are written down in ``docs/calibration.md``.
"""

from __future__ import annotations

import math
import typing
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, ClassVar, Dict, List, Mapping, Optional, get_type_hints

DISTRIBUTION_KINDS = ("fixed", "exponential", "lognormal", "gamma", "empirical")
WEEKDAYS = (0, 1, 2, 3, 4)
MONDAY_TO_SATURDAY = (0, 1, 2, 3, 4, 5)
ALL_DAYS = (0, 1, 2, 3, 4, 5, 6)


class ParameterError(ValueError):
    """A parameter is out of range: names the field, the value given and what is allowed."""

    def __init__(self, field_name: str, value: Any, allowed: str) -> None:
        self.field_name = field_name
        self.value = value
        self.allowed = allowed
        super().__init__(field_name, value, allowed)  # args rebuild it (SimPy re-raises so)

    def __str__(self) -> str:
        return f"{self.field_name}={self.value!r} is not allowed: {self.allowed}"

    def within(self, prefix: str) -> "ParameterError":
        """The same error with its field name placed under ``prefix`` (e.g. ``homecare``)."""
        joint = "" if self.field_name.startswith("[") else "."
        return ParameterError(f"{prefix}{joint}{self.field_name}" if prefix else self.field_name,
                              self.value, self.allowed)


def _check(ok: bool, name: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ParameterError(name, value, allowed)


def _non_negative(name: str, value: float) -> None:
    _check(math.isfinite(value) and value >= 0, name, value, "a finite number >= 0")


def _positive(name: str, value: float) -> None:
    _check(math.isfinite(value) and value > 0, name, value, "a finite number > 0")


def _fraction(name: str, value: float) -> None:
    _check(0.0 <= value <= 1.0, name, value, "a probability in [0, 1]")


def _shares(name: str, values: List[float], length: int) -> None:
    _check(len(values) == length, name, list(values), f"a list of {length} shares")
    for v in values:
        _check(0.0 <= v <= 1.0, name, list(values), "shares each in [0, 1]")
    _check(abs(sum(values) - 1.0) <= 1e-9, name, list(values),
           f"shares that sum to 1 (they sum to {sum(values):.12g})")


SOCIAL_CARE, NHS = "social_care", "nhs"
FUNDERS = (SOCIAL_CARE, NHS)
"""Who arranges and pays for a community service."""

LARGEST = 1e6
"""The largest mean or value of a distribution (days, or an amount such as carer-hours a week):
far beyond any real stay, and far below where its draws, or sums of them over a run, overflow."""
SPREAD = (1e-6, 1e3)
"""A lognormal's or gamma's sd, as multiples of its mean: beyond these its parameters
((sd/mean)**2, (mean/sd)**2) overflow or its draws are all 0 or infinite."""


@dataclass(frozen=True)
class Distribution:
    """A duration (or amount) distribution, described by mean and sd so planners can read it.

    kind: ``fixed`` (always ``mean``), ``exponential`` (``mean``), ``lognormal`` and ``gamma``
    (``mean`` and ``sd``), ``empirical`` (resample ``values`` with equal weight).
    """

    kind: str = "fixed"
    mean: float = 0.0
    sd: float = 0.0
    values: List[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        _check(self.kind in DISTRIBUTION_KINDS, "kind", self.kind,
               "one of " + ", ".join(DISTRIBUTION_KINDS))
        if self.kind == "empirical":
            _check(len(self.values) > 0, "values", list(self.values),
                   "a non-empty list of numbers >= 0 for kind=empirical")
            for v in self.values:
                _check(math.isfinite(v) and 0 <= v <= LARGEST, "values", list(self.values),
                       f"numbers in [0, {LARGEST:g}] for kind=empirical")
            return
        _check(not self.values, "values", list(self.values),
               f"empty unless kind=empirical (kind is {self.kind})")
        if self.kind == "fixed":
            _non_negative("mean", self.mean)
        else:
            _positive("mean", self.mean)
        _check(self.mean <= LARGEST, "mean", self.mean, f"a number <= {LARGEST:g}")
        if self.kind in ("lognormal", "gamma"):
            _positive("sd", self.sd)
            low, high = self.mean * SPREAD[0], self.mean * SPREAD[1]
            _check(low <= self.sd <= high, "sd", self.sd,
                   f"a number in [{low:g}, {high:g}] ({SPREAD[0]:g} to {SPREAD[1]:g} times the "
                   f"mean, {self.mean:g})")
        else:
            _check(self.sd == 0, "sd", self.sd, f"0 (unused) for kind={self.kind}")


@dataclass(frozen=True)
class Window:
    """When something may happen: on ``days`` (0=Monday .. 6=Sunday) between two hours.

    ``enabled: false`` switches the rule off (any time allowed). For work done in these hours
    (an assessment, a discharge summary), ``weekend_cover`` is the pace of work on a Saturday or
    Sunday as a share of a weekday's (fewer doctors, pharmacists or social workers on duty): 0.5
    means that an hour's work takes two hours at a weekend. It does not change when the window
    is open.
    """

    enabled: bool = True
    days: List[int] = field(default_factory=lambda: list(ALL_DAYS))
    start_hour: float = 0.0
    end_hour: float = 24.0
    weekend_cover: float = 1.0

    def __post_init__(self) -> None:
        _check(math.isfinite(self.weekend_cover) and 0.0 < self.weekend_cover <= 1.0,
               "weekend_cover", self.weekend_cover,
               "a share of the weekday pace in (0, 1] (leave Saturday and Sunday out of days "
               "for none)")
        _check(len(self.days) > 0 and all(d in ALL_DAYS for d in self.days)
               and len(set(self.days)) == len(self.days),
               "days", list(self.days), "a non-empty list of distinct weekdays 0 (Mon) .. 6 (Sun)")
        _check(0 <= self.start_hour < 24, "start_hour", self.start_hour, "an hour in [0, 24)")
        _check(self.start_hour < self.end_hour <= 24, "end_hour", self.end_hour,
               f"an hour in ({self.start_hour:g}, 24]")


@dataclass(frozen=True)
class Run:
    """Length of a run (``days``, warm-up included), the warm-up that is discarded, the root
    seed and the replications. The default measures one year after a 16-week warm-up (see
    experiments/warmup.py and the Little's-law check in sim/validation.py for why 16 weeks)."""

    days: float = 477.0
    warmup_days: float = 112.0
    seed: int = 20240101
    replications: int = 5
    precision: float = 0.0
    """If > 0, add replications until the 95% CI half-width of ``precision_metric`` is within
    this fraction of its mean (``replications`` is then the minimum)."""
    precision_metric: str = "delayed_days_per_30d"
    max_replications: int = 200

    def __post_init__(self) -> None:
        _positive("days", self.days)
        _check(math.isfinite(self.warmup_days) and 0 <= self.warmup_days < self.days,
               "warmup_days", self.warmup_days, f"a number of days in [0, run.days={self.days:g})")
        _check(self.seed >= 0, "seed", self.seed, "an integer >= 0")
        _check(self.replications >= 1, "replications", self.replications, "an integer >= 1")
        _check(math.isfinite(self.precision) and 0 <= self.precision < 1, "precision",
               self.precision, "a fraction in [0, 1) (0 = fixed number of replications)")
        if self.precision > 0:  # the limit applies only when replications are added
            _check(self.max_replications >= self.replications, "max_replications",
                   self.max_replications, f"an integer >= run.replications ({self.replications})")

    HOW_MANY: ClassVar[tuple[str, ...]] = (
        "replications", "precision", "precision_metric", "max_replications")
    """Fields that say how many replications to run, not what one replication computes."""

    @property
    def measured_days(self) -> float:
        return self.days - self.warmup_days


@dataclass(frozen=True)
class Admissions:
    """Emergency admissions of older patients: a Poisson process with day and season profiles.

    The rate at time t is ``per_day * day_of_week[weekday] * hour_of_day[hour]`` (profiles have
    mean 1 so ``per_day`` stays the mean daily rate), times ``winter_multiplier`` on days whose
    day of year (``t mod 365``, counted from the run's start) falls in [winter_start, winter_end).
    """

    per_day: float = 50.0
    day_of_week: List[float] = field(default_factory=lambda: [1.12, 1.05, 1.02, 1.02, 1.03, 0.88, 0.88])
    hour_of_day: List[float] = field(default_factory=lambda: [1.0] * 24)
    winter_multiplier: float = 1.0
    winter_start: int = 0
    winter_end: int = 0

    def __post_init__(self) -> None:
        _non_negative("per_day", self.per_day)
        for name, profile, n in (("day_of_week", self.day_of_week, 7),
                                 ("hour_of_day", self.hour_of_day, 24)):
            _check(len(profile) == n and all(math.isfinite(v) and v >= 0 for v in profile)
                   and abs(sum(profile) / n - 1.0) <= 1e-6, name, list(profile),
                   f"{n} multipliers >= 0 with mean 1")
        _non_negative("winter_multiplier", self.winter_multiplier)
        _check(0 <= self.winter_start <= self.winter_end <= 365, "winter_end", self.winter_end,
               f"a day of year with winter_start ({self.winter_start:g}) <= winter_end <= 365")


@dataclass(frozen=True)
class Acute:
    """The acute bed pool.

    ``max_wait_for_bed``: days a patient waits for a free bed before being diverted elsewhere;
    ``None`` means never divert (wait as long as it takes), 0 means divert when no bed is free.
    """

    beds: int = 520
    max_wait_for_bed: Optional[float] = None

    def __post_init__(self) -> None:
        _check(self.beds >= 1, "beds", self.beds, "an integer >= 1")
        if self.max_wait_for_bed is not None:
            _non_negative("max_wait_for_bed", self.max_wait_for_bed)


def _mean_of(dist: "Distribution") -> float:
    return sum(dist.values) / len(dist.values) if dist.kind == "empirical" else dist.mean


@dataclass(frozen=True)
class Workforce:
    """Staff who come and go (used when ``enabled``; otherwise every post is always filled).

    Each of the service's ``staff.count`` posts is filled or vacant. A carer in post leaves at
    the rate ``turnover_per_year`` (leavers a year per carer in post, so the mean time in post is
    365 / turnover days), and the post then stays vacant for ``time_to_fill`` days until a new
    carer starts. A carer in post is off sick ``sickness_days_per_year`` days a year on
    average, in episodes of ``sickness_episode`` days. The hours the service can deliver at any
    moment are those of the carers in post and not off sick. A provider whose packages in place
    exceed its hours by more than ``stretch`` (the overtime and agency cover it can find) hands
    packages back, chosen at random, until they fit: those clients are sourced again, at home.

    Sources: turnover about 30% a year in adult social care (Skills for Care 2022-23; 30.4-30.8%
    in 2018-2022). Vacancy rate 9.4% (Skills for Care, upper end of 2018-2022): in a steady state
    the vacant share is fill / (fill + time in post), so the mean time to fill a post is
    0.094 / 0.906 x 365 / 0.30 = 126 days. Sickness about 5 days a year per care worker (Skills
    for Care 2019). Assumptions: exponential times to fill and sickness episodes of 3 days on
    average; 5% stretch.
    """

    enabled: bool = False
    turnover_per_year: float = 0.30
    time_to_fill: Distribution = field(default_factory=lambda: Distribution("exponential", 126.0))
    sickness_days_per_year: float = 5.0
    sickness_episode: Distribution = field(
        default_factory=lambda: Distribution("exponential", 3.0))
    stretch: float = 0.05

    def __post_init__(self) -> None:
        _check(math.isfinite(self.turnover_per_year) and 0 < self.turnover_per_year <= 12,
               "turnover_per_year", self.turnover_per_year,
               "leavers a year per carer in post, in (0, 12]")
        _check(math.isfinite(self.sickness_days_per_year)
               and 0 <= self.sickness_days_per_year < 365 / 2, "sickness_days_per_year",
               self.sickness_days_per_year, "days a year in [0, 182.5)")
        if self.sickness_days_per_year > 0:
            _check(_mean_of(self.sickness_episode) > 0, "sickness_episode",
                   _mean_of(self.sickness_episode),
                   "a mean above 0 while sickness_days_per_year > 0")
        _check(math.isfinite(self.stretch) and 0 <= self.stretch <= 1, "stretch", self.stretch,
               "a share of the hours in [0, 1]")

    @property
    def time_in_post(self) -> float:
        """Mean days a carer stays in post."""
        return 365.0 / self.turnover_per_year

    @property
    def vacancy_rate(self) -> float:
        """The expected share of posts vacant in a steady state."""
        fill = _mean_of(self.time_to_fill)
        return fill / (fill + self.time_in_post)


@dataclass(frozen=True)
class Staff:
    """The people who deliver a service whose capacity is their working time: ``count`` staff
    (e.g. domiciliary carers; the posts, filled or not, when the workforce comes and goes)
    working ``hours_each`` hours a week on clients."""

    count: int = 0
    hours_each: float = 25.0
    workforce: Workforce = field(default_factory=Workforce)

    def __post_init__(self) -> None:
        _check(self.count >= 0, "count", self.count, "an integer >= 0")
        _non_negative("hours_each", self.hours_each)


@dataclass(frozen=True)
class Staffing:
    """Care staff who limit the places a service can fill (used when ``enabled``): a care home
    with beds it cannot staff. For a service sized in places, with a market.

    Each post looks after ``places_per_post`` places, and each provider employs ``establishment``
    times the posts its places need (rounded to whole posts; 1: every place can be filled when
    every post is). The posts come and go as ``workforce`` says (turnover, time to fill a
    vacancy, sickness; with ``workforce.enabled`` false every post is always filled). A provider
    takes a new client only while its clients are fewer than the places its staff at work can
    look after: posts filled and not off sick x ``places_per_post``, at most its places. Nobody
    is moved out when staff leave or fall sick: the home runs short, and takes no one new until
    its residents fall below what its staff can look after (``workforce.stretch`` is not used).

    Sources: the workforce rates of :class:`Workforce` (turnover 30% a year, 9.4% of posts
    vacant, sickness 5 days a year: Skills for Care, adult social care as a whole).
    Assumptions: homes employ staff for all their places (``establishment`` 1), so that the
    average vacancy and sickness leave staff for about 89% of them; 1.25 places per care post
    (posts counted across the week's shifts), which sets how many posts a home has and so how
    much its staffing varies.
    """

    enabled: bool = False
    places_per_post: float = 1.25
    establishment: float = 1.0
    workforce: Workforce = field(default_factory=lambda: Workforce(enabled=True))

    def __post_init__(self) -> None:
        _check(math.isfinite(self.places_per_post) and 0 < self.places_per_post <= 1000,
               "places_per_post", self.places_per_post, "places a post looks after, in (0, 1000]")
        _check(math.isfinite(self.establishment) and 0 < self.establishment <= 10,
               "establishment", self.establishment,
               "posts employed as a multiple of those the places need, in (0, 10]")


@dataclass(frozen=True)
class Segment:
    """A part of a service's market that does not substitute for the others: a kind of
    care-home place (residential, nursing, dementia nursing), or a locality's homecare. Each
    client needs one segment (``demand``: the share of the service's clients who need it);
    the segment holds ``capacity``, its share of the service's places or staff posts, split
    among its ``providers``. ``acceptance`` multiplies the market's chance that a provider
    accepts an offer (below 1 for care that is harder to place)."""

    name: str = "all"
    demand: float = 1.0
    capacity: float = 1.0
    providers: int = 1
    acceptance: float = 1.0

    def __post_init__(self) -> None:
        _check(bool(self.name), "name", self.name, "a name for the segment")
        _fraction("demand", self.demand)
        _fraction("capacity", self.capacity)
        _check(1 <= self.providers <= 10_000, "providers", self.providers,
               "an integer in [1, 10000]")
        _check(math.isfinite(self.acceptance) and self.acceptance > 0, "acceptance",
               self.acceptance, "a multiplier > 0 (at 0 its clients would never be placed)")


@dataclass(frozen=True)
class Closure:
    """A provider that stops for ``days`` from day ``start`` of the run: by default it closes
    (its places are gone and its clients move out, to be placed again like new referrals); with
    ``moves_clients: false`` it only stops taking new clients (after an inadequate rating)."""

    segment: str = "all"
    provider: int = 0
    start: float = 0.0
    days: float = 0.0
    moves_clients: bool = True

    def __post_init__(self) -> None:
        _check(self.provider >= 0, "provider", self.provider, "a provider's index >= 0")
        _non_negative("start", self.start)
        _non_negative("days", self.days)


@dataclass(frozen=True)
class Market:
    """How a client is placed with a provider (used when ``enabled``; otherwise the service is
    one first-come-first-served pool that takes every client it has room for).

    The service's capacity is split into ``segments`` and each segment among its providers. A
    client's segment, and whether the needs are complex, are drawn when the client appears. The
    referral is offered in rounds to every provider of its segment with room for it: the first
    when it is made (or when the brokerage team's ``hours`` next open), each next one at the
    first of those hours at least ``round_days`` later (so with hours 9-17, any ``round_days``
    under a day gives one round a working day); each accepts with probability
    ``acceptance`` x the segment's ``acceptance`` x ``complex_acceptance`` (complex needs: for
    homecare, a package that needs two carers at once, ``complex_amount`` times the hours) x
    ``incomplete_acceptance`` while the hospital's discharge summary (with medicines) is not yet
    written x ``weekend_acceptance`` on a Saturday or Sunday. One provider that accepts takes
    the client; if none does, the next round goes out. So a referral waits for a provider that
    has room and says yes: longer when few have room, for complex needs, or without the summary.

    Providers also stop taking new clients at random, each ``suspensions_per_year`` times a year
    on average, for ``suspension`` days (an inadequate rating and the council's embargo), and at
    set times (``closures``: a home that closes, a homecare provider that hands back its
    packages).

    A provider near full is choosier (``choosiness`` above 0): its chance of saying yes is
    multiplied by ``(free / reference_free) ** choosiness``, ``free`` being the share of what it
    can fill now (places its staff can look after, or its carers' hours at work) not in use;
    at ``reference_free`` it says yes as often as ``acceptance`` says (at most always). A care
    home with one bed left waits for a resident who pays more (a self-funder) or needs less;
    a homecare provider whose carers' rounds are nearly full cannot fit another package's
    visits into them. Among the providers that say yes, one takes the client in proportion to
    its readiness. At 0 every provider with room is as ready as another, however full.

    Providers prefer clients who pay their own fees (self-funders pay care homes about 40%
    more than councils do): a self-funder's chance of a yes is multiplied by
    ``private_acceptance``. A hospital patient pays their own fees when the pathway's funding
    step finds so (``pathways.*.funded_share``); a community referral with
    ``community_private_share`` (self-funders, and other councils' clients placed at their own
    rates: demand that is not the council's). At 1, a provider does not ask who pays.
    """

    enabled: bool = False
    segments: List[Segment] = field(default_factory=lambda: [Segment()])
    acceptance: float = 1.0
    complex_share: float = 0.0
    complex_amount: float = 1.0
    complex_acceptance: float = 1.0
    incomplete_acceptance: float = 1.0
    weekend_acceptance: float = 1.0
    round_days: float = 1.0
    hours: Window = field(default_factory=lambda: Window(False))
    suspensions_per_year: float = 0.0
    suspension: Distribution = field(default_factory=lambda: Distribution("fixed", 90.0))
    closures: List[Closure] = field(default_factory=list)
    choosiness: float = 0.0
    reference_free: float = 0.15
    private_acceptance: float = 1.0
    community_private_share: float = 0.0

    def __post_init__(self) -> None:
        _check(math.isfinite(self.private_acceptance) and 0 < self.private_acceptance <= 100,
               "private_acceptance", self.private_acceptance,
               "a multiplier in (0, 100] (1: a provider does not ask who pays)")
        _fraction("community_private_share", self.community_private_share)
        _check(len(self.segments) > 0, "segments", len(self.segments), "at least one segment")
        _check(math.isfinite(self.choosiness) and 0 <= self.choosiness <= 10, "choosiness",
               self.choosiness, "an exponent in [0, 10] (0: as ready at any occupancy)")
        _check(math.isfinite(self.reference_free) and 0 < self.reference_free <= 1,
               "reference_free", self.reference_free,
               "a share of a provider's capacity in (0, 1]")
        names = [g.name for g in self.segments]
        _check(len(set(names)) == len(names), "segments", names, "segments of distinct names")
        _shares("segments.demand", [g.demand for g in self.segments], len(self.segments))
        _shares("segments.capacity", [g.capacity for g in self.segments], len(self.segments))
        for name in ("acceptance", "complex_acceptance"):
            _check(0.0 < getattr(self, name) <= 1.0, name, getattr(self, name),
                   "a probability in (0, 1] (at 0 its clients would never be placed)")
        for name in ("incomplete_acceptance", "weekend_acceptance"):
            _fraction(name, getattr(self, name))
        _fraction("complex_share", self.complex_share)
        _check(math.isfinite(self.complex_amount) and self.complex_amount >= 1,
               "complex_amount", self.complex_amount, "a multiplier >= 1")
        _check(math.isfinite(self.round_days) and 0.01 <= self.round_days <= 365, "round_days",
               self.round_days, "days between rounds of offers in [0.01, 365]")
        _check(math.isfinite(self.suspensions_per_year) and 0 <= self.suspensions_per_year <= 12,
               "suspensions_per_year", self.suspensions_per_year, "a rate in [0, 12] a year")
        by_name = {g.name: g for g in self.segments}
        for closure in self.closures:
            _check(closure.segment in by_name, "closures.segment", closure.segment,
                   "one of the segments: " + ", ".join(by_name))
            _check(closure.provider < by_name[closure.segment].providers, "closures.provider",
                   closure.provider, f"a provider of segment {closure.segment!r}: 0 to "
                   f"{by_name[closure.segment].providers - 1}")


@dataclass(frozen=True)
class Service:
    """A community service that hospital patients share, first come first served, with people
    referred from the community: homecare, step-down beds, care-home places, or any other.

    Every service has the same shape. Its size is counted in the service's ``unit`` (places,
    or carer-hours per week for homecare): either ``capacity`` units, or the working hours of
    its ``staff`` (give one of the two). Each client takes ``amount`` units (1 place, or a
    package of so many carer-hours a week) for ``stay`` days. ``then`` lists where clients go
    when their stay ends, as shares (``home`` or another service's name, which they wait for in
    this service's place); empty means they leave. The service starts ``initial_utilisation``
    full, as a real one is on the first day. ``market`` says how clients are placed with its
    providers (off: one first-come-first-served pool); ``staffing``, whether its providers'
    staff limit the places they can fill (care homes). ``funded_by`` says who arranges and
    pays for it (``social_care``: the council; ``nhs``: the NHS, e.g. intermediate care), and
    so to whom a wait for it is attributed, as England's delayed-transfer data did.
    """

    unit: str = "places"
    capacity: Optional[float] = None
    staff: Optional[Staff] = None
    amount: Distribution = field(default_factory=lambda: Distribution("fixed", 1.0))
    stay: Distribution = field(default_factory=lambda: Distribution("fixed", 1.0))
    then: Dict[str, float] = field(default_factory=dict)
    community_referrals_per_day: float = 0.0
    initial_utilisation: float = 0.0
    market: Market = field(default_factory=Market)
    staffing: Staffing = field(default_factory=Staffing)
    funded_by: str = SOCIAL_CARE

    def __post_init__(self) -> None:
        _check(bool(self.unit), "unit", self.unit, "a name for what capacity counts")
        _check(self.funded_by in FUNDERS, "funded_by", self.funded_by, " or ".join(FUNDERS))
        _check((self.capacity is None) != (self.staff is None), "capacity", self.capacity,
               "a number of units, or null when the service's size is set by its staff "
               "(give capacity or staff, not both)")
        if self.capacity is not None:
            _non_negative("capacity", self.capacity)
        _non_negative("community_referrals_per_day", self.community_referrals_per_day)
        _fraction("initial_utilisation", self.initial_utilisation)
        if self.then:
            _shares("then", list(self.then.values()), len(self.then))
        if self.staff is not None and self.staff.workforce.enabled:
            _check(self.market.enabled, "staff.workforce.enabled", True,
                   "true only with market.enabled=true (the providers hold the posts and hand "
                   "packages back when their carers leave)")
        if self.staffing.enabled:
            _check(self.capacity is not None and self.market.enabled, "staffing.enabled", True,
                   "true only for a service sized in places (capacity) with market.enabled=true "
                   "(its providers employ the staff): with the market off, set it false too")

    @property
    def size(self) -> float:
        """The service's capacity in its unit: ``capacity``, or its staff's weekly hours."""
        if self.staff is not None:
            return self.staff.count * self.staff.hours_each
        assert self.capacity is not None
        return self.capacity


HOME = "home"
"""In a service's ``then``: the client goes home, needing nothing more."""


BROKERAGE_HOURS = (0, 1, 2, 3, 4)
"""The days the council's brokerage team sends out referrals (assumption: weekdays)."""


def _services() -> Dict[str, Service]:
    """The default community services. Where each number comes from is in docs/calibration.md;
    the uncertain ones (homecare posts and acceptance, care-home places, acceptance and rounds)
    were fitted to configs/targets/england.yaml by the calibration experiment.
    ``configs/scenario/one_pool.yaml`` is the system before the market and the workforce (one
    pool per service, tuned transfer times)."""
    brokerage = Window(True, list(BROKERAGE_HOURS), 9, 17)
    homecare = Service(
        # 270 posts of 25 carer-hours a week, about 9.4% of them vacant at any time; a package
        # of 9 hours a week for about 16 days (IPACS/BNSSG pathway-1 stays 12-19 days).
        unit="carer-hours/week", staff=Staff(270, 25.0, Workforce(enabled=True)),
        amount=Distribution("gamma", 9.0, 5.0), stay=Distribution("lognormal", 16.0, 10.0),
        community_referrals_per_day=4.0, initial_utilisation=0.85,
        market=Market(
            enabled=True,
            # Localities with their own carers: a rural package waits while town carers are free.
            segments=[Segment("town", 0.65, 0.655, 20), Segment("rural", 0.35, 0.345, 10, 0.8)],
            acceptance=0.220, complex_share=0.12, complex_amount=2.0, complex_acceptance=0.228,
            incomplete_acceptance=0.7, weekend_acceptance=0.5, round_days=0.5,
            hours=Window(True, list(MONDAY_TO_SATURDAY), 9, 17),
            suspensions_per_year=0.1, suspension=Distribution("lognormal", 90.0, 45.0),
            choosiness=0.327))
    step_down = Service(
        unit="places", capacity=126, stay=Distribution("lognormal", 38.0, 20.0), funded_by=NHS,
        then={HOME: 0.55, "homecare": 0.35, "care_home": 0.10},
        community_referrals_per_day=0.8, initial_utilisation=0.9,
        market=Market(
            enabled=True,
            # Community hospitals and rehabilitation units in three localities.
            segments=[Segment("north", 0.3, 0.3, 2), Segment("central", 0.4, 0.4, 2),
                      Segment("south", 0.3, 0.3, 2)],
            acceptance=0.12, incomplete_acceptance=0.8, round_days=1.0, hours=brokerage))
    care_home = Service(
        unit="places", capacity=1414, stay=Distribution("lognormal", 801.0, 1134.0),
        community_referrals_per_day=0.35, initial_utilisation=0.83,
        market=Market(
            enabled=True,
            # Kinds of place that do not substitute; nursing and dementia care harder to place.
            segments=[Segment("residential", 0.5, 0.5, 14),
                      Segment("nursing", 0.33, 0.33, 9, 0.8),
                      Segment("dementia_nursing", 0.17, 0.17, 5, 0.6)],
            acceptance=0.0478, incomplete_acceptance=0.5, weekend_acceptance=0.5,
            round_days=1.15, choosiness=0.751,
            hours=brokerage, suspensions_per_year=0.1,
            suspension=Distribution("lognormal", 120.0, 60.0)),
        # Homes employ care staff for their places, who come and go (Skills for Care rates), and
        # take no new resident while their residents fill what the staff at work can look after.
        staffing=Staffing(enabled=True))
    return {"homecare": homecare, "step_down": step_down, "care_home": care_home}


@dataclass(frozen=True)
class Pathway:
    """One discharge pathway: its share of patients, the acute stay until medically fit, and
    what must happen, each step its own cause of delay, before the patient may leave the bed:

    - ``summary``: the medical decision and the discharge summary, with the medicines to take
      home: work of the ward's doctors and pharmacy (days of :attr:`Params.ward` hours), begun
      when the patient becomes medically fit, alongside the steps below;
    - the discharge team's assessment, if ``needs_assessment``;
    - a council funding decision for ``funded_share`` of patients (the others fund their own
      care): ``funding`` days of social workers' time (:attr:`Params.funding` hours), then the
      next sitting of the funding panel;
    - ``choice``: days for the patient and family to choose where to go (a care home);
    - the community service the pathway needs (``service``; none: home), placed as its market
      allows;
    - equipment and home adaptations for ``equipment_share`` of patients, ``equipment`` days
      from the assessment, alongside the steps before;
    - ``transfer``: transport and hand-over on the day;
    - the ``rule``: the days and hours the receiving service takes people.

    Each step is off at its default (0 days, share 0)."""

    share: float = 0.25
    acute_stay: Distribution = field(default_factory=lambda: Distribution("lognormal", 6.0, 6.0))
    needs_assessment: bool = True
    service: Optional[str] = None
    transfer: Distribution = field(default_factory=lambda: Distribution("fixed", 0.0))
    rule: Window = field(default_factory=Window)
    summary: Distribution = field(default_factory=lambda: Distribution("fixed", 0.0))
    funded_share: float = 0.0
    funding: Distribution = field(default_factory=lambda: Distribution("fixed", 0.0))
    choice: Distribution = field(default_factory=lambda: Distribution("fixed", 0.0))
    equipment_share: float = 0.0
    equipment: Distribution = field(default_factory=lambda: Distribution("fixed", 0.0))
    escalates_to: Dict[str, float] = field(default_factory=dict)
    """Harm of waiting (used when ``harm.escalation.enabled``): the pathways a patient's need
    escalates to, as shares (empty: it does not escalate), with ``escalation_per_day``, the
    probability per day in hospital after becoming medically fit that it escalates."""
    escalation_per_day: float = 0.0

    def __post_init__(self) -> None:
        _fraction("share", self.share)
        _fraction("funded_share", self.funded_share)
        _fraction("equipment_share", self.equipment_share)
        _check(0.0 <= self.escalation_per_day < 1.0, "escalation_per_day",
               self.escalation_per_day, "a daily probability in [0, 1)")
        if self.escalates_to:
            _shares("escalates_to", list(self.escalates_to.values()), len(self.escalates_to))


def _pathway(share: float, stay_mean: float, stay_sd: float, service: Optional[str],
             transport: float, days: tuple[int, ...], start: float, end: float,
             **steps: Any) -> Pathway:
    """A pathway with a lognormal acute stay and transport (sd 3/4 of the mean), its rule, the
    discharge summary's ward time (by default 0.1 days, sd 0.08) and any other ``steps``."""
    steps.setdefault("summary", Distribution("lognormal", 0.1, 0.08))
    return Pathway(share=share, acute_stay=Distribution("lognormal", stay_mean, stay_sd),
                   needs_assessment=service is not None, service=service,
                   transfer=Distribution("lognormal", transport, transport * 0.75),
                   rule=Window(True, list(days), start, end), **steps)


def _pathways() -> Dict[str, Pathway]:
    """The four national discharge pathways: 0 home, 1 home with homecare, 2 step-down or rehab
    bed, 3 care home. Transport takes hours; the days come from the steps before it. The share
    of pathway 3 (DHSC: "about 1%"; pathway 0 gives up what it gains), the spread of pathway-1
    stays, the summaries' work (p0, p1), the social workers' work on a funding case and the
    families' choice were fitted (docs/calibration.md).

    Equipment and home adaptations: for 15% of homecare patients (assumption). Care homes: 37%
    of residents fund their own care (ONS 2023, not in the project's reference notes: check);
    the others wait for the council's funding decision; the social workers' work on a case and
    the family's choice of home have fitted means and assumed spreads. Deconditioning (used
    only when harm.escalation.enabled), an assumption with no published figure: 1% a day, so
    that about 1 in 10 patients delayed 10 days needs more care; pathway 1 escalates mostly to
    rehabilitation (70/30, assumed). Calibrate locally."""
    return {
        "p0": _pathway(0.4907, 6.5, 7.0, None, 0.08, ALL_DAYS, 8, 20,
                       summary=Distribution("lognormal", 0.00624, 0.05), escalates_to={"p1": 1.0}, escalation_per_day=0.01),
        "p1": _pathway(0.45, 10.0, 20.2, "homecare", 0.1, MONDAY_TO_SATURDAY, 8, 18,
                       summary=Distribution("lognormal", 0.225, 0.08), equipment_share=0.15,
                       equipment=Distribution("lognormal", 1.5, 1.2),
                       escalates_to={"p2": 0.7, "p3": 0.3}, escalation_per_day=0.01),
        "p2": _pathway(0.04, 12.0, 10.0, "step_down", 0.15, WEEKDAYS, 9, 17),
        "p3": _pathway(0.0193, 14.0, 11.0, "care_home", 0.15, WEEKDAYS, 9, 17,
                       funded_share=0.63, funding=Distribution("lognormal", 0.950, 2.0),
                       choice=Distribution("lognormal", 1.28, 3.0)),
    }


@dataclass(frozen=True)
class Assessment:
    """Discharge planning: an assessment by a discharge team for patients whose pathway needs one.

    ``duration`` is working time (days of the team's open hours, 0.125 = 3 hours); it pauses
    outside ``hours``. ``in_hospital: false`` is discharge to assess: the patient leaves the
    acute bed without waiting for it and is assessed in the community service instead.
    """

    staff: int = 18
    duration: Distribution = field(default_factory=lambda: Distribution("lognormal", 0.1, 0.05))
    hours: Window = field(default_factory=lambda: Window(True, list(ALL_DAYS), 8, 18, 0.760))
    in_hospital: bool = True

    def __post_init__(self) -> None:
        _check(self.staff >= 0, "staff", self.staff, "an integer >= 0")


@dataclass(frozen=True)
class Ward:
    """The ward's doctors and pharmacy, who make the medical decision that a patient can go and
    write the discharge summary with the medicines to take home, in ``hours`` (at weekends at
    the pace ``hours.weekend_cover``)."""

    hours: Window = field(default_factory=lambda: Window(True, list(ALL_DAYS), 8, 18, 0.95))


@dataclass(frozen=True)
class Funding:
    """The council's funding decisions: a case is prepared in social workers' ``hours`` and
    decided at the next sitting of the funding ``panel``."""

    hours: Window = field(default_factory=lambda: Window(True, list(WEEKDAYS), 9, 17))
    panel: Window = field(default_factory=lambda: Window(True, [1, 3], 10, 12))


def _daily_probability(name: str, value: float) -> None:
    _check(math.isfinite(value) and 0.0 <= value < 1.0, name, value,
           "a daily probability in [0, 1)")


@dataclass(frozen=True)
class Escalation:
    """Deconditioning: each day in hospital after becoming medically fit, a patient's need may
    escalate to the next pathway with the pathway's ``escalation_per_day`` (the pathways'
    ``escalates_to`` say where to). The patient withdraws any request for the old service, is
    assessed again if the new pathway needs it, and waits for the new service. At most one
    escalation per patient (assumption: a second one within one delay is rare at these rates)."""

    enabled: bool = False


@dataclass(frozen=True)
class UnwellAgain:
    """New illness while delayed: each day after becoming medically fit, a patient may become
    medically unfit again (infection, fall) for ``duration`` days; the days unfit are not
    delayed days, and a patient unfit when due to leave leaves only after a new transfer. At
    most one episode per patient (assumption)."""

    enabled: bool = False
    # Jasinarachchi et al. 2009: 7 of 58 delayed patients became unfit again during delays of
    # 4.8 days on average: 1 - (1 - p)^4.8 = 7/58 gives p = 0.026 a day.
    per_day: float = 0.026
    # Assumption (no published figure): an episode of infection or a fall treated in the bed,
    # 5 days on average, skewed.
    duration: Distribution = field(default_factory=lambda: Distribution("lognormal", 5.0, 4.0))

    def __post_init__(self) -> None:
        _daily_probability("per_day", self.per_day)


@dataclass(frozen=True)
class Death:
    """Death in hospital: a daily probability during the acute stay (``acute_per_day``) and
    another from becoming medically fit until leaving (``delayed_per_day``). A patient who dies
    frees the bed and any service place granted or asked for."""

    enabled: bool = False
    # Jasinarachchi et al. 2009: 13 of 158 patients died outside a delay; over an acute stay of
    # about 10 days (assumption: the length of stay is not given) p = 0.0085 a day.
    acute_per_day: float = 0.0085
    # Jasinarachchi et al. 2009: 5 of 58 delayed patients died during delays of 4.8 days on
    # average: 1 - (1 - p)^4.8 = 5/58 gives p = 0.0186 a day (a frail group: an upper figure).
    delayed_per_day: float = 0.0186

    def __post_init__(self) -> None:
        _daily_probability("acute_per_day", self.acute_per_day)
        _daily_probability("delayed_per_day", self.delayed_per_day)


@dataclass(frozen=True)
class Readmission:
    """Readmission within ``within_days`` of a discharge (any pathway): a discharge is
    incomplete (without medicines or a discharge summary) with ``incomplete_share``, or
    ``incomplete_share_weekend`` on a Saturday or Sunday; it leads to a readmission with
    ``probability``, times ``incomplete_relative_risk`` if incomplete and
    ``weekend_relative_risk`` at a weekend (at most 1). The readmission is a new admission, at
    a time drawn from an exponential with mean ``mean_days`` cut at ``within_days``."""

    enabled: bool = False
    within_days: float = 30.0
    # Assumption (no figure in the project's references): 12% of older patients discharged
    # completely on a weekday come back as an emergency within 30 days; check against local data.
    probability: float = 0.12
    # Li et al. 2013 (J Eval Clin Pract 19:76-9): 20.6% of discharges had no summary within a
    # week. Weekends: assumption, half as many again (a rushed discharge).
    incomplete_share: float = 0.206
    incomplete_share_weekend: float = 0.31
    # Li et al. 2013: no summary, 37% more readmissions within 28 days (95% CI 17% to 61%).
    incomplete_relative_risk: float = 1.37
    # Cloyd et al. 2015 (J Hosp Med 10:731): a weekend discharge itself, no effect (odds ratio
    # 0.99-1.02), so its risk acts through incomplete discharges only.
    weekend_relative_risk: float = 1.0
    # Witherington et al. 2008 (Qual Saf Health Care 17:71): of readmissions of people 75+ within
    # 28 days, 44% within 7 days; an exponential of mean 14 days cut at 30 gives 45%.
    mean_days: float = 14.0

    def __post_init__(self) -> None:
        _positive("within_days", self.within_days)
        _fraction("probability", self.probability)
        _fraction("incomplete_share", self.incomplete_share)
        _fraction("incomplete_share_weekend", self.incomplete_share_weekend)
        _non_negative("incomplete_relative_risk", self.incomplete_relative_risk)
        _non_negative("weekend_relative_risk", self.weekend_relative_risk)
        _positive("mean_days", self.mean_days)


@dataclass(frozen=True)
class Harm:
    """The harm of waiting in a hospital bed, each mechanism switched on on its own (all off by
    default: the model is then exactly what it was without them). See docs/harm.md."""

    escalation: Escalation = field(default_factory=Escalation)
    unwell_again: UnwellAgain = field(default_factory=UnwellAgain)
    death: Death = field(default_factory=Death)
    readmission: Readmission = field(default_factory=Readmission)

    @property
    def any(self) -> bool:
        """Whether any mechanism is on."""
        return (self.escalation.enabled or self.unwell_again.enabled or self.death.enabled
                or self.readmission.enabled)


@dataclass(frozen=True)
class Params:
    """Everything one run of the model needs (the seed is in ``run``).

    ``pathways`` and ``services`` are tables: a pathway names the service it needs, and a
    service names where its clients go next, so a new service or pathway is added in config
    alone. Pathway shares must sum to 1.
    """

    run: Run = field(default_factory=Run)
    admissions: Admissions = field(default_factory=Admissions)
    acute: Acute = field(default_factory=Acute)
    pathways: Dict[str, Pathway] = field(default_factory=_pathways)
    assessment: Assessment = field(default_factory=Assessment)
    services: Dict[str, Service] = field(default_factory=_services)
    ward: Ward = field(default_factory=Ward)
    funding: Funding = field(default_factory=Funding)
    harm: Harm = field(default_factory=Harm)

    def __post_init__(self) -> None:
        _check(len(self.pathways) > 0, "pathways", list(self.pathways), "at least one pathway")
        names = " + ".join(f"pathways.{k}.share" for k in self.pathways)
        _shares(names, [p.share for p in self.pathways.values()], len(self.pathways))
        known = ", ".join(self.services) or "(no services defined)"
        for key, pathway in self.pathways.items():
            if pathway.service is not None:
                _check(pathway.service in self.services, f"pathways.{key}.service",
                       pathway.service, f"null (home) or a service: {known}")
            for target in pathway.escalates_to:
                _check(target in self.pathways and target != key,
                       f"pathways.{key}.escalates_to", target,
                       "another pathway: " + ", ".join(k for k in self.pathways if k != key))
        for name, service in self.services.items():
            for onward in service.then:
                _check(onward == HOME or (onward in self.services and onward != name
                                          and not self.services[onward].then),
                       f"services.{name}.then", onward,
                       f"'{HOME}' or another service with no 'then' of its own: {known}")


def override(params: Any, updates: Mapping[str, Any]) -> Any:
    """A copy of ``params`` with fields replaced by dotted name, e.g.
    ``override(p, {"services.care_home.capacity": 1300, "pathways.p0.share": 0.4445,
    "pathways.p1.share": 0.5})``. Keys of the ``pathways`` and ``services`` tables are names
    like any other; a new key adds an entry. An item of a list is named by its index:
    ``services.homecare.market.segments[1].providers``.

    All updates are applied before any dataclass is rebuilt and validated again, so changes that
    are only valid together (pathway shares) can be made at once.
    """
    by_field: dict[str, dict[str, Any]] = {}
    if isinstance(params, dict):
        known = set(params)
    else:
        known = {f.name for f in fields(params)} if is_dataclass(params) else set()
    for dotted, value in updates.items():
        head, _, rest = dotted.partition(".")
        name, bracket, index = head.partition("[")
        if name not in known and not (isinstance(params, dict) and rest == "" and not bracket):
            raise ParameterError(dotted, value, "an existing parameter name")
        key = f"[{index}" + (f".{rest}" if rest else "") if bracket else rest
        by_field.setdefault(name, {})[key] = value

    def updated(current: Any, head: str, rests: dict[str, Any]) -> Any:
        if "" in rests:
            return rests[""]
        try:
            if any(key.startswith("[") for key in rests):
                return _updated_list(current, rests)
            return override(current, rests)
        except ParameterError as error:  # name the field in full: pathways.p1.share
            raise error.within(head) from None

    if isinstance(params, dict):
        table = dict(params)
        for head, rests in by_field.items():
            table[head] = updated(table.get(head), head, rests)
        return table
    kwargs = {f.name: getattr(params, f.name) for f in fields(params)}
    for head, rests in by_field.items():
        kwargs[head] = updated(kwargs[head], head, rests)
    return type(params)(**kwargs)


def _updated_list(items: Any, rests: Mapping[str, Any]) -> list:
    """A copy of a list with items updated by index (``[1].providers``, or ``[1]`` whole)."""
    out = list(items)
    by_index: dict[int, dict[str, Any]] = {}
    for key, value in rests.items():
        index, _, rest = key[1:].partition("]")
        ok = index.isdigit() and int(index) < len(out) and (rest == "" or rest.startswith("."))
        if not ok:
            raise ParameterError(f"[{index}]{rest}", value,
                                 f"an item of the list, [0] to [{len(out) - 1}]")
        by_index.setdefault(int(index), {})[rest[1:]] = value
    for i, item_updates in by_index.items():
        try:
            out[i] = item_updates[""] if "" in item_updates else override(out[i], item_updates)
        except ParameterError as error:
            raise error.within(f"[{i}]") from None
    return out


def build(cls: type, data: Mapping[str, Any], prefix: str = "") -> Any:
    """An instance of the parameter dataclass ``cls`` from plain data (nested mappings and lists,
    e.g. a composed config as a container): each nested dataclass built first, in turn, so that
    a value out of range is refused by the deepest dataclass that checks it, with its field
    named in full (``services.homecare.staff.count``). Fields not in ``data`` keep their
    defaults."""
    hints = get_type_hints(cls)
    kwargs = {f.name: _built(hints[f.name], data[f.name], f"{prefix}{f.name}")
              for f in fields(cls) if f.name in data}
    try:
        return cls(**kwargs)
    except ParameterError as error:
        raise error.within(prefix.rstrip(".")) from None


def _built(hint: Any, value: Any, name: str) -> Any:
    """A field's value from plain data, by its type hint: dataclasses built, lists and tables
    of them built item by item."""
    if value is None:
        return None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Union:  # Optional[X]
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    if is_dataclass(hint) and isinstance(value, Mapping):
        return build(hint, value, f"{name}.")
    if origin is list:
        return [_built(args[0], v, f"{name}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        return {k: _built(args[1], v, f"{name}.{k}") for k, v in value.items()}
    return value
