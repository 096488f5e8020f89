"""Linear least squares accurate to the last digits the data support.

`least_squares(Phi, y)` minimises `||y - Phi beta||² + ridge ||beta||²`. The default ("auto",
i.e. "qr" for a full-rank design) equilibrates the columns by exact powers of two, factorises
and then refines the augmented system `[[I, A], [Aᵀ, 0]] [r; x] = [y; 0]` (Björck) with
residuals, solution and residual vector all carried in portable double-double arithmetic.
`polyfit` and `linear_regression` first move to a well-conditioned basis (inputs mapped into
[-1, 1], predictors centred) and map the coefficients back exactly, so even Filip's degree-10
polynomial (condition number ~1e15 in the monomial basis) comes out to 12+ digits.

Speed: the refinement stops as soon as the next correction would fall below double-double
resolution (two steps for a well-conditioned design). A small design is factorised by Householder
QR in numpy; a large one (see `_qr.LARGE_PRODUCTS`) is held as blocks of rows in XLA, factorised
through its Gram matrix when its condition number allows (the refinement makes up for the squared
condition number) and its double-double products run in compiled kernels: 1e6 x 100 takes about
3 s on a 2-core CPU, against 10 s for scikit-learn's `LinearRegression` (one compilation per
column count on the first call, about 1-2 s).

These solvers run on the host in float64 whatever the JAX configuration; they are not traceable
by `jax.jit`. Results are numpy arrays in the dtype of the inputs.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from typing import Any

import numpy as np
import scipy.linalg
from jaxtyping import ArrayLike

from . import _basis
from ..linalg import doubledouble as ext
from ..linalg.doubledouble import DD
from ._qr import HOST, LinearOps, solve_triangular
from ._refine import refine_augmented, refined_inverse_diagonal
from ..errors import PrecisionWarning, RankDeficiencyWarning
from ._result import LeastSquaresResult

METHODS = ("auto", "qr", "svd", "cholesky", "normal")

# Above this n * p * p the standard errors come from the working-precision R⁻¹ instead of p
# extra refined solves (each as costly as the fit itself).
_REFINED_SE_LIMIT = 5e7


def _as_host_array(a: Any, where: str, what: str) -> np.ndarray:
    try:
        arr = np.asarray(a)
    except Exception as e:  # jax tracers refuse conversion
        if "Tracer" in type(e).__name__ or "Tracer" in str(e):
            raise TypeError(
                f"{where}: {what} is a traced JAX value; the closed-form solvers run on the host in "
                f"extended precision and cannot be used inside jax.jit/vmap/grad — call {where} outside "
                f"the transformation (or use the iterative solvers)"
            ) from None
        raise
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{where}: {what} must be a numeric array; got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{where}: {what} is complex ({arr.dtype}); only real least squares is supported")
    return arr


def _check_finite(arr: np.ndarray, where: str, what: str) -> None:
    if np.isfinite(np.sum(arr)):  # one pass, no temporary: a NaN or Inf anywhere makes the sum one
        return
    bad = ~np.isfinite(arr)
    if bad.any():
        rows = np.unique(np.nonzero(bad)[0])
        raise ValueError(
            f"{where}: {what} contains {int(bad.sum())} NaN/Inf value(s) in row(s) {rows[:10].tolist()}"
            f"{' ...' if rows.size > 10 else ''}; remove or impute those rows first"
        )


def _prepare(X: Any, y: Any, where: str, xname: str, x_ndim: tuple[int, ...]):
    """Host float64 copies of the inputs, the output dtype, and whether y was 1-D."""
    X = _as_host_array(X, where, xname)
    y = _as_host_array(y, where, "y")
    if X.ndim not in x_ndim:
        if x_ndim == (2,):
            hint = f" — reshape a single column with {xname}[:, None]" if X.ndim == 1 else ""
            raise ValueError(f"{where}: {xname} must have shape (n, p); got {X.shape}{hint}")
        raise ValueError(f"{where}: {xname} must be 1-D (n,); got shape {X.shape}"
                         + ("; for several predictors use linear_regression(X, y)" if X.ndim == 2 else ""))
    if y.ndim not in (1, 2):
        raise ValueError(f"{where}: y must have shape (n,) or (n, k); got {y.shape}")
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"{where}: {xname} has {X.shape[0]} rows (observations) but y has {y.shape[0]}; "
                         f"they must match")
    if X.shape[0] == 0:
        raise ValueError(f"{where}: no observations ({xname} has 0 rows)")
    low = [np.dtype(a.dtype).name for a in (X, y)
           if np.issubdtype(a.dtype, np.floating) and np.finfo(a.dtype).bits < 64]
    if low:
        warnings.warn(
            f"{where}: inputs have dtype {low[0]}, which carries only ~7 significant digits, so the "
            f"coefficients cannot be more accurate than that (the solver itself computes in float64); "
            f"enable float64 with jax.config.update('jax_enable_x64', True) and pass float64 arrays",
            PrecisionWarning, stacklevel=3)
    floats = [a.dtype for a in (X, y) if np.issubdtype(a.dtype, np.floating)]
    out_dtype = np.result_type(*floats) if floats else np.dtype(np.float64)
    X = np.asarray(X, dtype=np.float64)  # no copy when it is float64 already (nothing writes to it)
    y = np.asarray(y, dtype=np.float64)
    _check_finite(X, where, xname)
    _check_finite(y, where, "y")
    squeeze = y.ndim == 1
    return X, (y[:, None] if squeeze else y), out_dtype, squeeze


def _rank_deficiency_message(where: str, rank: int, p: int, cond: float, action: str) -> str:
    return (f"{where}: the design is numerically rank deficient (rank {rank} of {p} columns, condition "
            f"number {cond:.3g}): some coefficients are not determined by the data; {action} — remove or "
            f"combine collinear columns, lower the degree, or pass ridge > 0")


def _check_method_and_ridge(method: str, ridge: Any, where: str) -> float:
    if method not in METHODS:
        raise ValueError(f"{where}: method must be one of {', '.join(map(repr, METHODS))}; got {method!r}")
    try:
        ridge = float(ridge)
    except (TypeError, ValueError):
        raise TypeError(f"{where}: ridge must be a non-negative number; got {ridge!r}") from None
    if not math.isfinite(ridge) or ridge < 0:
        raise ValueError(f"{where}: ridge must be a finite number >= 0; got {ridge}")
    return ridge


def _with_penalty_rows(design: _basis.Design, y: np.ndarray, ridge: float) -> tuple[_basis.Design, np.ndarray]:
    """Ridge as least squares: rows `sqrt(ridge) (u z)_j` for each penalised natural coefficient."""
    if ridge == 0:
        return design, y
    pen = np.flatnonzero(design.penalised)
    rows = ext.mul_float(DD(design.u.hi[pen], design.u.lo[pen]), np.float64(math.sqrt(ridge)))
    lo = design.b.lo
    if lo is not None or rows.lo.any():
        lo = np.vstack([lo if lo is not None else np.zeros_like(design.b.hi), rows.lo])
    design = design._replace(b=DD(np.vstack([design.b.hi, rows.hi]), lo))
    return design, np.vstack([y, np.zeros((pen.size, y.shape[1]))])


def _fit(design: _basis.Design, y: np.ndarray, *, method: str, ridge: float, where: str,
         out_dtype: np.dtype, squeeze: bool, stacklevel: int = 3, ops: LinearOps = HOST) -> LeastSquaresResult:
    """The pipeline behind the public functions, on one device or many: ridge rows, equilibration,
    factorisation, solve, refinement, statistics. `ops` says where the rows live and how the
    design is factorised and multiplied (`HOST`, or the sharded backend of
    `mmljax.distributed`); a design with fewer rows than columns always runs on the host."""
    ridge = _check_method_and_ridge(method, ridge, where)
    n, p = design.b.hi.shape
    k = y.shape[1]
    if p == 0:
        raise ValueError(f"{where}: the design has no columns")
    design, y_aug = _with_penalty_rows(design, y, ridge)
    scale = _basis.column_scales(design.b.hi)  # equilibration: B = b · diag(scale), applied by the backend
    u = DD(design.u.hi * scale, design.u.lo * scale)
    m = design.b.hi.shape[0]
    if m < p:
        ops = HOST  # no thin QR of a wide matrix to distribute
    eps = float(np.finfo(np.float64).eps)

    b, f = ops.place(design.b, scale, y_aug)
    factor = ops.factorise(b)
    r_fac = factor.r
    sv = np.linalg.svd(r_fac, compute_uv=False)
    sv_max = float(sv[0]) if sv.size else 0.0
    tol = sv_max * eps * max(m, p)
    rank = int(np.sum(sv > tol))
    cond = math.inf if m < p or sv[-1] == 0 else float(sv_max / sv[-1])

    resolved = method
    if method == "auto":
        resolved = "qr" if rank == p else "svd"
    if rank < p:
        action = {"svd": "returning the minimum-norm (truncated SVD) solution",
                  "qr": "the QR solution is unreliable", "cholesky": "the normal equations are singular",
                  "normal": "the normal equations are singular"}[resolved]
        warnings.warn(_rank_deficiency_message(where, rank, p, cond, action), RankDeficiencyWarning,
                      stacklevel=stacklevel)

    f_dd = ext.from_float(f)
    g0 = ext.from_float(np.zeros((p, k)))
    steps, converged = 0, False
    gram = gram_obs = None
    if resolved in ("cholesky", "normal") or ridge > 0:
        gram, gram_obs, rhs = ops.gram(b, f, n)
    if resolved == "qr":
        if m < p or np.any(np.diag(r_fac) == 0):
            raise ValueError(f"{where}: method='qr' needs a full-rank design with at least as many rows as "
                             f"columns ({m} x {p}, rank {rank}); use method='svd' (minimum-norm) or 'auto'")
        ref = refine_augmented(b, factor, f_dd, g0, ops=ops)
        if not ref.converged and factor.q is None:  # the Gram-matrix factor was not good enough
            factor = ops.factorise(b, stable=True)
            ref = refine_augmented(b, factor, f_dd, g0, ops=ops)
        z, r = ref.z, ref.r
        steps, converged = ref.steps, ref.converged
        if not converged and rank == p:
            warnings.warn(f"{where}: iterative refinement stopped before reaching working precision "
                          f"(condition number {cond:.3g}); the coefficients may have fewer correct digits",
                          PrecisionWarning, stacklevel=stacklevel)
    else:
        if resolved == "svd":  # B = Q R = (Q U) S Vᵀ: the minimum-norm solution from R's SVD and Qᵀf
            us, s, vt = np.linalg.svd(r_fac, full_matrices=False)
            keep = s > tol
            z_w = vt[keep].T @ ((us[:, keep].T @ ops.qt(b, factor, f)) / s[keep, None])
        else:
            z_w = _solve_gram(resolved, gram, rhs, where, cond)
        z = ext.from_float(z_w)
        r, _ = ops.residual(b, f_dd, g0, None, z)

    coef = ext.matmul(u, z).hi
    res = DD(ops.to_host(r.hi)[:n], ops.to_host(r.lo)[:n])
    rss = ext.square_sum(res, axis=0).hi
    if design.intercept:
        mean = ext.div(ext.sum_(ext.from_float(y), axis=0), ext.from_float(np.full(k, float(n))))
        tss = ext.square_sum(ext.sub(ext.from_float(y), DD(mean.hi[None], mean.lo[None])), axis=0).hi
    else:
        tss = ext.square_sum(ext.from_float(y), axis=0).hi
    with np.errstate(divide="ignore", invalid="ignore"):
        r_squared = 1.0 - rss / tss

    dof = n - float(np.trace(np.linalg.solve(gram, gram_obs))) if ridge > 0 else float(n - rank)
    if dof > 0:
        sigma = np.sqrt(rss / dof)
    else:
        sigma = np.full(k, np.nan)
        warnings.warn(f"{where}: {n} observations for {rank} free coefficients leave no degrees of freedom: "
                      f"the residual SD and standard errors are undefined (NaN)", RankDeficiencyWarning,
                      stacklevel=stacklevel)

    var = None
    if resolved == "qr" and ridge == 0 and n * p * p <= _REFINED_SE_LIMIT:
        # diag((AᵀA)⁻¹) = diag(u (BᵀB)⁻¹ uᵀ) from the Gram matrix in double-double ...
        var = refined_inverse_diagonal(ops.gram_dd(b), r_fac, u)
        if var is None and n * p * p <= _REFINED_SE_LIMIT / 4:
            # ... or, when cond(B)² eps is too large for that, as ||B (BᵀB)⁻¹ uᵀ e_j||² from refined
            # augmented solves with f = 0, g = uᵀ (contracts like cond(B) eps)
            xp = ext.xp_of(f)
            zeros = xp.zeros_like(f, shape=(f.shape[0], p))
            var_ref = refine_augmented(b, factor, ext.from_float(zeros), DD(u.hi.T.copy(), u.lo.T.copy()), ops=ops)
            var = ext.square_sum(DD(ops.to_host(var_ref.r.hi), ops.to_host(var_ref.r.lo)), axis=0).hi
    if var is None:
        cov_z = _cov_z(resolved, r_fac, gram, tol)
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


def _solve_gram(method: str, gram: np.ndarray, rhs: np.ndarray, where: str, cond: float) -> np.ndarray:
    """The normal equations `BᵀB z = Bᵀf` by Cholesky ("cholesky") or a general solve ("normal")."""
    hint = (f"the normal equations square the condition number ({cond:.3g}² ≈ {cond * cond:.3g}); "
            f"use method='qr' (the default 'auto')")
    try:
        if method == "cholesky":
            z = scipy.linalg.cho_solve(scipy.linalg.cho_factor(gram, lower=True, check_finite=False), rhs,
                                       check_finite=False)
        else:
            z = np.linalg.solve(gram, rhs)
    except np.linalg.LinAlgError as e:
        raise ValueError(f"{where}: method={method!r} failed ({e}): {hint}") from None
    if not np.all(np.isfinite(z)):
        raise ValueError(f"{where}: method={method!r} produced non-finite coefficients: {hint}")
    return z


def _cov_z(method: str, r: np.ndarray, gram: np.ndarray | None, tol: float) -> np.ndarray:
    """(BᵀB)⁻¹ (pseudo-inverse when rank deficient) in working precision, from `R` or the Gram matrix."""
    if method == "qr":
        rinv = solve_triangular(r, np.eye(r.shape[0]))
        return rinv @ rinv.T
    if method == "svd":  # BᵀB = RᵀR = V S² Vᵀ
        _, s, vt = np.linalg.svd(r, full_matrices=False)
        keep = s > tol
        return (vt[keep].T / s[keep] ** 2) @ vt[keep]
    return np.linalg.inv(gram)


def _backend(mesh: Any, where: str) -> tuple[LinearOps, Any]:
    """`HOST`, or the backend that keeps the rows split over `mesh` and the float64 scope it computes in."""
    if mesh is None:
        return HOST, contextlib.nullcontext()
    from ..distributed._compat import float64_scope
    from ..distributed.least_squares import sharded_ops

    return sharded_ops(mesh, where), float64_scope()


def least_squares(Phi: ArrayLike, y: ArrayLike, *, method: str = "auto", ridge: float = 0.0,
                  mesh: Any = None) -> LeastSquaresResult:
    """Solve `min ||y - Phi @ beta||² + ridge * ||beta||²` accurately.

    **Arguments:**

    - `Phi`: design matrix `(n, p)`, one row per observation (a constant column is detected as an
      intercept for R²).
    - `y`: targets `(n,)`, or `(n, k)` for `k` right-hand sides at once.
    - `method`: "auto" (default: "qr", or "svd" with a `RankDeficiencyWarning` when the design is
      numerically rank deficient), "qr" (power-of-two column equilibration, Householder QR, then
      Björck refinement in double-double), "svd" (truncated-SVD minimum-norm solution), "cholesky"
      (normal equations `PhiᵀPhi beta = Phiᵀy` by Cholesky: the lectures' derivation; squares the
      condition number) or "normal" (the same equations by a general solve).
    - `ridge`: penalty weight `>= 0` on every coefficient.
    - `mesh`: a `jax.sharding.Mesh` whose first axis splits the rows over devices: the same fit by
      tall-skinny QR and refinement on the devices (see `mmljax.distributed.least_squares_sharded`),
      in float64 whatever `jax_enable_x64` says.

    **Returns:** a `LeastSquaresResult` (coefficients `(p,)` or `(p, k)`, residuals, rss,
    residual_sd, r_squared, standard_errors, rank, condition_number, method, dtype,
    refinement_steps, ...), as numpy arrays in the input dtype. float32 inputs give a
    `PrecisionWarning`.
    """
    where = "least_squares"
    ops, scope = _backend(mesh, where)
    phi, yy, dtype, squeeze = _prepare(Phi, y, where, "Phi", (2,))
    with scope:
        return _fit(_basis.general(phi), yy, method=method, ridge=ridge, where=where, out_dtype=dtype,
                    squeeze=squeeze, ops=ops)


def linear_regression(X: ArrayLike, y: ArrayLike, *, intercept: bool = True, method: str = "auto",
                      ridge: float = 0.0, mesh: Any = None) -> LeastSquaresResult:
    """Fit `y ≈ B0 + B1 x1 + ... + Bd xd` (or without `B0`).

    **Arguments:** `X (n, d)` predictors (a 1-D `(n,)` is one predictor); `y (n,)` or `(n, k)`;
    `intercept` adds `B0`; `method`, `ridge`, `mesh` as in `least_squares` (ridge does not penalise `B0`).

    **Returns:** a `LeastSquaresResult` with coefficients in the natural order `B0, B1, ..., Bd`
    (`B1..Bd` without intercept). Each predictor is centred and scaled internally (exactly undone),
    which is what makes Longley accurate to 12+ digits.
    """
    where = "linear_regression"
    ops, scope = _backend(mesh, where)
    X_, yy, dtype, squeeze = _prepare(X, y, where, "X", (1, 2))
    if X_.ndim == 1:
        X_ = X_[:, None]
    with scope:
        return _fit(_basis.affine(X_, bool(intercept)), yy, method=method, ridge=ridge, where=where,
                    out_dtype=dtype, squeeze=squeeze, ops=ops)


def polyfit(x: ArrayLike, y: ArrayLike, degree: int, *, intercept: bool = True, method: str = "auto",
            ridge: float = 0.0, mesh: Any = None) -> LeastSquaresResult:
    """Fit the polynomial `y ≈ B0 + B1 x + ... + Bk x^k` (or without `B0`).

    **Arguments:** `x (n,)`; `y (n,)` or `(n, k)`; `degree` k >= 0 (>= 1 without intercept);
    `method`, `ridge`, `mesh` as in `least_squares` (ridge does not penalise `B0`).

    **Returns:** a `LeastSquaresResult` with monomial coefficients `B0..Bk` in increasing order
    (note: the reverse of `numpy.polyfit`). The fit is done on `t = (x - c) / s` in [-1, 1] and
    mapped back exactly.
    """
    where = "polyfit"
    ops, scope = _backend(mesh, where)
    if isinstance(degree, bool) or not isinstance(degree, (int, np.integer)):
        raise TypeError(f"{where}: degree must be an int; got {type(degree).__name__}")
    if degree < (0 if intercept else 1):
        raise ValueError(f"{where}: degree must be >= {0 if intercept else 1}"
                         f"{'' if intercept else ' without an intercept'}; got {degree}")
    x_, yy, dtype, squeeze = _prepare(x, y, where, "x", (1,))
    with scope:
        return _fit(_basis.polynomial(x_, int(degree), bool(intercept)), yy, method=method, ridge=ridge,
                    where=where, out_dtype=dtype, squeeze=squeeze, ops=ops)
