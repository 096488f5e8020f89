"""Newton's method that never steps uphill and does not stop at a saddle: dense (small P) or Newton-CG
on `hvp` (large P).

Dense: the step solves `|H| d = -g`, with `|H|` the Hessian with its eigenvalues replaced by their
absolute values (floored), so on a convex problem it is exactly Newton's step (one step to the
minimum of a quadratic) and at a saddle or maximum it is still a descent direction. Newton-CG:
conjugate gradients on Hessian-vector products, stopped early on negative curvature. Both then
backtrack (Armijo) from the full step, so the loss decreases at every accepted step.

At a stationary point (relative Newton step `<= tol`) the Hessian's smallest eigenvalue is checked
(dense: from the eigen-decomposition; CG: a short Lanczos run on `hvp`): when it is negative the
solver steps along its eigenvector (a negative-curvature direction, downhill by the second-order
term) instead of stopping; only when no such step decreases the loss does it stop with
`Status.SADDLE`.

The optimum is differentiable with respect to `args` by the implicit function theorem
(`dθ*/d args = −H⁻¹ ∂²L/∂θ∂args`, one Hessian solve), not through the iterations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._lanczos import ritz
from .._problem import FlatProblem
from .._validate import check_bool, check_choice, check_int, check_real
from ..derivatives import hvp
from ..status import Status
from ._iterative import (
    DEFAULT_HISTORY_SIZE,
    RUNNING,
    LoopState,
    check_common,
    check_tol,
    checked,
    divergence,
    finish,
    finished_status,
    implicit_optimum,
    initial_state,
    prepare,
    running,
)
from ._optimize_result import OptimizeResult

NEWTON_METHODS = ("auto", "dense", "cg")
_CURVATURE_ITERATIONS = 20  # Lanczos steps for the smallest eigenvalue at a stationary point (method "cg")


def _dense(f: Callable, x: jax.Array, g: jax.Array):
    """`(d, λ_min, v_min, max|λ|)`: the `|H|`-Newton direction and the smallest eigenpair."""
    H = jax.hessian(f)(x)
    lam, V = jnp.linalg.eigh(0.5 * (H + H.T))
    scale = jnp.max(jnp.abs(lam))
    floor = jnp.maximum(scale * jnp.finfo(x.dtype).eps ** 0.75, jnp.finfo(x.dtype).tiny)
    d = -V @ ((V.T @ g) / jnp.maximum(jnp.abs(lam), floor))
    return d, lam[0], V[:, 0], scale


class _CGState(NamedTuple):
    i: jax.Array  # iterations done
    d: jax.Array  # the solution so far
    r: jax.Array  # residual -g - H d
    p: jax.Array  # search direction
    rr: jax.Array  # r·r
    done: jax.Array


def _cg_direction(f: Callable, x: jax.Array, g: jax.Array, max_iter: int, rtol) -> jax.Array:
    """Truncated CG on `H d = -g` to a residual `rtol |g|` (default forcing term `min(0.1, |g|)`);
    steepest descent on immediate negative curvature."""
    gnorm = jnp.linalg.norm(g)
    target = (jnp.minimum(0.1, gnorm) if rtol is None else rtol) * gnorm

    def cond(s: _CGState):
        return (s.i < max_iter) & ~s.done

    def body(s: _CGState) -> _CGState:
        hp = hvp(f, x, s.p)
        curv = jnp.vdot(s.p, hp)
        negative = curv <= 0
        alpha = s.rr / jnp.where(negative, 1.0, curv)
        d_new = s.d + alpha * s.p
        r_new = s.r - alpha * hp
        rr_new = jnp.vdot(r_new, r_new)
        p_new = r_new + (rr_new / jnp.where(s.rr > 0, s.rr, 1.0)) * s.p
        d = jnp.where(negative, jnp.where(s.i == 0, -g, s.d), d_new)  # stop before a negative-curvature step
        r, p, rr = (jnp.where(negative, a, b) for a, b in ((s.r, r_new), (s.p, p_new), (s.rr, rr_new)))
        done = negative | (jnp.sqrt(rr_new) <= target)
        return _CGState(s.i + 1, d, r, p, rr, done)

    state = _CGState(jnp.zeros((), jnp.int32), jnp.zeros_like(g), -g, -g, jnp.vdot(g, g), gnorm == 0)
    return jax.lax.while_loop(cond, body, state).d


def _smallest_eigenpair(f: Callable, x: jax.Array):
    P = x.shape[0]
    r = ritz(lambda v: hvp(f, x, v), P, x.dtype, min(P, _CURVATURE_ITERATIONS), jax.random.PRNGKey(1))
    return r.theta[0], r.S[:, 0] @ r.Q, jnp.max(jnp.abs(r.theta))


class _SearchState(NamedTuple):
    alpha: jax.Array  # the step fraction tried
    f_try: jax.Array  # the loss there
    it: jax.Array  # halvings done


def _line_search(f: Callable, x, fx, slope, d):
    """Backtracking from the full step: the largest `2^-i` (i < 60) with a finite loss, Armijo's
    sufficient decrease and a strict decrease."""

    def accept(s: _SearchState):
        return jnp.isfinite(s.f_try) & (s.f_try <= fx + 1e-4 * s.alpha * slope) & (s.f_try < fx)

    def cond(s: _SearchState):
        return ~accept(s) & (s.it < 60)

    def body(s: _SearchState) -> _SearchState:
        alpha = s.alpha / 2
        return _SearchState(alpha, f(x + alpha * d), s.it + 1)

    s = jax.lax.while_loop(cond, body, _SearchState(jnp.ones((), x.dtype), f(x + d), jnp.zeros((), jnp.int32)))
    return s.alpha, accept(s)


@eqx.filter_jit
def _program(
    loss, params0, args, tol, *, method, dense_limit, max_steps, history_size, trajectory, cg_max_iter, cg_tol, throw
):
    where = "newton"
    fp = FlatProblem(loss, params0, args, where)
    args_in = args
    args = jax.lax.stop_gradient(args)
    fp.x0 = jax.lax.stop_gradient(fp.x0)
    P = fp.x0.shape[0]
    dense = method == "dense" or (method == "auto" and P <= dense_limit)
    cg_iter = min(P, 500) if cg_max_iter is None else cg_max_iter
    f = lambda x: fp.f(x, args)  # noqa: E731
    vg = jax.value_and_grad(f)
    dtype = fp.x0.dtype
    eps = jnp.finfo(dtype).eps
    tol = jnp.asarray(tol, dtype)
    s0 = initial_state(fp, args, min(max_steps, history_size) + 1, trajectory)

    def body(s: LoopState) -> LoopState:
        x, fx, g = s.x, s.f, s.g
        scale_x = jnp.maximum(jnp.linalg.norm(x), 1.0)
        if dense:
            d, lam_min, v_min, scale = _dense(f, x, g)
            stationary = jnp.linalg.norm(d) <= tol * scale_x
        else:
            d = _cg_direction(f, x, g, cg_iter, cg_tol)
            stationary = jnp.linalg.norm(d) <= tol * scale_x
            lam_min, v_min, scale = jax.lax.cond(
                stationary,
                lambda: _smallest_eigenpair(f, x),
                lambda: (jnp.zeros((), dtype), jnp.zeros_like(x), jnp.zeros((), dtype)),
            )
        negative = lam_min < -jnp.sqrt(eps) * scale
        converged = stationary & ~negative
        escape = stationary & negative
        # at a saddle or maximum: along the negative-curvature eigenvector, downhill by the first-order term
        v = jnp.where(jnp.vdot(v_min, g) > 0, -v_min, v_min) * scale_x
        d = jnp.where(escape, v, jnp.where(jnp.vdot(d, g) < 0, d, -g))  # always a descent direction
        alpha, found = _line_search(f, x, fx, jnp.minimum(jnp.vdot(g, d), 0.0), d)
        alpha = jnp.where(found, alpha, 1.0)
        x_new = x + alpha * d
        f_new, g_new = vg(x_new)
        # At the limit of precision the decrease Armijo asks for is below the rounding of f: accept the
        # full step if f stays within rounding and the gradient halves.
        near = (
            ~found
            & ~escape
            & jnp.isfinite(f_new)
            & (f_new <= fx + 8 * eps * jnp.abs(fx))
            & (jnp.linalg.norm(g_new) <= 0.5 * jnp.linalg.norm(g))
        )
        found = found | near
        bad, reason, value = divergence(s0.f, f_new, g_new, x_new)
        take = found & ~bad & ~converged
        # converged: the last (tiny) Newton step still polishes the iterate, uncounted, when it does not
        # raise the loss (the error after it is about the square of the step)
        polish = converged & ~bad & (f_new <= fx)
        k = s.step + jnp.where(take, 1, 0)
        status = jnp.where(
            converged,
            int(Status.CONVERGED),
            jnp.where(
                found & bad,
                int(Status.DIVERGED),
                jnp.where(found, RUNNING, jnp.where(escape, int(Status.SADDLE), int(Status.STALLED))),
            ),
        )
        move = take | polish
        new = LoopState(
            step=k,
            x=jnp.where(move, x_new, x),
            f=jnp.where(move, f_new, fx),
            g=jnp.where(move, g_new, g),
            status=status.astype(jnp.int32),
            bad=jnp.where(found & bad, value, s.bad),
            reason=jnp.where(found & bad, reason, s.reason),
            history=s.history,
            trajectory=s.trajectory,
        )
        return new.record(x_new, f_new, k, move)

    s = jax.lax.while_loop(running(max_steps), body, s0)
    x, loss_value, g = s.x, s.f, s.g
    if throw:
        x = checked(where, x, s.status)
    if args_in is not None:  # the optimum's derivative w.r.t. the data: implicit, one Hessian solve
        x = implicit_optimum(fp, x, args_in, dense)
        loss_value, g = jax.value_and_grad(fp.f)(x, args_in)
    out = OptimizeResult(
        params=fp.unravel(x),
        loss=loss_value,
        grad_norm=jnp.linalg.norm(g),
        steps=s.step,
        status=finished_status(s),
        history=s.history,
        trajectory=jax.vmap(fp.unravel)(s.trajectory) if trajectory else None,
        method="dense" if dense else "cg",
    )
    return out, (s.bad, s.reason, None)


def newton(
    loss: Callable[..., jax.Array],
    params0: Any,
    *,
    args: Any = None,
    max_steps: int = 50,
    tol: float | None = None,
    method: str = "auto",
    dense_limit: int = 2000,
    cg_max_iter: int | None = None,
    cg_tol: float | None = None,
    trajectory: bool = False,
    history_size: int = DEFAULT_HISTORY_SIZE,
    throw: bool = False,
) -> OptimizeResult:
    """Minimise `loss(params)` (or `loss(params, args)`) by damped Newton steps in one compiled `while_loop`.

    **Arguments:**

    - `loss`, `params0`: scalar loss of a parameter pytree (`loss(params)`, or `loss(params, args)` with
      `args=`) and the start (any pytree of real floating arrays; equinox modules' non-array leaves are
      static).
    - `args`: data passed to `loss` (any pytree of arrays). Compiled once per loss function, options and
      shapes: new `args` or `params0` of the same shapes reuse the program. The returned `params` (and
      `loss`) are differentiable w.r.t. `args` by the implicit function theorem, never through the
      iterations: `dθ*/d args = −H⁻¹ ∂²L/∂θ∂args`, one Hessian solve (dense, or CG on `hvp` for "cg"),
      valid where the result is a minimum (`status == CONVERGED`).
    - `method`: "dense" (Hessian by `jax.hessian`, eigen-decomposed: `O(P²)` memory), "cg"
      (Newton-CG on `hvp`, `O(P)` memory) or "auto" (dense when `P <= dense_limit`).
    - `max_steps`: the most accepted steps.
    - `tol`: relative Newton step: converged when `||H⁻¹ g|| <= tol · max(||params||, 1)` (the CG
      solution for "cg") and the Hessian has no negative eigenvalue below `−sqrt(eps)·max|λ|` —
      the stationarity test of `mmljax.check_minimiser`. Default `max(1e-10, 10·eps)` of the dtype.
    - `cg_max_iter`: CG iterations per step (default `min(P, 500)`); `cg_tol`: relative residual at
      which CG stops (default the forcing term `min(0.1, |grad|)`, for superlinear convergence; a tiny
      `cg_tol` with `cg_max_iter >= P` makes each step an exact Newton step).
    - `trajectory`: also return the parameters at every recorded iterate.
    - `history_size`: the most steps whose loss (and trajectory) is stored.
    - `throw`: inside `jax.jit`/`vmap`, also raise a runtime error (`equinox.error_if`) when the run
      diverged, instead of only reporting `status == DIVERGED` (eager calls always raise).

    **Returns:** an `OptimizeResult` (`history` of the loss at steps `0..min(steps, history_size)`,
    `method` the variant, `status` why it stopped: `CONVERGED`, `MAX_STEPS`, `STALLED` (no step along
    the direction decreases the loss before the test is met), `SADDLE` (a stationary point with
    negative curvature that no step could leave) or, under transformations, `DIVERGED`).

    **Raises:** (eager calls) `DivergenceError` when the loss, gradient or parameters become
    non-finite (at the start, or at a point the line search accepted), the loss runs to −∞ or the
    parameters overflow; `TypeError`/`ValueError` for bad arguments.
    """
    where = "newton"
    method = check_choice(method, where, "method", NEWTON_METHODS)
    max_steps, history_size, trajectory = check_common(where, max_steps, history_size, trajectory)
    tol = None if tol is None else check_tol(where, tol)
    dense_limit = check_int(dense_limit, where, "dense_limit", minimum=0)
    cg_max_iter = None if cg_max_iter is None else check_int(cg_max_iter, where, "cg_max_iter", minimum=1)
    cg_tol = None if cg_tol is None else check_real(cg_tol, where, "cg_tol", minimum=0.0, maximum=1.0, strict=False)
    throw = check_bool(throw, where, "throw")
    params0, args, traced = prepare(where, loss, params0, args)
    if tol is None:
        dtypes = [
            np.dtype(leaf.dtype)
            for leaf in jax.tree_util.tree_leaves(params0)
            if hasattr(leaf, "dtype") and jnp.issubdtype(leaf.dtype, jnp.floating)
        ]
        eps = max(float(np.finfo(dt).eps) for dt in dtypes) if dtypes else float(np.finfo(np.float64).eps)
        tol = max(1e-10, 10 * eps)
    out, diag = _program(
        loss,
        params0,
        args,
        np.asarray(tol),
        method=method,
        dense_limit=dense_limit,
        max_steps=max_steps,
        history_size=history_size,
        trajectory=trajectory,
        cg_max_iter=cg_max_iter,
        cg_tol=cg_tol,
        throw=throw and traced,
    )
    return finish(where, out, diag, traced, "check the loss for overflow or start closer to a minimum")
