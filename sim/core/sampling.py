"""What each patient and client brings, drawn when they appear, each purpose from its own stream.

Every random attribute (the pathway, the acute stay, what is needed once medically fit, what a
client brings to a care market, the harm clocks) is drawn on arrival from a stream named for
its purpose (:mod:`sim.core.streams`), so that a change of capacity changes when things happen,
not the random numbers anyone gets: scenarios compare on common random numbers. A step that a
pathway does not have draws nothing, so switching a step on leaves the others' numbers alone.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from sim.core.market import Placement
from sim.core.params import HOME, Distribution, Params
from sim.core.params import Market as MarketSettings
from sim.core.patient import HarmDraws, Needs, Patient
from sim.core.streams import choice_sampler, sampler, uniform_sampler

NEEDS = [f.name for f in fields(Needs)]
"""The patient's attributes that a :class:`Needs` sets (and an escalation replaces)."""


class PlacementSampler:
    """Samplers of what a client brings to a service's market (:class:`Placement`), each from
    the stream ``prefix`` + its purpose; a ``community`` referral pays its own fees with the
    market's ``community_private_share`` (a hospital patient does when the pathway's funding
    decision finds so: :class:`NeedsSampler`)."""

    def __init__(self, market: MarketSettings, rng: Any, prefix: str,
                 community: bool = False) -> None:
        segments = market.segments
        self.segment = (choice_sampler([g.demand for g in segments], rng[f"{prefix}_segment"])
                        if len(segments) > 1 else lambda: 0)
        self.complex_share = market.complex_share
        self.complex = (uniform_sampler(rng[f"{prefix}_complex"]) if market.complex_share > 0
                        else lambda: 1.0)
        self.clock = sampler(Distribution("exponential", 1.0), rng[f"{prefix}_clock"])
        self.pick = uniform_sampler(rng[f"{prefix}_pick"])
        self.private_share = market.community_private_share if community else 0.0
        self.private = (uniform_sampler(rng[f"{prefix}_private"]) if self.private_share > 0
                        else lambda: 1.0)

    def draw(self) -> Placement:
        return Placement(self.segment(), self.complex() < self.complex_share, self.clock(),
                         self.pick(), self.private() < self.private_share)


def placement_samplers(params: Params, rng: Any, prefix: str,
                       community: bool = False) -> dict[str, PlacementSampler]:
    """A placement sampler for each service with a market (of ``community`` referrals)."""
    return {name: PlacementSampler(s.market, rng, f"{prefix}{name}", community)
            for name, s in params.services.items() if s.market.enabled}


class NeedsSampler:
    """Samplers of what a patient on a pathway needs once medically fit, each from the stream
    ``prefix`` + its purpose (prefix "": the streams ordinary admissions always had). A step a
    pathway does not have draws nothing, so switching a step on leaves the others' numbers."""

    def __init__(self, params: Params, rng: Any, prefix: str) -> None:
        self.pathways = params.pathways
        self.services = params.services
        self.transfer = {k: sampler(p.transfer, rng[f"{prefix}transfer_{k}"])
                         for k, p in params.pathways.items()}
        self.assessment = sampler(params.assessment.duration, rng[f"{prefix}assessment"])
        self.amount = {name: sampler(s.amount, rng[f"{prefix}{name}_amount"])
                       for name, s in params.services.items()}
        self.stay = {name: sampler(s.stay, rng[f"{prefix}{name}_stay"])
                     for name, s in params.services.items()}
        self.then = {name: (list(s.then),
                            choice_sampler(list(s.then.values()), rng[f"{prefix}{name}_then"]))
                     for name, s in params.services.items() if s.then}
        steps = {k: p for k, p in params.pathways.items()}
        self.summary = {k: sampler(p.summary, rng[f"{prefix}summary_{k}"])
                        for k, p in steps.items()}
        self.choice = {k: sampler(p.choice, rng[f"{prefix}choice_{k}"]) for k, p in steps.items()}
        self.funding = {k: (uniform_sampler(rng[f"{prefix}funded_{k}"]),
                            sampler(p.funding, rng[f"{prefix}funding_{k}"]))
                        for k, p in steps.items() if p.funded_share > 0}
        self.equipment = {k: (uniform_sampler(rng[f"{prefix}equipment_need_{k}"]),
                              sampler(p.equipment, rng[f"{prefix}equipment_{k}"]))
                          for k, p in steps.items() if p.equipment_share > 0}
        self.placement = placement_samplers(params, rng, prefix)

    def _service(self, name: str) -> tuple[float, float, Placement | None]:
        """How much of service ``name`` a patient needs, for how long, and the placement."""
        amount, stay = self.amount[name](), self.stay[name]()
        placement = None
        if name in self.placement:
            placement = self.placement[name].draw()
            if placement.complex:
                amount *= self.services[name].market.complex_amount
        return amount, stay, placement

    def draw(self, k: str, needs: Needs | Patient) -> None:
        """Draw what a patient on pathway ``k`` needs into ``needs`` (a new :class:`Needs`, or
        a new patient, whose fields of the same names are those of a new :class:`Needs`)."""
        pathway = self.pathways[k]
        needs.pathway, needs.transfer = k, self.transfer[k]()
        if pathway.needs_assessment:
            needs.assessment = self.assessment()
        needs.summary, needs.choice = self.summary[k](), self.choice[k]()
        private = False
        if k in self.funding:  # both drawn whoever pays, so a change of share moves nobody else
            funded, days = self.funding[k][0](), self.funding[k][1]()
            if funded < pathway.funded_share:
                needs.funding = days
            else:
                private = True  # a self-funder
        if k in self.equipment:
            needed, days = self.equipment[k][0](), self.equipment[k][1]()
            if needed < pathway.equipment_share:
                needs.equipment = days
        if pathway.service is not None:
            service = needs.service = pathway.service
            needs.amount, needs.stay, needs.placement = self._service(service)
            if needs.placement is not None:
                needs.placement.private = private
                market = self.services[service].market
                needs.segment = market.segments[needs.placement.segment].name
                needs.complex = needs.placement.complex
            if service in self.then:
                names, choose = self.then[service]
                onward = names[choose()]
                if onward != HOME:
                    needs.onward = onward
                    needs.onward_amount, needs.onward_stay, needs.onward_placement = (
                        self._service(onward))


class Draws:
    """Everything a patient gets on arrival, each purpose from its own stream: the pathway,
    the acute stay, the needs and, for each harm mechanism that is on, the patient's clocks
    (and the needs after an escalation, drawn whether or not it happens, so that scenarios
    compare on common random numbers). ``prefix`` "" is ordinary admissions; readmissions use
    "readmission." so that they do not shift the numbers ordinary admissions get."""

    def __init__(self, params: Params, rng: Any, prefix: str = "") -> None:
        pathways, harm = params.pathways, params.harm
        self.keys = list(pathways)
        self.pathway = choice_sampler([p.share for p in pathways.values()], rng[f"{prefix}pathway"])
        self.acute_stay = {k: sampler(p.acute_stay, rng[f"{prefix}acute_stay_{k}"])
                           for k, p in pathways.items()}
        self.needs = NeedsSampler(params, rng, prefix)
        self.any_harm = harm.any
        unit = Distribution("exponential", 1.0)
        on = lambda enabled, make: make() if enabled else None  # noqa: E731
        self.death = on(harm.death.enabled, lambda: sampler(unit, rng[f"{prefix}harm_death"]))
        self.escalation = on(harm.escalation.enabled,
                             lambda: sampler(unit, rng[f"{prefix}harm_escalation"]))
        self.escalated = on(harm.escalation.enabled,
                            lambda: NeedsSampler(params, rng, f"{prefix}escalated."))
        self.escalates_to = {k: (list(p.escalates_to), choice_sampler(
            list(p.escalates_to.values()), rng[f"{prefix}escalated.to_{k}"]))
            for k, p in pathways.items() if harm.escalation.enabled and p.escalates_to}
        self.unwell = on(harm.unwell_again.enabled,
                         lambda: sampler(unit, rng[f"{prefix}harm_unwell"]))
        self.unwell_days = on(harm.unwell_again.enabled, lambda: sampler(
            harm.unwell_again.duration, rng[f"{prefix}harm_unwell_duration"]))
        self.readmission = on(harm.readmission.enabled,
                              lambda: uniform_sampler(rng[f"{prefix}harm_readmission"]))

    def patient(self, id: int, now: float, readmission_of: int) -> tuple[Patient, HarmDraws | None]:
        k = self.keys[self.pathway()]
        p = Patient(id=id, arrival=now, pathway=k, acute_stay=self.acute_stay[k](), transfer=0.0,
                    readmission_of=readmission_of)
        self.needs.draw(k, p)
        if not self.any_harm:
            return p, None
        harm = HarmDraws()
        if self.death is not None:
            harm.death = self.death()
        if self.escalation is not None:
            harm.escalation = self.escalation()
            if k in self.escalates_to:
                names, choose = self.escalates_to[k]
                harm.escalated = Needs("", 0.0)
                self.escalated.draw(names[choose()], harm.escalated)
        if self.unwell is not None:
            harm.unwell, harm.unwell_days = self.unwell(), self.unwell_days()
        if self.readmission is not None:
            harm.readmission = (self.readmission(), self.readmission(), self.readmission())
        return p, harm

