"""The community side of the system: the services that hospital patients wait for, shared with
clients referred from the community.

Every community service (homecare, step-down beds, care homes, or any other in the parameters'
table) is placed through one interface, :class:`CommunityService`: a request is placed now or
later (``place``), withdrawn before it is granted (``withdraw``), released when its use ends
(``release``), and a client found in service at the start is put straight in (``take_at``). A
service is either one first-come-first-served pool (:class:`PoolService`) or a market of
providers that accept or decline (:class:`sim.core.market.Market`); the rest of the model does
not ask which.

:class:`Community` holds the services with their workforces (:mod:`sim.core.workforce`), the
log of requests, the clients referred from the community, the clients placed again after a
provider hands them back or closes, the providers' suspensions and closures, and the clients
the services hold on the first day. The hospital's side (:mod:`sim.core.model`) asks it for a
place and tells it when a patient's use of the place begins and ends.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Protocol, Sequence

import numpy as np
import simpy

from sim.core.arrivals import Arrivals
from sim.core.calendar import Calendar
from sim.core.market import Market, Placement, provider_sizes, staffing_posts
from sim.core.params import Distribution, Params, Service
from sim.core.patient import Request
from sim.core.resources import CapacityPool, Constant, TimeWeighted
from sim.core.sampling import placement_samplers
from sim.core.start import StartService
from sim.core.streams import Streams, draw_one, length_biased_draw, sampler
from sim.core.workforce import Roster


class Unit(Protocol):
    """A part of a service that holds clients: a provider, or the whole of a pool."""

    capacity: float
    in_use: float


class CommunityService(Protocol):
    """What the model asks of any community service, and what its metrics read: ``use``,
    ``waiting`` and ``size`` integrate the units in use, the requests waiting and the capacity
    over time; ``queue`` holds the requests waiting now; ``providers`` the units clients are
    placed with."""

    name: str
    use: TimeWeighted
    waiting: TimeWeighted
    size: TimeWeighted | Constant
    queue: Any
    providers: Sequence[Unit]

    @property
    def capacity(self) -> float: ...

    @property
    def in_use(self) -> float: ...

    def place(self, request: Request, placement: Placement | None,
              complete_from: float = -math.inf) -> simpy.Event | None:
        """Place ``request`` now (None) or later (an event that succeeds when it is placed);
        ``complete_from``: when the hospital's discharge summary is written."""

    def take_at(self, unit: Any, request: Request) -> bool:
        """Put a client already in service at the start with ``unit``, if it has room."""

    def withdraw(self, request: Request) -> None:
        """Stop waiting for a place (the patient died, or now needs something else)."""

    def release(self, request: Request) -> None:
        """The client's use has ended: the place (or hours) are free."""

    def restart_statistics(self) -> None: ...

    def drop_pending(self) -> None: ...


class PoolService:
    """A community service with no market: one first-come-first-served pool of its capacity,
    which takes every client it has room for (a client who needs more than is free waits, and
    so does everyone behind)."""

    def __init__(self, env: simpy.Environment, name: str, capacity: float) -> None:
        self.name = name
        self.pool = CapacityPool(env, name, capacity)
        self.providers = [self.pool]
        self.use, self.waiting, self.queue = self.pool.use, self.pool.waiting, self.pool.queue
        self.size = Constant(self.pool.capacity)

    @property
    def capacity(self) -> float:
        return self.pool.capacity

    @property
    def in_use(self) -> float:
        return self.pool.in_use

    def place(self, request: Request, placement: Placement | None = None,
              complete_from: float = -math.inf) -> simpy.Event | None:
        if self.pool.try_take(request.amount):
            return None
        return self.pool.request(request.amount, owner=request)

    def take_at(self, unit: Any, request: Request) -> bool:
        return self.pool.try_take(request.amount)

    def withdraw(self, request: Request) -> None:
        self.pool.cancel_owner(request)

    def release(self, request: Request) -> None:
        self.pool.release(request.amount)

    def restart_statistics(self) -> None:
        self.pool.restart_statistics()

    def drop_pending(self) -> None:
        self.pool.drop_pending()


def _residual_stay(dist: Distribution, rng: np.random.Generator) -> float:
    """Remaining stay of someone found in service at a random moment: a length-biased stay
    times a uniform (the equilibrium residual-life distribution)."""
    return length_biased_draw(dist, rng) * float(rng.random())


class Community:
    """The community services of one run, their workforces and everyone who uses them."""

    def __init__(self, env: simpy.Environment, params: Params, rng: Streams) -> None:
        self.env, self.params, self._rng = env, params, rng
        self.services: dict[str, CommunityService] = {}
        """Each community service: one first-come-first-served pool, or a market of providers."""
        self.rosters: dict[str, Roster] = {}
        """The posts of each service whose workforce (or staffing) comes and goes."""
        for name, service in params.services.items():
            if service.market.enabled:
                self.services[name] = self._market(name, service)
            else:
                self.services[name] = PoolService(env, name, service.size)
        self._referral_placements = placement_samplers(params, rng, "referral.", community=True)
        self._again_placements = placement_samplers(params, rng, "handback.")
        """What community referrals, and clients handed back, bring to a market."""
        self.requests: list[Request] = []
        """Every request for a community service, in the order made."""
        self._scale: dict[str, float] = {name: 1.0 for name in params.services}
        """Each service's capacity relative to its configured size (dated changes)."""

    # ------------------------------------------------------------------ starting
    def start(self, snapshot: dict[str, StartService] | None = None) -> None:
        """Start the workforces, the providers' closures and suspensions and the services'
        first clients (in this order, which fixes the order of their events); with a
        ``snapshot``, the services it names hold its clients and waiting lists instead."""
        for roster in self.rosters.values():
            roster.start()
        self._provider_events()
        if snapshot is None:
            self._fill()
        else:
            self._fill(skip=set(snapshot))
            self._fill_from(snapshot)

    def _fill_from(self, snapshot: dict[str, StartService]) -> None:
        """The snapshot's clients of each service it names: each in service placed with the
        provider with most room (waiting if none has room for it), for the rest of a stay
        drawn as a client found in service at a random moment; each waiting in the community
        joins the queue now. Drawn from streams of their own (``snapshot.*``)."""
        for name, state in snapshot.items():
            service, pool = self.params.services[name], self.services[name]
            rng = self._rng[f"snapshot.{name}"]
            placements = placement_samplers(self.params, self._rng, "snapshot.referral.",
                                            community=True).get(name)
            names = [g.name for g in service.market.segments] if service.market.enabled else []
            where = [names.index(g) for g, n in state.by_segment.items() for _ in range(n)]
            where += [-1] * (state.in_service - len(where))
            for segment in where:
                amount = draw_one(service.amount, rng)
                placement = placements.draw() if placements is not None else None
                if placement is not None and placement.complex:  # (two carers: more hours)
                    amount *= service.market.complex_amount
                units = pool.providers if segment < 0 else pool.segments[segment]  # type: ignore[attr-defined]
                unit = max(units, key=lambda u: u.capacity - u.in_use)
                request = self.log(name, "initial", amount)
                if unit.capacity - unit.in_use >= amount - 1e-9 and pool.take_at(unit, request):
                    request.granted = self.env.now
                    self.hold(request, _residual_stay(service.stay, rng))
                else:  # no room: waits in the community for the rest of its stay
                    request.source = "community"
                    self._wait(name, request, _residual_stay(service.stay, rng), placement)
            for _ in range(state.waiting):
                self._community_client(name, draw_one(service.amount, rng),
                                       draw_one(service.stay, rng),
                                       placements.draw() if placements is not None else None)

    def _wait(self, name: str, request: Request, days: float,
              placement: Placement | None) -> None:
        request.placement = placement
        request.stay = days

        def start(_: object = None) -> None:
            request.granted = self.env.now
            self.hold(request, days)

        event = self.services[name].place(request, placement)
        if event is None:
            start()
        else:
            event.callbacks.append(start)

    def set_size(self, name: str, size: float) -> None:
        """The service's capacity becomes ``size`` (its unit: places, or its staff's hours)
        now: a pool's, or each provider's in proportion; places in use are never taken away,
        only not filled again. With a workforce that comes and goes, the providers' hours
        (and those of every carer who joins later) scale in proportion."""
        service = self.services[name]
        before = self.params.services[name].size * self._scale.get(name, 1.0)
        ratio = size / before if before > 0 else 0.0
        self._scale[name] = self._scale.get(name, 1.0) * ratio
        if isinstance(service, PoolService):
            service.pool.set_capacity(size)
            service.size.level = service.pool.capacity  # (a Constant: its level from now)
            return
        assert isinstance(service, Market)
        segments = set()
        for provider in service.providers:
            if before > 0:
                provider.resize(nominal=provider.nominal * ratio)
            segments.add(provider.segment)
        service.changed_size()
        for segment in segments:
            service._room_appeared(segment)

    def start_referrals(self) -> None:
        """Start the referrals from the community to every service."""
        for service in self.params.services:
            self._community_referrals(service)

    def _market(self, name: str, service: Service) -> Market:
        """The service's providers, with their places or carers' hours, and its workforce."""
        settings = service.market
        capacities, posts = provider_sizes(service)
        market = Market(self.env, name, settings, capacities, Calendar(settings.hours))
        market.on_hand_back = self._place_again
        if service.staff is not None and service.staff.workforce.enabled:
            flat = market.providers
            roster = Roster(self.env, service.staff.workforce, [n for row in posts for n in row],
                            self._rng[f"{name}_workforce"])
            hours, stretch = service.staff.hours_each, service.staff.workforce.stretch
            rng = self._rng[f"{name}_handback"]
            roster.on_change = lambda j, working: market.set_capacity(
                flat[j], working * hours * self._scale[name], stretch, rng)
            self.rosters[name] = roster
        if service.staffing.enabled:
            flat, each = market.providers, service.staffing.places_per_post
            posts = [n for row in staffing_posts(service, capacities) for n in row]
            if service.staffing.workforce.enabled:
                roster = Roster(self.env, service.staffing.workforce, posts,
                                self._rng[f"{name}_staffing"])
                roster.on_change = lambda j, working: market.set_staffed(flat[j], working * each)
                self.rosters[name] = roster
            else:  # every post filled, always
                for provider, n in zip(flat, posts):
                    market.set_staffed(provider, n * each)
        return market

    def _provider_events(self) -> None:
        """Set each market's providers to the staff at work at the start, and schedule its
        closures and its providers' suspensions at random."""
        end = self.params.run.days
        for name, service in self.params.services.items():
            if not service.market.enabled:
                continue
            settings, market = service.market, self.services[name]
            assert isinstance(market, Market)
            for roster_provider, provider in enumerate(market.providers):
                if name in self.rosters:  # the staff at work at the start
                    working = self.rosters[name].working[roster_provider]
                    if service.staffing.enabled:
                        market.set_staffed(provider, working * service.staffing.places_per_post)
                    else:
                        provider.resize(nominal=working * service.staff.hours_each)
            market.changed_size()
            segment = {g.name: i for i, g in enumerate(settings.segments)}
            for closure in settings.closures:
                provider = market.segments[segment[closure.segment]][closure.provider]
                act = market.close if closure.moves_clients else market.suspend
                if closure.start < end and closure.days > 0:
                    self.env.timeout(closure.start).callbacks.append(
                        lambda _, act=act, provider=provider, days=closure.days: act(provider, days))
            if settings.suspensions_per_year > 0:
                rng = self._rng[f"{name}_suspensions"]
                mean_gap = 365.0 / settings.suspensions_per_year
                days = sampler(settings.suspension, rng)
                for provider in market.providers:
                    self._suspend_later(market, provider, rng.exponential(mean_gap), mean_gap,
                                        days, rng)

    def _suspend_later(self, market: Market, provider: Any, after: float, mean_gap: float,
                       days: Callable[[], float], rng: np.random.Generator) -> None:
        """The provider is suspended ``after`` days from now, and again after each suspension
        ends (gaps exponential with mean ``mean_gap``)."""
        if self.env.now + after >= self.params.run.days:
            return

        def suspend(_: object) -> None:
            length = days()
            market.suspend(provider, length)
            self._suspend_later(market, provider, length + rng.exponential(mean_gap), mean_gap,
                                days, rng)

        self.env.timeout(after).callbacks.append(suspend)

    def _fill(self, skip: frozenset[str] | set[str] = frozenset()) -> None:
        """Start community services part-full, as a real system is on the first day.

        Each service is filled to ``initial_utilisation`` of its capacity (of each provider's,
        in a market) with clients whose remaining time is drawn from the equilibrium residual
        distribution of the stay (a length-biased stay times a uniform), so the services start
        near their steady state and a short warm-up suffices even for care homes where
        residents stay for years.
        """
        for name, service in self.params.services.items():
            if name in skip:
                continue
            pool, rng = self.services[name], self._rng[f"initial_{name}"]
            for unit in pool.providers:
                target = service.initial_utilisation * unit.capacity
                while True:
                    amount = draw_one(service.amount, rng)
                    if unit.in_use + amount > target + 1e-9 or amount <= 0:
                        break
                    request = self.log(name, "initial", amount)
                    assert pool.take_at(unit, request)
                    request.granted = self.env.now
                    self.hold(request, _residual_stay(service.stay, rng))

    # ------------------------------------------------------------------ requests
    def log(self, service: str, source: str, amount: float,
            placement: Placement | None = None, patient: int = -1) -> Request:
        """A new request in the log, made now; the caller records when it is granted."""
        request = Request(service, source, amount, self.env.now, patient, placement=placement)
        self.requests.append(request)
        return request

    def ask(self, service: str, source: str, amount: float, placement: Placement | None,
            complete_from: float, patient: int) -> tuple[Request, simpy.Event | None]:
        """Ask for ``amount`` of a community service (placed with a provider if it has a
        market: ``placement``, with the discharge summary written from ``complete_from``;
        -inf: no summary to wait for): the request, and None if it was placed at once, else
        an event that succeeds when it is. The caller records the grant (:meth:`granted`)."""
        request = self.log(service, source, amount, placement, patient)
        return request, self.services[service].place(request, placement, complete_from)

    def granted(self, request: Request, stay: float) -> None:
        """The request is granted now; its use will last ``stay`` days (NaN: not known yet)."""
        request.granted = self.env.now
        if not math.isnan(stay):
            request.stay = stay

    def release(self, request: Request) -> None:
        """The request's use ends now: its capacity is free (unless it was handed back and
        placed again, or freed already)."""
        if request.moved_to is not None or not math.isnan(request.released):
            return
        self.services[request.service].release(request)
        request.released = self.env.now

    def begin_use(self, request: Request, days: float) -> None:
        """The client's use of a granted service begins now, for ``days``: the use of the
        request as placed last, if its provider handed it back or closed since; if that is not
        granted yet, the client waits at home and uses what is left of ``days`` once it is."""
        while request.moved_to is not None:
            request = request.moved_to
        if math.isnan(request.granted):
            request.stay = days
            request.ends = self.env.now + days  # held from the grant by _place_again
        else:
            self.hold(request, days)

    def end_use(self, request: Request) -> None:
        """The client's use of a service ends now, wherever the client was placed last:
        released, or, if still being placed again after a hand-back, withdrawn."""
        while request.moved_to is not None:
            request = request.moved_to
        if math.isnan(request.granted):
            self.withdraw(request)
        else:
            self.release(request)

    def withdraw(self, request: Request) -> None:
        """Withdraw a request not yet granted."""
        self.services[request.service].withdraw(request)
        request.cancelled = self.env.now

    def hold(self, request: Request, days: float) -> None:
        """Use a granted request for ``days``, then free it (an event, not a process)."""
        request.stay = days
        request.ends = self.env.now + days
        self.env.timeout(days).callbacks.append(lambda _: self.release(request))

    def stay_then_onward(self, request: Request, days: float, onward: str, amount: float,
                         onward_days: float, placement: Placement | None = None) -> None:
        """A stay in a service with a next step (a step-down bed): one who needs another service
        next waits for it in this service's place, which is freed only once that is granted."""
        request.stay = days  # plus any wait for the onward service
        request.ends = self.env.now + days

        def moved_on(granted: Request) -> None:
            self.hold(granted, onward_days)
            self.end_use(request)

        def stay_ends(_: object) -> None:
            if not onward:
                self.end_use(request)
                return
            next_request, event = self.ask(onward, request.service, amount, placement,
                                           -math.inf, request.patient)

            def placed() -> None:
                self.granted(next_request, math.nan)
                moved_on(next_request)

            if event is None:
                placed()
            else:
                event.callbacks.append(lambda _: placed())

        self.env.timeout(days).callbacks.append(stay_ends)

    def _place_again(self, request: Request, why: str) -> None:
        """A provider handed the client back (``why``: "handed_back") or closed ("moved"): the
        client, at home or in the community, is placed again, in the same segment, with new
        luck, for the rest of the stay. A hospital patient who has not yet left keeps the date
        and goes home to wait."""
        now = self.env.now
        request.released = now
        name = request.service
        service = self.params.services[name]
        again = self.log(name, why, request.amount, patient=request.patient)
        request.moved_to = again
        remaining = request.ends - now if not math.isnan(request.ends) else request.stay
        again.stay = max(0.0, remaining)
        again.ends = request.ends
        old = request.placement
        fresh = self._again_placements[name].draw()
        again.placement = Placement(old.segment, old.complex, fresh.clock, fresh.pick, old.private)

        def start(_: object = None) -> None:
            again.granted = self.env.now
            if not math.isnan(again.ends) and not service.then:  # its use had begun
                self.hold(again, max(0.0, again.ends - self.env.now))

        event = self.services[name].place(again, again.placement)
        if event is None:
            start()
        else:
            event.callbacks.append(start)

    # ------------------------------------------------------------------ the community's clients
    def _community_referrals(self, service: str) -> None:
        """People referred to a service from the community, competing with hospital patients."""
        settings = self.params.services[service]
        per_day = settings.community_referrals_per_day
        if per_day <= 0 or not math.isfinite(1.0 / per_day):
            return  # none, or so rare that the mean gap overflows: none in any run
        rng = self._rng
        # Gaps of mean 1/per_day, drawn as unit exponentials times the mean (what numpy does
        # inside, so the same numbers): a rare referral's mean gap may exceed what a
        # user-given Distribution allows.
        unit_gap, mean_gap = sampler(Distribution("exponential", 1.0),
                                     rng[f"{service}_referrals"]), 1.0 / per_day
        gap = lambda: unit_gap() * mean_gap  # noqa: E731
        amount = sampler(settings.amount, rng[f"{service}_referral_amount"])
        stay = sampler(settings.stay, rng[f"{service}_referral_stay"])
        placement = self._referral_placements.get(service)
        Arrivals(self.env, lambda now: now + gap(), self.params.run.days,
                 lambda: self._community_client(service, amount(), stay(), placement.draw()
                                                if placement is not None else None)).start()

    def _community_client(self, service: str, amount: float, days: float,
                          placement: Placement | None = None) -> None:
        """A community referral: waits its turn for the service (or is placed by its market),
        uses it, frees it."""
        if placement is not None and placement.complex:
            amount *= self.params.services[service].market.complex_amount
        request = self.log(service, "community", amount, placement)
        request.stay = days

        def start(_: object = None) -> None:
            request.granted = self.env.now
            self.hold(request, days)

        event = self.services[service].place(request, placement)
        if event is None:
            start()
        else:
            event.callbacks.append(start)

    # ------------------------------------------------------------------ the run's end
    def restart_statistics(self) -> None:
        for pool in (*self.services.values(), *self.rosters.values()):
            pool.restart_statistics()

    def drop_pending(self) -> None:
        for pool in self.services.values():
            pool.drop_pending()
