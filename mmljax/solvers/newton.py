"""Newton's method that never steps uphill: dense (small P) or Newton-CG on `hvp` (large P).

Dense: the step solves `|H| d = -g`, with `|H|` the Hessian with its eigenvalues replaced by their
absolute values (floored), so on a convex problem it is exactly Newton's step (one step to the
minimum of a quadratic) and at a saddle or maximum it is still a descent direction. Newton-CG:
conjugate gradients on Hessian-vector products, stopped early on negative curvature. Both then
backtrack (Armijo) from the full step, so the loss decreases at every accepted step (at the limit
of precision a full step is also accepted when the loss stays within rounding and the gradient
halves).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from ..derivatives import hvp
from ._iterative import flat_problem, initial_state, nonneg_float, positive_int, raise_divergence, running
from ._optimize_result import OptimizeResult

NEWTON_METHODS = ("auto", "dense", "cg")


def _dense_direction(f: Callable, x: jax.Array, g: jax.Array) -> jax.Array:
    lam, vecs = jnp.linalg.eigh(jax.hessian(f)(x))
    scale = jnp.max(jnp.abs(lam))
    floor = jnp.maximum(scale * jnp.finfo(x.dtype).eps ** 0.75, jnp.finfo(x.dtype).tiny)
    return -vecs @ ((vecs.T @ g) / jnp.maximum(jnp.abs(lam), floor))


def _cg_direction(f: Callable, x: jax.Array, g: jax.Array, max_iter: int, rtol: float | None) -> jax.Array:
    """Truncated CG on `H d = -g` to a residual `rtol |g|` (default forcing term `min(0.1, |g|)`);
    steepest descent on immediate negative curvature."""
    gnorm = jnp.linalg.norm(g)
    target = (jnp.minimum(0.1, gnorm) if rtol is None else rtol) * gnorm

    def cond(s):
        i, d, r, p, rr, done = s
        return (i < max_iter) & ~done

    def body(s):
        i, d, r, p, rr, done = s
        hp = hvp(f, x, p)
        curv = jnp.vdot(p, hp)
        negative = curv <= 0
        alpha = rr / jnp.where(negative, 1.0, curv)
        d_new = d + alpha * p
        r_new = r - alpha * hp
        rr_new = jnp.vdot(r_new, r_new)
        p_new = r_new + (rr_new / rr) * p
        keep = negative  # stop without taking the step along negative curvature
        d = jnp.where(keep, jnp.where(i == 0, -g, d), d_new)
        r, p, rr = (jnp.where(keep, a, b) for a, b in ((r, r_new), (p, p_new), (rr, rr_new)))
        done = keep | (jnp.sqrt(rr_new) <= target)
        return i + 1, d, r, p, rr, done

    zero = jnp.zeros_like(g)
    state = (0, zero, -g, -g, jnp.vdot(g, g), gnorm == 0)
    return jax.lax.while_loop(cond, body, state)[1]


def _loop(f: Callable, method: str, max_steps: int, tol: float, cg_max_iter: int, cg_tol, trajectory: bool):
    value_and_grad = jax.value_and_grad(f)

    def direction(x, g):
        d = _dense_direction(f, x, g) if method == "dense" else _cg_direction(f, x, g, cg_max_iter, cg_tol)
        return jnp.where(jnp.vdot(d, g) < 0, d, -g)  # guard: always a descent direction

    def line_search(x, fx, g, d):
        slope = jnp.vdot(g, d)

        def cond(s):
            alpha, f_try, it = s
            ok = jnp.isfinite(f_try) & (f_try <= fx + 1e-4 * alpha * slope)
            return ~ok & (it < 60)

        def body(s):
            alpha, _, it = s
            alpha = alpha / 2
            return alpha, f(x + alpha * d), it + 1

        alpha, f_try, it = jax.lax.while_loop(cond, body, (jnp.ones((), x.dtype), f(x + d), 0))
        ok = jnp.isfinite(f_try) & (f_try <= fx + 1e-4 * alpha * slope)
        return jnp.where(ok, alpha, 1.0), ok

    def run(x0):
        eps = jnp.finfo(x0.dtype).eps
        # status: 0 running, 1 converged, 2 diverged, 3 line search found no decrease
        state0 = initial_state(value_and_grad, x0, max_steps, tol, trajectory)

        def body(s):
            k, x, fx, g, hist, tr, status, bad = s
            d = direction(x, g)
            alpha, found = line_search(x, fx, g, d)
            x_new = x + alpha * d
            f_new, g_new = value_and_grad(x_new)
            # At the limit of precision the decrease Armijo asks for is below the rounding of f:
            # accept the full step if f stays within rounding and the gradient halves.
            near = (~found & jnp.isfinite(f_new) & (f_new <= fx + 8 * eps * jnp.abs(fx))
                    & (jnp.linalg.norm(g_new) <= 0.5 * jnp.linalg.norm(g)))
            found = found | near
            ok = jnp.isfinite(f_new) & jnp.all(jnp.isfinite(g_new))
            take = found & ok
            x, fx, g = (jnp.where(take, a, b) for a, b in ((x_new, x), (f_new, fx), (g_new, g)))
            hist = hist.at[k + 1].set(jnp.where(take, f_new, jnp.nan))
            tr = tr.at[k + 1].set(x) if trajectory else tr
            gn = jnp.linalg.norm(g)
            status = jnp.where(~found, 3, jnp.where(ok, jnp.where(gn <= tol, 1, 0), 2))
            bad = jnp.where(found & ~ok, jnp.where(jnp.isfinite(f_new), jnp.linalg.norm(g_new), f_new), bad)
            return k + jnp.where(found, 1, 0), x, fx, g, hist, tr, status, bad

        return jax.lax.while_loop(running(max_steps), body, state0)

    return jax.jit(run)


def newton(
    loss: Callable[[Any], jax.Array],
    params0: Any,
    *,
    max_steps: int = 50,
    tol: float = 1e-10,
    method: str = "auto",
    dense_limit: int = 2000,
    cg_max_iter: int | None = None,
    cg_tol: float | None = None,
    trajectory: bool = False,
) -> OptimizeResult:
    """Minimise `loss(params)` by damped Newton steps in one jit-compiled `while_loop`.

    **Arguments:**

    - `loss`, `params0`: scalar loss of a parameter pytree and the start.
    - `method`: "dense" (Hessian by `jax.hessian`, eigen-decomposed: `O(P²)` memory), "cg"
      (Newton-CG on `hvp`, `O(P)` memory) or "auto" (dense when `P <= dense_limit`).
    - `max_steps`, `tol`: stop after `max_steps` accepted steps or when the gradient norm is `<= tol`.
    - `cg_max_iter`: CG iterations per step (default `min(P, 500)`); `cg_tol`: relative residual
      at which CG stops (default the forcing term `min(0.1, |grad|)`, for superlinear convergence;
      a tiny `cg_tol` with `cg_max_iter >= P` makes each step an exact Newton step).
    - `trajectory`: also return the parameters at every iterate.

    **Returns:** an `OptimizeResult` (`history` of the loss at steps `0..steps`, `method` the variant).
    If no step along the Newton direction decreases the loss (at the limit of precision) the loop
    stops there; `converged` tells whether the gradient norm reached `tol`.

    **Raises:** `DivergenceError` when the loss or gradient is non-finite (at the start, or at a
    point the line search accepted).
    """
    where = "newton"
    if method not in NEWTON_METHODS:
        raise ValueError(f"{where}: method must be one of {NEWTON_METHODS}; got {method!r}")
    max_steps = positive_int(max_steps, where, "max_steps", 0)
    tol = nonneg_float(tol, where, "tol")
    x0, f, unravel = flat_problem(loss, params0, where)
    P = x0.size
    resolved = method if method != "auto" else ("dense" if P <= positive_int(dense_limit, where, "dense_limit") else "cg")
    cg_iter = positive_int(cg_max_iter, where, "cg_max_iter") if cg_max_iter is not None else min(P, 500)
    k, x, fx, g, hist, tr, status, bad = _loop(f, resolved, max_steps, tol, cg_iter, None if cg_tol is None else nonneg_float(cg_tol, where, "cg_tol"), trajectory)(x0)
    k, status = int(k), int(status)
    hist = np.asarray(hist)
    if status == 2:
        raise_divergence(where, k + 1 if k or np.isfinite(hist[0]) else 0, hist, float(bad),
                         "check the loss for overflow or start closer to a minimum", params=unravel(x))
    traj = jax.vmap(unravel)(tr[: k + 1]) if trajectory else None
    return OptimizeResult(params=unravel(x), loss=fx, grad_norm=jnp.linalg.norm(g), steps=k, converged=status == 1,
                          history=jnp.asarray(hist[: k + 1]), trajectory=traj, method=resolved)
