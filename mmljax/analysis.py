"""Second-order analysis: classify critical points, Hessian spectrum by Lanczos, trace by Hutchinson.

Everything works on parameter pytrees (arrays, dicts, equinox modules) through Hessian-vector
products (`mmljax.hvp`, forward-over-reverse); only `classify_critical_point` with `method="dense"`
(the default for up to `dense_limit` parameters) builds the Hessian. Flat vectors (eigenvectors)
are in `ravel_vec` order, the order of `mmljax.hessian_matrix`.

Each function takes the data as `args=` (`loss(params, args)`) and builds one compiled program per
(loss function, options, shapes): new data or points of the same shapes reuse it. They work inside
`jax.jit` and `jax.vmap`; there a NaN loss gives NaN numbers instead of the eager `ValueError`.
Lanczos keeps its whole Krylov basis and reorthogonalises against it (classical Gram-Schmidt,
twice), so memory is `O(P * m)` for `m` iterations.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ._lanczos import ritz
from ._minimum import KINDS, check_tolerances, dense_test, verdict_from_step
from ._problem import FlatProblem, check_args, check_key, check_loss_call, check_params, is_traced, param_size_dtype
from ._validate import check_bool, check_choice, check_int
from .derivatives import hvp

__all__ = [
    "LanczosResult",
    "TraceEstimate",
    "CriticalPoint",
    "hessian_eigenvalues",
    "hessian_trace",
    "classify_critical_point",
    "KINDS",
]


def _plain(x: Any) -> Any:
    if x is None or isinstance(x, (str, bool, int)):
        return x
    a = np.asarray(x)
    if a.dtype.kind == "f":
        return (
            [None if not np.isfinite(v) else v for v in a.ravel().tolist()]
            if a.ndim
            else (float(a) if np.isfinite(a) else None)
        )
    return a.tolist()


def _concrete(x: Any) -> Any:
    """Eager results hold numpy values (Python scalars for 0-d); traced ones keep the arrays."""
    if isinstance(x, jax.core.Tracer):
        return x
    a = np.asarray(x)
    return a.item() if a.ndim == 0 else a


class LanczosResult(eqx.Module):
    """The extreme eigenvalues of a Hessian by Lanczos.

    **Fields:** `eigenvalues (k,)` (largest first for which="largest", smallest first for "smallest"),
    `eigenvectors` (`(k, P)`, flat in `ravel_vec` order — the order of `hessian_matrix`; None unless
    asked for), `residual_norms (k,)` (`||H v - λ v||`, a bound on each eigenvalue's error),
    `iterations` (the Krylov dimension, static).
    """

    eigenvalues: Any
    eigenvectors: Any
    residual_norms: Any
    iterations: int = eqx.field(static=True)

    def summary(self) -> str:
        vals = np.asarray(self.eigenvalues)
        return (
            f"Lanczos ({self.iterations} iterations): eigenvalues {np.array2string(vals, precision=6)}, largest "
            f"residual norm {float(np.max(np.asarray(self.residual_norms))):.3g}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "eigenvalues": _plain(self.eigenvalues),
            "residual_norms": _plain(self.residual_norms),
            "iterations": self.iterations,
            "eigenvectors": None if self.eigenvectors is None else np.asarray(self.eigenvectors).tolist(),
        }


class TraceEstimate(eqx.Module):
    """Hutchinson estimate of `tr(H)`: `estimate`, its `standard_error`, and `num_samples` (static)."""

    estimate: Any
    standard_error: Any
    num_samples: int = eqx.field(static=True)

    def summary(self) -> str:
        return f"tr(H) ≈ {float(self.estimate):.6g} ± {float(self.standard_error):.2g} ({self.num_samples} samples)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "estimate": _plain(self.estimate),
            "standard_error": _plain(self.standard_error),
            "num_samples": self.num_samples,
        }


class CriticalPoint(eqx.Module):
    """Second-order classification of `params` for `loss` (the shared test of `mmljax._minimum`, also
    used by `check_minimiser`).

    `kind` is one of "minimum", "maximum", "saddle", "degenerate" (no negative or no positive
    eigenvalue, but some indistinguishable from zero: the second-order test is inconclusive),
    "not_stationary" (relative Newton step above `tol`); `kind_index` is its index in `KINDS` (an
    integer array inside `jax.jit`/`vmap`, where `kind` is not available). `n_positive`/`n_negative`/
    `n_zero` count the eigenvalues above `eig_tol·max|λ|`, below its negative and in between (with
    Lanczos: among the `eigenvalues` computed at both ends of the spectrum, so lower bounds).
    `relative_step` is `||H⁺g|| / max(||params||, 1)`; `tol` and `eig_tol` are the (relative)
    tolerances used.
    """

    kind_index: Any
    loss: Any
    grad_norm: Any
    relative_step: Any
    min_eigenvalue: Any
    max_eigenvalue: Any
    n_positive: Any
    n_negative: Any
    n_zero: Any
    eigenvalues: Any
    tol: Any
    eig_tol: Any
    method: str = eqx.field(static=True)
    dtype: Any = eqx.field(static=True)

    @property
    def kind(self) -> Any:
        if isinstance(self.kind_index, jax.core.Tracer):
            raise TypeError(
                "CriticalPoint.kind: not available inside jax.jit/vmap; use kind_index (an index into "
                "mmljax.analysis.KINDS)"
            )
        idx = np.asarray(self.kind_index)
        return KINDS[int(idx)] if idx.ndim == 0 else np.asarray(KINDS, dtype=object)[idx]

    @property
    def grad_tol(self) -> Any:
        """Deprecated name of `tol` (now a relative Newton step)."""
        return self.tol

    def summary(self) -> str:
        return (
            f"{self.kind}: relative Newton step {self.relative_step:.3g} (tol {self.tol:.3g}), |grad| = "
            f"{self.grad_norm:.3g}, Hessian eigenvalues in [{self.min_eigenvalue:.6g}, {self.max_eigenvalue:.6g}] "
            f"({self.n_positive} positive, {self.n_negative} negative, {self.n_zero} ~zero at relative tol "
            f"{self.eig_tol:.3g}; {self.method})"
        )

    def to_dict(self) -> dict[str, Any]:
        out = {
            name: _plain(getattr(self, name))
            for name in (
                "loss",
                "grad_norm",
                "relative_step",
                "min_eigenvalue",
                "max_eigenvalue",
                "n_positive",
                "n_negative",
                "n_zero",
                "eigenvalues",
                "tol",
                "eig_tol",
            )
        }
        return {"kind": self.kind, **out, "method": self.method, "dtype": str(self.dtype)}


def _prepare(where: str, loss, params, args):
    check_loss_call(loss, args, where)
    args = check_args(args, where)
    params = check_params(params, where, "params")
    return params, args, is_traced(params, args, loss)


def _refuse_nonfinite(where: str, value, gnorm) -> None:
    value, gnorm = float(value), float(gnorm)
    if not (np.isfinite(value) and np.isfinite(gnorm)):
        raise ValueError(
            f"{where}: the loss or its gradient is not finite at params (loss {value}, |grad| {gnorm}); "
            f"the Hessian is undefined there — evaluate at a point where the loss is finite"
        )


def _seed_alias(where: str, key, seed):
    if seed is not None:
        warnings.warn(
            f"{where}: seed= is deprecated; pass key=jax.random.PRNGKey(seed)", DeprecationWarning, stacklevel=3
        )
        if key is None:
            key = jax.random.PRNGKey(check_int(seed, where, "seed", minimum=0))
    return check_key(key, where)


# ------------------------------------------------------------------------------------------ Lanczos


@eqx.filter_jit
def _spectrum(loss, params, args, key, *, k, m, which, vectors):
    fp = FlatProblem(loss, params, args, "hessian_eigenvalues")
    x = fp.x0
    value, g = jax.value_and_grad(fp.f)(x, args)
    r = ritz(lambda v: hvp(lambda y: fp.f(y, args), x, v), x.shape[0], x.dtype, m, key)
    idx = jnp.arange(m - 1, m - 1 - k, -1) if which == "largest" else jnp.arange(k)
    vecs = (r.S[:, idx].T @ r.Q) if vectors else None
    finite = jnp.isfinite(value) & jnp.all(jnp.isfinite(g))
    nan = jnp.asarray(jnp.nan, x.dtype)
    return (
        jnp.where(finite, r.theta[idx], nan),
        vecs,
        jnp.where(finite, r.residual[idx], nan),
        value,
        jnp.linalg.norm(g),
    )


def hessian_eigenvalues(
    loss: Callable[..., jax.Array],
    params: Any,
    k: int = 1,
    which: str = "largest",
    *,
    args: Any = None,
    num_iterations: int | None = None,
    key: jax.Array | None = None,
    return_eigenvectors: bool = False,
    seed: int | None = None,
) -> LanczosResult:
    """The `k` largest (or smallest) eigenvalues of the Hessian of `loss` at `params`, by Lanczos on `hvp`.

    **Arguments:** `loss` a scalar function `loss(params)` (or `loss(params, args)` with `args=`);
    `params` where to evaluate (any pytree of real floating arrays); `k`; `which` "largest" or
    "smallest" (algebraically); `num_iterations` the Krylov dimension `m` (default
    `min(P, max(4k, 80))`); `key` a `jax.random` key for the start vector (default `PRNGKey(0)`);
    `return_eigenvectors`. `hessian_eigenvalues(loss, params, k=1)` is the largest curvature.

    **Returns:** a `LanczosResult` (eigenvectors `(k, P)` in `ravel_vec` order). Memory is `O(P * m)`;
    no Hessian is built. A `RuntimeWarning` says when a residual norm suggests the eigenvalues are not
    yet accurate to about 1e-6 relative (raise `num_iterations`).

    **Raises:** `ValueError` when the loss or its gradient is not finite at `params` (eagerly; inside
    `jax.jit`/`vmap` the eigenvalues are NaN), or for bad options.
    """
    where = "hessian_eigenvalues"
    which = check_choice(which, where, "which", ("largest", "smallest"))
    return_eigenvectors = check_bool(return_eigenvectors, where, "return_eigenvectors")
    key = _seed_alias(where, key, seed)
    params, args, traced = _prepare(where, loss, params, args)
    P, _ = param_size_dtype(params)
    k = check_int(k, where, "k", minimum=1)
    if k > P:
        raise ValueError(f"{where}: k = {k} exceeds the number of parameters P = {P}")
    m = (
        check_int(num_iterations, where, "num_iterations", minimum=1)
        if num_iterations is not None
        else min(P, max(4 * k, 80))
    )
    m = min(max(m, k), P)
    vals, vecs, res, value, gnorm = _spectrum(
        loss, params, args, key, k=k, m=m, which=which, vectors=return_eigenvectors
    )
    if traced:
        return LanczosResult(vals, vecs, res, m)
    _refuse_nonfinite(where, value, gnorm)
    scale = float(jnp.max(jnp.abs(vals)))
    if np.any(np.asarray(res) > 1e-6 * max(scale, np.finfo(np.asarray(vals).dtype).tiny)) and m < P:
        warnings.warn(
            f"{where}: after {m} Lanczos iterations the largest residual norm is {float(jnp.max(res)):.3g} "
            f"(eigenvalue scale {scale:.3g}); pass a larger num_iterations for more accurate values",
            RuntimeWarning,
            stacklevel=2,
        )
    return LanczosResult(vals, vecs, res, m)


# ------------------------------------------------------------------------------------------ Hutchinson


@eqx.filter_jit
def _trace(loss, params, args, key, *, num_samples):
    fp = FlatProblem(loss, params, args, "hessian_trace")
    x = fp.x0
    value, g = jax.value_and_grad(fp.f)(x, args)

    def sample(k):
        v = jax.random.rademacher(k, x.shape, x.dtype)
        return jnp.vdot(v, hvp(lambda y: fp.f(y, args), x, v))

    s = jax.lax.map(sample, jax.random.split(key, num_samples))
    finite = jnp.isfinite(value) & jnp.all(jnp.isfinite(g))
    nan = jnp.asarray(jnp.nan, x.dtype)
    est = jnp.where(finite, jnp.mean(s), nan)
    se = jnp.where(finite, jnp.std(s, ddof=1) / jnp.sqrt(num_samples), nan)
    return est, se, value, jnp.linalg.norm(g)


def hessian_trace(
    loss: Callable[..., jax.Array],
    params: Any,
    *,
    args: Any = None,
    num_samples: int = 100,
    key: jax.Array | None = None,
    seed: int | None = None,
) -> TraceEstimate:
    """Hutchinson's estimate of `tr(H)`: the mean of `vᵀ H v` over Rademacher vectors `v` (±1 entries).

    **Arguments:** `loss` (`loss(params)` or `loss(params, args)` with `args=`), `params`,
    `num_samples` (at least 2), `key` a `jax.random` key (default `PRNGKey(0)`).

    **Returns:** a `TraceEstimate`. Unbiased; exact for a diagonal Hessian; the standard error is the
    sample standard deviation over `sqrt(num_samples)`. Memory `O(P)` (samples run one after another).

    **Raises:** `ValueError` when the loss or its gradient is not finite at `params` (eagerly; inside
    `jax.jit`/`vmap` the estimate is NaN).
    """
    where = "hessian_trace"
    num_samples = check_int(num_samples, where, "num_samples", minimum=2)
    key = _seed_alias(where, key, seed)
    params, args, traced = _prepare(where, loss, params, args)
    est, se, value, gnorm = _trace(loss, params, args, key, num_samples=num_samples)
    if not traced:
        _refuse_nonfinite(where, value, gnorm)
    return TraceEstimate(est, se, num_samples)


# ------------------------------------------------------------------------------------------ classification


@eqx.filter_jit
def _classify(loss, params, args, key, tol, eig_tol, *, dense, k):
    fp = FlatProblem(loss, params, args, "classify_critical_point")
    x = fp.x0
    P = x.shape[0]
    value, g = jax.value_and_grad(fp.f)(x, args)
    tol, eig_tol = jnp.asarray(tol, x.dtype), jnp.asarray(eig_tol, x.dtype)
    if dense:
        H = jax.hessian(fp.f)(x, args)
        test, eigs = dense_test(g, H, x, tol, eig_tol)
    else:
        kk = min(k, P)
        m = min(P, max(4 * kk, 80))
        # one Lanczos run: its Ritz values converge at both ends of the spectrum
        theta = ritz(lambda v: hvp(lambda y: fp.f(y, args), x, v), P, x.dtype, m, key).theta
        eigs = theta if 2 * kk >= m else jnp.concatenate([theta[:kk], theta[-kk:]])
        scale = jnp.max(jnp.abs(eigs))
        smallest = jnp.maximum(jnp.min(jnp.abs(eigs)), eig_tol * scale)
        step = jnp.linalg.norm(g) / jnp.where(smallest > 0, smallest, 1.0)  # estimate of ||H⁻¹g||
        test = verdict_from_step(eigs, step / jnp.maximum(jnp.linalg.norm(x), 1.0), tol, eig_tol)
    return test, eigs, value, jnp.linalg.norm(g)


def classify_critical_point(
    loss: Callable[..., jax.Array],
    params: Any,
    *,
    args: Any = None,
    tol: float | None = None,
    eig_tol: float | None = None,
    method: str = "auto",
    dense_limit: int = 3000,
    k: int = 10,
    key: jax.Array | None = None,
    seed: int | None = None,
) -> CriticalPoint:
    """Is `params` a minimum, maximum, saddle, degenerate critical point, or not stationary?

    The shared second-order test of `mmljax.check_minimiser` (scale-aware, see below).

    **Arguments:**

    - `loss`, `params`: scalar loss (`loss(params)`, or `loss(params, args)` with `args=`) of a pytree,
      and the point.
    - `tol`: relative Newton step for stationarity: `||H⁺g|| / max(||params||, 1) <= tol` (default
      `sqrt(eps)` of the parameters' dtype). Invariant under scaling the loss.
    - `eig_tol`: relative: eigenvalues with `|λ| <= eig_tol · max|λ|` count as zero (default
      `10 · P · eps`, the rounding level of a computed Hessian); `0 <= eig_tol < 1`.
    - `method`: "dense" (`eigh` of the full Hessian), "lanczos" (the `k` extreme eigenvalues at each
      end from `hvp`; the Newton step is then estimated as `||g|| / min|λ|` over those) or "auto"
      (dense for `P <= dense_limit`). `key`: the Lanczos start (default `PRNGKey(0)`).

    **Returns:** a `CriticalPoint` (kind, relative step, gradient norm, extreme eigenvalues, counts,
    tolerances). A strict minimum needs every eigenvalue positive; zero eigenvalues make the test
    inconclusive ("degenerate") — positive *semi*-definiteness is not enough (the lecture notes'
    erratum).

    **Raises:** `ValueError` when the loss or gradient is not finite at `params` (eagerly), or for bad
    options (negative tolerances, unknown method).
    """
    where = "classify_critical_point"
    method = check_choice(method, where, "method", ("auto", "dense", "lanczos"))
    dense_limit = check_int(dense_limit, where, "dense_limit", minimum=0)
    k = check_int(k, where, "k", minimum=1)
    key = _seed_alias(where, key, seed)
    params, args, traced = _prepare(where, loss, params, args)
    P, dtype = param_size_dtype(params)
    tol, eig_tol = check_tolerances(tol, eig_tol, dtype, P, where)
    resolved = method if method != "auto" else ("dense" if P <= dense_limit else "lanczos")
    test, eigs, value, gnorm = _classify(
        loss, params, args, key, np.asarray(tol), np.asarray(eig_tol), dense=resolved == "dense", k=k
    )
    if not traced:
        _refuse_nonfinite(where, value, gnorm)
    c = _concrete
    return CriticalPoint(
        kind_index=c(test.kind),
        loss=c(value),
        grad_norm=c(gnorm),
        relative_step=c(test.relative_step),
        min_eigenvalue=c(test.min_eigenvalue),
        max_eigenvalue=c(test.max_eigenvalue),
        n_positive=c(test.n_positive),
        n_negative=c(test.n_negative),
        n_zero=c(test.n_zero),
        eigenvalues=eigs if traced else np.asarray(eigs),
        tol=tol,
        eig_tol=eig_tol,
        method=resolved,
        dtype=dtype,
    )
