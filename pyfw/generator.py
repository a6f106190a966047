"""The pseudo-random generator shared bit for bit by ``pyfw`` and ``pyfw_rs``.

Algorithm: SplitMix64 (Steele, Lea and Flood, 2014), one unsigned 64-bit state.
The draws derived from it are ``random()`` in [0, 1), ``uniform(low, high)``,
``normal(mean, std)`` (Box-Muller from two ``random()`` draws, one value per
call), ``randbelow(n)`` (unbiased, by rejection) and ``randperm(n)``
(Fisher-Yates from the end). docs/NUMERICS.md, "The random generator" and
"Normal draws", gives every formula and its test vectors; ``rust/generator.rs``
follows it.

The generator holds two integers and nothing else: the seed last given and the
state ``s``. ``get_state()`` returns both as ``{"seed": seed, "state": s}``
(JSON-ready, the same in ``pyfw_rs``); ``set_state`` takes such a dict, from
either backend, and the draws continue bit for bit where they left off.

Test vectors are in docs/NUMERICS.md and tests/test_generator.py.
"""

from __future__ import annotations

import math
import sys
from typing import Optional

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
MIX1 = 0xBF58476D1CE4E5B9
MIX2 = 0x94D049BB133111EB
TWO_M53 = 2.0 ** -53
TAU = math.tau  # 2*pi rounded to float64: 6.283185307179586 == 0x1.921fb54442d18p+2
DEFAULT_SEED = 0


def _check_seed(seed: object) -> int:
    """``seed`` modulo 2**64; as torch, a seed outside [-2**63, 2**64) is a ValueError."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"Generator: seed must be an int, got {type(seed).__name__}")
    if not -(1 << 63) <= seed <= MASK64:
        raise ValueError(f"Generator: seed must be in [-2**63, 2**64), got {seed}")
    return seed & MASK64


def _check_state(state: object) -> tuple:
    """``(seed, state)`` from a ``get_state()`` dict; every message is ``pyfw_rs``'s too."""
    who = "Generator.set_state"
    if not isinstance(state, dict):
        raise TypeError(f"{who}: expected a dict with keys 'seed' and 'state', got {type(state).__name__}")
    if len(state) != 2 or "seed" not in state or "state" not in state:
        raise ValueError(f"{who}: expected the keys 'seed' and 'state', got {list(state)!r}")
    out = []
    for key in ("seed", "state"):
        v = state[key]
        if isinstance(v, bool) or not isinstance(v, int):
            raise TypeError(f"{who}: {key} must be an int, got {type(v).__name__}")
        if not 0 <= v <= MASK64:
            raise ValueError(f"{who}: {key} must be in [0, 2**64), got {v}")
        out.append(int(v))
    return out[0], out[1]


def _check_count(n: object, who: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"{who}: n must be an int, got {type(n).__name__}")
    if n <= 0:
        raise ValueError(f"{who}: n must be positive, got {n}")
    if n > MASK64:
        raise ValueError(f"{who}: n must be below 2**64, got {n}")
    return n


class Generator:
    """A SplitMix64 random number generator; see the module docstring."""

    __slots__ = ("_state", "_seed")

    def __init__(self, seed: int = DEFAULT_SEED) -> None:
        self._seed = _check_seed(seed)
        self._state = self._seed

    def manual_seed(self, seed: int) -> "Generator":
        """Reset the state to ``seed``; returns the generator, as in torch."""
        self._seed = _check_seed(seed)
        self._state = self._seed
        return self

    def initial_seed(self) -> int:
        """The seed last given (reduced modulo 2**64)."""
        return self._seed

    def get_state(self) -> dict:
        """``{"seed": initial_seed(), "state": s}``: all the generator holds, as two ints in [0, 2**64).

        A new dict each call; ``set_state`` of it (in either backend) resumes the same stream.
        """
        return {"seed": self._seed, "state": self._state}

    def set_state(self, state: dict) -> "Generator":
        """Restore a ``get_state()`` dict; returns the generator, as in torch.

        A dict with exactly the keys ``"seed"`` and ``"state"``, each an int in
        [0, 2**64); anything else raises ``TypeError`` (a wrong kind) or
        ``ValueError`` (wrong keys, out of range) and changes nothing.
        """
        self._seed, self._state = _check_state(state)
        return self

    def next_u64(self) -> int:
        """The next raw 64-bit output."""
        s = (self._state + GOLDEN) & MASK64
        self._state = s
        z = ((s ^ (s >> 30)) * MIX1) & MASK64
        z = ((z ^ (z >> 27)) * MIX2) & MASK64
        return z ^ (z >> 31)

    def random(self) -> float:
        """A float uniform in [0, 1) with 53 random bits."""
        return (self.next_u64() >> 11) * TWO_M53

    def uniform(self, low: float, high: float) -> float:
        """``low + (high - low) * random()``, with ``low`` and ``high`` converted to float first."""
        if isinstance(low, (str, bytes, bytearray)) or isinstance(high, (str, bytes, bytearray)):
            raise TypeError("Generator.uniform: low and high must be numbers")
        low, high = float(low), float(high)
        return low + (high - low) * self.random()

    def normal(self, mean: float = 0.0, std: float = 1.0) -> float:
        """A normal draw ``mean + std * z`` (Box-Muller; see the module docstring).

        ``u1 = random()``, ``u2 = random()``, ``z = sqrt(-2.0 * log(1.0 - u1)) * cos(TAU * u2)``,
        evaluated in exactly this order with the C library's ``log``, ``cos`` and ``sqrt``.
        ``mean`` and ``std`` are converted to float first; both must be finite and ``std >= 0``.
        """
        if isinstance(mean, (str, bytes, bytearray)) or isinstance(std, (str, bytes, bytearray)):
            raise TypeError("Generator.normal: mean and std must be numbers")
        mean, std = float(mean), float(std)
        if not math.isfinite(mean):
            raise ValueError(f"Generator.normal: mean must be finite, got {mean!r}")
        if not (math.isfinite(std) and std >= 0.0):
            raise ValueError(f"Generator.normal: std must be finite and non-negative, got {std!r}")
        u1 = self.random()
        u2 = self.random()
        z = math.sqrt(-2.0 * math.log(1.0 - u1)) * math.cos(TAU * u2)
        return mean + std * z

    def randbelow(self, n: int) -> int:
        """An unbiased integer in [0, n), by rejection sampling."""
        n = _check_count(n, "Generator.randbelow")
        limit = (1 << 64) - ((1 << 64) % n)
        r = self.next_u64()
        while r >= limit:
            r = self.next_u64()
        return r % n

    def __repr__(self) -> str:
        return f"Generator(seed={self._seed})"


default_generator = Generator(DEFAULT_SEED)


def manual_seed(seed: int) -> Generator:
    """Seed the default generator; returns it, as ``torch.manual_seed`` does."""
    return default_generator.manual_seed(seed)


def _resolve(generator: Optional[Generator]) -> Generator:
    if generator is None:
        return default_generator
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be a pyfw.Generator, got {type(generator).__name__}")
    return generator


def randperm(n: int, generator: Optional[Generator] = None) -> list[int]:
    """A random permutation of ``range(n)`` as a list of ints (Fisher-Yates, from the end)."""
    n = _check_count(n, "randperm")
    g = _resolve(generator)
    too_large = MemoryError(f"randperm: n = {n} is too large to hold in memory")
    if n > sys.maxsize // 8:
        raise too_large
    try:
        perm = list(range(n))
    except MemoryError:
        raise too_large from None
    for i in range(n - 1, 0, -1):
        j = g.randbelow(i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    return perm
