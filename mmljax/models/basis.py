"""Feature-basis regression `f(x) = Θᵀφ(x)` (Lectures 1.3, 1.4 and 2).

A basis is a small frozen, hashable description; `design_matrix(basis, x)` gives `Φ(X)` of shape
`(n, n_features)` with rows `φ(x_n)ᵀ`:

- `polynomial(degree, ordering=...)`: `[1, x, …, x^p]` (`"increasing"`, Lecture 2) or
  `[x^p, …, x, 1]` (`"decreasing"`, Lecture 1.3); scalar inputs `(n,)`.
- `rbf(centres, lengthscale)`: `φ_j(x) = exp(−||x − c_j||² / (2ℓ²))`; centres `(m,)` for scalar
  inputs or `(m, d)` for inputs `(n, d)`. Written with the squared distance (no square root), so
  derivatives stay finite when an input sits exactly on a centre.
- `fourier(frequencies)`: `[1, cos(ω_1 x), …, cos(ω_m x), sin(ω_1 x), …, sin(ω_m x)]`.
- `learned(in_features, width, activation)`: `φ(x) = σ(Ax + b)`, whose `A` `(width, d)` and
  `b` `(width,)` are parameters too.

Parameters are a `BasisParams` pytree with leaves `theta` (`(F,)` for one output, `(F, k)` for
`k`), and for the learned basis `A`, `b`; the basis itself is static (part of the tree
structure), so `apply(params, x)` needs nothing else and jit/vmap/grad see only the leaves.

**Flat order.** `ravel_vec(params)` is `[vec(Θ)]`, or `[vec(Θ); vec(A); b]` for the learned
basis (`[vec(A); b] = vec([A | b])`). `hand_hessian` and `hand_jacobian` use this order.

The loss throughout is `L = ½ Σ_n ||y_n − f(x_n)||²`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float

from .._validate import check_int, check_real, is_concrete
from . import _checks
from .activations import get_activation

__all__ = [
    "Polynomial",
    "RBF",
    "Fourier",
    "Learned",
    "Basis",
    "BasisParams",
    "polynomial",
    "rbf",
    "fourier",
    "learned",
    "design_matrix",
    "init",
    "apply",
    "hand_gradient",
    "hand_hessian",
    "hand_jacobian",
]

_INIT = "mmljax.models.basis.init"
_ORDERINGS = ("increasing", "decreasing")


def _frozen(a: Any, ndim: tuple[int, ...], where: str, what: str) -> tuple:
    """A concrete float array as nested tuples (hashable, so it can live in a tree's static part)."""
    if not is_concrete(a):
        raise TypeError(
            f"{where}: {what} must be concrete (it is part of the basis, not a parameter); got a "
            "traced value — build the basis outside jit/grad"
        )
    if np.iscomplexobj(a):
        raise TypeError(f"{where}: {what} must be real numbers; got a complex array")
    try:
        arr = np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{where}: {what} must be an array of real numbers; got {a!r}") from None
    if arr.ndim not in ndim or arr.size == 0:
        raise ValueError(
            f"{where}: {what} must be a non-empty array with {' or '.join(map(str, ndim))} axes; got shape {arr.shape}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{where}: {what} contains NaN/Inf")
    return tuple(map(tuple, arr)) if arr.ndim == 2 else tuple(arr.tolist())


@dataclasses.dataclass(frozen=True)
class Polynomial:
    """Monomials up to `degree` in the stated `ordering`."""

    degree: int
    ordering: str

    @property
    def n_features(self) -> int:
        return self.degree + 1

    def features(self, x: Array) -> Array:
        x = _checks.inputs_1d(x, "basis.design_matrix", "polynomial")
        powers = np.arange(self.degree + 1)
        if self.ordering == "decreasing":
            powers = powers[::-1]
        # Repeated products (not x ** p): exact for p = 0, 1 and no log(x) for negative x.
        cols = [jnp.ones_like(x)]
        for _ in range(self.degree):
            cols.append(cols[-1] * x)
        return jnp.stack([cols[p] for p in powers], axis=1)


@dataclasses.dataclass(frozen=True)
class RBF:
    """Gaussian bumps `exp(−||x − c_j||² / (2ℓ²))`; `centres` stored as nested tuples."""

    centres: tuple
    lengthscale: float

    @property
    def n_features(self) -> int:
        return len(self.centres)

    @property
    def input_dim(self) -> int:
        return len(self.centres[0]) if isinstance(self.centres[0], tuple) else 1

    def features(self, x: Array) -> Array:
        where = "basis.design_matrix"
        c = np.asarray(self.centres, np.float64).reshape(self.n_features, self.input_dim)
        if self.input_dim == 1:
            x = _checks.inputs_1d(x, where, "RBF (scalar centres)")[:, None]
        else:
            x = _checks.inputs_2d(x, self.input_dim, where, f"the RBF centres have shape {c.shape}")
        diff = x[:, None, :] - jnp.asarray(c, x.dtype)[None, :, :]
        sq = jnp.sum(diff * diff, axis=2)
        return jnp.exp(-sq / (2 * self.lengthscale**2))


@dataclasses.dataclass(frozen=True)
class Fourier:
    """`[1, cos(ω x)…, sin(ω x)…]` for the stated angular frequencies `ω`."""

    frequencies: tuple

    @property
    def n_features(self) -> int:
        return 1 + 2 * len(self.frequencies)

    def features(self, x: Array) -> Array:
        x = _checks.inputs_1d(x, "basis.design_matrix", "Fourier")
        wx = x[:, None] * jnp.asarray(self.frequencies, x.dtype)[None, :]
        return jnp.concatenate([jnp.ones_like(x)[:, None], jnp.cos(wx), jnp.sin(wx)], axis=1)


@dataclasses.dataclass(frozen=True)
class Learned:
    """`φ(x) = σ(Ax + b)` with `A` `(width, in_features)`, `b` `(width,)` in the parameters."""

    in_features: int
    width: int
    activation: str

    @property
    def n_features(self) -> int:
        return self.width

    def features(self, x: Array, A: Array, b: Array) -> Array:
        x = _checks.inputs_2d(
            x,
            self.in_features,
            "basis.design_matrix",
            f"the learned basis has A of shape {(self.width, self.in_features)}",
        )
        return get_activation(self.activation, "basis").f(x @ A.T + b)


Basis = Polynomial | RBF | Fourier | Learned
_BASES = (Polynomial, RBF, Fourier, Learned)


def polynomial(degree: int, ordering: str) -> Polynomial:
    """Polynomial basis of `degree`; `ordering` "increasing" `[1, x, x²]` or "decreasing" `[x², x, 1]`."""
    degree = check_int(degree, "basis.polynomial", "degree", minimum=0)
    if not isinstance(ordering, str) or ordering not in _ORDERINGS:
        raise ValueError(
            f"basis.polynomial: ordering must be 'increasing' ([1, x, x², …], Lecture 2) or "
            f"'decreasing' ([…, x², x, 1], Lecture 1.3); got {ordering!r}"
        )
    return Polynomial(degree, ordering)


def rbf(centres: Any, lengthscale: float) -> RBF:
    """Gaussian RBF basis; `centres` `(m,)` (scalar inputs) or `(m, d)`; `lengthscale` ℓ > 0."""
    c = _frozen(centres, (1, 2), "basis.rbf", "centres")
    ell = check_real(lengthscale, "basis.rbf", "lengthscale", minimum=0.0, strict=True)
    sq = ell * ell
    if not (sq > 0 and np.isfinite(sq) and np.isfinite(1 / (2 * sq))):
        raise ValueError(
            f"basis.rbf: lengthscale {ell:g} squares to {sq:g} in float64 (the features divide by 2ℓ²), "
            "so every feature would be NaN or constant; rescale x (and the centres) so that the "
            "lengthscale is between about 1e-150 and 1e150"
        )
    return RBF(c, ell)


def fourier(frequencies: Any) -> Fourier:
    """Fourier basis with angular frequencies `ω` `(m,)`: `n_features = 2m + 1`."""
    return Fourier(_frozen(frequencies, (1,), "basis.fourier", "frequencies"))


def learned(in_features: int, width: int, activation: str = "tanh") -> Learned:
    """The learned feature layer `σ(Ax + b)` of Lecture 2, mapping `R^in_features → R^width`."""
    in_features = check_int(in_features, "basis.learned", "in_features", minimum=1)
    width = check_int(width, "basis.learned", "width", minimum=1)
    get_activation(activation, "basis.learned")
    return Learned(in_features, width, activation)


@dataclasses.dataclass(frozen=True)
class BasisParams:
    """`theta` `(F,)` or `(F, k)`; `A`, `b` for the learned basis (else `None`); `basis` static.

    A pytree: JAX rebuilds it through `__init__` in every tree operation, so the array fields hold whatever a
    tree operation puts there (`None` after `eqx.partition`, dtypes under `jax.tree.map(lambda a: a.dtype, ...)`)
    and are not narrowed to arrays.
    """

    theta: Any
    A: Any
    b: Any
    basis: Basis


jax.tree_util.register_dataclass(BasisParams, data_fields=["theta", "A", "b"], meta_fields=["basis"])


def _require_basis(basis: Any, where: str) -> None:
    if not isinstance(basis, _BASES):
        raise TypeError(
            f"{where}: expected a basis from basis.polynomial/rbf/fourier/learned; got {type(basis).__name__}"
        )


def init(key: ArrayLike, basis: Basis, out_features: int = 1, dtype=None) -> BasisParams:
    """Random parameters for `f(x) = Θᵀφ(x)`.

    **Arguments:** `key` a JAX PRNG key; `basis` from `polynomial`/`rbf`/`fourier`/`learned`;
    `out_features` = k (`1` gives `theta` of shape `(F,)`); `dtype` (default: JAX's default float).

    **Returns:** `BasisParams` with `Θ ~ N(0, 1/F)`; for the learned basis also
    `A ~ N(0, 1/d)` and `b ~ N(0, 0.1²)`.
    """
    _require_basis(basis, "basis.init")
    out_features = check_int(out_features, "basis.init", "out_features", minimum=1)
    dtype = _checks.float_dtype(dtype, "basis.init")
    F = basis.n_features
    kt, ka, kb = jax.random.split(key, 3)
    shape = (F,) if out_features == 1 else (F, out_features)
    theta = jax.random.normal(kt, shape, dtype) / float(np.sqrt(F))
    A = b = None
    if isinstance(basis, Learned):
        A = jax.random.normal(ka, (basis.width, basis.in_features), dtype) / float(np.sqrt(basis.in_features))
        b = 0.1 * jax.random.normal(kb, (basis.width,), dtype)
    return BasisParams(theta, A, b, basis)


def _validate(params: BasisParams, where: str) -> int | None:
    """k (None for one output) after checking the leaves against the basis."""
    _checks.params_type(params, BasisParams, where, _INIT)
    basis, th = params.basis, params.theta
    F = basis.n_features
    if jnp.ndim(th) not in (1, 2) or jnp.shape(th)[0] != F:
        raise ValueError(
            f"{where}: params.theta must have shape ({F},) or ({F}, k) for this basis "
            f"({F} features); got {_checks.shape_of(th)}"
        )
    if isinstance(basis, Learned):
        for name, leaf, shape in (("A", params.A, (basis.width, basis.in_features)), ("b", params.b, (basis.width,))):
            if leaf is None or _checks.shape_of(leaf) != shape:
                got = None if leaf is None else _checks.shape_of(leaf)
                raise ValueError(f"{where}: params.{name} must have shape {shape} for the learned basis; got {got}")
    elif params.A is not None or params.b is not None:
        raise ValueError(f"{where}: params.A and params.b must be None for a fixed {type(basis).__name__} basis")
    return None if jnp.ndim(th) == 1 else jnp.shape(th)[1]


def design_matrix(basis: Basis | BasisParams, x: Float[ArrayLike, "n ..."]) -> Float[Array, "n F"]:
    """The design matrix `Φ(X)`, rows `φ(x_n)ᵀ`, shape `(n, n_features)`.

    **Arguments:** a fixed basis, or `BasisParams` (needed for the learned basis, whose `A`, `b`
    it uses); `x` of shape `(n,)` for scalar bases, `(n, d)` for RBF with `(m, d)` centres and
    for the learned basis.
    """
    if isinstance(basis, BasisParams):
        _validate(basis, "basis.design_matrix")
        params, basis = basis, basis.basis
        if isinstance(basis, Learned):
            return basis.features(x, params.A, params.b)
    _require_basis(basis, "basis.design_matrix")
    if isinstance(basis, Learned):
        raise TypeError(
            "basis.design_matrix: the learned basis needs its parameters A, b — pass the BasisParams "
            "(design_matrix(params, x)) instead of the basis"
        )
    return basis.features(x)


def apply(params: BasisParams, x: Float[ArrayLike, "n ..."]) -> Float[Array, "n ..."]:
    """Predictions `Φ(X) Θ`: shape `(n,)` for one output, `(n, k)` for `k` outputs."""
    _validate(params, "basis.apply")
    return design_matrix(params, x) @ params.theta


def _learned_parts(params, x):
    """Pre-activations Z (n, L), features Φ = σ(Z), σ'(Z), σ''(Z), U = [X, 1]."""
    basis = params.basis
    act = get_activation(basis.activation, "basis")
    x = _checks.inputs_2d(x, basis.in_features, "basis", f"A has shape {_checks.shape_of(params.A)}")
    Z = x @ params.A.T + params.b
    U = jnp.concatenate([x, jnp.ones((x.shape[0], 1), x.dtype)], axis=1)
    return Z, act.f(Z), act.df(Z), act.d2f(Z), U


def _as_2d(a):
    return a if a.ndim == 2 else a[:, None]


def hand_gradient(params: BasisParams, x: Float[ArrayLike, "n ..."], y: Float[ArrayLike, "n ..."]) -> BasisParams:
    """Gradient of `½ Σ ||y_n − f(x_n)||²` by hand, shaped like `params`.

    Fixed basis: `dL/dΘ = Φᵀ r` with `r = ΦΘ − y`. Learned basis, with `Z = XAᵀ + 1bᵀ` and
    `δ = (r Θᵀ) ⊙ σ'(Z)` (`dL/dZ`): also `dL/dA = δᵀ X`, `dL/db = Σ_n δ_n`.
    """
    k = _validate(params, "basis.hand_gradient")
    pred = apply(params, x)
    r = pred - _checks.targets(y, pred.shape, "basis.hand_gradient")
    if not isinstance(params.basis, Learned):
        Phi = design_matrix(params.basis, x)
        g = r @ Phi if k is None else jnp.einsum("nf,nk->fk", Phi, r)
        return BasisParams(g, None, None, params.basis)
    Z, Phi, dPhi, _, U = _learned_parts(params, x)
    g_theta = r @ Phi if k is None else jnp.einsum("nf,nk->fk", Phi, r)
    delta = (_as_2d(r) @ _as_2d(params.theta).T) * dPhi
    g_A = jnp.einsum("nl,nd->ld", delta, U[:, :-1])
    return BasisParams(g_theta, g_A, jnp.sum(delta, axis=0), params.basis)


def hand_jacobian(params: BasisParams, x: Float[ArrayLike, "n ..."]) -> Float[Array, "nk P"]:
    """Per-example Jacobian of the outputs w.r.t. `ravel_vec(params)`, by hand.

    **Returns:** `(n·k, P)`, row `i·k + j` (example-major) `= d f_j(x_i) / d ravel_vec(params)`.
    Fixed basis: `e_jᵀ ⊗ φ(x_i)ᵀ`. Learned basis, additionally w.r.t. `vec([A | b])`:
    `Θ[a, j] σ'(z_ia) u_im` at position `m·L + a`, with `u_i = [x_i, 1]`.
    """
    k = _validate(params, "basis.hand_jacobian")
    kk = 1 if k is None else k
    eye = jnp.eye(kk, dtype=params.theta.dtype)
    if not isinstance(params.basis, Learned):
        Phi = design_matrix(params.basis, x)
        n, F = Phi.shape
        return jnp.einsum("jl,nf->njlf", eye, Phi).reshape(n * kk, kk * F)
    Z, Phi, dPhi, _, U = _learned_parts(params, x)
    n, L = Phi.shape
    J_theta = jnp.einsum("jl,na->njla", eye, Phi).reshape(n * kk, kk * L)
    J_W = jnp.einsum("aj,na,nm->njma", _as_2d(params.theta), dPhi, U).reshape(n * kk, U.shape[1] * L)
    return jnp.concatenate([J_theta, J_W], axis=1)


def hand_hessian(
    params: BasisParams, x: Float[ArrayLike, "n ..."], y: Float[ArrayLike, "n ..."]
) -> Float[Array, "P P"]:
    """Hessian of `½ Σ ||y_n − f(x_n)||²` by hand, in `ravel_vec(params)` order.

    Fixed basis: `ΦᵀΦ` for one output, `I_k ⊗ ΦᵀΦ` (vec order of `Θ`) for `k` — independent of `y`.

    Learned basis: `JᵀJ + Σ_{n,j} r_nj ∇²f_j(x_n)` (`J` from `hand_jacobian`, `r = f − y`). With
    `W = [A | b]`, `u_n = [x_n, 1]`, `z_n = W u_n`, the second derivatives of `f_j(x_n)` are
    `d²/dvecW² = (u uᵀ) ⊗ diag(Θ[:, j] ⊙ σ''(z))`, `d²/dΘ[:, j] dvecW = u_nᵀ ⊗ diag(σ'(z))`,
    and zero in `Θ` alone.

    **Returns:** `(P, P)`, symmetric.
    """
    k = _validate(params, "basis.hand_hessian")
    pred = apply(params, x)
    y = _checks.targets(y, pred.shape, "basis.hand_hessian")
    if not isinstance(params.basis, Learned):
        Phi = design_matrix(params.basis, x)
        G = jnp.einsum("na,nb->ab", Phi, Phi)
        return G if k is None else jnp.kron(jnp.eye(k, dtype=G.dtype), G)
    J = hand_jacobian(params, x)
    Z, Phi, dPhi, d2Phi, U = _learned_parts(params, x)
    R, Th = _as_2d(pred - y), _as_2d(params.theta)
    kk, L, M = Th.shape[1], Phi.shape[1], U.shape[1]
    eye = jnp.eye(L, dtype=Phi.dtype)
    C = d2Phi * (R @ Th.T)  # C[n, a] = σ''(z_na) Σ_j r_nj Θ[a, j]
    H_WW = jnp.einsum("nm,np,na,ab->mapb", U, U, C, eye).reshape(M * L, M * L)
    S = jnp.einsum("nj,nm,na->jam", R, U, dPhi)
    H_TW = jnp.einsum("jam,ab->jamb", S, eye).reshape(kk * L, M * L)
    P_T = kk * L
    top = jnp.concatenate([jnp.zeros((P_T, P_T), Phi.dtype), H_TW], axis=1)
    bottom = jnp.concatenate([H_TW.T, H_WW], axis=1)
    return J.T @ J + jnp.concatenate([top, bottom], axis=0)
