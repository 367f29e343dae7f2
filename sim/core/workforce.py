"""A workforce that comes and goes: carers who leave, posts that stay vacant, sickness.

Each post of a staffed service (:class:`sim.core.params.Workforce`) belongs to one provider and
is filled or vacant. A carer in post leaves after an exponential time (the turnover is a rate),
and the post then waits ``time_to_fill`` for the next carer; while in post, a carer is off sick
now and then. The hours a provider can deliver at any moment are those of its carers in post and
not off sick; every change is passed on (:attr:`Roster.on_change`), and the market hands
packages back when a provider's clients no longer fit (:mod:`sim.core.market`).

The posts start in their steady state (filled with the probability time in post / (time in
post + time to fill), with residual times), so no warm-up is spent filling them. Each post
draws from a stream of its own (spawned from the roster's stream, by the post's number), in the
order of its own events, which depend neither on the patients nor on the other posts: scenarios
with the same workforce settings see the same carers come and go in the posts they share,
whatever the number of posts.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import simpy

from sim.core.params import Workforce
from sim.core.resources import TimeWeighted
from sim.core.streams import draw_one, length_biased_draw


class _Post:
    __slots__ = ("provider", "rng", "filled", "sick", "token")

    def __init__(self, provider: int, rng: np.random.Generator) -> None:
        self.provider = provider
        self.rng = rng
        self.filled = False
        self.sick = False
        self.token = 0
        """Raised when the carer leaves, so that their pending sickness events lapse."""


class Roster:
    """The posts of one service, by provider, and who is working in them."""

    def __init__(self, env: simpy.Environment, settings: Workforce, posts: list[int],
                 rng: np.random.Generator) -> None:
        self.env, self.settings = env, settings
        providers = [j for j, n in enumerate(posts) for _ in range(n)]
        root = np.random.SeedSequence(int(rng.integers(2**63)))
        self.posts = [_Post(j, np.random.Generator(np.random.PCG64(seed)))
                      for j, seed in zip(providers, root.spawn(len(providers)))]
        self._posts = list(posts)
        self.working = [0] * len(posts)
        """Carers in post and not off sick, by provider."""
        self.in_post = TimeWeighted()
        self.sick = TimeWeighted()
        self._filled = self._off_sick = 0
        """Posts filled, and carers off sick, now (what ``in_post`` and ``sick`` integrate)."""
        self.joined: list[float] = []
        self.left: list[float] = []
        self.fell_sick: list[float] = []
        """When carers joined, left, and fell sick (for the metrics and checks)."""
        self.on_change: Callable[[int, int], None] = lambda provider, working: None
        """Called with a provider's index and its carers working, whenever that changes."""
        episode = settings.sickness_episode
        mean_episode = (float(np.mean(episode.values)) if episode.kind == "empirical"
                        else episode.mean)
        days = settings.sickness_days_per_year
        self._well = mean_episode * (365.0 - days) / days if days > 0 else math.inf
        """Mean days between sickness episodes, so that ``days`` a year are spent sick."""

    def posts_of(self, provider: int) -> int:
        """How many posts provider ``provider`` (its index) has, filled or not."""
        return self._posts[provider]

    def start(self) -> None:
        """Put every post in its steady state and start its events."""
        s = self.settings
        in_post = s.time_in_post
        filled_share = 1.0 - s.vacancy_rate
        sick_share = s.sickness_days_per_year / 365.0
        for post in self.posts:
            rng = post.rng
            if rng.random() < filled_share:
                post.filled = True
                self.working[post.provider] += 1
                self._at(rng.exponential(in_post), self._leave, post, None)
                if rng.random() < sick_share:
                    post.sick = True
                    self.working[post.provider] -= 1
                    residual = length_biased_draw(s.sickness_episode, rng) * rng.random()
                    self._at(residual, self._recover, post, post.token)
                else:
                    self._next_sickness(post)
            else:
                residual = length_biased_draw(s.time_to_fill, rng) * rng.random()
                self._at(residual, self._join, post, None)
        self._filled = sum(p.filled for p in self.posts)
        self._off_sick = sum(p.sick for p in self.posts)
        self._record()

    def _at(self, days: float, action: Callable[[_Post, int | None], None], post: _Post,
            token: int | None) -> None:
        if math.isfinite(days):
            self.env.timeout(days).callbacks.append(lambda _: action(post, token))

    def _next_sickness(self, post: _Post) -> None:
        if math.isfinite(self._well):
            self._at(post.rng.exponential(self._well), self._fall_sick, post, post.token)

    def _join(self, post: _Post, _: int | None) -> None:
        post.filled = True
        self._filled += 1
        self.joined.append(self.env.now)
        self._at(post.rng.exponential(self.settings.time_in_post), self._leave, post, None)
        self._next_sickness(post)
        self._changed(post.provider, +1)

    def _leave(self, post: _Post, _: int | None) -> None:
        was_working = not post.sick
        self._filled -= 1
        if not was_working:
            self._off_sick -= 1
        post.filled = post.sick = False
        post.token += 1
        self.left.append(self.env.now)
        self._at(draw_one(self.settings.time_to_fill, post.rng), self._join, post, None)
        self._changed(post.provider, -1 if was_working else 0)

    def _fall_sick(self, post: _Post, token: int | None) -> None:
        if token != post.token or not post.filled or post.sick:
            return
        post.sick = True
        self._off_sick += 1
        self.fell_sick.append(self.env.now)
        self._at(draw_one(self.settings.sickness_episode, post.rng), self._recover, post,
                 post.token)
        self._changed(post.provider, -1)

    def _recover(self, post: _Post, token: int | None) -> None:
        if token != post.token or not post.sick:
            return
        post.sick = False
        self._off_sick -= 1
        self._next_sickness(post)
        self._changed(post.provider, +1)

    def _changed(self, provider: int, working: int) -> None:
        self._record()
        if working:
            self.working[provider] += working
            self.on_change(provider, self.working[provider])

    def _record(self) -> None:
        now = self.env.now
        self.in_post.set(now, self._filled)
        self.sick.set(now, self._off_sick)

    def restart_statistics(self) -> None:
        self.in_post.restart(self.env.now)
        self.sick.restart(self.env.now)
