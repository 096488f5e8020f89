"""Gradient descent with a step size from the curvature: `1 / λ_max(H)` by Lanczos on `hvp`."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._lanczos import ritz
from .._problem import FlatProblem
from .._validate import check_bool, check_int, check_real
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

_IMPLICIT_DENSE_LIMIT = 2000  # implicit derivative by a dense Hessian solve up to this many parameters, else CG
_NO_STEP = 99  # internal: no usable step size at params0 (flat or non-finite curvature)


def _largest_curvature(fp: FlatProblem, x: jax.Array, args: Any, num_iterations: int) -> jax.Array:
    """An upper estimate of `λ_max` of the Hessian: the top Ritz value plus its residual bound."""
    m = min(num_iterations, x.shape[0])
    r = ritz(lambda v: hvp(lambda y: fp.f(y, args), x, v), x.shape[0], x.dtype, m, jax.random.PRNGKey(0))
    return jnp.max(jnp.abs(r.theta)) + r.residual[jnp.argmax(jnp.abs(r.theta))]


@eqx.filter_jit
def _program(
    loss, params0, args, step_size, tol, *, auto_step, max_steps, history_size, trajectory, num_iterations, throw
):
    where = "gradient_descent"
    fp = FlatProblem(loss, params0, args, where)
    args_in = args
    args = jax.lax.stop_gradient(args)
    vg = jax.value_and_grad(fp.f)
    x0 = jax.lax.stop_gradient(fp.x0)
    fp.x0 = x0
    if auto_step:
        step = 1.0 / _largest_curvature(fp, x0, args, num_iterations)
    else:
        step = jnp.asarray(step_size, x0.dtype)
    tol = jnp.asarray(tol, x0.dtype)
    s0 = initial_state(fp, args, min(max_steps, history_size) + 1, trajectory)
    g0n = jnp.linalg.norm(s0.g)
    ok_step = jnp.isfinite(step) & (step > 0)
    first = jnp.where(~ok_step, _NO_STEP, jnp.where(g0n <= tol * g0n, int(Status.CONVERGED), RUNNING))
    s0 = eqx.tree_at(lambda s: s.status, s0, jnp.where(s0.status != RUNNING, s0.status, first).astype(jnp.int32))

    def body(s: LoopState) -> LoopState:
        x_new = s.x - step * s.g
        f_new, g_new = vg(x_new, args)
        bad, reason, value = divergence(s0.f, f_new, g_new, x_new)
        take = ~bad
        k = s.step + jnp.where(take, 1, 0)
        status = jnp.where(
            bad, int(Status.DIVERGED), jnp.where(jnp.linalg.norm(g_new) <= tol * g0n, int(Status.CONVERGED), RUNNING)
        )
        new = LoopState(
            step=k,
            x=jnp.where(take, x_new, s.x),
            f=jnp.where(take, f_new, s.f),
            g=jnp.where(take, g_new, s.g),
            status=status.astype(jnp.int32),
            bad=jnp.where(bad, value, s.bad),
            reason=jnp.where(bad, reason, s.reason),
            history=s.history,
            trajectory=s.trajectory,
        )
        return new.record(x_new, f_new, k, take)

    s = jax.lax.while_loop(running(max_steps), body, s0)
    status = finished_status(s)
    x, loss_value, g = s.x, s.f, s.g
    if throw:
        x = checked(where, x, jnp.where(status == _NO_STEP, int(Status.DIVERGED), status))
    if args_in is not None:  # the minimiser's derivative w.r.t. the data: implicit, one Hessian solve
        x = implicit_optimum(fp, x, args_in, dense=x.shape[0] <= _IMPLICIT_DENSE_LIMIT)
        loss_value, g = jax.value_and_grad(fp.f)(x, args_in)
    out = OptimizeResult(
        params=fp.unravel(x),
        loss=loss_value,
        grad_norm=jnp.linalg.norm(g),
        steps=s.step,
        status=jnp.where(status == _NO_STEP, int(Status.DIVERGED), status).astype(jnp.int32),
        history=s.history,
        trajectory=jax.vmap(fp.unravel)(s.trajectory) if trajectory else None,
        step_size=step,
        method="gradient_descent",
    )
    return out, (s.bad, s.reason, status == _NO_STEP)


def gradient_descent(
    loss: Callable[..., jax.Array],
    params0: Any,
    *,
    args: Any = None,
    step_size: float | None = None,
    max_steps: int = 1000,
    tol: float = 1e-8,
    trajectory: bool = False,
    num_iterations: int = 30,
    history_size: int = DEFAULT_HISTORY_SIZE,
    throw: bool = False,
    power_iterations: int | None = None,
) -> OptimizeResult:
    """Minimise `loss(params)` (or `loss(params, args)`) by `params <- params - step_size * grad` in one
    compiled `while_loop`.

    **Arguments:**

    - `loss`: scalar function of a parameter pytree, `loss(params)`, or `loss(params, args)` with `args=`.
    - `params0`: starting parameters (array or pytree of real floating arrays: dicts, NamedTuples,
      equinox modules — non-array leaves are static).
    - `args`: data passed to `loss` (any pytree of arrays). The program is compiled once per loss
      function, options and shapes: new `args` or `params0` of the same shapes reuse it. The returned
      `params` are differentiable w.r.t. `args` by the implicit function theorem (valid at a converged
      minimum), never through the iterations.
    - `step_size`: fixed step; `None` (default) uses `1 / λ_max` of the Hessian at `params0`, estimated
      by `num_iterations` Lanczos steps on `hvp` (no dense Hessian; the top Ritz value plus its
      residual bound, so not an underestimate of the curvature up to rounding).
    - `max_steps`: the most steps taken.
    - `tol`: relative: stop once `||grad|| <= tol * ||grad(params0)||` (invariant under scaling the loss
      or the parameters). Gradient descent stops at any stationary point (a saddle too).
    - `trajectory`: also return the parameters at every recorded iterate (memory `O(history_size * P)`).
    - `history_size`: the most steps whose loss (and trajectory) is stored; nothing is allocated for
      `max_steps` beyond it.
    - `throw`: inside `jax.jit`/`vmap`, also raise a runtime error (`equinox.error_if`) when the run
      diverged (or no step size could be chosen), instead of only reporting `status == DIVERGED`.

    **Returns:** an `OptimizeResult`; `history` has the loss at steps `0..min(steps, history_size)`,
    `step_size` the step used. Under `jax.jit`/`jax.vmap` (any traced input) the result holds arrays
    (`status`, `steps` per batch element) and divergence is `status == Status.DIVERGED`.

    **Raises:** (eager calls) `DivergenceError` naming the step and the last finite loss when the loss,
    gradient or parameters become non-finite or the loss runs to −∞; `ValueError` when no step size
    can be chosen (flat or non-finite curvature at `params0`); `TypeError`/`ValueError` for bad
    arguments (wrong arity of `loss`, complex or integer parameters, a non-scalar loss).
    """
    where = "gradient_descent"
    if power_iterations is not None:
        warnings.warn(
            f"{where}: power_iterations is deprecated; use num_iterations (Lanczos steps)",
            DeprecationWarning,
            stacklevel=2,
        )
        num_iterations = power_iterations
    max_steps, history_size, trajectory = check_common(where, max_steps, history_size, trajectory)
    tol = check_tol(where, tol)
    num_iterations = check_int(num_iterations, where, "num_iterations", minimum=1)
    throw = check_bool(throw, where, "throw")
    auto = step_size is None
    if not auto:
        step_size = check_real(step_size, where, "step_size", minimum=0.0, strict=True)
    params0, args, traced = prepare(where, loss, params0, args)
    out, (bad, reason, no_step) = _program(
        loss,
        params0,
        args,
        np.asarray(0.0 if auto else step_size),
        np.asarray(tol),
        auto_step=auto,
        max_steps=max_steps,
        history_size=history_size,
        trajectory=trajectory,
        num_iterations=num_iterations,
        throw=throw and traced,
    )
    if not traced and bool(no_step):
        raise ValueError(
            f"{where}: cannot choose a step size: the Hessian's largest eigenvalue magnitude at params0 "
            f"is {1 / float(out.step_size) if float(out.step_size) else 0.0} (flat or non-finite "
            f"curvature); pass step_size="
        )
    if traced:
        return out
    step = float(out.step_size)
    out = eqx.tree_at(lambda r: r.step_size, out, step)
    return finish(
        where, out, (bad, reason, None), traced, f"reduce step_size (was {step:.3g}) or check the loss for overflow"
    )
