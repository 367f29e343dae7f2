"""A care market: providers that have room or not, and accept a referral or decline it.

A community service with a market (:class:`sim.core.params.Market`) is not one pool. Its places
(or its carers' hours) are split into segments that do not substitute for each other (kinds of
care-home place, localities of homecare), and each segment among its providers. A referral is
offered, in rounds of offers, to every provider of the client's segment that has room for it;
each accepts or declines. So a client waits while providers have no room, and also while those
with room say no: more often for complex needs, at weekends, or while the hospital's discharge
summary is not written. That second kind of wait is why real systems have long waits at 85-95%
occupancy, where one first-come-first-served pool of hundreds of places has almost none.

The chance of acceptance is kept as a hazard. If ``m`` providers have room in a round and each
accepts with probability ``a``, nobody accepts with probability ``(1 - a) ** m``, that is
``exp(-h)`` with ``h = -m log(1 - a)``. A client who brings a unit exponential ``clock`` is
accepted at the first round at which the sum of the rounds' ``h`` reaches it, by the provider
that ``pick`` (a uniform) points to among those with room. That is exactly the chance of rounds
of independent offers, and all of a client's luck is drawn when the client appears, so a change
of capacity changes when a client is placed, not the random numbers that client gets.

Providers can stop taking new clients for a time (suspended: an inadequate rating) or close
(their places are gone and their clients must be placed again). A provider whose capacity falls
below what its clients use (carers who left, :mod:`sim.core.workforce`) hands clients back. A
care home whose staff cannot look after all its places (:class:`sim.core.params.Staffing`)
takes no one new while its residents fill what its staff can look after, and moves no one out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import simpy

from sim.core.calendar import Calendar, is_weekend
from sim.core.params import Market as MarketSettings, Service
from sim.core.patient import Request
from sim.core.resources import TimeWeighted

_EPS = 1e-9
_PLACED, _DECLINED, _NO_ROOM = 0, 1, 2
"""What a round of offers comes to."""


@dataclass(slots=True)
class Placement:
    """What a client brings to the market, drawn when the client appears: the ``segment``
    needed (its index), whether the needs are ``complex``, and the client's luck: ``clock``, a
    unit exponential (the offers' cumulative hazard at which a provider says yes), and
    ``pick``, a uniform (which of the providers with room takes the client); and whether the
    client pays their own fees (``private``: a self-funder)."""

    segment: int
    complex: bool
    clock: float
    pick: float
    private: bool = False


class Provider:
    """One provider: its capacity (places or carer-hours a week), what its clients use, and
    whether it takes new clients."""

    __slots__ = ("segment", "index", "nominal", "staffed", "fills", "in_use", "suspended",
                 "closed", "clients")

    def __init__(self, segment: int, index: int, capacity: float) -> None:
        self.segment, self.index = segment, index
        self.nominal = capacity
        """What the provider could hold when open (its places, or its carers' hours now)."""
        self.staffed = math.inf
        """The places its staff at work can look after (a care home's staffing limit)."""
        self.fills = capacity
        """What it takes new clients up to: the smaller of ``nominal`` and ``staffed``."""
        self.in_use = 0.0
        self.suspended = 0
        """How many suspensions (an embargo, a closure) stop it taking clients now."""
        self.closed = 0
        """How many closures are under way (its capacity is then 0)."""
        self.clients: dict[Request, None] = {}
        """The requests it holds, in the order they were placed."""

    @property
    def capacity(self) -> float:
        return 0.0 if self.closed else self.nominal

    def has_room(self, amount: float) -> bool:
        return not self.suspended and not self.closed and (
            self.in_use + amount <= self.fills + _EPS)

    def resize(self, nominal: float | None = None, staffed: float | None = None) -> None:
        """Set what the provider could hold, or what its staff can look after, or both."""
        if nominal is not None:
            self.nominal = nominal
        if staffed is not None:
            self.staffed = staffed
        self.fills = min(self.nominal, self.staffed)


class _Sourcing:
    """A referral being offered round by round."""

    __slots__ = ("request", "placement", "complete_from", "event", "hazard", "live")

    def __init__(self, request: Request, placement: Placement, complete_from: float,
                 event: simpy.Event) -> None:
        self.request, self.placement, self.complete_from = request, placement, complete_from
        self.event = event
        self.hazard = 0.0
        self.live = True


def _nobody(request: Request, why: str) -> None:
    """No one to tell of a hand-back."""


class Market:
    """A service's providers, and the referrals being offered to them.

    Exposes what the model's metrics read of any service: ``use`` (time-weighted units in use),
    ``waiting`` (referrals being offered), ``size`` (time-weighted capacity), ``capacity`` and
    ``queue`` now.
    """

    def __init__(self, env: simpy.Environment, name: str, settings: MarketSettings,
                 capacities: list[list[float]], hours: Calendar) -> None:
        self.env, self.name, self.settings = env, name, settings
        self.hours = hours
        self.segments = [[Provider(g, j, c) for j, c in enumerate(caps)]
                         for g, caps in enumerate(capacities)]
        self.providers = [p for segment in self.segments for p in segment]
        self._factor = [settings.acceptance * g.acceptance for g in settings.segments]
        self._choosy = settings.choosiness > 0
        self.queue: dict[Request, _Sourcing] = {}
        """The referrals being offered, in the order they were made."""
        self.in_use = 0.0
        self.use = TimeWeighted()
        self.waiting = TimeWeighted()
        self.size = TimeWeighted(level=self.capacity)
        self.segment_use = [TimeWeighted() for _ in self.segments]
        self.segment_size = [TimeWeighted(level=sum(p.capacity for p in providers))
                             for providers in self.segments]
        self.not_taking = TimeWeighted()
        """Providers not taking new clients (suspended or closed)."""
        self._staffed_level = self._staffed_now()
        self._limited = False
        """Whether any provider's staff limit its places (then ``staffed`` is kept up)."""
        self.staffed = TimeWeighted(level=self._staffed_level)
        """Places (units) the providers' staff can look after, at most their capacity."""
        self.on_hand_back: Callable[[Request, str], None] = _nobody
        """Called for each client a provider hands back (``why``: "handed_back" or "moved")."""
        self._where: dict[Request, Provider] = {}
        self.asleep: list[dict[_Sourcing, None]] = [{} for _ in self.segments]
        """Referrals that found no provider with room, by segment, in the order they slept."""
        self._waking = [False] * len(self.segments)

    @property
    def capacity(self) -> float:
        return sum(p.capacity for p in self.providers)

    # ------------------------------------------------------------------ placing clients
    def place(self, request: Request, placement: Placement,
              complete_from: float = -math.inf) -> simpy.Event | None:
        """Offer ``request`` to the providers, now (or when the brokerage team next works),
        then round by round. Returns None if a provider took it at once, else an event that
        succeeds when one does. ``complete_from``: when the hospital's discharge summary is
        written (offers before then are incomplete)."""
        sourcing = _Sourcing(request, placement, complete_from, self.env.event())
        request.segment = self.settings.segments[placement.segment].name
        now = self.env.now
        opens = self.hours.next_open(now)
        outcome = self._offer(sourcing) if opens <= now else None
        if outcome == _PLACED:
            return None
        self.queue[request] = sourcing
        self.waiting.set(now, len(self.queue))
        if outcome == _NO_ROOM:
            self._sleep(sourcing)
        else:
            self._next_round(sourcing, opens if outcome is None else None)
        return sourcing.event

    def _offer(self, sourcing: _Sourcing) -> int:
        """One round of offers now: placed, declined by every provider with room, or no room."""
        request, placement = sourcing.request, sourcing.placement
        request.rounds += 1
        amount = request.amount
        room = [p for p in self.segments[placement.segment]  # has_room, inlined: the hot loop
                if not p.suspended and not p.closed and p.in_use + amount <= p.fills + _EPS]
        if not room:
            return _NO_ROOM
        s = self.settings
        a = self._factor[placement.segment]
        if placement.complex:
            a *= s.complex_acceptance
        now = self.env.now
        if now < sourcing.complete_from:
            a *= s.incomplete_acceptance
        if is_weekend(now):
            a *= s.weekend_acceptance
        if placement.private:
            a *= s.private_acceptance
        if a <= 0:
            return _DECLINED
        if self._choosy:
            return self._offer_to_choosy(sourcing, room, a)
        sourcing.hazard += math.inf if a >= 1 else -len(room) * math.log1p(-a)
        if sourcing.hazard < placement.clock:
            return _DECLINED
        provider = room[min(int(placement.pick * len(room)), len(room) - 1)]
        self._take(provider, request)
        return _PLACED

    def _offer_to_choosy(self, sourcing: _Sourcing, room: list[Provider], a: float) -> int:
        """A round of offers to providers each as ready as its free share makes it
        (:attr:`sim.core.params.Market.choosiness`): the client is placed when the hazards'
        sum reaches its clock, with the provider its ``pick`` points to in proportion to each
        provider's hazard."""
        s = self.settings
        hazards = []
        for p in room:
            yes = a * ((p.fills - p.in_use) / p.fills / s.reference_free) ** s.choosiness
            hazards.append(math.inf if yes >= 1 else -math.log1p(-yes))
        total = sum(hazards)
        sourcing.hazard += total
        if sourcing.hazard < sourcing.placement.clock:
            return _DECLINED
        if math.isinf(total):  # one that surely says yes, among those that do
            sure = [p for p, h in zip(room, hazards) if math.isinf(h)]
            provider = sure[min(int(sourcing.placement.pick * len(sure)), len(sure) - 1)]
        else:
            point, provider = sourcing.placement.pick * total, room[-1]
            for p, h in zip(room, hazards):
                point -= h
                if point < 0:
                    provider = p
                    break
        self._take(provider, sourcing.request)
        return _PLACED

    def _next_round(self, sourcing: _Sourcing, at: float | None = None) -> None:
        now = self.env.now
        when = at if at is not None else self.hours.next_open(now + self.settings.round_days)
        self.env.timeout(when - now).callbacks.append(lambda _: self._round(sourcing))

    def _round(self, sourcing: _Sourcing) -> None:
        """A referral's next round of offers."""
        if sourcing.live:
            self._after(sourcing, self._offer(sourcing))

    def _after(self, sourcing: _Sourcing, outcome: int) -> None:
        if outcome == _PLACED:
            sourcing.live = False
            del self.queue[sourcing.request]
            self.waiting.set(self.env.now, len(self.queue))
            sourcing.event.succeed()
        elif outcome == _NO_ROOM:
            self._sleep(sourcing)
        else:
            self._next_round(sourcing)

    def _sleep(self, sourcing: _Sourcing) -> None:
        """No provider has room: the referral waits, without rounds, for room in its segment
        (a provider tells the brokerage team of a vacancy)."""
        self.asleep[sourcing.placement.segment][sourcing] = None

    def _room_appeared(self, segment: int) -> None:
        """Room may have appeared in ``segment``: the referrals waiting for room there get a
        round of offers, in the order they were made, when the brokerage team next works."""
        if self.asleep[segment] and not self._waking[segment]:
            self._waking[segment] = True
            now = self.env.now
            self.env.timeout(self.hours.next_open(now) - now).callbacks.append(
                lambda _: self._wake(segment))

    def _wake(self, segment: int) -> None:
        self._waking[segment] = False
        asleep = self.asleep[segment]
        providers = self.segments[segment]
        free = self._most_free(providers)
        for sourcing in list(asleep):
            if not sourcing.live:
                del asleep[sourcing]
            elif sourcing.request.amount <= free + _EPS:  # else: still no room for it
                del asleep[sourcing]
                outcome = self._offer(sourcing)
                self._after(sourcing, outcome)
                if outcome == _PLACED:
                    free = self._most_free(providers)

    @staticmethod
    def _most_free(providers: list[Provider]) -> float:
        """The most room any of these providers taking clients has."""
        return max((p.fills - p.in_use for p in providers if not p.suspended and not p.closed),
                   default=-math.inf)

    def withdraw(self, request: Request) -> None:
        """Stop offering a referral (the patient died, or now needs something else)."""
        sourcing = self.queue.pop(request, None)
        if sourcing is not None:
            sourcing.live = False
            self.asleep[sourcing.placement.segment].pop(sourcing, None)
            self.waiting.set(self.env.now, len(self.queue))

    def _take(self, provider: Provider, request: Request) -> None:
        provider.in_use += request.amount
        provider.clients[request] = None
        self._where[request] = provider
        request.segment = self.settings.segments[provider.segment].name
        request.provider = provider.index
        self._set_use(provider, self.in_use + request.amount)

    def take_at(self, provider: Provider, request: Request) -> bool:
        """Place ``request`` with ``provider`` directly (the clients a service starts with:
        they are there already, so the provider's staffing limit does not apply)."""
        if provider.suspended or provider.closed or (
                provider.in_use + request.amount > provider.nominal + _EPS):
            return False
        if request.placement is None:
            request.placement = Placement(provider.segment, False, 0.0, 0.0)
        self._take(provider, request)
        return True

    def release(self, request: Request) -> None:
        """The client's stay has ended: its place (or hours) are free."""
        provider = self._where.pop(request)
        del provider.clients[request]
        provider.in_use = max(0.0, provider.in_use - request.amount)
        if provider.in_use < _EPS:
            provider.in_use = 0.0
        self._set_use(provider, self.in_use - request.amount)
        self._room_appeared(provider.segment)

    def _set_use(self, provider: Provider, level: float) -> None:
        now = self.env.now
        change = level - self.in_use
        self.in_use = level if level > _EPS else 0.0
        self.use.set(now, self.in_use)
        used = self.segment_use[provider.segment]
        used.set(now, max(0.0, used.level + change))

    # ------------------------------------------------------------------ providers change
    def set_capacity(self, provider: Provider, capacity: float, stretch: float,
                     rng: np.random.Generator) -> None:
        """The provider's capacity is now ``capacity`` (its carers' hours); clients beyond it
        by more than ``stretch`` are handed back, chosen at random with ``rng``."""
        more = capacity > provider.nominal
        provider.resize(nominal=capacity)
        self.changed_size()
        self._hand_back(provider, capacity * (1.0 + stretch), "handed_back", rng)
        if more:
            self._room_appeared(provider.segment)

    def set_staffed(self, provider: Provider, places: float) -> None:
        """The provider's staff at work can now look after ``places``: it takes new clients up
        to that many (and its places); nobody is moved out."""
        before = provider.fills
        was = min(provider.capacity, provider.staffed)
        provider.resize(staffed=places)
        self._limited = True
        self._staffed_level += min(provider.capacity, provider.staffed) - was
        self.staffed.set(self.env.now, self._staffed_level)
        if provider.fills > before:
            self._room_appeared(provider.segment)

    def suspend(self, provider: Provider, days: float) -> None:
        """The provider takes no new clients for ``days``."""
        provider.suspended += 1
        self.changed_size()
        self.env.timeout(days).callbacks.append(lambda _: self._resume(provider))

    def _resume(self, provider: Provider) -> None:
        provider.suspended -= 1
        self.changed_size()
        self._room_appeared(provider.segment)

    def close(self, provider: Provider, days: float) -> None:
        """The provider closes for ``days``: its capacity is gone and its clients move out
        (each is placed again, by :attr:`on_hand_back`)."""
        provider.closed += 1
        provider.suspended += 1
        self.changed_size()
        self._hand_back(provider, 0.0, "moved", None)
        self.env.timeout(days).callbacks.append(lambda _: self._reopen(provider))

    def _reopen(self, provider: Provider) -> None:
        provider.closed -= 1
        provider.suspended -= 1
        self.changed_size()
        self._room_appeared(provider.segment)

    def changed_size(self) -> None:
        now = self.env.now
        self.size.set(now, self.capacity)
        for level, providers in zip(self.segment_size, self.segments):
            level.set(now, sum(p.capacity for p in providers))
        self.not_taking.set(now, sum(1 for p in self.providers if p.suspended or p.closed))
        if self._limited:
            self._staffed_level = self._staffed_now()
            self.staffed.set(now, self._staffed_level)

    def _staffed_now(self) -> float:
        return sum(min(p.capacity, p.staffed) for p in self.providers)

    def _hand_back(self, provider: Provider, limit: float, why: str,
                   rng: np.random.Generator | None) -> None:
        while provider.clients and provider.in_use > limit + _EPS:
            clients = list(provider.clients)
            request = clients[int(rng.integers(len(clients)))] if rng is not None else clients[0]
            self.release(request)
            self.on_hand_back(request, why)

    def drop_pending(self) -> None:
        """The run is over: forget what placing the referrals still being offered, or handing
        clients back, would have done (it refers back to the model: see ``Model.run``)."""
        for sourcing in self.queue.values():
            sourcing.event.callbacks = []
        self.on_hand_back = _nobody

    def restart_statistics(self) -> None:
        now = self.env.now
        for level in (self.use, self.waiting, self.size, self.not_taking, self.staffed,
                      *self.segment_use, *self.segment_size):
            level.restart(now)


def split_whole(total: float, shares: list[float]) -> list[float]:
    """``total`` split by ``shares``: in whole numbers (largest remainders first, then the
    earlier) when ``total`` is whole, so that places and posts stay whole."""
    raw = [total * share for share in shares]
    if not float(total).is_integer():
        return raw
    whole = [math.floor(x + 1e-9) for x in raw]
    order = sorted(range(len(raw)), key=lambda i: (-(raw[i] - whole[i]), i))
    for i in order[:int(round(total)) - sum(whole)]:
        whole[i] += 1
    return [float(w) for w in whole]


def provider_sizes(service: Service) -> tuple[list[list[float]], list[list[int]]]:
    """Each provider's capacity, by segment (places, or its carers' hours), and for a staffed
    service its posts (else empty lists): the service's capacity split by the segments' shares,
    then evenly among each segment's providers, in whole places and posts."""
    settings = service.market
    shares = [g.capacity for g in settings.segments]
    providers = [g.providers for g in settings.segments]
    if service.staff is None:
        places = split_whole(float(service.capacity or 0.0), shares)
        return ([split_whole(total, [1.0 / n] * n) for total, n in zip(places, providers)],
                [[] for _ in providers])
    staff = service.staff
    posts = [[int(x) for x in split_whole(float(n), [1.0 / m] * m)]
             for n, m in zip(split_whole(float(staff.count), shares), providers)]
    return [[n * staff.hours_each for n in row] for row in posts], posts


def staffing_posts(service: Service, capacities: list[list[float]]) -> list[list[int]]:
    """Each provider's care posts, by segment, for a service whose staff limit the places it
    can fill: ``staffing.establishment`` posts for each ``staffing.places_per_post`` of its
    places, in whole posts."""
    staffing = service.staffing
    per_place = staffing.establishment / staffing.places_per_post
    return [[int(round(places * per_place)) for places in row] for row in capacities]
