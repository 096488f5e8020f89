"""Nonlinear least squares: Levenberg–Marquardt with Moré's scaling, polished to working precision.

`nonlinear_least_squares(residuals, params0, args)` minimises `½‖r(θ)‖²`. It is one JAX program
(`lax.while_loop`), compiled once per residual function, parameter structure, shapes and options
(`max_steps` is a traced bound: changing it does not recompile); data go in through `args`, so new data of
the same shapes reuse the compiled solver. It runs under
`jax.jit` and `jax.vmap` (over starting points and data sets), and the solution is differentiable
with respect to `args` by the implicit function theorem.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .._compile import library_jit
from .._validate import (
    check_bool,
    check_choice,
    check_int,
    check_real,
    is_concrete,
    reject_complex,
    require_callable,
    require_float_tree,
)
from ..errors import DivergenceError
from ..layout import ravel_vec
from ..linalg import doubledouble as dd
from ..linalg.ordering import after
from ..status import Status
from . import _lm
from ._nls_result import NonlinearLeastSquaresResult

__all__ = ["nonlinear_least_squares", "NonlinearLeastSquaresResult"]

_WHERE = "nonlinear_least_squares"
_HANDOVER = 1e-10  # relative tolerance at which the damped phase hands over to Gauss–Newton polishing


def nonlinear_least_squares(
    residuals: Callable[..., Any],
    params0: Any,
    args: Any = None,
    *,
    max_steps: int = 5000,
    tol: float | None = None,
    polish: bool = True,
    jacobian: str = "auto",
    matrix_free: bool = False,
    num_iterations: int | None = None,
    throw: bool = True,
) -> NonlinearLeastSquaresResult:
    """Minimise `½‖residuals(params[, args])‖²` by Levenberg–Marquardt, then polish by Gauss–Newton.

    The damped phase is Moré's trust-region Levenberg–Marquardt (MINPACK `lmder`'s algorithm):
    diagonal scaling by the running maximum of the Jacobian's column norms, the Levenberg parameter
    from the secular equation, steps from a QR factorisation of the scaled, damped Jacobian. When
    it has converged (relative reductions and steps below 1e-10), Gauss–Newton steps solved
    accurately — QR of the equilibrated Jacobian plus refinement of the linear least-squares step
    with residuals in double-double — continue until the step stops shrinking or falls below `tol`
    relative to the parameters: the answer is as accurate as the residuals' rounding allows, not
    stopped at a loose tolerance. `JᵀJ` is never formed in the dense mode.

    **Arguments:**

    - `residuals`: `residuals(params)` (or `residuals(params, args)` when `args` is given) returning
      a 1-D float array of `m >= n` residuals, `n` the number of parameters.
    - `params0`: the starting point, any pytree of float arrays (flattened by `mmljax.ravel_vec`).
    - `args`: data passed to `residuals` (any pytree of arrays), or None.
    - `max_steps`: upper bound on iterations (trial steps, accepted or not, plus polishing steps).
    - `tol`: stop when the step is below `tol` relative to the parameters (scaled 2-norms). Default:
      the dtype's machine epsilon in the dense mode (polishing stops earlier when the step stops
      shrinking), 1e-10 in the matrix-free mode.
    - `polish`: run the Gauss–Newton polishing phase (dense mode only). With False the solver stops
      when the damped phase meets Moré's tests at `tol` (default 1e-10).
    - `jacobian`: "auto" (forward mode when parameters are no more than residuals), "fwd" or "rev".
    - `matrix_free`: never build `J`: steps by conjugate gradients on the damped normal operator
      `JᵀJ + λI` applied by `jvp`/`vjp` (for many parameters). No covariance in this mode.
    - `num_iterations`: conjugate-gradient iterations per step in the matrix-free mode (default
      `min(n, 200)`).
    - `throw`: when the inputs are concrete (not traced), raise `DivergenceError` on divergence and
      `ValueError` for non-finite residuals at the start; under `jax.jit`/`jax.vmap` these are
      reported through `status` instead.

    **Returns:** a `NonlinearLeastSquaresResult` (`params` shaped like `params0`, `residuals (m,)`,
    `rss`, `residual_sd`, `dof`, `standard_errors`, `covariance (n, n)` and `jacobian (m, n)` in
    `ravel_vec` order, `steps`, `status`, `converged`).

    **Raises:** `TypeError`/`ValueError` for a non-callable `residuals`, non-float or complex
    parameters, residuals that are not 1-D float arrays, fewer residuals than parameters, bad
    options, or (concrete inputs) non-finite residuals at `params0`; `DivergenceError` (concrete
    inputs, `throw=True`) when every trial step meets non-finite residuals.
    """
    require_callable(residuals, _WHERE, "residuals")
    reject_complex(params0, _WHERE, "params0")
    require_float_tree(params0, _WHERE, "params0")
    max_steps = check_int(max_steps, _WHERE, "max_steps", minimum=1)
    if tol is not None:
        tol = check_real(tol, _WHERE, "tol", minimum=0.0, maximum=1.0)
    polish = check_bool(polish, _WHERE, "polish")
    check_choice(jacobian, _WHERE, "jacobian", ("auto", "fwd", "rev"))
    matrix_free = check_bool(matrix_free, _WHERE, "matrix_free")
    throw = check_bool(throw, _WHERE, "throw")
    if args is not None:
        reject_complex(args, _WHERE, "args")

    n = _size(params0)
    if num_iterations is None:
        num_iterations = min(max(n, 1), 200)
    num_iterations = check_int(num_iterations, _WHERE, "num_iterations", minimum=1)
    has_args = args is not None
    out = _output_shape(residuals, params0, args, has_args)
    m = int(out.shape[0])
    if m < n:
        raise ValueError(
            f"{_WHERE}: residuals returns {m} value(s) but there are {n} parameters; least squares needs at "
            f"least as many residuals as parameters (m >= n) — fix fewer parameters or add observations"
        )
    mode = jacobian if jacobian != "auto" else ("fwd" if n <= m else "rev")
    opts = _lm.Options(
        tol=tol,
        handover_tol=_HANDOVER if tol is None else max(tol, 0.0),
        polish=polish and not matrix_free,
        jac_mode=mode,
        matrix_free=matrix_free,
        num_iterations=num_iterations,
        has_args=has_args,
    )
    result = _solve(residuals, opts, params0, args, jnp.asarray(max_steps, jnp.int32))
    leaves = jax.tree_util.tree_leaves((params0, args))
    if throw and all(is_concrete(x) for x in leaves) and not isinstance(result.status, jax.core.Tracer):
        _raise_eagerly(result, residuals, params0, args, has_args)
    return result


_SHAPES: dict = {}  # (residuals, structure, leaf shapes/dtypes) -> output shape; bounded below


def _output_shape(residuals, params0, args, has_args):
    """`eval_shape` of the residuals, checked; cached per function, structure and shapes (it costs a trace)."""
    leaves, treedef = jax.tree_util.tree_flatten((params0, args))
    try:
        key = (residuals, treedef, has_args, tuple((jnp.shape(x), jnp.result_type(x)) for x in leaves))
        hash(key)
    except TypeError:
        key = None
    if key is not None and key in _SHAPES:
        return _SHAPES[key]
    out = _checked_output_shape(residuals, params0, args, has_args)
    if key is not None:
        if len(_SHAPES) > 256:
            _SHAPES.clear()
        _SHAPES[key] = out
    return out


def _checked_output_shape(residuals, params0, args, has_args):
    try:
        out = jax.eval_shape(residuals, params0, args) if has_args else jax.eval_shape(residuals, params0)
    except TypeError as e:
        hint = "residuals(params, args)" if has_args else "residuals(params)"
        raise TypeError(f"{_WHERE}: calling residuals failed; it must be callable as {hint}: {e}") from e
    if not hasattr(out, "shape") or isinstance(out, (tuple, list, dict)):
        raise TypeError(f"{_WHERE}: residuals must return one array; got {type(out).__name__}")
    if len(out.shape) != 1:
        raise ValueError(
            f"{_WHERE}: residuals must return a 1-D array of shape (m,); got shape {tuple(out.shape)}"
            + (
                " — flatten it with .ravel() (or jnp.ravel(r, order='F'))"
                if len(out.shape) > 1
                else " — a scalar is a loss, not residuals: return the vector whose squares it sums"
            )
        )
    if not jnp.issubdtype(out.dtype, jnp.floating):
        raise TypeError(f"{_WHERE}: residuals must return floating values; got dtype {np.dtype(out.dtype).name}")
    return out


def _raise_eagerly(result, residuals, params0, args, has_args) -> None:
    status = Status(int(result.status))
    if status is Status.NONFINITE_INPUT:
        r0 = np.asarray(residuals(params0, args) if has_args else residuals(params0))
        bad = np.flatnonzero(~np.isfinite(r0))
        raise ValueError(
            f"{_WHERE}: residuals are not finite at params0: {bad.size} NaN/Inf value(s) at indices "
            f"{bad[:10].tolist()}"
            + (" (or the Jacobian is not finite there)" if bad.size == 0 else "")
            + " — start from a point where the model is defined"
        )
    if status is Status.DIVERGED:
        step = int(result.steps)
        raise DivergenceError(
            f"{_WHERE}: diverged at step {step}: the residuals (or their Jacobian) were non-finite at every trial "
            f"point and the trust region shrank to nothing; last finite rss {float(result.rss):.6g} at the returned "
            f"params — check the model's domain or start closer to the solution",
            step=step,
            last_finite_loss=0.5 * float(result.rss),
            last_finite_step=step - 1,
            params=result.params,
        )


def _solve_impl(
    residuals: Callable, opts: _lm.Options, params0: Any, args: Any, max_steps
) -> NonlinearLeastSquaresResult:
    flat0, unravel = ravel_vec(params0)
    dtype = flat0.dtype

    def fun(theta, a):
        p = unravel(theta)
        out = residuals(p, a) if opts.has_args else residuals(p)
        return jnp.asarray(out, dtype)

    # The iterations are not differentiated: the solution's derivatives come from the implicit function theorem.
    flat0 = jax.lax.stop_gradient(flat0)
    loop_args = jax.tree_util.tree_map(jax.lax.stop_gradient, args)
    if opts.matrix_free:
        final = _lm.solve_matrix_free(fun, flat0, loop_args, opts, max_steps)
        polish_steps = jnp.zeros((), jnp.int32)
    else:
        final = _lm.solve_dense(fun, flat0, loop_args, opts, max_steps)
        polish_steps = final.polish_steps
    theta = jax.lax.stop_gradient(final.theta)
    if opts.has_args:
        theta = _implicit(fun, opts.matrix_free, opts.num_iterations, theta, args)
    return _statistics(fun, theta, args, unravel, opts, final, polish_steps)


_solve = library_jit(_solve_impl, static_argnums=(0, 1))


def _statistics(fun, theta, args, unravel, opts, final, polish_steps) -> NonlinearLeastSquaresResult:
    r = fun(theta, args)
    m, n = r.shape[0], theta.shape[0]
    dof = m - n
    rss_dd = dd.square_sum(dd.DD(r, jnp.zeros_like(r)))
    rss = rss_dd.hi + rss_dd.lo
    residual_sd = jnp.sqrt(rss / dof) if dof > 0 else jnp.full((), jnp.nan, r.dtype)
    converged = final.status == int(Status.CONVERGED)
    if opts.matrix_free:
        g = jax.vjp(lambda t: fun(t, args), theta)[1](r)[0]
        return NonlinearLeastSquaresResult(
            params=unravel(theta),
            residuals=r,
            rss=rss,
            residual_sd=residual_sd,
            standard_errors=None,
            covariance=None,
            jacobian=None,
            rank=jnp.asarray(-1, jnp.int32),
            condition_number=jnp.full((), jnp.nan, r.dtype),
            grad_norm=jnp.sqrt(jnp.sum(g * g)),
            steps=final.step,
            polish_steps=polish_steps,
            status=final.status,
            converged=converged,
            dof=dof,
            method="levenberg-marquardt (matrix-free, CG)",
        )
    J = jacobian_of(fun, theta, args, opts.jac_mode)
    c = jax.lax.stop_gradient(_lm.pow2_scale(jnp.sqrt(jnp.sum(J * J, axis=0))))  # powers of two: piecewise constant
    cov_scaled, s = _gauss_newton_inverse(J / c)
    rank = jnp.sum(_kept(s, J.shape)).astype(jnp.int32)
    cond = jnp.where(rank == n, s[0] / s[-1], jnp.inf)
    cov = (residual_sd**2) * cov_scaled / (c[:, None] * c[None, :])
    cov = jnp.where(rank == n, cov, jnp.nan)
    se = jnp.sqrt(jnp.diagonal(cov))
    g = r @ J
    return NonlinearLeastSquaresResult(
        params=unravel(theta),
        residuals=r,
        rss=rss,
        residual_sd=residual_sd,
        standard_errors=unravel(se),
        covariance=cov,
        jacobian=J,
        rank=rank,
        condition_number=cond,
        grad_norm=jnp.sqrt(jnp.sum(g * g)),
        steps=final.step,
        polish_steps=polish_steps,
        status=final.status,
        converged=converged,
        dof=dof,
    )


def _kept(s, shape):
    """The singular values `s` of an `shape` matrix that count towards its numerical rank."""
    return s > s[0] * jnp.finfo(s.dtype).eps * max(shape)


@jax.custom_jvp
def _gauss_newton_inverse(A):
    """`((AᵀA)⁺, σ)` for `A (m, n)`, from the SVD of the `R` of `A = QR`; `σ` its singular values.

    Differentiated by `d(AᵀA)⁻¹ = −(AᵀA)⁻¹ d(AᵀA) (AᵀA)⁻¹` (products only, no factorisation in the
    tangent: see `linalg.ordering`); `σ` is treated as constant (rank and condition number).
    """
    _, R = jnp.linalg.qr(A)
    _, s, Vt = jnp.linalg.svd(R)
    keep = _kept(s, A.shape)
    inv_s2 = jnp.where(keep, 1.0 / jnp.where(keep, s, 1.0) ** 2, 0.0)
    return (Vt.T * inv_s2) @ Vt, s


@_gauss_newton_inverse.defjvp
def _gauss_newton_inverse_jvp(primals, tangents):
    (A,), (dA,) = primals, tangents
    cov, s = _gauss_newton_inverse(A)
    dgram = dA.T @ A + A.T @ dA
    return (cov, s), (-(cov @ dgram @ cov), jnp.zeros_like(s))


def jacobian_of(fun, theta, args, mode):
    return _lm.residual_and_jacobian(fun, theta, args, mode)[1]


# ------------------------------------------------------------------------------ implicit differentiation


def _implicit(fun: Callable, matrix_free: bool, num_iterations: int, theta_star, args):
    """`theta_star` with derivatives w.r.t. `args` by the implicit function theorem.

    At a minimum of `L(θ, a) = ½‖r(θ, a)‖²`, `∇θ L = 0`, so `dθ* = -H⁻¹ (∂²L/∂θ∂a) da` with `H` the
    exact Hessian of `L` (`JᵀJ + Σ r_i ∇²r_i`, by forward-over-reverse), not the Gauss–Newton matrix.
    """

    def grad_theta(t, a):
        return jax.grad(lambda u: 0.5 * jnp.sum(fun(u, a) ** 2))(t)

    if matrix_free:
        # Reverse mode only: solve H w = θ̄ by conjugate gradients on Hessian-vector products (H is
        # symmetric, so no transposed solve is needed), then ā = -(∂∇θL/∂a)ᵀ w.
        @jax.custom_vjp
        def solution_mf(t, a):
            return t

        def fwd(t, a):
            return t, (t, a)

        def bwd(res, t_bar):
            t, a = res
            _, hvp = jax.linearize(lambda u: grad_theta(u, a), t)
            w, _ = jax.scipy.sparse.linalg.cg(hvp, t_bar, tol=1e-12, maxiter=max(num_iterations, t.shape[0]))
            _, pullback = jax.vjp(lambda aa: grad_theta(t, aa), a)
            (a_bar,) = pullback(-w)
            return jnp.zeros_like(t), a_bar

        solution_mf.defvjp(fwd, bwd)
        return solution_mf(theta_star, args)

    @jax.custom_jvp
    def solution(t, a):
        return t

    @solution.defjvp
    def solution_jvp(primals, tangents):
        t, a = primals
        _, da = tangents
        _, b = jax.jvp(lambda aa: grad_theta(t, aa), (a,), (da,))
        H = jax.jacfwd(lambda u: grad_theta(u, a))(t)
        # H⁻¹ with the primal values, the tangent a product: under jax.vmap no factorisation of the
        # tangent runs beside the statistics' (which wait for H⁻¹ through `after`; see linalg.ordering)
        h_inv = jnp.linalg.inv(H)
        return after(t, h_inv), -(h_inv @ b)

    return solution(theta_star, args)


def _size(tree) -> int:
    return sum(math.prod(jnp.shape(x)) for x in jax.tree_util.tree_leaves(tree))
