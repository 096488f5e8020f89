"""An optax training loop: mini-batches, a progress bar, and checkpoints a crashed run resumes from.

Called eagerly, the loop runs in compiled chunks (`lax.scan` over steps, at most `_MAX_CHUNK` steps);
between chunks the host updates the progress bar, writes a checkpoint and calls the callback. The
mini-batch of step `s` is a pure function of `(key, s)` (`jax.random.permutation` of the examples
with the key folded with the epoch), so a run resumed from a checkpoint takes exactly the batches,
and ends with exactly the parameters, of an uninterrupted one.

Called inside `jax.jit`/`jax.vmap` (any traced input), the whole run is one `while_loop` (no
progress bar, checkpoint or callback) and divergence is reported as `status == Status.DIVERGED`.
Derivatives w.r.t. `args` then go through the iterations (forward mode; an optax run need not end at
a minimum, so no implicit derivative is attached — use `newton` for that).

The chunk program is compiled once per (loss function, optimiser object, options, shapes): the
data, the parameters and the key are traced arguments.
"""

from __future__ import annotations

import math
import os
import sys
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._problem import check_args, check_key, check_loss_call, check_params, is_traced
from .._validate import check_bool, check_int, check_real
from ..errors import DivergenceError
from ..status import Status
from . import _checkpoint
from ._iterative import DEFAULT_HISTORY_SIZE, MAX_STEPS_CAP
from ._optimize_result import OptimizeResult, divergence_message

_MAX_CHUNK = 10_000  # most steps per compiled chunk (bounds the per-chunk loss buffer)
_MINIMIZE_HISTORY = 1_000_000  # default history_size of minimize (8 MB of float64 at most)


_tree_norm = getattr(optax.tree_utils, "tree_norm", None) or optax.tree_utils.tree_l2_norm


def _tree_finite(tree: Any) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves])) if leaves else jnp.asarray(True)


def _data_size(data: Any, where: str) -> int:
    leaves = jax.tree_util.tree_leaves(data)
    if not leaves:
        raise ValueError(f"{where}: args has no arrays to draw mini-batches from")
    sizes = {int(jnp.shape(leaf)[0]) if jnp.ndim(leaf) else -1 for leaf in leaves}
    if len(sizes) != 1 or -1 in sizes:
        raise ValueError(
            f"{where}: with batch_size every array in args must have the same leading (example) axis; "
            f"got leading sizes {sorted(sizes)}"
        )
    n = sizes.pop()
    if n == 0:
        raise ValueError(f"{where}: args has 0 examples")
    return n


def batch_indices(key: jax.Array, step: jax.Array, n: int, batch_size: int) -> jax.Array:
    """Examples of mini-batch `step`: slice `step % (n // batch_size)` of the permutation of epoch
    `step // (n // batch_size)`, `jax.random.permutation(jax.random.fold_in(key, epoch), n)`."""
    per_epoch = n // batch_size
    epoch, i = step // per_epoch, step % per_epoch
    perm = jax.random.permutation(jax.random.fold_in(key, epoch), n)
    return jax.lax.dynamic_slice(perm, (i * batch_size,), (batch_size,))


def _step_fn(loss: Callable, optimizer: Any, has_args: bool, n: int, batch_size: int | None, constrain: Callable):
    """One optimiser update at step `step`: `(params, state, value, grads)`."""
    optimizer = optax.with_extra_args_support(optimizer)

    def call(params, batch):
        return loss(params, constrain(batch)) if has_args else loss(params)

    def step_fn(params, opt_state, data, key, step):
        if has_args and batch_size is not None:
            idx = batch_indices(key, step, n, batch_size)
            batch = jax.tree_util.tree_map(lambda a: jnp.take(a, idx, axis=0), data)
        else:
            batch = data
        value, grads = jax.value_and_grad(call)(params, batch)
        updates, new_state = optimizer.update(
            grads, opt_state, params, value=value, grad=grads, value_fn=lambda p: call(p, batch)
        )
        return optax.apply_updates(params, updates), new_state, value, grads

    return step_fn


def _no_constraint(batch):
    return batch


class _ChunkCarry(NamedTuple):
    params: Any
    opt_state: Any
    bad_step: jax.Array  # the first step with a non-finite loss/gradient/parameter, -1 if none
    bad_value: jax.Array  # the value met there
    done: jax.Array  # the tolerance was met


class _RunState(NamedTuple):
    step: jax.Array
    params: Any
    opt_state: Any
    status: jax.Array  # a Status value, -1 while running
    history: jax.Array


@eqx.filter_jit
def _chunk(loss, optimizer, params, opt_state, data, key, start, gtol, *, length, n, batch_size, has_args, constrain):
    """`length` steps from `start` by `lax.scan`: the final carry and each step's (loss, done)."""
    step_fn = _step_fn(loss, optimizer, has_args, n, batch_size, constrain)
    dtype = jnp.result_type(*[jnp.asarray(leaf).dtype for leaf in jax.tree_util.tree_leaves(params)])

    def body(c: _ChunkCarry, step):
        new_params, new_state, value, grads = step_fn(c.params, c.opt_state, data, key, step)
        gnorm = _tree_norm(grads)
        finite = jnp.isfinite(value) & _tree_finite(grads) & _tree_finite(new_params)
        met = gnorm <= gtol
        move = finite & (c.bad_step < 0) & ~c.done & ~met
        keep = lambda new, old: jax.tree_util.tree_map(lambda a, b: jnp.where(move, a, b), new, old)  # noqa: E731
        first_bad = ~finite & (c.bad_step < 0) & ~c.done
        bad_step = jnp.where(first_bad, step, c.bad_step)
        bad_value = jnp.where(first_bad, jnp.where(jnp.isfinite(value), gnorm, value), c.bad_value)
        done = c.done | (met & finite)
        loss_out = jnp.where((bad_step < 0) | first_bad, value, jnp.nan)
        carry = _ChunkCarry(keep(new_params, c.params), keep(new_state, c.opt_state), bad_step, bad_value, done)
        return carry, (loss_out, done)

    carry = _ChunkCarry(params, opt_state, jnp.asarray(-1, jnp.int32), jnp.zeros((), dtype), jnp.asarray(False))
    steps = start + jnp.arange(length, dtype=jnp.int32)
    return jax.lax.scan(body, carry, steps)


@eqx.filter_jit
def _whole_run(loss, optimizer, params, data, key, gtol, *, max_steps, history_size, n, batch_size, has_args):
    """The whole run as one `while_loop` (inside transformations): an `OptimizeResult` of arrays."""
    step_fn = _step_fn(loss, optimizer, has_args, n, batch_size, _no_constraint)
    opt_state = optax.with_extra_args_support(optimizer).init(params)
    leaves = jax.tree_util.tree_leaves(params)
    dtype = jnp.result_type(*[jnp.asarray(leaf).dtype for leaf in leaves])
    hist0 = jnp.full((min(max_steps, history_size),), jnp.nan, dtype)

    def cond(c: _RunState):
        return (c.step < max_steps) & (c.status < 0)

    def body(c: _RunState) -> _RunState:
        new_params, new_state, value, grads = step_fn(c.params, c.opt_state, data, key, c.step)
        finite = jnp.isfinite(value) & _tree_finite(grads) & _tree_finite(new_params)
        met = _tree_norm(grads) <= gtol
        move = finite & ~met
        keep = lambda new, old: jax.tree_util.tree_map(lambda a, b: jnp.where(move, a, b), new, old)  # noqa: E731
        hist = c.history.at[jnp.where(move, c.step, c.history.shape[0])].set(value.astype(dtype), mode="drop")
        status = jnp.where(~finite, int(Status.DIVERGED), jnp.where(met, int(Status.CONVERGED), -1)).astype(jnp.int32)
        return _RunState(
            c.step + jnp.where(move, 1, 0), keep(new_params, c.params), keep(new_state, c.opt_state), status, hist
        )

    c0 = _RunState(jnp.zeros((), jnp.int32), params, opt_state, jnp.asarray(-1, jnp.int32), hist0)
    out = jax.lax.while_loop(cond, body, c0)
    value, grads = jax.value_and_grad(lambda p: loss(p, data) if has_args else loss(p))(out.params)
    status = jnp.where(out.status < 0, int(Status.MAX_STEPS), out.status).astype(jnp.int32)
    return OptimizeResult(
        params=out.params,
        loss=value,
        grad_norm=_tree_norm(grads),
        steps=out.step,
        status=status,
        history=out.history,
        method="optax",
    )


@eqx.filter_jit
def _full_value_and_grad(loss, params, data, *, has_args):
    value, grads = jax.value_and_grad(lambda p: loss(p, data) if has_args else loss(p))(params)
    return value, _tree_norm(grads)


def _renamed(where: str, new: str, new_value: Any, old: str, old_value: Any) -> Any:
    if old_value is None:
        return new_value
    warnings.warn(f"{where}: {old}= is deprecated; use {new}=", DeprecationWarning, stacklevel=3)
    if new_value is not None:
        raise TypeError(f"{where}: pass {new}= or the deprecated {old}=, not both")
    return old_value


def minimize(
    loss: Callable[..., jax.Array],
    params0: Any,
    optimizer: optax.GradientTransformation | None = None,
    *,
    args: Any = None,
    max_steps: int | None = None,
    batch_size: int | None = None,
    key: jax.Array | None = None,
    tol: float | None = None,
    progress: bool | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 1000,
    resume: bool = True,
    callback: Callable[[int, float], Any] | None = None,
    mesh: Any = None,
    history_size: int = _MINIMIZE_HISTORY,
    steps: int | None = None,
    data: Any = None,
    seed: int | None = None,
) -> OptimizeResult:
    """Run an optax optimiser for up to `max_steps` updates, optionally on mini-batches, with checkpoints.

    **Arguments:**

    - `loss`: `loss(params)`, or `loss(params, args)` with `args=` (with `batch_size`: `loss(params, batch)`,
      `batch` the rows of `args` of one mini-batch); returns a scalar.
    - `params0`: starting parameters (pytree of real floating arrays).
    - `optimizer`: an optax `GradientTransformation` (default `optax.adam(1e-3)`); optimisers that
      need the loss (e.g. `optax.lbfgs()`) get `value`, `grad` and `value_fn` too. The compiled program
      is cached per optimiser object: reuse the object to reuse the program.
    - `args`: data passed to `loss` (a pytree of arrays). With `batch_size` every leaf needs the same
      leading example axis `n`; each step uses `batch_size` examples (a fresh permutation each epoch,
      remainder dropped).
    - `max_steps`: number of optimiser updates (fewer when `tol` is met).
    - `key`: a `jax.random` key for the mini-batch permutations (default `PRNGKey(0)`).
    - `tol`: relative: stop once a step's gradient norm is `<= tol · ||grad(params0)||` (on the full
      `args`; meaningful full-batch). `converged` reports whether that happened (never when `tol` is None).
    - `progress`: show a rich progress bar on stderr (default: when `max_steps >= 1000` and stderr is
      a terminal); `False` disables it.
    - `checkpoint`, `checkpoint_every`: write params, optimiser state, step and loss history every
      `checkpoint_every` steps (atomically, keeping the file's permissions). With `resume=True` an
      existing checkpoint of the same run is continued and the result is identical to an uninterrupted
      run; a checkpoint of a different run (other data, optimiser, loss, start, key, steps, batch size
      or parameter structure: the header's fingerprint) or a corrupt one (checksum) is an error naming
      what differs. A file at `checkpoint` that is not an mmljax checkpoint is never overwritten.
    - `callback`: called on the host as `callback(step, loss)` after every chunk (every
      `checkpoint_every` steps with a checkpoint, else at most 100 times); raising aborts the run.
    - `mesh`: a `jax.sharding.Mesh` whose first axis splits each mini-batch over devices, parameters
      replicated (`mmljax.distributed.place_rows`, `shard_batches`); the result equals the
      single-device run for the same key to float64 rounding.
    - `history_size`: the most step losses kept in `history` (default 10⁶).
    - Deprecated names: `steps` (`max_steps`), `data` (`args`), `seed` (`key=jax.random.PRNGKey(seed)`).

    **Returns:** an `OptimizeResult`: `loss` and `grad_norm` on the full `args` at the end,
    `history` the loss of every step (mini-batch losses with `batch_size`), `status` CONVERGED /
    MAX_STEPS (DIVERGED inside transformations).

    **Raises:** (eager calls) `DivergenceError` naming the step and the last finite loss when a loss,
    gradient or parameter becomes non-finite (parameters stay at the last finite step, available as
    `error.params`); `ValueError`/`TypeError` for bad arguments and mismatched or corrupt checkpoints.
    """
    where = "minimize"
    max_steps = _renamed(where, "max_steps", max_steps, "steps", steps)
    args = _renamed(where, "args", args, "data", data)
    if seed is not None:
        key = _renamed(where, "key", key, "seed", jax.random.PRNGKey(check_int(seed, where, "seed", minimum=0)))
    if max_steps is None:
        raise TypeError(f"{where}: missing the number of updates, max_steps=")
    max_steps = min(check_int(max_steps, where, "max_steps", minimum=0), MAX_STEPS_CAP)
    checkpoint_every = check_int(checkpoint_every, where, "checkpoint_every", minimum=1)
    history_size = check_int(history_size, where, "history_size", minimum=1)
    resume = check_bool(resume, where, "resume")
    tol = None if tol is None else check_real(tol, where, "tol", minimum=0.0)
    if progress is not None:
        progress = check_bool(progress, where, "progress")
    key = check_key(key, where)
    if optimizer is None:
        optimizer = optax.adam(1e-3)
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise TypeError(
            f"{where}: optimizer must be an optax GradientTransformation (e.g. optax.adam(1e-3)); "
            f"got {type(optimizer).__name__}"
        )
    check_loss_call(loss, args, where)
    args = check_args(args, where)
    params0 = check_params(params0, where, "params0")
    if callback is not None and not callable(callback):
        raise TypeError(f"{where}: callback must be callable as callback(step, loss); got {type(callback).__name__}")
    n = 0
    if args is not None and batch_size is not None:
        n = _data_size(args, where)
        batch_size = check_int(batch_size, where, "batch_size", minimum=1)
        if batch_size > n:
            raise ValueError(f"{where}: batch_size {batch_size} is larger than the data ({n} examples)")
    elif batch_size is not None:
        raise ValueError(f"{where}: batch_size needs args= (the arrays to draw mini-batches from)")
    has_args = args is not None
    constrain = _no_constraint
    if mesh is not None:
        from ..distributed.training import place_params, place_rows, shard_batches

        params0 = place_params(params0, mesh, where)
        if has_args:
            args = place_rows(args, mesh, where)
            constrain = shard_batches(mesh)

    if is_traced(params0, args, loss, key):
        if checkpoint is not None or callback is not None or progress:
            raise ValueError(
                f"{where}: checkpoint=, callback= and progress= need an eager call; inside "
                f"jax.jit/vmap/grad the run is one compiled loop"
            )
        gtol = _gradient_tol(loss, params0, args, has_args, tol)
        return _whole_run(
            loss,
            optimizer,
            params0,
            args,
            key,
            gtol,
            max_steps=max_steps,
            history_size=history_size,
            n=n,
            batch_size=batch_size,
            has_args=has_args,
        )

    params = jax.tree_util.tree_map(lambda a: jnp.asarray(a) if eqx.is_array_like(a) else a, params0)
    opt_state = optax.with_extra_args_support(optimizer).init(params)
    history = np.full(min(max_steps, history_size), np.nan)
    start = 0
    gtol = _gradient_tol(loss, params, args, has_args, tol)
    fingerprint = None
    if checkpoint is not None:
        checkpoint = os.fspath(checkpoint)
        _checkpoint.refuse_foreign(checkpoint, where)
        fingerprint = {
            "params0": _checkpoint.tree_fingerprint(eqx.filter(params, eqx.is_array)),
            "args": None if args is None else _checkpoint.tree_fingerprint(args),
            "optimizer": _checkpoint.optimizer_identity(optimizer, opt_state),
            "loss": _checkpoint.function_identity(loss),
            "max_steps": max_steps,
            "batch_size": batch_size,
            "tol": tol,
            "key": np.asarray(jax.random.key_data(key)).tolist(),
        }
        if resume and os.path.exists(checkpoint):
            like = {
                "params": params,
                "opt_state": opt_state,
                "step": jnp.asarray(0, jnp.int32),
                "history": np.zeros(history.size),
            }
            saved = _checkpoint.load(checkpoint, fingerprint, like, where)
            params, opt_state, start = saved["params"], saved["opt_state"], int(saved["step"])
            history[:] = np.asarray(saved["history"])

    base = checkpoint_every if checkpoint is not None else max(1, -(-max_steps // 100))
    chunk_len = min(base, _MAX_CHUNK)
    show = progress if progress is not None else (max_steps >= 1000 and sys.stderr.isatty())
    bar = _Progress(show, max_steps, start)
    step = start
    converged_early = False
    last = math.nan
    try:
        while step < max_steps and not converged_early:
            length = min(chunk_len, max_steps - step, base - step % base)
            carry, (losses, dones) = _chunk(
                loss,
                optimizer,
                params,
                opt_state,
                args,
                key,
                jnp.asarray(step, jnp.int32),
                gtol,
                length=length,
                n=n,
                batch_size=batch_size,
                has_args=has_args,
                constrain=constrain,
            )
            params_new, state_new, bad_value = carry.params, carry.opt_state, carry.bad_value
            losses = np.asarray(losses)
            bad_step = int(carry.bad_step)
            if bad_step >= 0:
                _store(history, step, losses[: bad_step - step + 1])
                finite = losses[: bad_step - step]
                if bad_step > step:
                    last, last_step = float(finite[-1]), bad_step - 1
                elif step > 0:
                    last_step = step - 1
                else:
                    last_step = -1
                msg = divergence_message(
                    where,
                    bad_step,
                    float(bad_value),
                    last,
                    last_step,
                    "loss or gradient",
                    "lower the learning rate, clip gradients (optax.clip_by_global_norm) or "
                    "check the loss for overflow",
                )
                raise DivergenceError(
                    msg, step=bad_step, last_finite_loss=last, last_finite_step=last_step, params=params_new
                )
            dones = np.asarray(dones)
            ran = int(np.argmax(dones)) if dones.any() else length  # updates made before tol was met
            _store(history, step, losses[:ran])
            if ran:
                last = float(losses[ran - 1])
            params, opt_state = params_new, state_new
            step += ran
            converged_early = bool(dones.any())
            if checkpoint is not None and (step % checkpoint_every == 0 or step == max_steps or converged_early):
                _checkpoint.save(
                    checkpoint,
                    fingerprint,
                    {
                        "params": params,
                        "opt_state": opt_state,
                        "step": jnp.asarray(step, jnp.int32),
                        "history": history,
                    },
                )
            bar.update(step, last)
            if callback is not None:
                callback(step, last)
    finally:
        bar.close()

    value, gnorm = _full_value_and_grad(loss, params, args, has_args=has_args)
    status = Status.CONVERGED if converged_early else Status.MAX_STEPS
    return OptimizeResult(
        params=params,
        loss=value,
        grad_norm=gnorm,
        steps=step,
        status=status,
        history=jax.device_put(history[: min(step, history.size)]),
        method="optax",
    )


def _store(history: np.ndarray, start: int, values: np.ndarray) -> None:
    end = min(start + values.size, history.size)
    if end > start:
        history[start:end] = values[: end - start]


def _gradient_tol(loss, params, args, has_args: bool, tol: float | None):
    """The absolute gradient-norm threshold `tol · ||grad(params0)||` (-1: never met when `tol` is None)."""
    if tol is None:
        return jnp.asarray(-1.0)
    _, g0 = _full_value_and_grad(loss, params, args, has_args=has_args)
    return tol * g0


class _Progress:
    """A rich progress bar on stderr (or nothing)."""

    def __init__(self, show: bool, total: int, start: int):
        self._progress = None
        if show:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("minimize"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("loss {task.fields[loss]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("minimize", total=total, completed=start, loss="—")

    def update(self, step: int, loss: float) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=step, loss=f"{loss:.6g}")

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


__all__ = ["minimize", "batch_indices", "DEFAULT_HISTORY_SIZE"]
