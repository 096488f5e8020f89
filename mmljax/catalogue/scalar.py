"""Scalar differentiation (Lecture 1.2): the derivative table and the rules that combine it.

Every hand derivative here is written from the table `TABLE` of `(f, f', f'')` triples, never
from autodiff. The combination rules (sum, product, quotient, chain) are checked on random
compositions: a row's arguments carry one-hot selectors, so one compiled program checks a
different randomly chosen pair (or triple) of table functions at every draw.

Scalar inputs have no size: `sizes=(1,) * k` means `k` groups of draws, all sharing one compiled
program (see `Identity`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax.numpy as jnp
import numpy as np

from ..models.activations import ACTIVATIONS as _ACT
from ._identity import Identity
from ._samplers import normal, one_hot, positive

L12 = "Lecture 1.2 (scalar differentiation)"
TABLE_SOURCE = L12 + ", derivative table"
RULES_SOURCE = L12 + ", combination rules"

# Scalar rows: the size is ignored; three groups of draws share one compiled program.
SCALAR_SIZES = (1, 1, 1)
# Random-composition rows draw more combinations (still one compilation).
COMPOSITION_SIZES = (1, 1, 1, 1)
# A random combination can nearly cancel (a f' + b g' ≈ 0), where relative errors are
# ill-conditioned: an absolute floor below the rounding of the O(1)–O(10⁴) terms, and finite
# differences (absolute error ~1e-11) judged at 1e-5 relative.
COMPOSITION_TOL = dict(atol=1e-12, fd_rtol=1e-5)
# Second differences carry ~sqrt(eps) error: 1e-3 relative for the same reason.
COMPOSITION_TOL2 = dict(atol=1e-12, fd_rtol=1e-3)


class Entry(NamedTuple):
    """One line of the derivative table: `f`, its hand derivative `df` and second derivative `d2f`."""

    name: str
    f: Callable
    df: Callable
    d2f: Callable


TABLE = (
    Entry("x³", lambda x: x**3, lambda x: 3 * x**2, lambda x: 6 * x),
    Entry("sin x", jnp.sin, jnp.cos, lambda x: -jnp.sin(x)),
    Entry("cos x", jnp.cos, lambda x: -jnp.sin(x), lambda x: -jnp.cos(x)),
    # The models' own activation table (mmljax.models.activations): the catalogue checks the σ′, σ″
    # the hand gradients use, not a copy of them.
    Entry("tanh x", *_ACT["tanh"][1:]),
    Entry("exp x", jnp.exp, jnp.exp, jnp.exp),
    Entry("log x", jnp.log, lambda x: 1 / x, lambda x: -1 / x**2),
    Entry("σ(x) = 1/(1 + e⁻ˣ)", *_ACT["sigmoid"][1:]),
    Entry("softplus x = log(1 + eˣ)", *_ACT["softplus"][1:]),
)
_BY_NAME = {e.name: e for e in TABLE}
# Defined on all of R (an outer function of a chain may see any real number).
ENTIRE = tuple(e for e in TABLE if e.name != "log x")
# Bounded on R: safe as the middle of a three-deep chain.
BOUNDED = tuple(_BY_NAME[n] for n in ("sin x", "cos x", "tanh x", "σ(x) = 1/(1 + e⁻ˣ)"))
# Positive on the composition domain x ∈ [0.5, 2]: safe denominators.
POSITIVE_ON_DOMAIN = tuple(
    _BY_NAME[n] for n in ("x³", "sin x", "tanh x", "exp x", "σ(x) = 1/(1 + e⁻ˣ)", "softplus x = log(1 + eˣ)")
)


def _mix(entries, attr: str, w, x):
    """`Σ_k w_k · entries[k].attr(x)`: with a one-hot `w`, the selected table function."""
    return jnp.stack([getattr(e, attr)(x) for e in entries]) @ w


def _away_from_zero(rng, low: float = 0.2, high: float = 2.5):
    """|x| ∈ [low, high] with a random sign. At x = 0 the derivative of x³ (and the second
    derivatives of sin, tanh, σ) vanish, where any relative error is ill-conditioned."""
    return rng.choice([-1.0, 1.0]) * rng.uniform(low, high)


def _sample_for(entry: Entry):
    if entry.name == "log x":
        return lambda rng, n: (positive(rng, (), 0.2, 3.0), ())
    return lambda rng, n: (_away_from_zero(rng), ())


def _table_rows():
    rows = []
    for e in TABLE:
        rows.append(
            Identity(
                name=f"d/dx {e.name}",
                source=TABLE_SOURCE,
                domain="scalar",
                f=e.f,
                derivative=e.df,
                sample=_sample_for(e),
                sizes=SCALAR_SIZES,
                medium_sizes=SCALAR_SIZES,
            )
        )
    for e in TABLE:
        rows.append(
            Identity(
                name=f"d²/dx² {e.name}",
                source=TABLE_SOURCE + " (applied twice)",
                domain="scalar",
                f=e.f,
                derivative=e.d2f,
                order=2,
                sample=_sample_for(e),
                sizes=SCALAR_SIZES,
                medium_sizes=SCALAR_SIZES,
            )
        )
    return rows


def _power_sample(rng, n):
    """x ∈ [0.3, 3]; n ∈ [−3, −0.5] ∪ [1.5, 3.5], so that n(n − 1) is not near 0."""
    n_exp = rng.uniform(1.5, 3.5) if rng.uniform() < 0.5 else rng.uniform(-3.0, -0.5)
    return positive(rng, (), 0.3, 3.0), (n_exp,)


def _composition_sample(k_outer: int, k_inner: int, k_third: int = 0):
    """x ∈ [0.5, 2] (where every table function is finite), one-hot selectors, two coefficients."""

    def sample(rng, n):
        args = (one_hot(rng, k_outer), one_hot(rng, k_inner))
        if k_third:
            args = args + (one_hot(rng, k_third),)
        return positive(rng, (), 0.5, 2.0), args + (normal(rng, (2,)),)

    return sample


def _quotient_sample(rng, n):
    """Numerator from the table, denominator from the positive ones, never the same function
    (f/f = 1 has derivative 0, where a relative error means nothing)."""
    x, (u, w, c) = _composition_sample(_n, len(POSITIVE_ON_DOMAIN))(rng, n)
    while TABLE[int(np.argmax(u))].name == POSITIVE_ON_DOMAIN[int(np.argmax(w))].name:
        w = one_hot(rng, len(POSITIVE_ON_DOMAIN))
    return x, (u, w, c)


# Sum rule (with constant multiples): (a f + b g)' = a f' + b g'.
def _sum_f(x, u, w, c):
    return c[0] * _mix(TABLE, "f", u, x) + c[1] * _mix(TABLE, "f", w, x)


def _sum_df(x, u, w, c):
    return c[0] * _mix(TABLE, "df", u, x) + c[1] * _mix(TABLE, "df", w, x)


# Product rule: (f g)' = f' g + f g'.
def _prod_f(x, u, w, c):
    return _mix(TABLE, "f", u, x) * _mix(TABLE, "f", w, x)


def _prod_df(x, u, w, c):
    f, df = _mix(TABLE, "f", u, x), _mix(TABLE, "df", u, x)
    g, dg = _mix(TABLE, "f", w, x), _mix(TABLE, "df", w, x)
    return df * g + f * dg


# Leibniz, second order: (f g)'' = f'' g + 2 f' g' + f g''.
def _prod_d2f(x, u, w, c):
    f, df, d2f = (_mix(TABLE, a, u, x) for a in ("f", "df", "d2f"))
    g, dg, d2g = (_mix(TABLE, a, w, x) for a in ("f", "df", "d2f"))
    return d2f * g + 2 * df * dg + f * d2g


# Quotient rule: (f / g)' = (f' g − f g') / g².
def _quot_f(x, u, w, c):
    return _mix(TABLE, "f", u, x) / _mix(POSITIVE_ON_DOMAIN, "f", w, x)


def _quot_df(x, u, w, c):
    f, df = _mix(TABLE, "f", u, x), _mix(TABLE, "df", u, x)
    g, dg = _mix(POSITIVE_ON_DOMAIN, "f", w, x), _mix(POSITIVE_ON_DOMAIN, "df", w, x)
    return (df * g - f * dg) / g**2


# Chain rule: (g ∘ f)' = g'(f(x)) f'(x); second order (g ∘ f)'' = g''(f) f'² + g'(f) f''.
def _chain_f(x, u, w, c):
    return _mix(ENTIRE, "f", u, _mix(TABLE, "f", w, x))


def _chain_df(x, u, w, c):
    inner = _mix(TABLE, "f", w, x)
    return _mix(ENTIRE, "df", u, inner) * _mix(TABLE, "df", w, x)


def _chain_d2f(x, u, w, c):
    inner, d_inner, d2_inner = (_mix(TABLE, a, w, x) for a in ("f", "df", "d2f"))
    return _mix(ENTIRE, "d2f", u, inner) * d_inner**2 + _mix(ENTIRE, "df", u, inner) * d2_inner


# Three-deep chain: (h ∘ g ∘ f)' = h'(g(f)) g'(f) f'.
def _chain3_f(x, u, v, w, c):
    return _mix(ENTIRE, "f", u, _mix(BOUNDED, "f", v, _mix(TABLE, "f", w, x)))


def _chain3_df(x, u, v, w, c):
    f = _mix(TABLE, "f", w, x)
    g = _mix(BOUNDED, "f", v, f)
    return _mix(ENTIRE, "df", u, g) * _mix(BOUNDED, "df", v, f) * _mix(TABLE, "df", w, x)


# Inverse-function rule: (f⁻¹)'(y) = 1 / f'(f⁻¹(y)), for f = tanh on (−0.9, 0.9).
def _inverse_sample(rng, n):
    return rng.uniform(-0.9, 0.9), ()


_n = len(TABLE)
_RULE_ROWS = [
    Identity(
        name="d/dx xⁿ = n xⁿ⁻¹ (real n, x > 0)",
        source=TABLE_SOURCE,
        domain="scalar",
        f=lambda x, n: x**n,
        derivative=lambda x, n: n * x ** (n - 1),
        sample=_power_sample,
        sizes=SCALAR_SIZES,
        medium_sizes=SCALAR_SIZES,
    ),
    Identity(
        name="d²/dx² xⁿ = n(n − 1) xⁿ⁻² (real n, x > 0)",
        source=TABLE_SOURCE + " (applied twice)",
        domain="scalar",
        f=lambda x, n: x**n,
        derivative=lambda x, n: n * (n - 1) * x ** (n - 2),
        order=2,
        sample=_power_sample,
        sizes=SCALAR_SIZES,
        medium_sizes=SCALAR_SIZES,
    ),
    Identity(
        name="sum rule (a f + b g)' = a f' + b g' (random f, g from the table)",
        source=RULES_SOURCE,
        domain="scalar",
        f=_sum_f,
        derivative=_sum_df,
        sample=_composition_sample(_n, _n),
        sizes=COMPOSITION_SIZES,
        medium_sizes=COMPOSITION_SIZES,
        **COMPOSITION_TOL,
    ),
    Identity(
        name="product rule (f g)' = f' g + f g' (random f, g)",
        source=RULES_SOURCE,
        domain="scalar",
        f=_prod_f,
        derivative=_prod_df,
        sample=_composition_sample(_n, _n),
        sizes=COMPOSITION_SIZES,
        medium_sizes=COMPOSITION_SIZES,
        **COMPOSITION_TOL,
    ),
    Identity(
        name="product rule, second order (f g)'' = f'' g + 2 f' g' + f g''",
        source=RULES_SOURCE + " (Leibniz)",
        domain="scalar",
        f=_prod_f,
        derivative=_prod_d2f,
        order=2,
        sample=_composition_sample(_n, _n),
        sizes=COMPOSITION_SIZES,
        medium_sizes=COMPOSITION_SIZES,
        **COMPOSITION_TOL2,
    ),
    Identity(
        name="quotient rule (f/g)' = (f' g − f g') / g² (random f, g > 0)",
        source=RULES_SOURCE,
        domain="scalar",
        f=_quot_f,
        derivative=_quot_df,
        sample=_quotient_sample,
        sizes=COMPOSITION_SIZES,
        medium_sizes=COMPOSITION_SIZES,
        **COMPOSITION_TOL,
    ),
    Identity(
        name="chain rule (g ∘ f)' = g'(f(x)) f'(x) (random f, g)",
        source=RULES_SOURCE,
        domain="scalar",
        f=_chain_f,
        derivative=_chain_df,
        sample=_composition_sample(len(ENTIRE), _n),
        sizes=COMPOSITION_SIZES,
        medium_sizes=COMPOSITION_SIZES,
        **COMPOSITION_TOL,
    ),
    Identity(
        name="chain rule, second order (g ∘ f)'' = g''(f) f'² + g'(f) f''",
        source=RULES_SOURCE,
        domain="scalar",
        f=_chain_f,
        derivative=_chain_d2f,
        order=2,
        sample=_composition_sample(len(ENTIRE), _n),
        sizes=COMPOSITION_SIZES,
        medium_sizes=COMPOSITION_SIZES,
        **COMPOSITION_TOL2,
    ),
    Identity(
        name="chain rule, three deep (h ∘ g ∘ f)' = h'(g(f)) g'(f) f'",
        source=RULES_SOURCE,
        domain="scalar",
        f=_chain3_f,
        derivative=_chain3_df,
        sample=_composition_sample(len(ENTIRE), len(BOUNDED), _n),
        sizes=COMPOSITION_SIZES,
        medium_sizes=COMPOSITION_SIZES,
        **COMPOSITION_TOL,
    ),
    Identity(
        name="inverse-function rule (tanh⁻¹)'(y) = 1 / tanh'(tanh⁻¹ y) = 1/(1 − y²)",
        source=RULES_SOURCE,
        domain="scalar",
        f=jnp.arctanh,
        derivative=lambda y: 1 / (1 - jnp.tanh(jnp.arctanh(y)) ** 2),
        sample=_inverse_sample,
        sizes=SCALAR_SIZES,
        medium_sizes=SCALAR_SIZES,
        note="y ∈ (−0.9, 0.9), inside tanh's range",
    ),
]

IDENTITIES = tuple(_table_rows()) + tuple(_RULE_ROWS)
