"""Mutation of one decision of an action sequence that keeps the genotype valid.

One decision with at least two valid choices is drawn uniformly and set to a different
valid choice; later decisions that the change made invalid are repaired (re-checked
with `space.mask`): each takes the value the mutation displaced when that is valid
there, else a uniform valid choice. In the NAS-FPN space the displaced value always
fits, so a repair is a swap: input i moved onto j swaps the pair, an output level moved
onto a later output's level swaps the two levels. Mutations that give back the same
architecture (e.g. only the pair order swapped) are redrawn.
"""

from __future__ import annotations

import random

from space import SearchSpace


def mutate_once(space: SearchSpace, actions: list[int] | tuple[int, ...], rng: random.Random) -> list[int]:
    """Change one decision and repair what follows; the result always decodes."""
    actions = list(actions)
    prefix_masks = [space.mask(actions[:t]) for t in range(space.num_steps)]
    steps = [t for t, m in enumerate(prefix_masks) if sum(m) >= 2]
    t = rng.choice(steps)
    displaced = actions[t]
    actions[t] = rng.choice([a for a, ok in enumerate(prefix_masks[t]) if ok and a != displaced])
    for s in range(t + 1, space.num_steps):
        m = space.mask(actions[:s])
        if not m[actions[s]]:
            fits = displaced < len(m) and m[displaced]
            actions[s] = displaced if fits else rng.choice([a for a, ok in enumerate(m) if ok])
    return actions


def mutate(
    space: SearchSpace, actions: list[int] | tuple[int, ...], rng: random.Random, max_tries: int = 100
) -> list[int]:
    """`mutate_once` until the architecture (sorted pairs) differs from the parent's.

    Raises:
        ValueError: no different architecture was found in `max_tries` draws (a space
            with a single architecture).
    """
    parent = space.decode(actions).canonical()
    for _ in range(max_tries):
        child = mutate_once(space, actions, rng)
        if space.decode(child).canonical() != parent:
            return child
    raise ValueError(f"no mutation of {list(actions)} changed the architecture in {max_tries} tries")
