"""Linear least squares accurate to the last digits the data support, as JAX programs.

`least_squares(Phi, y)` minimises `||y - Phi beta||² + ridge ||beta||²`. The default ("auto",
i.e. "qr" for a full-rank design) equilibrates the columns by exact powers of two, factorises
and then refines the augmented system `[[I, A], [Aᵀ, 0]] [r; x] = [y; 0]` (Björck) with
residuals, solution and residual vector all carried in portable double-double arithmetic.
`polyfit` and `linear_regression` first move to a well-conditioned basis (inputs mapped into
[-1, 1], predictors centred) and map the coefficients back exactly, so even Filip's degree-10
polynomial (condition number ~1e15 in the monomial basis) comes out to 12+ digits.

One implementation for every use. The whole pipeline — basis change, equilibration, QR (or the
Cholesky factor of the Gram matrix for large designs, or SVD for rank-deficient ones), refinement
in a `lax.while_loop` with a convergence test, statistics — is one traced JAX program, compiled
once per shape and static options and cached at module level. So the solvers work eagerly (the
compiled program is called, then warnings and errors are raised on the host), inside `jax.jit`,
under `jax.vmap` (batched designs and/or targets) and under `jax.grad`/`jvp`/`vjp`/`jacfwd`/`jacrev`
with respect to the design, the targets and `ridge`: the solution is differentiated implicitly
(`jax.custom_jvp`, reusing the factorisation), never through the refinement iterations.

Derivatives. `dβ = (AᵀA + λPᵀP)⁻¹(dAᵀ r − Aᵀ dA β − dλ PᵀP β + Aᵀ dy)` for the natural design `A`
(`Phi`; `[1, X]`; the monomials of `x` for `polyfit`, so `d/dx` works too) and `P` the penalised
coefficients. Residuals, fitted values, RSS, R², residual SD, standard errors and (with ridge) the
degrees of freedom are differentiated exactly as functions of `(A, y, λ, β, (AᵀA + λPᵀP)⁻¹)`; the
rank, condition number and status have zero derivatives. The derivative of a minimum-norm solution
of a rank-deficient design is that of the pseudo-inverse formula above (exact only while the rank
does not change). Derivatives are computed in working precision (they are not refined).

Errors. Eagerly: wrong shapes or options raise `ValueError`/`TypeError`; NaN/Inf in the data raise
`ValueError` naming the rows; a rank-deficient design gives a `RankDeficiencyWarning`, float32 input
or a refinement that did not reach working precision a `PrecisionWarning`, "normal"/"cholesky" at a
condition number that leaves fewer than 3 correct digits a `PrecisionWarning`. Inside `jax.jit`/
`jax.vmap` only shape and option errors raise (at trace time); everything that depends on the data
is reported through the result (`status`, `rank`, `condition_number`, `expected_digits`; NaN
results for NaN/Inf data), and `check=True` turns a status other than `CONVERGED` into a runtime
error (`equinox.error_if`) that works under `jit` and `vmap`.

Precision. Called eagerly the solvers compute in float64 whatever `jax_enable_x64` says (the setting
is restored) and return numpy arrays in the dtype of the inputs (float32 inputs: a
`PrecisionWarning`, float32 outputs). Inside a transformation they compute in the default float
dtype: float64 with x64 enabled (the same program as eagerly: the same bits), float32 otherwise,
where the double-double arithmetic carries about 48 bits and the coefficients of a well-conditioned
problem come out to about float32 resolution (relative error ~1e-7 · cond).

Speed: the refinement stops as soon as the next correction would fall below double-double
resolution (two steps for a well-conditioned design). A design with `m·p·max(p, k) >=
LARGE_PRODUCTS` is factorised through its Gram matrix when its condition number allows (the
refinement makes up for the squared condition number; Householder `R` otherwise, and Householder QR
after all, in the same program, if the refinement does not converge on the Gram factor), and its standard
errors come from the working-precision factor when `n·p² > REFINED_SE_LIMIT`.
"""

from __future__ import annotations

import functools
import math
import warnings
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import ArrayLike

from .._compile import library_jit
from .._validate import check_bool, check_choice, check_int, check_real
from ..errors import PrecisionWarning, RankDeficiencyWarning
from ..linalg import basis as _basis
from ..linalg import doubledouble as ext
from ..linalg.branching import cond_where
from ..linalg.doubledouble import DD
from ..linalg.ordering import after
from ..linalg.precision import float64_scope
from ..linalg.qr import SINGLE, LinearOps, QRFactor, gram_factor, solve_triangular
from ..linalg.refine import refine_augmented
from ..status import Status
from ._result import LeastSquaresResult

__all__ = ["METHODS", "least_squares", "linear_regression", "polyfit"]

METHODS = ("auto", "qr", "svd", "cholesky", "normal")

LARGE_PRODUCTS = 1 << 22  # m·p·max(p, k) from which a design is "large": Gram-matrix factor first
GRAM_COND_LIMIT = 1e5  # the Gram-matrix factor is used up to this condition number (cond² eps <= 2e-6)
REFINED_SE_LIMIT = 5e7  # above this n·p² the standard errors come from the working-precision factor
REFINED_SE_COND = 1e4  # ... and below this condition number too (their relative error is about cond·eps)
ILL_CONDITIONED_DIGITS = 3.0  # "normal"/"cholesky" with fewer expected correct digits: ILL_CONDITIONED


class _Config(NamedTuple):
    """The static part of a fit (hashable: a static argument of the compiled program)."""

    kind: str  # "general" | "polynomial" | "affine"
    degree: int
    intercept: bool
    method: str
    has_ridge: bool
    factor: str  # "householder" | "gram"
    refined_se: bool
    ops: LinearOps


class _Out(NamedTuple):
    coef: Any  # (p, k)
    residuals: Any  # (n, k)
    rss: Any  # (k,)
    sigma: Any  # (k,)
    r2: Any  # (k,)
    se: Any  # (p, k)
    fitted: Any  # (n, k)
    dof: Any  # ()
    rank: Any  # () float: the aux outputs below have zero derivatives
    cond: Any
    steps: Any
    converged: Any
    status: Any
    intercept: Any
    digits: Any
    half: Any  # (p, q): (AᵀA + λPᵀP)⁻¹ = half halfᵀ in the natural basis


def _design(cfg: _Config, data) -> _basis.Design:
    if cfg.kind == "polynomial":
        return _basis.polynomial(data, cfg.degree, cfg.intercept)
    if cfg.kind == "affine":
        return _basis.affine(data, cfg.intercept)
    return _basis.general(data)


def _natural(cfg: _Config, data):
    """The design in the natural basis, `(n, p)`: what the coefficients multiply."""
    if cfg.kind == "polynomial":
        first = 0 if cfg.intercept else 1
        return jnp.stack([data**j for j in range(first, cfg.degree + 1)], axis=1)
    if cfg.kind == "affine" and cfg.intercept:
        return jnp.concatenate([jnp.ones((data.shape[0], 1), data.dtype), data], axis=1)
    return data


def _penalised(cfg: _Config, p: int) -> tuple[bool, ...]:
    if cfg.kind in ("polynomial", "affine") and cfg.intercept:
        return (False,) + (True,) * (p - 1)
    return (True,) * p


def _where_tree(pred, a, b):
    return jax.tree_util.tree_map(lambda u, v: jnp.where(pred, u, v), a, b)


def _pad_rows(a, rows: int):
    if a is None or a.shape[0] == rows:
        return a
    return jnp.concatenate([a, jnp.zeros((rows - a.shape[0],) + a.shape[1:], a.dtype)])


def _off_null_space(coef, half, vt, null, rank, ue):
    """`coef (p, k)` and `half (p, q)` (natural coefficients) projected off the null space of the design:
    the minimum-norm solution and a factor of the pseudo-inverse of `AᵀA`. The null space is `ue N`, `N` the
    rows of `vt` flagged in `null`, spanned by the first `p − rank` left singular vectors of `ue N`."""
    p = coef.shape[0]
    span = ue @ (vt.T * null[None, :])
    u = jnp.linalg.svd(after(span, coef, half), full_matrices=False)[0]
    u = u * (jnp.arange(p) < p - rank)[None, :]
    return coef - u @ (u.T @ coef), half - u @ (u.T @ half)


def _solve_impl(cfg: _Config, data, y, ridge) -> _Out:
    out = _solve_once(cfg, data, y, ridge)
    if cfg.factor == "gram" and cfg.method in ("auto", "qr"):
        # the Gram-matrix factor was not good enough for the refinement to converge: Householder QR instead
        # (under vmap only when some element needs it)
        out = cond_where(
            out.status == int(Status.NOT_REFINED),
            lambda o, d, t, r: _solve_once(cfg._replace(factor="householder"), after(d, o.coef), t, r),
            lambda o, *_: o,
            out,
            data,
            y,
            ridge,
        )
    return out


def _solve_once(cfg: _Config, data, y, ridge) -> _Out:
    ops = cfg.ops
    dtype = y.dtype
    eps = float(jnp.finfo(dtype).eps)
    n, k = y.shape
    finite = jnp.all(jnp.isfinite(data)) & jnp.all(jnp.isfinite(y)) & jnp.isfinite(ridge) & (ridge >= 0)
    data = jnp.where(finite, data, jnp.zeros_like(data))  # a well-defined program; NaN results at the end
    y = jnp.where(finite, y, jnp.zeros_like(y))
    ridge = jnp.where(finite, ridge, jnp.zeros_like(ridge))

    design = _design(cfg, data)
    b, u = design.b, design.u
    p = b.hi.shape[1]
    sy = _basis.column_scales(y)  # targets scaled by powers of two: no overflow in the statistics
    f = y * sy
    bh, bl = b.hi, b.lo
    if cfg.has_ridge:  # ridge as least squares: rows sqrt(ridge) (u z)_j for each penalised coefficient
        pen = [j for j, v in enumerate(design.penalised) if v]
        rows = ext.mul_float(DD(u.hi[jnp.asarray(pen)], u.lo[jnp.asarray(pen)]), jnp.sqrt(ridge))
        bl = jnp.concatenate([jnp.zeros_like(bh) if bl is None else bl, rows.lo])
        bh = jnp.concatenate([bh, rows.hi])
        f = jnp.concatenate([f, jnp.zeros((len(pen), k), dtype)])
    m = bh.shape[0]
    tall = m >= p
    rows_total = m
    if ops.devices > 1 and tall:
        rows_total = max(-(-m // ops.devices), p) * ops.devices
    scale = _basis.column_scales(bh)  # equilibration, exact
    B = _pad_rows(bh * scale, rows_total)
    Bl = None if bl is None else _pad_rows(bl * scale, rows_total)
    f = _pad_rows(f, rows_total)
    obs = (jnp.arange(rows_total) < n)[:, None]
    ue = DD(u.hi * scale, u.lo * scale)  # natural coefficients = ue @ z / sy

    # ---- factorisation, rank and condition number
    # Every LAPACK call below waits for the one before (`after`): under `jax.vmap` two batched
    # factorisations running at once can deadlock XLA:CPU's thread pool.
    if cfg.factor == "gram" and tall:
        factor = gram_factor(ops, B)
        sv0 = jnp.linalg.svd(factor.r, compute_uv=False)
        ok = jnp.all(jnp.isfinite(sv0)) & (sv0[-1] > 0) & (sv0[0] <= GRAM_COND_LIMIT * sv0[-1])
        factor = QRFactor(None, lax.cond(ok, lambda: factor.r, lambda: ops.qr(after(B, sv0))[1]))
    else:
        factor = QRFactor(*(ops.qr(B) if tall else jnp.linalg.qr(B, mode="reduced")))
    R = factor.r if factor.q is None else after(factor.r, factor.q)
    us, sv, vt = jnp.linalg.svd(R, full_matrices=True)
    R = after(R, sv)
    factor = QRFactor(factor.q, R)
    keep_s = sv > sv[0] * eps * max(m, p)
    rank = jnp.sum(keep_s)
    cond = jnp.where(sv[-1] > 0, sv[0] / sv[-1], jnp.inf) if tall else jnp.asarray(jnp.inf, dtype)
    inv_sv = jnp.where(keep_s, 1 / jnp.where(keep_s, sv, 1), 0)
    full = rank == p

    # rows of ue, each scaled by a power of two into [0.5, 1): var(beta_j) = ||B (BᵀB)⁻¹ g_j||² / gsc_j²
    gsc = _basis.column_scales(ue.hi.T)
    G = DD((ue.hi * gsc[:, None]).T, (ue.lo * gsc[:, None]).T)

    def qt(v):  # Qᵀ v
        if factor.q is None:
            return solve_triangular(R, ops.rmatmul(B, v), trans=True)
        return ops.rmatmul(factor.q, v)

    def svd_parts():
        zs = vt[: sv.shape[0]].T @ (inv_sv[:, None] * (us.T @ qt(f)))
        return zs, vt[: sv.shape[0]].T * inv_sv  # solution, half of the pseudo-inverse (p, min(m, p))

    def unrefined_residual(z):  # working precision, like the unrefined solution itself
        fitted_b = B @ z if Bl is None else B @ z + Bl @ z
        return ext.from_float(f - fitted_b)

    zero_int = jnp.asarray(0, jnp.int32)
    steps, converged = zero_int, jnp.asarray(False)
    var_refined = None
    if cfg.method in ("auto", "qr") and tall:
        ref = refine_augmented(ops, B, Bl, factor, ext.from_float(f), ext.from_float(jnp.zeros((p, k), dtype)))
        z, r = ref.z, ref.r
        steps, converged = ref.steps, ref.converged
        R = after(R, ref.z.hi)
        half = solve_triangular(R, jnp.eye(p, dtype=dtype))
        R = after(R, half)
        factor = QRFactor(factor.q, R)
        if cfg.refined_se:  # refined variances where cond·eps could cost digits: ||B (BᵀB)⁻¹ g_j||², f = 0
            # (an R from the Gram matrix carries cond² eps: compare that)
            se_needed = full & ((cond * cond if factor.q is None else cond) > REFINED_SE_COND)
            ref_se = refine_augmented(
                ops, B, Bl, factor, ext.from_float(jnp.zeros((rows_total, p), dtype)), G, skip=~se_needed
            )
            # its squared column norms are summed below, with the other sums of squares
            var_refined = DD(jnp.where(obs, ref_se.r.hi, 0), jnp.where(obs, ref_se.r.lo, 0))
            R = after(R, ref_se.z.hi)
        if cfg.method == "auto":  # rank deficient: the minimum-norm SVD solution
            zs, half_s = svd_parts()
            rs = unrefined_residual(zs)
            z = _where_tree(full, z, ext.from_float(zs))
            r = _where_tree(full, r, rs)
            half = jnp.where(full, half, half_s)
            steps = jnp.where(full, steps, zero_int)
            converged = converged & full
    elif cfg.method in ("cholesky", "normal"):
        gm = ops.gram(B)
        rhs = ops.rmatmul(B, f)
        low = jnp.linalg.cholesky(after(gm, R))
        if cfg.method == "cholesky":
            zw = jax.scipy.linalg.cho_solve((low, True), rhs)
        else:
            zw = jnp.linalg.solve(after(gm, low), rhs)
        half = jax.scipy.linalg.solve_triangular(after(low, zw), jnp.eye(p, dtype=dtype), lower=True).T
        z, r = ext.from_float(zw), unrefined_residual(zw)
    else:  # "svd", or any method on a wide design
        zs, half = svd_parts()
        z, r = ext.from_float(zs), unrefined_residual(zs)

    # ---- statistics, in the scaled units of f (no overflow), then scaled back exactly
    res = DD(jnp.where(obs, r.hi, 0), jnp.where(obs, r.lo, 0))
    fo = DD(jnp.where(obs, f, 0), jnp.zeros_like(f))
    mean = ext.div(ops.sum_dd(fo), ext.from_float(jnp.full((k,), float(n), dtype)))
    centred = ext.sub(fo, DD(mean.hi[None], mean.lo[None]))
    centred = DD(jnp.where(obs, centred.hi, 0), jnp.where(obs, centred.lo, 0))
    parts = [res, centred, fo] + ([] if var_refined is None else [var_refined])
    sums = ops.square_sum(
        DD(jnp.concatenate([q.hi for q in parts], axis=1), jnp.concatenate([q.lo for q in parts], axis=1))
    ).hi  # one pass, one program
    rss_s, tss_c, tss_u = sums[:k], sums[k : 2 * k], sums[2 * k : 3 * k]
    if var_refined is not None:
        var_refined = jnp.where(se_needed, sums[3 * k :], jnp.nan)
    intercept = jnp.asarray(design.intercept)
    tss = jnp.where(intercept, tss_c, tss_u)
    r2 = jnp.where(tss > 0, 1 - rss_s / jnp.where(tss > 0, tss, 1), jnp.nan)
    Bobs = jnp.where(obs, B, 0)
    if cfg.has_ridge:
        dof = n - jnp.sum(ops.sum_rows((Bobs @ half) ** 2))
    else:
        dof = (n - rank).astype(dtype)
    sigma_s = jnp.where(dof > 0, jnp.sqrt(rss_s / jnp.where(dof > 0, dof, 1)), jnp.nan)
    if cfg.has_ridge:  # diag(Ginv B_obsᵀB_obs Ginv) = ||B_obs Ginv g_j||²
        var_w = ops.sum_rows((Bobs @ (half @ (half.T @ G.hi))) ** 2)
    else:
        var_w = jnp.sum((half.T @ G.hi) ** 2, axis=0)
    var = var_w if var_refined is None else jnp.where(jnp.isnan(var_refined), var_w, var_refined)
    # a coefficient is not determined by the data when its row of ue has a component in the null space
    null = (~jnp.concatenate([keep_s, jnp.zeros(p - sv.shape[0], bool)]))[:, None]
    unident = jnp.sqrt(jnp.sum((jnp.where(null, vt, 0) @ G.hi) ** 2, axis=0)) > math.sqrt(eps)
    se = (jnp.sqrt(var)[:, None] * sigma_s[None, :]) / gsc[:, None] / sy[None, :]
    se = jnp.where(unident[:, None], jnp.inf, se)
    coef = ext.matmul(DD(G.hi.T, G.lo.T), z).hi / gsc[:, None] / sy  # rows normalised: no subnormal parts
    natural_half = ue.hi @ half
    if cfg.method in ("auto", "svd") or not tall:
        # The SVD solution above has the least norm in the equilibrated (and centred) basis; `pinv(A) y`, the
        # least-norm one in the coefficients themselves, is its projection off the null space of `A`.
        coef, natural_half = cond_where(
            ~full, _off_null_space, lambda c, h, *_: (c, h), coef, natural_half, vt, null[:, 0], rank, ue.hi
        )
    residuals = r.hi[:n] / sy
    fitted = y - residuals
    rss = rss_s / sy / sy

    # ---- status
    if cfg.method in ("cholesky", "normal"):
        digits = -(2 * jnp.log10(cond) + math.log10(eps))
        bad = (digits < ILL_CONDITIONED_DIGITS) | ~jnp.all(jnp.isfinite(z.hi))
    else:
        digits = jnp.asarray(-math.log10(eps), dtype)
        bad = jnp.asarray(False)
    refined = cfg.method in ("auto", "qr") and tall
    status = jnp.where(bad, int(Status.ILL_CONDITIONED), int(Status.CONVERGED))
    if refined:
        status = jnp.where(converged, status, int(Status.NOT_REFINED))
    status = jnp.where(full, status, int(Status.RANK_DEFICIENT))
    status = jnp.where(finite, status, int(Status.NONFINITE_INPUT))

    def nan_if_bad(a):
        return jnp.where(finite, a, jnp.nan)

    return _Out(
        coef=nan_if_bad(coef),
        residuals=nan_if_bad(residuals),
        rss=nan_if_bad(rss),
        sigma=nan_if_bad(sigma_s / sy),
        r2=nan_if_bad(r2),
        se=nan_if_bad(se),
        fitted=nan_if_bad(fitted),
        dof=dof.astype(dtype),
        rank=rank.astype(dtype),
        cond=nan_if_bad(cond).astype(dtype),
        steps=steps.astype(dtype),
        converged=converged.astype(dtype),
        status=status.astype(dtype),
        intercept=intercept.astype(dtype),
        digits=jnp.asarray(digits, dtype),
        half=natural_half,
    )


_solve = jax.custom_jvp(_solve_impl, nondiff_argnums=(0,))


def _statistics(cfg: _Config, out: _Out, A, y, ridge, beta, ginv):
    """The statistics as plain functions of `(A, y, λ, β, Ginv)`: differentiated for the tangents only."""
    n = y.shape[0]
    r = y - A @ beta
    rss = jnp.sum(r * r, axis=0)
    centred = y - jnp.mean(y, axis=0)
    tss = jnp.where(out.intercept > 0, jnp.sum(centred * centred, axis=0), jnp.sum(y * y, axis=0))
    r2 = 1 - rss / tss
    if cfg.has_ridge:
        gobs = A.T @ A
        dof = n - jnp.trace(ginv @ gobs)
        var = jnp.diag(ginv @ gobs @ ginv)
    else:
        dof = out.dof
        var = jnp.diag(ginv)
    sigma = jnp.sqrt(rss / dof)
    se = jnp.sqrt(var)[:, None] * sigma[None, :]
    return r, rss, sigma, r2, se, y - r, dof


@_solve.defjvp
def _solve_jvp(cfg: _Config, primals, tangents):
    data, y, ridge = primals
    ddata, dy, dridge = tangents
    out = _solve(cfg, data, y, ridge)
    A, dA = jax.jvp(functools.partial(_natural, cfg), (data,), (ddata,))
    beta, r = out.coef, out.residuals
    pen = jnp.asarray(_penalised(cfg, A.shape[1]), A.dtype)
    rhs = dA.T @ r - A.T @ (dA @ beta) + A.T @ dy
    dgram = dA.T @ A + A.T @ dA
    if cfg.has_ridge:
        rhs = rhs - dridge * (pen[:, None] * beta)
        dgram = dgram + dridge * jnp.diag(pen)
    half = out.half
    ginv = half @ half.T
    dbeta = half @ (half.T @ rhs)
    dginv = -(ginv @ dgram @ ginv)
    _, tan = jax.jvp(
        lambda A_, y_, b_, g_: _statistics(cfg, out, A_, y_, ridge, b_, g_), (A, y, beta, ginv), (dA, dy, dbeta, dginv)
    )
    dres, drss, dsigma, dr2, dse, dfitted, ddof = tan
    zeros = jax.tree_util.tree_map(jnp.zeros_like, out)
    tangent_out = zeros._replace(
        coef=dbeta,
        residuals=dres,
        rss=drss,
        sigma=dsigma,
        r2=dr2,
        se=dse,
        fitted=dfitted,
        dof=jnp.asarray(ddof, out.dof.dtype) if cfg.has_ridge else zeros.dof,
    )
    return out, tangent_out


_CHECK_MESSAGES = (
    "least squares: NaN or Inf in the data (or a negative/non-finite ridge)",
    "least squares: the design is numerically rank deficient (see result.rank); pass ridge > 0 or remove "
    "collinear columns",
    "least squares: iterative refinement stopped before working precision (ill-conditioned design)",
    "least squares: method 'normal'/'cholesky' cannot give a meaningful answer at this condition number; use "
    "method='qr'",
)


def _solved(cfg: _Config, data, y, ridge) -> _Out:
    """The fit, whole on every device (and process) when the rows are split over a mesh."""
    out = _solve(cfg, data, y, ridge)
    if cfg.ops.replicate is not None:
        out = jax.tree_util.tree_map(cfg.ops.replicate, out)
    return out


def _program_impl(data, y, ridge, *, cfg: _Config, squeeze: bool, check: bool, names: tuple, out_dtype: Any):
    """The compiled fit: one program per (shapes, static options), cached by `jax.jit`."""
    out = _solved(cfg, data, y, ridge)
    status = out.status.astype(jnp.int32)

    def o(a):
        a = a.astype(out_dtype)
        return a[..., 0] if squeeze else a

    coef = o(out.coef)
    if check:
        index = jnp.select(
            [
                status == int(s)
                for s in (Status.NONFINITE_INPUT, Status.RANK_DEFICIENT, Status.NOT_REFINED, Status.ILL_CONDITIONED)
            ],
            [0, 1, 2, 3],
            default=0,
        )
        coef = eqx.branched_error_if(coef, status != int(Status.CONVERGED), index, _CHECK_MESSAGES)
    return LeastSquaresResult(
        coefficients=coef,
        residuals=o(out.residuals),
        rss=o(out.rss),
        residual_sd=o(out.sigma),
        r_squared=o(out.r2),
        standard_errors=o(out.se),
        rank=out.rank.astype(jnp.int32),
        condition_number=out.cond.astype(out_dtype),
        method=cfg.method,
        dtype=np.dtype(out_dtype),
        refinement_steps=out.steps.astype(jnp.int32),
        n_observations=y.shape[0],
        dof=out.dof.astype(out_dtype),
        intercept=out.intercept > 0,
        ridge=jnp.asarray(ridge, out_dtype),
        refinement_converged=out.converged > 0,
        names=names,
        fitted=o(out.fitted),
        status=status,
        expected_digits=out.digits.astype(out_dtype),
    )


_program = library_jit(_program_impl, static_argnames=("cfg", "squeeze", "check", "names", "out_dtype"))

# The scalar outputs of `_packed`, in order, after the arrays coef, residuals, rss, sigma, r2, se, fitted.
_PACKED_SCALARS = ("dof", "rank", "cond", "steps", "converged", "status", "intercept", "digits")


def _packed(data, y, ridge, *, cfg: _Config):
    """The fit as one float64 vector (the eager calls copy one buffer to the host, not twenty). `y (n,)`
    or `(n, k)`; an affine `data (n,)` is one predictor."""
    if cfg.kind == "affine" and data.ndim == 1:
        data = data[:, None]
    if y.ndim == 1:
        y = y[:, None]
    out = _solved(cfg, data, y, ridge)
    arrays = (out.coef, out.residuals, out.rss, out.sigma, out.r2, out.se, out.fitted)
    scalars = tuple(getattr(out, name) for name in _PACKED_SCALARS)
    return jnp.concatenate([jnp.ravel(a) for a in arrays] + [jnp.stack(scalars)])


_packed_program = library_jit(_packed, static_argnames=("cfg",))


def _eager_program(data, y, ridge, cfg: _Config, mesh: Any):
    """Run the fit eagerly; the packed float64 vector on the host."""
    devices = None if mesh is None else mesh.devices.flat
    return np.asarray(_packed_program(data, y, ridge, cfg=cfg, devices_=devices))


def _unpack(v: np.ndarray, n: int, p: int, k: int) -> dict:
    """The fields of `_packed`'s vector: `(p, k)`, `(n, k)`, `(k,)` arrays and float scalars."""
    shapes = {"coef": (p, k), "residuals": (n, k), "rss": (k,), "sigma": (k,), "r2": (k,), "se": (p, k)}
    shapes["fitted"] = (n, k)
    out, at = {}, 0
    for name, shape in shapes.items():
        size = math.prod(shape)
        out[name] = v[at : at + size].reshape(shape)
        at += size
    for j, name in enumerate(_PACKED_SCALARS):
        out[name] = float(v[at + j])
    return out


# ------------------------------------------------------------------------------------- the front end


def _traced(*xs) -> bool:
    return any(isinstance(x, jax.core.Tracer) for x in xs)


def _as_array(a: Any, where: str, what: str):
    """A jax array (or tracer) as is; anything else as a numpy array; dtype checked."""
    if not isinstance(a, jax.Array):
        try:
            a = np.asarray(a)
        except Exception as e:  # ragged lists and the like
            raise TypeError(f"{where}: {what} must be a numeric array; got {type(a).__name__} ({e})") from None
    dtype = np.dtype(a.dtype)
    if np.issubdtype(dtype, np.complexfloating):
        raise TypeError(f"{where}: {what} is complex ({dtype}); only real least squares is supported")
    if np.dtype(dtype).kind == "O" or not (np.issubdtype(dtype, np.number) or np.dtype(dtype).kind == "b"):
        raise TypeError(f"{where}: {what} must be a numeric array; got dtype {dtype}")
    return a


def _check_shapes(X, y, where: str, xname: str, x_ndim: tuple[int, ...]) -> None:
    if X.ndim not in x_ndim:
        if x_ndim == (2,):
            hint = f" — reshape a single column with {xname}[:, None]" if X.ndim == 1 else ""
            raise ValueError(f"{where}: {xname} must have shape (n, p); got {X.shape}{hint}")
        raise ValueError(
            f"{where}: {xname} must be 1-D (n,); got shape {X.shape}"
            + ("; for several predictors use linear_regression(X, y)" if X.ndim == 2 else "")
        )
    if y.ndim not in (1, 2):
        raise ValueError(f"{where}: y must have shape (n,) or (n, k); got {y.shape}")
    if y.shape[0] != X.shape[0]:
        raise ValueError(
            f"{where}: {xname} has {X.shape[0]} rows (observations) but y has {y.shape[0]}; they must match"
        )
    if X.shape[0] == 0:
        raise ValueError(f"{where}: no observations ({xname} has 0 rows)")
    if y.ndim == 2 and y.shape[1] == 0:
        raise ValueError(f"{where}: y has no columns (shape {y.shape})")


def _check_ridge(ridge: Any, where: str):
    """A concrete ridge is validated (finite, >= 0) and returned as a float; a traced one as is."""
    if isinstance(ridge, jax.core.Tracer):
        if jnp.ndim(ridge) != 0:
            raise ValueError(f"{where}: ridge must be a scalar; got shape {jnp.shape(ridge)}")
        return ridge, True
    value = check_real(ridge, where, "ridge", minimum=0.0)
    return value, value != 0.0


def _nonfinite_rows_error(a: np.ndarray, where: str, what: str) -> ValueError | None:
    bad = ~np.isfinite(a)
    if not bad.any():
        return None
    rows = np.unique(np.nonzero(bad)[0])
    return ValueError(
        f"{where}: {what} contains {int(bad.sum())} NaN/Inf value(s) in row(s) {rows[:10].tolist()}"
        f"{' ...' if rows.size > 10 else ''}; remove or impute those rows first"
    )


def _rank_deficiency_message(where: str, rank: int, p: int, cond: float, action: str) -> str:
    return (
        f"{where}: the design is numerically rank deficient (rank {rank} of {p} columns, condition "
        f"number {cond:.3g}): some coefficients are not determined by the data; {action} — remove or "
        f"combine collinear columns, lower the degree, or pass ridge > 0"
    )


def _ops_for(mesh: Any, where: str) -> LinearOps:
    if mesh is None:
        return SINGLE
    from ..distributed.least_squares import sharded_ops

    return sharded_ops(mesh, where)


def _fit(
    kind: str,
    data: Any,
    y: Any,
    *,
    degree: int = 0,
    intercept: bool,
    method: str,
    ridge: Any,
    mesh: Any,
    check: bool,
    where: str,
    xname: str,
    x_ndim: tuple[int, ...],
) -> LeastSquaresResult:
    check_choice(method, where, "method", METHODS)
    check_bool(check, where, "check")
    data = _as_array(data, where, xname)
    y = _as_array(y, where, "y")
    _check_shapes(data, y, where, xname, x_ndim)
    ridge, has_ridge = _check_ridge(ridge, where)
    traced = _traced(data, y, ridge)
    if traced and kind == "affine" and data.ndim == 1:
        data = data[:, None]  # eagerly the program does it: a jax array's reshape would be one more dispatch
    floats = [np.dtype(a.dtype) for a in (data, y) if np.issubdtype(a.dtype, np.floating)]
    low = [d.name for d in floats if np.finfo(d).bits < 64]
    n = int(y.shape[0])
    p = (
        (degree + (1 if intercept else 0))
        if kind == "polynomial"
        else ((int(data.shape[1]) if data.ndim == 2 else 1) + (1 if kind == "affine" and intercept else 0))
    )
    if p == 0:
        raise ValueError(f"{where}: the design has no columns")
    k = 1 if y.ndim == 1 else int(y.shape[1])
    m = n + (p if has_ridge else 0)
    if method == "qr" and m < p:
        raise ValueError(
            f"{where}: method='qr' needs a full-rank design with at least as many rows as columns "
            f"({m} x {p}); use method='svd' (minimum-norm) or 'auto'"
        )
    ops = _ops_for(mesh, where)
    large = m * p * max(p, k) >= LARGE_PRODUCTS
    cfg = _Config(
        kind=kind,
        degree=degree,
        intercept=bool(intercept),
        method=method,
        has_ridge=has_ridge,
        factor="gram" if large else "householder",
        refined_se=n * p * p <= REFINED_SE_LIMIT,
        ops=ops,
    )
    if kind == "general":
        names = tuple(f"B{j}" for j in range(p))
    else:
        top = degree if kind == "polynomial" else p - (1 if kind == "affine" and intercept else 0)
        names = tuple(f"B{j}" for j in range(0 if intercept else 1, top + 1))
    if traced:
        y2 = y[:, None] if y.ndim == 1 else y
        cdtype = jnp.result_type(float)
        out_dtype = jnp.result_type(*floats) if floats else cdtype
        return _program(
            jnp.asarray(data, cdtype),
            jnp.asarray(y2, cdtype),
            jnp.asarray(ridge, cdtype),
            cfg=cfg,
            squeeze=y.ndim == 1,
            check=check,
            names=names,
            out_dtype=np.dtype(out_dtype),
            devices_=None if mesh is None else mesh.devices.flat,
        )

    # ---- eagerly: float64 whatever the configuration, then warnings and errors on the host
    if low:
        warnings.warn(
            f"{where}: inputs have dtype {low[0]}, which carries only ~7 significant digits, so the "
            f"coefficients cannot be more accurate than that (the solver itself computes in float64); "
            f"enable float64 with jax.config.update('jax_enable_x64', True) and pass float64 arrays",
            PrecisionWarning,
            stacklevel=3,
        )
    out_dtype = np.result_type(*floats) if floats else np.dtype(np.float64)
    with float64_scope():
        args = (_host64(data), _host64(y), np.float64(ridge))
        res = _unpack(_eager_program(*args, cfg, mesh), n, p, k)
        status = Status(int(res["status"]))
    if status is Status.NONFINITE_INPUT:
        for a, what in ((data, xname), (y, "y")):
            err = _nonfinite_rows_error(np.asarray(a, np.float64), where, what)
            if err is not None:
                raise err
        raise ValueError(f"{where}: ridge must be a finite number >= 0; got {ridge}")
    rank, cond = int(res["rank"]), float(res["cond"])
    resolved = method if method != "auto" else ("qr" if rank == p else "svd")
    if rank < p:
        if resolved == "qr":
            warnings.warn(
                _rank_deficiency_message(where, rank, p, cond, "the QR solution is unreliable"),
                RankDeficiencyWarning,
                stacklevel=3,
            )
            raise ValueError(
                f"{where}: method='qr' needs a full-rank design with at least as many rows as "
                f"columns ({m} x {p}, rank {rank}); use method='svd' (minimum-norm) or 'auto'"
            )
        action = {
            "svd": "returning the minimum-norm (truncated SVD) solution",
            "cholesky": "the normal equations are singular",
            "normal": "the normal equations are singular",
        }
        warnings.warn(
            _rank_deficiency_message(where, rank, p, cond, action[resolved]), RankDeficiencyWarning, stacklevel=3
        )
    if resolved in ("cholesky", "normal"):
        hint = (
            f"the normal equations square the condition number ({cond:.3g}² ≈ {cond * cond:.3g}); "
            f"use method='qr' (the default 'auto')"
        )
        if not np.all(np.isfinite(res["coef"])):
            raise ValueError(
                f"{where}: method={method!r} failed (the Gram matrix is numerically singular or not "
                f"positive definite): {hint}"
            )
        if rank == p and res["digits"] < ILL_CONDITIONED_DIGITS:
            warnings.warn(
                f"{where}: method={method!r} can give only about {max(res['digits'], 0):.1f} "
                f"correct significant digits here: {hint}",
                PrecisionWarning,
                stacklevel=3,
            )
    if status is Status.NOT_REFINED:
        warnings.warn(
            f"{where}: iterative refinement stopped before reaching working precision "
            f"(condition number {cond:.3g}); the coefficients may have fewer correct digits",
            PrecisionWarning,
            stacklevel=3,
        )
    if not res["dof"] > 0:
        warnings.warn(
            f"{where}: {n} observations for {rank} free coefficients leave no degrees of freedom: "
            f"the residual SD and standard errors are undefined (NaN)",
            RankDeficiencyWarning,
            stacklevel=3,
        )
    if check and status is not Status.CONVERGED:  # eagerly, check=True raises a plain ValueError
        raise ValueError(
            f"{where}: {status.message} (status {status.name}, rank {rank} of {p}, condition number "
            f"{cond:.3g}; check=True)"
        )
    squeeze = y.ndim == 1

    def arr(name):
        a = res[name].astype(out_dtype, copy=False)
        return a[..., 0] if squeeze else a

    return _eager_result(
        coefficients=arr("coef"),
        residuals=arr("residuals"),
        rss=arr("rss")[()],
        residual_sd=arr("sigma")[()],
        r_squared=arr("r2")[()],
        standard_errors=arr("se"),
        rank=rank,
        condition_number=cond,
        method=resolved,
        dtype=np.dtype(out_dtype),
        refinement_steps=int(res["steps"]),
        n_observations=n,
        dof=float(res["dof"]),
        intercept=bool(res["intercept"]),
        ridge=float(ridge),
        refinement_converged=bool(res["converged"]),
        names=names,
        fitted=arr("fitted"),
        status=status,
        expected_digits=float(res["digits"]),
    )


_STATIC_FIELDS = ("method", "dtype", "n_observations", "names")


@functools.lru_cache(maxsize=512)
def _eager_layout(method: str, dtype: np.dtype, n: int, names: tuple) -> tuple:
    """The pytree structure of an eager result with these static fields, and its fields in leaf order."""
    dynamic = [f for f in LeastSquaresResult.__dataclass_fields__ if f not in _STATIC_FIELDS]
    template = LeastSquaresResult(
        **{name: j for j, name in enumerate(dynamic)}, method=method, dtype=dtype, n_observations=n, names=names
    )
    leaves, treedef = jax.tree_util.tree_flatten(template)
    return treedef, tuple(dynamic[j] for j in leaves)


def _eager_result(**fields) -> LeastSquaresResult:
    """`LeastSquaresResult(**fields)` by unflattening a cached pytree structure: the same object, built
    without running the dataclass `__init__` and its checks on every eager call (they cost more than the fit)."""
    treedef, order = _eager_layout(*(fields[name] for name in _STATIC_FIELDS))
    return jax.tree_util.tree_unflatten(treedef, [fields[name] for name in order])


def _host64(a):
    if isinstance(a, jax.Array):
        return a if a.dtype == jnp.float64 else a.astype(jnp.float64)
    return np.asarray(a, dtype=np.float64)  # no copy when it is float64 already


def least_squares(
    Phi: ArrayLike, y: ArrayLike, *, method: str = "auto", ridge: Any = 0.0, mesh: Any = None, check: bool = False
) -> LeastSquaresResult:
    """Solve `min ||y - Phi @ beta||² + ridge * ||beta||²` accurately.

    **Arguments:**

    - `Phi`: design matrix `(n, p)`, one row per observation (a constant column is detected as an
      intercept for R²).
    - `y`: targets `(n,)`, or `(n, k)` for `k` right-hand sides at once.
    - `method`: "auto" (default: "qr", or "svd" with a `RankDeficiencyWarning` when the design is
      numerically rank deficient), "qr" (power-of-two column equilibration, Householder QR, then
      Björck refinement in double-double), "svd" (the minimum-norm solution `pinv(Phi) @ y`, from the SVD of
      the equilibrated design: singular values below `eps · max(n, p)` times the largest are dropped), "cholesky"
      (normal equations `PhiᵀPhi beta = Phiᵀy` by Cholesky: the lectures' derivation; squares the
      condition number) or "normal" (the same equations by a general solve).
    - `ridge`: penalty weight `>= 0` on every coefficient (may be traced: `jax.grad` with respect to it works).
    - `mesh`: a `jax.sharding.Mesh` whose first axis splits the rows over devices: the same program with
      tall-skinny QR and the double-double kernels on the devices (see `mmljax.distributed.sharded_ops`).
    - `check`: with True, a status other than `CONVERGED` raises at run time (`equinox.error_if`),
      also inside `jax.jit`/`jax.vmap`.

    **Returns:** a `LeastSquaresResult` (coefficients `(p,)` or `(p, k)`, residuals, rss,
    residual_sd, r_squared, standard_errors, rank, condition_number, method, status, ...): numpy
    arrays in the input dtype eagerly, jax arrays inside a transformation.

    **Raises:** `ValueError`/`TypeError` for wrong shapes, options or dtypes (also at trace time);
    eagerly, `ValueError` for NaN/Inf data (naming the rows) or a failed "qr"/"cholesky"/"normal" solve.
    """
    return _fit(
        "general",
        Phi,
        y,
        intercept=False,
        method=method,
        ridge=ridge,
        mesh=mesh,
        check=check,
        where="least_squares",
        xname="Phi",
        x_ndim=(2,),
    )


def linear_regression(
    X: ArrayLike,
    y: ArrayLike,
    *,
    intercept: bool = True,
    method: str = "auto",
    ridge: Any = 0.0,
    mesh: Any = None,
    check: bool = False,
) -> LeastSquaresResult:
    """Fit `y ≈ B0 + B1 x1 + ... + Bd xd` (or without `B0`).

    **Arguments:** `X (n, d)` predictors (a 1-D `(n,)` is one predictor); `y (n,)` or `(n, k)`;
    `intercept` (static) adds `B0`; `method`, `ridge`, `mesh`, `check` as in `least_squares` (ridge does
    not penalise `B0`).

    **Returns:** a `LeastSquaresResult` with coefficients in the natural order `B0, B1, ..., Bd`
    (`B1..Bd` without intercept). Each predictor is centred and scaled internally (exactly undone),
    which is what makes Longley accurate to 12+ digits. `jax.vmap` over `(B, n, d)` designs fits
    every batch element with its own basis, rank and status.
    """
    check_bool(intercept, "linear_regression", "intercept")
    return _fit(
        "affine",
        X,
        y,
        intercept=bool(intercept),
        method=method,
        ridge=ridge,
        mesh=mesh,
        check=check,
        where="linear_regression",
        xname="X",
        x_ndim=(1, 2),
    )


def polyfit(
    x: ArrayLike,
    y: ArrayLike,
    degree: int,
    *,
    intercept: bool = True,
    method: str = "auto",
    ridge: Any = 0.0,
    mesh: Any = None,
    check: bool = False,
) -> LeastSquaresResult:
    """Fit the polynomial `y ≈ B0 + B1 x + ... + Bk x^k` (or without `B0`).

    **Arguments:** `x (n,)`; `y (n,)` or `(n, k)`; `degree` k >= 0 (>= 1 without intercept) and
    `intercept`, both static; `method`, `ridge`, `mesh`, `check` as in `least_squares` (ridge does not
    penalise `B0`).

    **Returns:** a `LeastSquaresResult` with monomial coefficients `B0..Bk` in increasing order
    (note: the reverse of `numpy.polyfit`). The fit is done on `t = (x - c) / s` in [-1, 1] and
    mapped back exactly. Derivatives with respect to `x` are those of the monomial design. When the
    design is rank deficient (e.g. fewer distinct `x` than coefficients), the coefficients are the least-norm
    monomial ones, `pinv(V) @ y` for the monomial design `V` (`numpy.polyfit` minimises the norm in its
    column-scaled design instead, so the two differ there).
    """
    where = "polyfit"
    if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)):
        raise TypeError(f"{where}: degree must be an int; got {type(degree).__name__}")
    check_bool(intercept, where, "intercept")
    degree = check_int(degree, where, "degree")
    if degree < (0 if intercept else 1):
        raise ValueError(
            f"{where}: degree must be >= {0 if intercept else 1}"
            f"{'' if intercept else ' without an intercept'}; got {degree}"
        )
    return _fit(
        "polynomial",
        x,
        y,
        degree=degree,
        intercept=bool(intercept),
        method=method,
        ridge=ridge,
        mesh=mesh,
        check=check,
        where=where,
        xname="x",
        x_ndim=(1,),
    )
