"""Row-sharded least squares with the single-device solver's accuracy promise.

The steps are those of `mmljax.solvers.least_squares` — the same well-conditioned basis
(inputs mapped into [-1, 1], predictors centred), the same power-of-two column equilibration and
the same Björck refinement of the augmented system `[[I, B], [Bᵀ, 0]] [r; z] = [f; g]` in
double-double — with every `O(n)` quantity kept on the devices that own the rows:

| step | per device | communicated |
|---|---|---|
| factor `B = Q R` | local Householder QR | TSQR tree: `p²` per level |
| working-precision solve | `Qᵢᵀ fᵢ`, `Qᵢ h` | one `psum` of `p·k` |
| residual `g − Bᵀ r` in double-double | pairwise double-double sums over its rows | `all_gather` of `2·p·k` partial sums, summed in double-double on every device |
| scales for the stopping rule | column maxima | `pmax` of `k` |
| standard errors: `BᵀB` in double-double | its rows' products | `all_gather` of `2·p²` partial sums |
| normal equations (`method="normal"/"cholesky"`) | `Bᵢᵀ Bᵢ`, `Bᵢᵀ fᵢ` | one `psum` of `p² + p·k` |

So the refined solution agrees with the single-device one to the last bits float64 can show
(≤ 1e-12 relative), and Filip's degree-10 polynomial keeps ≥ 12 correct digits on 8 devices.
Preparing the design (validation, basis change) runs on the host as in the single-device solver,
once (`O(n p)`), and the residuals come back to it (`O(n k)`: the result holds them as numpy
arrays); the factorisation, the refinement and the `O(n p²)` Gram matrix run on the devices.
Double-double products on the devices use `mmljax.solvers._extended`, whose products stay
exact when XLA fuses multiply-adds.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.sharding import Mesh, PartitionSpec
from jaxtyping import ArrayLike

from ..solvers import _basis
from ..solvers import _extended as ext
from ..solvers._extended import DD
from ..solvers._qr import QRFactor
from ..solvers.least_squares import (METHODS, _REFINED_SE_LIMIT, _cov_z, _fit, _prepare,
                                      _rank_deficiency_message)
from ..solvers._result import LeastSquaresResult, PrecisionWarning, RankDeficiencyWarning
from ._compat import float64_scope, shard_map
from .mesh import data_axis, data_devices, shard_rows, to_host
from .tsqr import tsqr_local

__all__ = ["least_squares_sharded", "linear_regression_sharded", "polyfit_sharded"]

_MAX_REFINEMENT_STEPS = 30  # as refine_augmented's default


# ------------------------------------------------------------------------------------- kernels
# Everything below with a `_local` suffix runs inside shard_map on one device's rows.


def _dd_allsum(x: DD, axis: str) -> DD:
    """Sum per-device double-double partial results across devices, in double-double (replicated)."""
    return ext.sum_(DD(lax.all_gather(x.hi, axis), lax.all_gather(x.lo, axis)), axis=0)


def _dd_matmul_local(bT: DD, z: DD) -> DD:
    """`b @ z` for this device's rows, given `bT = bᵀ (p, n_i)`: `ext.matmul`'s arithmetic, as a scan over `p`."""

    def step(acc, cols):
        bh, bl, zh, zl = cols
        return ext.add(acc, ext.mul(DD(bh[:, None], bl[:, None]), DD(zh[None], zl[None]))), None

    zero = jnp.zeros((bT.hi.shape[1], z.hi.shape[1]), bT.hi.dtype)
    return lax.scan(step, DD(zero, zero), (bT.hi, bT.lo, z.hi, z.lo))[0]


_VECTORISED_ELEMENTS = 1 << 22  # (n_i, p, k) products held at once; above this, one column of r at a time


def _dd_rmatmul_local(b: DD, r: DD) -> DD:
    """`bᵀ r` over this device's rows by pairwise double-double sums."""
    n, p = b.hi.shape
    k = r.hi.shape[1]
    if n * p * k <= _VECTORISED_ELEMENTS:
        prod = ext.mul(DD(b.hi[:, :, None], b.lo[:, :, None]), DD(r.hi[:, None, :], r.lo[:, None, :]))
        return ext.sum_(prod, axis=0)

    def column(col):
        s = ext.sum_(ext.mul(b, DD(col[0][:, None], col[1][:, None])), axis=0)
        return s.hi, s.lo

    hi, lo = lax.map(column, (r.hi.T, r.lo.T))
    return DD(hi.T, lo.T)


def _colmax_local(a, axis: str):
    return lax.pmax(jnp.max(jnp.abs(a), axis=0), axis)


def _solve_local(q, rf, f, g, axis: str):
    """`[[I, B], [Bᵀ, 0]] [r; z] = [f; g]` with `B = Q R` in working precision (cf. `_qr.solve_augmented`)."""
    h = jax.scipy.linalg.solve_triangular(rf, g, trans="T", lower=False)
    qf = lax.psum((f.T @ q).T, axis)  # p·k numbers
    z = jax.scipy.linalg.solve_triangular(rf, qf - h, lower=False)
    return q @ h + (f - q @ qf), z


def _row_ids(n_local: int, axis: str):
    return lax.axis_index(axis) * n_local + jnp.arange(n_local)


def _masked_square_sum_local(r: DD, n_rows, axis: str):
    """`Σ r²` over the global rows `< n_rows` (padding excluded), in double-double across devices."""
    keep = (_row_ids(r.hi.shape[0], axis) < n_rows)[:, None]
    s = ext.square_sum(DD(jnp.where(keep, r.hi, 0.0), jnp.where(keep, r.lo, 0.0)), axis=0)
    return _dd_allsum(s, axis).hi


def _refine_local(b: DD, q, rf, f: DD, g: DD, n_rows, axis: str):
    """`refine_augmented` on one device's rows: the same corrections and stopping rules, in one `while_loop`.

    Every quantity the loop condition reads is replicated (a `psum`, `pmax` or `pmin`, or computed
    from replicated values), so all devices run the same number of steps.
    """
    dtype = b.hi.dtype
    eps, tiny = jnp.finfo(dtype).eps, jnp.finfo(dtype).tiny
    bT = DD(b.hi.T, b.lo.T)
    r0, z0 = _solve_local(q, rf, f.hi, g.hi, axis)
    fscale = _colmax_local(f.hi, axis)

    def cond(s):
        steps, _, _, done, _ = s
        return ~done & (steps < _MAX_REFINEMENT_STEPS)

    def body(s):
        steps, (r, z), last, done, converged = s
        res_f = ext.sub(ext.sub(f, r), _dd_matmul_local(bT, z))
        res_g = ext.sub(g, _dd_allsum(_dd_rmatmul_local(b, r), axis))
        dr, dz = _solve_local(q, rf, res_f.hi, res_g.hi, axis)
        finite = (lax.pmin(jnp.all(jnp.isfinite(dr)).astype(jnp.int32), axis) > 0) & jnp.all(jnp.isfinite(dz))
        zscale = jnp.maximum(jnp.max(jnp.abs(z.hi), axis=0), tiny)
        rscale = jnp.maximum(fscale + _colmax_local(r.hi, axis), tiny)
        size = jnp.max(jnp.maximum(jnp.max(jnp.abs(dz), axis=0) / zscale, _colmax_local(dr, axis) / rscale),
                       initial=0.0)
        # growing corrections: cond(B) * eps is too large for refinement to converge
        accept = finite & ~((steps > 0) & (size > last))
        r_new, z_new = ext.add_float(r, dr), ext.add_float(z, dz)
        r, z = jax.tree_util.tree_map(lambda a, b_: jnp.where(accept, a, b_), (r_new, z_new), (r, z))
        # stop at the double-double level, or when no longer contracting
        stop = (size <= 16 * eps * eps) | ((steps > 0) & (size > 0.5 * last))
        return (steps + accept.astype(jnp.int32), (r, z), jnp.where(accept, size, last), ~accept | stop,
                jnp.where(accept, size <= eps, converged))

    start = (jnp.int32(0), (ext.from_float(r0), ext.from_float(z0)), jnp.asarray(jnp.inf, dtype), jnp.bool_(False),
             jnp.bool_(False))
    steps, (r, z), _, _, converged = lax.while_loop(cond, body, start)
    return r.hi, r.lo, z.hi, z.lo, steps, converged, _masked_square_sum_local(r, n_rows, axis)


class _Kernels(NamedTuple):
    tsqr: Any      # bh -> q, R
    fit: Any       # bh, bl, q, R, f, n_rows -> refined (r, z) for g = 0
    variance: Any  # bh, bl, q, R, gh, gl, n_rows -> refined (r, z) for f = 0
    gram_dd: Any   # bh, bl -> BᵀB in double-double (replicated)
    residual: Any  # bh, bl, f, zh, zl -> f - b z in double-double
    qt: Any        # q, f -> Qᵀ f
    gram: Any      # bh, f, n_obs -> BᵀB, B_obsᵀB_obs, Bᵀf


@functools.lru_cache(maxsize=16)
def _kernels(mesh: Mesh) -> _Kernels:
    ax = data_axis(mesh)
    D = data_devices(mesh)
    S, R = PartitionSpec(ax), PartitionSpec()

    def smap(body, in_specs, out_specs):
        return jax.jit(shard_map(body, mesh, in_specs, out_specs, check=False))

    def fit(bh, bl, q, rf, fh, n_rows):
        zero = jnp.zeros((bh.shape[1], fh.shape[1]), bh.dtype)
        return _refine_local(DD(bh, bl), q, rf, ext.from_float(fh), DD(zero, zero), n_rows, ax)

    def variance(bh, bl, q, rf, gh, gl, n_rows):
        zero = jnp.zeros((bh.shape[0], gh.shape[1]), bh.dtype)
        return _refine_local(DD(bh, bl), q, rf, DD(zero, zero), DD(gh, gl), n_rows, ax)

    def residual(bh, bl, fh, zh, zl):
        r = ext.sub(ext.from_float(fh), _dd_matmul_local(DD(bh.T, bl.T), DD(zh, zl)))
        return r.hi, r.lo

    def gram(b, f, n_obs):
        bo = jnp.where((_row_ids(b.shape[0], ax) < n_obs)[:, None], b, 0.0)
        return (lax.psum(jnp.einsum("na,nb->ab", b, b), ax), lax.psum(jnp.einsum("na,nb->ab", bo, bo), ax),
                lax.psum((f.T @ b).T, ax))

    refined = (S, S, R, R, R, R, R)
    return _Kernels(
        tsqr=smap(functools.partial(tsqr_local, axis=ax, n_devices=D), (S,), (S, R)),
        fit=smap(fit, (S, S, S, R, S, R), refined),
        variance=smap(variance, (S, S, S, R, R, R, R), refined),
        gram_dd=smap(lambda bh, bl: tuple(_dd_allsum(_dd_rmatmul_local(DD(bh, bl), DD(bh, bl)), ax)), (S, S), (R, R)),
        residual=smap(residual, (S, S, S, R, R), (S, S)),
        qt=smap(lambda q, f: lax.psum((f.T @ q).T, ax), (S, S), R),
        gram=smap(gram, (S, S, R), (R, R, R)),
    )


def _host_dd(x: DD) -> DD:
    return DD(to_host(x.hi), to_host(x.lo))


def _inverse_diagonal(gram: DD, r: np.ndarray, u: DD, max_steps: int = 10) -> np.ndarray | None:
    """`diag(u G⁻¹ uᵀ)` for a double-double Gram matrix `G = BᵀB = RᵀR`, refined with `R⁻¹R⁻ᵀ`.

    The host half of `mmljax.solvers._refine.refined_inverse_diagonal` (same iteration and stopping
    rules), for a `G` that was summed on the devices; None when it does not converge.
    """
    import scipy.linalg

    eps, tiny = float(np.finfo(np.float64).eps), float(np.finfo(np.float64).tiny)

    def approx_inverse(rhs):
        return scipy.linalg.solve_triangular(r, scipy.linalg.solve_triangular(r, rhs, trans="T", check_finite=False),
                                             check_finite=False)

    rhs = DD(u.hi.T.copy(), u.lo.T.copy())
    w = ext.from_float(approx_inverse(rhs.hi))
    prev, converged = np.inf, False
    for _ in range(max_steps):
        dw = approx_inverse(ext.sub(rhs, ext.matmul(gram, w)).hi)
        size = float(np.max(np.abs(dw)) / max(float(np.max(np.abs(w.hi))), tiny))
        if not np.isfinite(size) or size > prev:
            break
        w = ext.add_float(w, dw)
        prev = size
        if size <= 16 * eps * eps:
            converged = True
            break
        if size <= eps:
            converged = True
    if not converged:
        return None
    return ext.sum_(ext.mul(u, DD(w.hi.T, w.lo.T)), axis=1).hi


# ------------------------------------------------------------------------------------------ fit


def _solve_gram(method: str, gram: np.ndarray, rhs: np.ndarray, where: str, cond: float) -> np.ndarray:
    hint = (f"the normal equations square the condition number ({cond:.3g}² ≈ {cond * cond:.3g}); "
            f"use method='qr' (the default 'auto')")
    try:
        if method == "cholesky":
            import scipy.linalg

            z = scipy.linalg.cho_solve(scipy.linalg.cho_factor(gram, lower=True, check_finite=False), rhs,
                                       check_finite=False)
        else:
            z = np.linalg.solve(gram, rhs)
    except np.linalg.LinAlgError as e:
        raise ValueError(f"{where}: method={method!r} failed ({e}): {hint}") from None
    if not np.all(np.isfinite(z)):
        raise ValueError(f"{where}: method={method!r} produced non-finite coefficients: {hint}")
    return z


def _fit_sharded(design: _basis.Design, y: np.ndarray, *, mesh: Mesh, method: str, ridge: float, where: str,
                 out_dtype: np.dtype, squeeze: bool) -> LeastSquaresResult:
    if method not in METHODS:
        raise ValueError(f"{where}: method must be one of {', '.join(map(repr, METHODS))}; got {method!r}")
    try:
        ridge = float(ridge)
    except (TypeError, ValueError):
        raise TypeError(f"{where}: ridge must be a non-negative number; got {ridge!r}") from None
    if not math.isfinite(ridge) or ridge < 0:
        raise ValueError(f"{where}: ridge must be a finite number >= 0; got {ridge}")
    n, p = design.b.shape
    k = y.shape[1]
    if p == 0:
        raise ValueError(f"{where}: the design has no columns")
    n_pen = int(np.count_nonzero(design.penalised)) if ridge > 0 else 0
    if n + n_pen < p:  # fewer rows than columns: nothing worth sharding, and no thin QR to build
        return _fit(design, y, method=method, ridge=ridge, where=where, out_dtype=out_dtype,
                            squeeze=squeeze, stacklevel=4)

    if ridge > 0:  # penalty rows sqrt(ridge) * (u z)_j, exactly as the single-device solver
        pen = np.flatnonzero(design.penalised)
        rows = ext.mul_float(DD(design.u.hi[pen], design.u.lo[pen]), np.float64(math.sqrt(ridge)))
        design = design._replace(b=DD(np.vstack([design.b.hi, rows.hi]), np.vstack([design.b.lo, rows.lo])))
        y_aug = np.vstack([y, np.zeros((pen.size, k))])
    else:
        y_aug = y
    design = _basis.equilibrate(design)
    b_host, u = design.b, design.u
    m = b_host.shape[0]
    eps = float(np.finfo(np.float64).eps)

    K = _kernels(mesh)
    b = DD(shard_rows(b_host.hi, mesh, min_rows_per_device=p), shard_rows(b_host.lo, mesh, min_rows_per_device=p))
    f = shard_rows(y_aug, mesh, min_rows_per_device=p)
    factor = QRFactor(*K.tsqr(b.hi))
    r_host = to_host(factor.r)

    sv = np.linalg.svd(r_host, compute_uv=False)
    sv_max = float(sv[0]) if sv.size else 0.0
    tol = sv_max * eps * max(m, p)
    rank = int(np.sum(sv > tol))
    cond = math.inf if sv[-1] == 0 else float(sv_max / sv[-1])

    resolved = method
    if method == "auto":
        resolved = "qr" if rank == p else "svd"
    if rank < p:
        action = {"svd": "returning the minimum-norm (truncated SVD) solution",
                  "qr": "the QR solution is unreliable", "cholesky": "the normal equations are singular",
                  "normal": "the normal equations are singular"}[resolved]
        warnings.warn(_rank_deficiency_message(where, rank, p, cond, action), RankDeficiencyWarning,
                      stacklevel=4)

    steps, converged = 0, False
    gram_all = gram_obs = None
    if resolved in ("cholesky", "normal") or ridge > 0:
        gram_all, gram_obs, rhs = (to_host(a) for a in K.gram(b.hi, f, jnp.asarray(n)))
    if resolved == "qr":
        if np.any(np.diag(r_host) == 0):
            raise ValueError(f"{where}: method='qr' needs a full-rank design with at least as many rows as "
                             f"columns ({m} x {p}, rank {rank}); use method='svd' (minimum-norm) or 'auto'")
        rh, rl, zh, zl, steps, converged, _ = K.fit(b.hi, b.lo, factor.q, factor.r, f, jnp.asarray(m))
        z, r = _host_dd(DD(zh, zl)), DD(rh, rl)
        steps, converged = int(steps), bool(converged)
        if not converged and rank == p:
            warnings.warn(f"{where}: iterative refinement stopped before reaching working precision "
                          f"(condition number {cond:.3g}); the coefficients may have fewer correct digits",
                          PrecisionWarning, stacklevel=4)
    else:
        if resolved == "svd":  # B = Q R = (Q U) S Vᵀ: the minimum-norm solution from R's SVD and Qᵀf
            qf = to_host(K.qt(factor.q, f))
            us, s, vt = np.linalg.svd(r_host)
            keep = s > tol
            z_w = vt[keep].T @ ((us[:, keep].T @ qf) / s[keep, None])
        else:
            z_w = _solve_gram(resolved, gram_all, rhs, where, cond)
        z = ext.from_float(z_w)
        r = DD(*K.residual(b.hi, b.lo, f, jnp.asarray(z.hi), jnp.asarray(z.lo)))

    coef = ext.matmul(u, z).hi
    res = _host_dd(r)
    res = DD(res.hi[:n], res.lo[:n])
    rss = ext.square_sum(res, axis=0).hi
    if design.intercept:
        mean = ext.div(ext.sum_(ext.from_float(y), axis=0), ext.from_float(np.full(k, float(n))))
        tss = ext.square_sum(ext.sub(ext.from_float(y), DD(mean.hi[None], mean.lo[None])), axis=0).hi
    else:
        tss = ext.square_sum(ext.from_float(y), axis=0).hi
    with np.errstate(divide="ignore", invalid="ignore"):
        r_squared = 1.0 - rss / tss

    if ridge > 0:
        dof = n - float(np.trace(np.linalg.solve(gram_all, gram_obs)))
    else:
        dof = float(n - rank)
    if dof > 0:
        sigma = np.sqrt(rss / dof)
    else:
        sigma = np.full(k, np.nan)
        warnings.warn(f"{where}: {n} observations for {rank} free coefficients leave no degrees of freedom: "
                      f"the residual SD and standard errors are undefined (NaN)", RankDeficiencyWarning,
                      stacklevel=4)

    var = None
    if resolved == "qr" and ridge == 0 and n * p * p <= _REFINED_SE_LIMIT:
        # as the single-device solver: diag(u (BᵀB)⁻¹ uᵀ) from the Gram matrix in double-double
        # (one all-gather of 2p² partial sums) refined with R⁻¹R⁻ᵀ on the host ...
        var = _inverse_diagonal(_host_dd(DD(*K.gram_dd(b.hi, b.lo))), r_host, u)
        if var is None and n * p * p <= _REFINED_SE_LIMIT / 4:
            # ... or, when cond(B)² eps is too large for that, from refined augmented solves with f = 0, g = uᵀ
            *_, var = K.variance(b.hi, b.lo, factor.q, factor.r, jnp.asarray(u.hi.T.copy()),
                                 jnp.asarray(u.lo.T.copy()), jnp.asarray(m))
            var = to_host(var)
    if var is None:
        cov_z = _cov_z(resolved, QRFactor(None, r_host), r_host, gram_all, tol)
        if ridge > 0:
            cov_z = cov_z @ gram_obs @ cov_z
        var = np.sum((u.hi @ cov_z) * u.hi, axis=1)
    se = np.sqrt(np.maximum(var, 0.0))[:, None] * sigma[None, :]

    res_out = res.hi
    fitted = y - res_out

    def out(a):
        a = np.asarray(a, dtype=out_dtype)
        return a[..., 0] if squeeze else a

    return LeastSquaresResult(
        coefficients=out(coef), residuals=out(res_out), rss=out(rss), residual_sd=out(sigma),
        r_squared=out(r_squared), standard_errors=out(se), rank=rank, condition_number=cond,
        method=resolved, dtype=np.dtype(out_dtype), refinement_steps=steps, n_observations=n,
        dof=dof, intercept=design.intercept, ridge=ridge, refinement_converged=converged,
        names=design.names, fitted=out(fitted))


# ------------------------------------------------------------------------------------ public API


def least_squares_sharded(Phi: ArrayLike, y: ArrayLike, *, mesh: Mesh, method: str = "auto",
                          ridge: float = 0.0) -> LeastSquaresResult:
    """`mmljax.solvers.least_squares(Phi, y, mesh=mesh)`: the same fit with the rows of `Phi` split over `mesh`.

    **Arguments:** as `least_squares` (`Phi (n, p)`, `y (n,)` or `(n, k)`, `method`, `ridge`), plus
    `mesh`, a `jax.sharding.Mesh` whose first axis shards the rows. "auto"/"qr" use tall-skinny
    QR and double-double refinement on the devices; "normal"/"cholesky" one `psum` of the normal
    equations; "svd" the SVD of the TSQR factor `R`.

    **Returns:** the same `LeastSquaresResult` as the single-device solver (numpy arrays, input
    dtype), equal to it to about 1e-12 relative in float64. Computes in float64 on the devices
    whatever `jax_enable_x64` says (the setting is restored afterwards).
    """
    where = "least_squares"
    data_axis(mesh, where)
    phi, yy, dtype, squeeze = _prepare(Phi, y, where, "Phi", (2,))
    with float64_scope():
        return _fit_sharded(_basis.general(phi), yy, mesh=mesh, method=method, ridge=ridge, where=where,
                            out_dtype=dtype, squeeze=squeeze)


def linear_regression_sharded(X: ArrayLike, y: ArrayLike, *, mesh: Mesh, intercept: bool = True,
                              method: str = "auto", ridge: float = 0.0) -> LeastSquaresResult:
    """`mmljax.solvers.linear_regression(X, y, mesh=mesh)`: rows of `X` split over `mesh` (see `least_squares_sharded`)."""
    where = "linear_regression"
    data_axis(mesh, where)
    X_, yy, dtype, squeeze = _prepare(X, y, where, "X", (1, 2))
    if X_.ndim == 1:
        X_ = X_[:, None]
    with float64_scope():
        return _fit_sharded(_basis.affine(X_, bool(intercept)), yy, mesh=mesh, method=method, ridge=ridge,
                            where=where, out_dtype=dtype, squeeze=squeeze)


def polyfit_sharded(x: ArrayLike, y: ArrayLike, degree: int, *, mesh: Mesh, intercept: bool = True,
                    method: str = "auto", ridge: float = 0.0) -> LeastSquaresResult:
    """`mmljax.solvers.polyfit(x, y, degree, mesh=mesh)`: rows split over `mesh` (see `least_squares_sharded`).

    Filip (82 rows, degree 10, condition number ~1e15 in the monomial basis) keeps 12+ correct
    digits with its rows split over 8 devices.
    """
    where = "polyfit"
    data_axis(mesh, where)
    if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)):
        raise TypeError(f"{where}: degree must be an int; got {type(degree).__name__}")
    if degree < (0 if intercept else 1):
        raise ValueError(f"{where}: degree must be >= {0 if intercept else 1}"
                         f"{'' if intercept else ' without an intercept'}; got {degree}")
    x_, yy, dtype, squeeze = _prepare(x, y, where, "x", (1,))
    with float64_scope():
        return _fit_sharded(_basis.polynomial(x_, int(degree), bool(intercept)), yy, mesh=mesh, method=method,
                            ridge=ridge, where=where, out_dtype=dtype, squeeze=squeeze)
