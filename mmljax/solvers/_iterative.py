"""Shared plumbing of `gradient_descent` and `newton`: loop state, divergence tests, the eager/traced
finish, and the implicit derivative of an optimum.

Each solver builds ONE compiled program per (loss function, static options, shapes and dtypes)
with `equinox.filter_jit` at module level: the loss is a static argument (hashed by identity), the
data `args`, the start and the numeric options (`tol`, `step_size`) are traced. So the same loss
with new data or a new start of the same shapes reuses the program; a closure built anew for every
call (data baked in) compiles every time, as any `jax.jit` would.

Called eagerly, a solver raises `DivergenceError` on divergence and trims `history` to the steps
taken. Called inside `jax.jit`, `jax.vmap` or `jax.grad` (any traced input), it cannot raise on
data: divergence is `status == Status.DIVERGED` in the result, and `history` keeps its static length.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._problem import FlatProblem, check_args, check_loss_call, check_params, is_traced
from .._validate import check_bool, check_int, check_real
from ..errors import DivergenceError
from ..status import Status
from ._optimize_result import OptimizeResult, divergence_message

RUNNING = -1  # status while the loop runs; never returned (a run that ends RUNNING is MAX_STEPS)
# Why a run diverged (for the eager error message).
NONFINITE, UNBOUNDED, OVERFLOW = 0, 1, 2
DEFAULT_HISTORY_SIZE = 10_000
MAX_STEPS_CAP = 2**31 - 2  # the loop counter is int32: larger max_steps mean "no limit" in practice


class LoopState(eqx.Module):
    """The state of a descent loop (a named pytree, carried by `lax.while_loop`).

    `step` accepted steps; `x`, `f`, `g` the current iterate (flat, `ravel_vec` order), its loss and
    gradient (always the last finite ones); `status` a `Status` value or `RUNNING`; `bad`, `reason` the
    value that stopped a divergent run and why (`NONFINITE`, `UNBOUNDED`, `OVERFLOW`); `history (L,)`
    the loss at steps `0..L-1`; `trajectory (L, P)` (or `(0, P)`) the iterates.
    """

    step: jax.Array
    x: jax.Array
    f: jax.Array
    g: jax.Array
    status: jax.Array
    bad: jax.Array
    reason: jax.Array
    history: jax.Array
    trajectory: jax.Array

    def record(self, x: jax.Array, f: jax.Array, step: jax.Array, take: jax.Array) -> LoopState:
        """Store `f` (and `x`) at index `step` when `take`; indices past the buffer are dropped."""
        idx = jnp.where(take, step, self.history.shape[0])  # out of bounds: dropped
        hist = self.history.at[idx].set(f, mode="drop")
        traj = self.trajectory.at[idx].set(x, mode="drop") if self.trajectory.shape[0] else self.trajectory
        return eqx.tree_at(lambda s: (s.history, s.trajectory), self, (hist, traj))


def initial_state(fp: FlatProblem, args: Any, length: int, trajectory: bool) -> LoopState:
    x0 = fp.x0
    f0, g0 = jax.value_and_grad(fp.f)(x0, args)
    ok = jnp.isfinite(f0) & jnp.all(jnp.isfinite(g0))
    history = jnp.full((length,), jnp.nan, f0.dtype).at[0].set(f0)
    traj = jnp.full((length if trajectory else 0,) + x0.shape, jnp.nan, x0.dtype)
    traj = traj.at[0].set(x0) if trajectory else traj
    return LoopState(
        step=jnp.zeros((), jnp.int32),
        x=x0,
        f=f0,
        g=g0,
        status=jnp.where(ok, RUNNING, int(Status.DIVERGED)).astype(jnp.int32),
        bad=jnp.where(jnp.isfinite(f0), jnp.linalg.norm(g0), f0).astype(f0.dtype),
        reason=jnp.zeros((), jnp.int32),
        history=history,
        trajectory=traj,
    )


def running(max_steps: int) -> Callable[[LoopState], jax.Array]:
    return lambda s: (s.step < max_steps) & (s.status == RUNNING)


def divergence(
    f0: jax.Array, f_new: jax.Array, g_new: jax.Array, x_new: jax.Array
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """`(diverged, reason, bad)` for a proposed iterate.

    Diverged: a non-finite loss, gradient or parameter; a loss run to −∞ (more than `1/eps` times
    `max(|f0|, 1)` below the starting loss: a loss bounded below does not fall that far in a
    descent method); parameters beyond `sqrt(max float)` (squaring them overflows)."""
    dtype = x_new.dtype
    eps, big = jnp.finfo(dtype).eps, jnp.sqrt(jnp.finfo(dtype).max)
    nonfinite = ~(jnp.isfinite(f_new) & jnp.all(jnp.isfinite(g_new)) & jnp.all(jnp.isfinite(x_new)))
    unbounded = f_new < f0 - jnp.maximum(jnp.abs(f0), 1.0) / eps
    overflow = jnp.max(jnp.abs(x_new)) > big
    reason = jnp.where(nonfinite, NONFINITE, jnp.where(unbounded, UNBOUNDED, OVERFLOW)).astype(jnp.int32)
    bad = jnp.where(
        nonfinite,
        jnp.where(jnp.isfinite(f_new), jnp.linalg.norm(g_new), f_new),
        jnp.where(unbounded, f_new, jnp.max(jnp.abs(x_new))),
    ).astype(f0.dtype)
    return nonfinite | unbounded | overflow, reason, bad


def finished_status(s: LoopState) -> jax.Array:
    return jnp.where(s.status == RUNNING, int(Status.MAX_STEPS), s.status).astype(jnp.int32)


def checked(where: str, x: jax.Array, status: jax.Array) -> jax.Array:
    """`x`, with a runtime error (`equinox.error_if`) when `status` is `DIVERGED` (any batch element)."""
    msg = f"{where}: diverged: the loss, gradient or parameters became non-finite, or the loss ran to -inf"
    return eqx.error_if(x, status == int(Status.DIVERGED), msg)


def implicit_optimum(fp: FlatProblem, x_star: jax.Array, args: Any, dense: bool) -> jax.Array:
    """`x_star` with the derivative of an optimum w.r.t. `args` by the implicit function theorem.

    At a minimum `∇ₓL(x*, a) = 0`, so `dx*/da = −H⁻¹ ∂²L/∂x∂a` with `H = ∇²ₓL(x*, a)`: a
    `custom_jvp` whose tangent is one Hessian solve (dense `solve`, or conjugate gradients on
    Hessian-vector products), never a derivative of the iterations. Linear in the tangent and
    transposable, so `jax.grad` and `jax.vjp` work too.
    """

    @jax.custom_jvp
    def optimum(x, a):
        return x

    @optimum.defjvp
    def optimum_jvp(primals, tangents):
        x, a = primals
        _, da = tangents
        _, rhs = jax.jvp(lambda a_: jax.grad(fp.f)(x, a_), (a,), (da,))
        if dense:
            H = jax.hessian(fp.f)(x, a)
            dx = jnp.linalg.solve(0.5 * (H + H.T), rhs)
        else:
            hvp = lambda v: jax.jvp(lambda y: jax.grad(fp.f)(y, a), (x,), (v,))[1]  # noqa: E731
            tol = float(jnp.finfo(x.dtype).eps) ** 0.75

            def cg(matvec, b):
                return jax.scipy.sparse.linalg.cg(matvec, b, tol=tol, maxiter=10 * x.shape[0])[0]

            dx = jax.lax.custom_linear_solve(hvp, rhs, cg, symmetric=True)
        return x, -dx

    return optimum(jax.lax.stop_gradient(x_star), args)


def prepare(where: str, loss: Callable, params0: Any, args: Any) -> tuple[Any, Any, bool]:
    """Checks on the eager side (arity, parameter dtypes and values, complex data); `(params0, args, traced)`."""
    check_loss_call(loss, args, where)
    args = check_args(args, where)
    params0 = check_params(params0, where, "params0")
    return params0, args, is_traced(params0, args, loss)


def check_common(where: str, max_steps: Any, history_size: Any, trajectory: Any) -> tuple[int, int, bool]:
    max_steps = min(check_int(max_steps, where, "max_steps", minimum=0), MAX_STEPS_CAP)
    history_size = check_int(history_size, where, "history_size", minimum=1)
    return max_steps, history_size, check_bool(trajectory, where, "trajectory")


def check_tol(where: str, tol: Any) -> float:
    return check_real(tol, where, "tol", minimum=0.0)


def finish(where: str, out: OptimizeResult, diag: tuple, traced: bool, hint: str) -> OptimizeResult:
    """The eager result: raise `DivergenceError` on divergence; `steps` an int, `status` a `Status`,
    `history`/`trajectory` cut to the recorded steps. Traced: `out` as is."""
    if traced:
        return out
    bad, reason, last_step = diag
    status = Status(int(out.status))
    steps = int(out.steps)
    if status is Status.DIVERGED:
        reason = int(reason)
        what = {
            NONFINITE: "loss or gradient",
            UNBOUNDED: "loss (running to -inf)",
            OVERFLOW: "largest parameter magnitude (overflow)",
        }[reason]
        if reason == UNBOUNDED:
            hint = "the loss appears unbounded below; add a penalty or constrain the parameters"
        err_step = steps + 1 if (steps or np.isfinite(float(out.loss))) else 0
        last = float(out.loss) if np.isfinite(float(out.loss)) else float("nan")
        last_step = steps if np.isfinite(float(out.loss)) else -1
        raise DivergenceError(
            divergence_message(where, err_step, float(bad), last, last_step, what, hint),
            step=err_step,
            last_finite_loss=last,
            last_finite_step=last_step,
            params=out.params,
        )
    n = min(steps + 1, out.history.shape[0])
    cut = lambda a: jax.device_put(np.asarray(a)[:n])  # noqa: E731  host slicing: no program per length
    traj = None if out.trajectory is None else jax.tree_util.tree_map(cut, out.trajectory)
    return OptimizeResult(
        params=out.params,
        loss=out.loss,
        grad_norm=out.grad_norm,
        steps=steps,
        status=status,
        history=cut(out.history),
        trajectory=traj,
        step_size=out.step_size,
        method=out.method,
    )


__all__ = ["LoopState", "FlatProblem", "finish", "prepare", "implicit_optimum"]
