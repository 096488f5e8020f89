"""Gradient descent with a step size from the curvature: `1 / λ_max(H)` by power iteration on `hvp`."""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from ..derivatives import hvp
from ._iterative import flat_problem, initial_state, nonneg_float, positive_int, raise_divergence, running
from ._optimize_result import OptimizeResult


def largest_curvature(f: Callable, x: jax.Array, iterations: int = 100, seed: int = 0) -> jax.Array:
    """`|λ|_max` of the Hessian of `f` at `x` by power iteration on Hessian-vector products (no dense Hessian)."""

    def body(_, carry):
        v, _lam = carry
        w = hvp(f, x, v)
        norm = jnp.linalg.norm(w)
        return jnp.where(norm > 0, w / jnp.where(norm > 0, norm, 1), v), norm

    v0 = jax.random.normal(jax.random.PRNGKey(seed), x.shape, x.dtype)
    v0 = v0 / jnp.linalg.norm(v0)
    v, _ = jax.lax.fori_loop(0, iterations, body, (v0, jnp.zeros((), x.dtype)))
    return jnp.abs(jnp.vdot(v, hvp(f, x, v)))  # Rayleigh quotient of the converged direction


def _loop(f: Callable, max_steps: int, tol: float, trajectory: bool, power_iterations: int):
    value_and_grad = jax.value_and_grad(f)

    def run(x0, step):
        if step is None:  # 1/λmax, in the same compiled program as the loop
            step = 1.0 / largest_curvature(f, x0, power_iterations)
        state0 = initial_state(value_and_grad, x0, max_steps, tol, trajectory)

        def body(s):
            k, x, fx, g, hist, tr, status, bad = s
            x_new = x - step * g
            f_new, g_new = value_and_grad(x_new)
            ok = jnp.isfinite(f_new) & jnp.all(jnp.isfinite(g_new))
            gn = jnp.linalg.norm(g_new)
            x, fx, g = (jnp.where(ok, a, b) for a, b in ((x_new, x), (f_new, fx), (g_new, g)))
            hist = hist.at[k + 1].set(jnp.where(ok, f_new, jnp.nan))
            tr = tr.at[k + 1].set(x) if trajectory else tr
            status = jnp.where(ok, jnp.where(gn <= tol, 1, 0), 2)
            bad = jnp.where(ok, bad, jnp.where(jnp.isfinite(f_new), gn, f_new))
            return k + 1, x, fx, g, hist, tr, status, bad

        ok_step = jnp.isfinite(step) & (step > 0)
        state0 = state0[:6] + (jnp.where(ok_step, state0[6], 4), state0[7])
        return step, jax.lax.while_loop(running(max_steps), body, state0)

    return jax.jit(run)


def gradient_descent(
    loss: Callable[[Any], jax.Array],
    params0: Any,
    *,
    step_size: float | None = None,
    max_steps: int = 1000,
    tol: float = 1e-8,
    trajectory: bool = False,
    power_iterations: int = 100,
) -> OptimizeResult:
    """Minimise `loss(params)` by `params <- params - step_size * grad` in one jit-compiled `while_loop`.

    **Arguments:**

    - `loss`: scalar function of a parameter pytree.
    - `params0`: starting parameters (array or pytree of floating arrays).
    - `step_size`: fixed step; `None` (default) uses `1 / λ_max` of the Hessian at `params0`,
      estimated by `power_iterations` steps of power iteration on `hvp` (no dense Hessian), which
      converges on a convex quadratic.
    - `max_steps`, `tol`: stop after `max_steps` steps or once the gradient norm is `<= tol`.
    - `trajectory`: also return the parameters at every iterate (memory `O(steps * P)`).

    **Returns:** an `OptimizeResult`; `history` has the loss at steps `0..steps`.

    **Raises:** `DivergenceError` (naming the step and last finite loss) when the loss or gradient
    becomes non-finite.
    """
    where = "gradient_descent"
    max_steps = positive_int(max_steps, where, "max_steps", 0)
    tol = nonneg_float(tol, where, "tol")
    x0, f, unravel = flat_problem(loss, params0, where)
    iters = positive_int(power_iterations, where, "power_iterations")
    step = None if step_size is None else jnp.asarray(nonneg_float(step_size, where, "step_size", positive=True), x0.dtype)
    step, (k, x, fx, g, hist, tr, status, bad) = _loop(f, max_steps, tol, trajectory, iters)(x0, step)
    step = float(step)
    if int(status) == 4:
        raise ValueError(f"{where}: cannot choose a step size: the Hessian's largest eigenvalue magnitude at "
                         f"params0 is {1 / step if step else 0.0} (flat or non-finite curvature); pass step_size=")
    k, status = int(k), int(status)
    hist = np.asarray(hist)
    if status == 2:
        raise_divergence(where, k, hist, float(bad),
                         f"reduce step_size (was {step:.3g}) or check the loss for overflow", params=unravel(x))
    traj = jax.vmap(unravel)(tr[: k + 1]) if trajectory else None
    return OptimizeResult(params=unravel(x), loss=fx, grad_norm=jnp.linalg.norm(g), steps=k, converged=status == 1,
                          history=jnp.asarray(hist[: k + 1]), trajectory=traj, method="gradient_descent",
                          step_size=step)
