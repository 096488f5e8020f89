"""Levenberg–Marquardt internals: Moré's trust-region step, the accurate Gauss–Newton step, the loops.

Everything here works on the flat parameter vector `theta (n,)` (`ravel_vec` order) and a residual
function `fun(theta, args) -> (m,)`, and is pure JAX (runs under `jit` and `vmap`).

The damped phase follows Moré's "The Levenberg–Marquardt algorithm: implementation and theory"
(1977), the algorithm of MINPACK's `lmder`: scaled variables `z = D p` with `D` the running maximum
of the Jacobian's column norms, a trust region `‖z‖ <= Δ` whose Levenberg parameter `α` solves the
secular equation `‖z(α)‖ = Δ` by safeguarded Newton steps, the step from a QR factorisation of the
scaled, damped Jacobian `[J D⁻¹; √α I]`, and Moré's rules for accepting steps and resizing `Δ`.
The secular equation is solved on the singular values of the small triangular factor `R` of
`J D⁻¹ = Q R`, so that each Newton step costs O(n) instead of a new factorisation.

When the damped phase has converged, Gauss–Newton steps solved accurately (QR of the equilibrated
Jacobian, then refinement of the augmented system `[I J; Jᵀ 0]` with residuals in double-double)
polish the solution until the step stops shrinking: the last digits the data allow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import lax
from jax.scipy.linalg import solve_triangular

from ..derivatives import jacobian
from ..linalg import doubledouble as dd
from ..linalg.ordering import after
from ..status import Status

# Moré's constants (step acceptance and trust-region resizing).
_ACCEPT = 1e-4
_SHRINK_BELOW = 0.25
_GROW_ABOVE = 0.75
# Initial trust radius, relative to ‖D θ0‖ (MINPACK's `factor`; it suggests 0.01–100 and uses 100). With
# 1 the first step cannot jump across a whole saturating region (an exponential rate sent to where the
# model is flat in it), which strands MINPACK's default on such problems.
_INITIAL_RADIUS = 1.0
_SECULAR_ITERATIONS = 10
_REFINEMENTS = 1


class Options(NamedTuple):
    """Static options of one compiled solver (hashable)."""

    tol: float | None
    handover_tol: float
    polish: bool
    jac_mode: str  # "fwd" | "rev"
    matrix_free: bool
    num_iterations: int
    has_args: bool


def _norm(v):
    return jnp.sqrt(jnp.sum(v * v))


def _eps(dtype) -> float:
    return float(jnp.finfo(dtype).eps)


def residual_and_jacobian(fun: Callable, theta, args, mode: str):
    """`(r (m,), J (m, n))` at `theta` (Jacobian by `mmljax.jacobian` in the given mode)."""
    r = fun(theta, args)
    J = jacobian(fun, mode=mode)(theta, args)
    return r, J


def pow2_scale(c):
    """Nearest powers of two of the positive column norms `c` (1 where a column is zero): exact to divide by."""
    safe = jnp.where((c > 0) & jnp.isfinite(c), c, 1.0)
    return jnp.exp2(jnp.round(jnp.log2(safe)))


# --------------------------------------------------------------------------------------------- damped step


class DampedStep(NamedTuple):
    z: Any  # scaled step (n,)
    alpha: Any  # Levenberg parameter of the step (in the scaled variables)
    jz_norm: Any  # ‖J p‖ = ‖R z‖ (predicted reduction)


def damped_step(J, r, D, delta, alpha0) -> DampedStep:
    """Moré's trust-region step: `min ‖J p + r‖` subject to `‖D p‖ <= Δ`, returned as `z = D p`.

    **Arguments:** `J (m, n)`, `r (m,)`, `D (n,)` positive scales, radius `delta`, previous Levenberg
    parameter `alpha0` (a warm start). **Returns:** `DampedStep(z, alpha, ‖J p‖)`.
    """
    m, n = J.shape
    eps = _eps(J.dtype)
    Jh = J / D
    Q, R = jnp.linalg.qr(Jh)
    qtr = r @ Q
    U, s, Vt = jnp.linalg.svd(after(R, Q))  # after Q: one batched LAPACK call at a time (see linalg.ordering)
    g = qtr @ U  # components of Qᵀr along the left singular vectors of R
    cutoff = s[0] * eps * max(m, n)
    full = s > cutoff
    s_safe = jnp.where(full, s, 1.0)
    z_gn = -(jnp.where(full, g / s_safe, 0.0) @ Vt)
    gn_norm = _norm(z_gn)
    rank_full = jnp.all(full)

    def znorm(alpha):
        d = s * s + alpha
        c = jnp.where(full | (alpha > 0), s * g / jnp.where(d > 0, d, 1.0), 0.0)
        nz = _norm(c)
        w = jnp.sum(jnp.where(d > 0, c * c / jnp.where(d > 0, d, 1.0), 0.0))
        return nz, w

    # Bounds on α (Moré): the Newton step from α = 0 (full rank) and ‖J_scaledᵀ r‖ / Δ.
    nz0, w0 = znorm(jnp.zeros((), J.dtype))
    lower = jnp.where(rank_full & (w0 > 0), (nz0 - delta) / delta * nz0 * nz0 / jnp.where(w0 > 0, w0, 1.0), 0.0)
    lower = jnp.maximum(lower, 0.0)
    upper = _norm(s * g) / delta
    tiny = jnp.finfo(J.dtype).tiny
    upper = jnp.where(upper > 0, upper, tiny / jnp.minimum(delta, 0.1))
    alpha = jnp.clip(alpha0, lower, upper)
    alpha = jnp.where(alpha == 0, _norm(s * g) / jnp.maximum(gn_norm, tiny), alpha)

    def newton(_, carry):
        alpha, lower, upper, done = carry
        alpha_try = jnp.where(
            (alpha <= lower) | (alpha >= upper), jnp.maximum(0.001 * upper, jnp.sqrt(lower * upper)), alpha
        )
        alpha_try = jnp.where(alpha_try == 0, jnp.maximum(tiny, 0.001 * upper), alpha_try)
        nz, w = znorm(alpha_try)
        fp = nz - delta
        stop = jnp.abs(fp) <= 0.1 * delta
        lower2 = jnp.where(fp > 0, jnp.maximum(lower, alpha_try), lower)
        upper2 = jnp.where(fp < 0, jnp.minimum(upper, alpha_try), upper)
        nxt = jnp.maximum(lower2, alpha_try + fp / delta * nz * nz / jnp.where(w > 0, w, 1.0))
        nxt = jnp.where(stop, alpha_try, nxt)
        keep = done
        return (
            jnp.where(keep, alpha, nxt),
            jnp.where(keep, lower, lower2),
            jnp.where(keep, upper, upper2),
            done | stop,
        )

    # Start the Newton iteration strictly inside the bracket
    alpha = jnp.where((alpha <= lower) | (alpha >= upper), jnp.maximum(0.001 * upper, jnp.sqrt(lower * upper)), alpha)
    alpha, _, _, _ = lax.fori_loop(0, _SECULAR_ITERATIONS, newton, (alpha, lower, upper, jnp.zeros((), bool)))
    use_gn = gn_norm <= 1.1 * delta
    alpha = jnp.where(use_gn, 0.0, alpha)

    # The step itself: QR of the damped triangular factor [R; √α I] (Moré's qrsolv, by Householder here).
    eye = jnp.eye(n, dtype=J.dtype)
    Qa, Ra = jnp.linalg.qr(jnp.concatenate([R, jnp.sqrt(alpha) * eye], axis=0))
    rhs = -(qtr @ Qa[:n])
    diag_ok = jnp.abs(jnp.diagonal(Ra)) > 0
    Ra_safe = _safe_diagonal(Ra)
    z_damped = solve_triangular(Ra_safe, rhs, lower=False)
    z = jnp.where(use_gn | ~jnp.all(diag_ok), z_gn, z_damped)
    return DampedStep(z=z, alpha=alpha, jz_norm=_norm(R @ z))


# --------------------------------------------------------------------------------- accurate Gauss–Newton


def gauss_newton_step(J, r):
    """The Gauss–Newton step `p = argmin ‖J p + r‖₂`, accurate to the conditioning of `J`.

    Columns are equilibrated by powers of two (exact), `J = Q R` by Householder QR, then the
    augmented system `[I A; Aᵀ 0] [s; y] = [b; 0]` (`A` the equilibrated `J`, `b = -r`) is refined
    with its residuals `b - s - A y` and `-Aᵀ s` computed in double-double (Björck's refinement):
    the large-residual term `κ² ε ‖r‖` of plain QR is removed. **Returns:** `p (n,)`.
    """
    c = pow2_scale(_norm_cols(J))
    A = J / c
    Q, R = jnp.linalg.qr(A)
    b = -r
    R = _safe_diagonal(R)
    y = solve_triangular(R, b @ Q, lower=False)
    s = b - A @ y

    def refine(_, ys):
        y, s = ys
        f0 = dd.DD(*dd.two_sum(b, -s))
        f = dd.tall_residual(
            A, None, dd.DD(y[:, None], jnp.zeros_like(y)[:, None]), dd.DD(f0.hi[:, None], f0.lo[:, None])
        )
        f = f.hi[:, 0] + f.lo[:, 0]
        g = -dd.tall_rmatmul(A, None, dd.DD(s[:, None], jnp.zeros_like(s)[:, None])).hi[:, 0]
        h = solve_triangular(R, g, trans="T", lower=False)
        f1 = f @ Q
        dy = solve_triangular(R, f1 - h, lower=False)
        ds = f - Q @ (f1 - h)
        return y + dy, s + ds

    for k in range(_REFINEMENTS):
        y, s = refine(k, (y, s))
    return y / c


def _safe_diagonal(R):
    """`R` with exact zeros on its diagonal replaced by ones (a singular direction gets no step)."""
    d = jnp.diagonal(R)
    idx = jnp.arange(d.shape[0])
    return R.at[idx, idx].set(jnp.where(d != 0, d, 1.0))


def _norm_cols(J):
    return jnp.sqrt(jnp.sum(J * J, axis=0))


# ------------------------------------------------------------------------------------------ dense loop


class State(eqx.Module):
    """Loop state of the dense solver (flat parameters)."""

    theta: Any
    r: Any
    J: Any
    fnorm: Any
    D: Any
    delta: Any
    alpha: Any
    step: Any
    phase: Any  # 0 damped, 1 Gauss–Newton polishing, 2 finished
    status: Any
    polish_steps: Any
    last_polish: Any  # ‖D p‖ of the last polishing step
    last_good_step: Any


def solve_dense(fun: Callable, theta0, args, opts: Options, max_steps) -> State:
    """Run the damped phase and the polishing phase from `theta0`; returns the final state."""
    dtype = theta0.dtype
    eps = _eps(dtype)
    handover = opts.handover_tol
    final_tol = eps if opts.tol is None else opts.tol
    r0, J0 = residual_and_jacobian(fun, theta0, args, opts.jac_mode)
    fnorm0 = _norm(r0)
    finite0 = jnp.all(jnp.isfinite(r0)) & jnp.all(jnp.isfinite(J0))
    D0 = _norm_cols(J0)
    D0 = jnp.where((D0 > 0) & jnp.isfinite(D0), D0, 1.0)
    xnorm0 = _norm(D0 * theta0)
    delta0 = jnp.where(xnorm0 > 0, _INITIAL_RADIUS * xnorm0, _INITIAL_RADIUS)
    zero = jnp.zeros((), dtype)
    state = State(
        theta=theta0,
        r=r0,
        J=J0,
        fnorm=fnorm0,
        D=D0,
        delta=delta0,
        alpha=zero,
        step=jnp.zeros((), jnp.int32),
        phase=jnp.where(finite0, jnp.where(fnorm0 == 0, 2, 0), 2).astype(jnp.int32),
        status=jnp.where(finite0, int(Status.CONVERGED), int(Status.NONFINITE_INPUT)).astype(jnp.int32),
        polish_steps=jnp.zeros((), jnp.int32),
        last_polish=jnp.asarray(jnp.inf, dtype),
        last_good_step=jnp.zeros((), jnp.int32),
    )

    def evaluate(theta):
        r, J = residual_and_jacobian(fun, theta, args, opts.jac_mode)
        ok = jnp.all(jnp.isfinite(r)) & jnp.all(jnp.isfinite(J))
        return r, J, _norm(r), ok

    class Proposal(NamedTuple):
        p: Any  # the step in the parameters (n,)
        pnorm: Any  # damped: ‖D p‖; polishing: ‖c p‖ with c the equilibrating scales
        alpha: Any  # Levenberg parameter (damped)
        jz_norm: Any  # ‖J p‖ (damped)
        xnorm: Any  # polishing: ‖c θ‖

    def propose_damped(st: State) -> Proposal:
        step = damped_step(st.J, st.r, st.D, st.delta, st.alpha)
        return Proposal(
            p=step.z / st.D, pnorm=_norm(step.z), alpha=step.alpha, jz_norm=step.jz_norm, xnorm=_norm(st.D * st.theta)
        )

    def propose_polish(st: State) -> Proposal:
        p = gauss_newton_step(st.J, st.r)
        c = pow2_scale(_norm_cols(st.J))
        return Proposal(
            p=p, pnorm=_norm(c * p), alpha=jnp.zeros((), dtype), jz_norm=jnp.zeros((), dtype), xnorm=_norm(c * st.theta)
        )

    def no_proposal(st: State) -> Proposal:
        zero = jnp.zeros((), dtype)
        return Proposal(p=jnp.zeros_like(st.theta), pnorm=zero, alpha=zero, jz_norm=zero, xnorm=zero)

    def damped(st: State, pr: Proposal, theta_new, r_new, J_new, fnorm1, ok) -> State:
        alpha, pnorm = pr.alpha, pr.pnorm
        delta = jnp.where(st.step == 0, jnp.minimum(st.delta, pnorm), st.delta)
        fnorm, fnorm1_s = st.fnorm, jnp.where(ok, fnorm1, jnp.inf)
        actred = jnp.where(ok & (0.1 * fnorm1_s < fnorm), 1.0 - (fnorm1_s / fnorm) ** 2, -1.0)
        t1 = pr.jz_norm / fnorm
        t2 = jnp.sqrt(alpha) * pnorm / fnorm
        prered = t1 * t1 + 2.0 * t2 * t2
        dirder = -(t1 * t1 + t2 * t2)
        ratio = jnp.where(prered != 0, actred / jnp.where(prered != 0, prered, 1.0), 0.0)
        # resize the trust region
        temp = jnp.where(
            actred >= 0, 0.5, 0.5 * dirder / jnp.where(dirder + 0.5 * actred != 0, dirder + 0.5 * actred, 1.0)
        )
        temp = jnp.where((0.1 * fnorm1_s >= fnorm) | (temp < 0.1) | ~ok, 0.1, temp)
        shrink = ratio <= _SHRINK_BELOW
        grow = ~shrink & ((alpha == 0) | (ratio >= _GROW_ABOVE))
        new_delta = jnp.where(shrink, temp * jnp.minimum(delta, 10.0 * pnorm), jnp.where(grow, 2.0 * pnorm, delta))
        new_alpha = jnp.where(shrink, alpha / temp, jnp.where(grow, 0.5 * alpha, alpha))
        accept = ok & (ratio >= _ACCEPT)
        theta = jnp.where(accept, theta_new, st.theta)
        r = jnp.where(accept, r_new, st.r)
        J = jnp.where(accept, J_new, st.J)
        fn = jnp.where(accept, fnorm1_s, st.fnorm)
        cn = _norm_cols(J_new)
        D = jnp.where(accept, jnp.maximum(st.D, jnp.where(jnp.isfinite(cn), cn, 0.0)), st.D)
        xnorm = _norm(D * theta)
        # Moré's convergence tests, at the hand-over tolerance (or the user's tol when not polishing); a trust
        # region that shrank because trial points were not finite is not a converged one
        c0 = _norm_cols(st.J)
        gtest = jnp.max(jnp.abs(st.r @ st.J) / jnp.where(c0 > 0, c0, 1.0)) / fnorm
        converged = (
            ((jnp.abs(actred) <= handover) & (prered <= handover) & (0.5 * ratio <= 1.0))
            | ((new_delta <= handover * xnorm) & ok)
            | (gtest <= eps)
            | (fn == 0)
        )
        stuck = new_delta <= eps * jnp.maximum(xnorm, eps)
        diverged = ~ok & stuck & ~accept
        converged = converged & ~diverged
        nxt_phase = jnp.where(diverged, 2, jnp.where(converged, jnp.where(opts.polish & (fn > 0), 1, 2), 0))
        status = jnp.where(diverged, int(Status.DIVERGED), int(Status.CONVERGED))
        return State(
            theta=theta,
            r=r,
            J=J,
            fnorm=fn,
            D=D,
            delta=new_delta,
            alpha=new_alpha,
            step=st.step + 1,
            phase=nxt_phase.astype(jnp.int32),
            status=status.astype(jnp.int32),
            polish_steps=st.polish_steps,
            last_polish=st.last_polish,
            last_good_step=jnp.where(accept, st.step + 1, st.last_good_step),
        )

    def polish(st: State, pr: Proposal, theta_new, r_new, J_new, fnorm1, ok) -> State:
        pn = pr.pnorm
        small = pn <= final_tol * pr.xnorm
        grew = (st.polish_steps > 0) & (pn >= st.last_polish)
        # A Gauss–Newton step from a converged damped phase must not raise the residual norm beyond
        # round-off; if it does, the problem is not locally Gauss–Newton convergent: keep the damped answer.
        worse = fnorm1 > st.fnorm * (1.0 + jnp.sqrt(eps))
        take = ~grew & ok & ~worse & jnp.all(jnp.isfinite(pr.p))
        theta = jnp.where(take, theta_new, st.theta)
        r = jnp.where(take, r_new, st.r)
        J = jnp.where(take, J_new, st.J)
        fn = jnp.where(take, fnorm1, st.fnorm)
        finish = ~take | small
        return State(
            theta=theta,
            r=r,
            J=J,
            fnorm=fn,
            D=st.D,
            delta=st.delta,
            alpha=st.alpha,
            step=st.step + 1,
            phase=jnp.where(finish, 2, 1).astype(jnp.int32),
            status=jnp.asarray(int(Status.CONVERGED), jnp.int32),
            polish_steps=st.polish_steps + take.astype(jnp.int32),
            last_polish=jnp.where(take, pn, st.last_polish),
            last_good_step=jnp.where(take, st.step + 1, st.last_good_step),
        )

    def body(st: State) -> State:
        # one proposal (damped or polishing), one evaluation of residuals and Jacobian, then the phase's rules
        if opts.polish:
            # Two conds, not one: under jax.vmap both branches of a cond run, and the polishing QR
            # must wait for the damped step's (see linalg.ordering); unbatched, each runs one branch.
            damped_pr = lax.cond(st.phase == 0, propose_damped, no_proposal, st)
            later = eqx.tree_at(lambda s: s.J, st, after(st.J, damped_pr.p))
            polish_pr = lax.cond(st.phase == 0, no_proposal, propose_polish, later)
            pr = jax.tree_util.tree_map(lambda u, v: jnp.where(st.phase == 0, u, v), damped_pr, polish_pr)
        else:
            pr = propose_damped(st)
        theta_new = st.theta + pr.p
        r_new, J_new, fnorm1, ok = evaluate(theta_new)
        after_damped = damped(st, pr, theta_new, r_new, J_new, fnorm1, ok)
        if not opts.polish:
            return after_damped
        after_polish = polish(st, pr, theta_new, r_new, J_new, fnorm1, ok)
        return jax.tree_util.tree_map(lambda u, v: jnp.where(st.phase == 0, u, v), after_damped, after_polish)

    def cond(st: State):
        return (st.phase < 2) & (st.step < max_steps)

    final = lax.while_loop(cond, body, state)
    status = jnp.where(
        final.phase == 2, final.status, jnp.where(final.phase == 1, int(Status.CONVERGED), int(Status.MAX_STEPS))
    )
    return eqx.tree_at(lambda s: s.status, final, status.astype(jnp.int32))


# ------------------------------------------------------------------------------------ matrix-free loop


class FreeState(eqx.Module):
    """Loop state of the matrix-free solver."""

    theta: Any
    r: Any
    fnorm: Any
    lam: Any
    nu: Any
    step: Any
    phase: Any
    status: Any
    last_good_step: Any


def solve_matrix_free(fun: Callable, theta0, args, opts: Options, max_steps) -> FreeState:
    """Levenberg–Marquardt without forming `J`: `(JᵀJ + λ I) p = -Jᵀ r` by conjugate gradients on
    Jacobian-vector and vector-Jacobian products (`jax.linearize`/`jax.linear_transpose`), with
    Nielsen's update of `λ`. Stops when the accepted step is below `tol` relative to the parameters."""
    dtype = theta0.dtype
    eps = _eps(dtype)
    tol = 1e-10 if opts.tol is None else opts.tol
    r0 = fun(theta0, args)
    f0 = _norm(r0)
    ok0 = jnp.all(jnp.isfinite(r0))
    zero = jnp.zeros((), dtype)

    def grad_and_ops(theta):
        r, jvp = jax.linearize(lambda t: fun(t, args), theta)
        vjp = jax.linear_transpose(jvp, theta)
        return r, jvp, lambda u: vjp(u)[0]

    # initial λ: a thousandth of the largest diagonal entry of JᵀJ, estimated by the power-free bound ‖Jᵀr‖/‖r‖
    _, _, vjp0 = grad_and_ops(theta0)
    g0 = vjp0(r0)
    lam0 = 1e-3 * jnp.where(f0 > 0, (_norm(g0) / jnp.where(f0 > 0, f0, 1.0)) ** 2, 1.0)
    lam0 = jnp.where(lam0 > 0, lam0, 1e-3)
    state = FreeState(
        theta=theta0,
        r=r0,
        fnorm=f0,
        lam=lam0,
        nu=jnp.asarray(2.0, dtype),
        step=jnp.zeros((), jnp.int32),
        phase=jnp.where(ok0, jnp.where(f0 == 0, 2, 0), 2).astype(jnp.int32),
        status=jnp.where(ok0, int(Status.CONVERGED), int(Status.NONFINITE_INPUT)).astype(jnp.int32),
        last_good_step=jnp.zeros((), jnp.int32),
    )

    def body(st: FreeState) -> FreeState:
        r, jvp, vjp = grad_and_ops(st.theta)
        g = vjp(r)
        op = lambda v: vjp(jvp(v)) + st.lam * v
        p, _ = jax.scipy.sparse.linalg.cg(op, -g, tol=1e-10, maxiter=opts.num_iterations)
        theta_new = st.theta + p
        r_new = fun(theta_new, args)
        f1 = _norm(r_new)
        ok = jnp.all(jnp.isfinite(r_new))
        f1s = jnp.where(ok, f1, jnp.inf)
        jp = jvp(p)
        prered = -(2.0 * (r @ jp) + jp @ jp)  # predicted decrease of ‖r‖² by the linear model
        actred = st.fnorm**2 - f1s**2
        rho = jnp.where(prered > 0, actred / jnp.where(prered > 0, prered, 1.0), -1.0)
        accept = ok & (rho > 0)
        lam = jnp.where(accept, st.lam * jnp.maximum(1.0 / 3.0, 1.0 - (2.0 * rho - 1.0) ** 3), st.lam * st.nu)
        nu = jnp.where(accept, 2.0, 2.0 * st.nu)
        theta = jnp.where(accept, theta_new, st.theta)
        pn, xn = _norm(p), _norm(st.theta)
        small = accept & (pn <= tol * (xn + tol))
        gsmall = _norm(g) <= eps * jnp.maximum(st.fnorm, eps)
        stuck = ~accept & (lam > 1.0 / eps * jnp.maximum(1.0, lam0))
        diverged = stuck & ~ok
        done = small | gsmall | (jnp.where(accept, f1s, st.fnorm) == 0) | stuck
        status = jnp.where(diverged, int(Status.DIVERGED), jnp.where(stuck, int(Status.STALLED), int(Status.CONVERGED)))
        return FreeState(
            theta=theta,
            r=jnp.where(accept, r_new, st.r),
            fnorm=jnp.where(accept, f1s, st.fnorm),
            lam=lam,
            nu=nu,
            step=st.step + 1,
            phase=jnp.where(done, 2, 0).astype(jnp.int32),
            status=status.astype(jnp.int32),
            last_good_step=jnp.where(accept, st.step + 1, st.last_good_step),
        )

    final = lax.while_loop(lambda st: (st.phase < 2) & (st.step < max_steps), body, state)
    status = jnp.where(final.phase == 2, final.status, int(Status.MAX_STEPS))
    del zero
    return eqx.tree_at(lambda s: s.status, final, status.astype(jnp.int32))
