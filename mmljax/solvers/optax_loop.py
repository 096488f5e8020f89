"""An optax training loop: mini-batches, a progress bar, and checkpoints a crashed run resumes from.

The loop runs in jit-compiled chunks (`lax.scan` over steps); between chunks the host updates the
progress bar, writes a checkpoint and calls the callback. The mini-batch of step `s` is a pure
function of `(seed, s)` (a hashed permutation per epoch), so a run resumed from a checkpoint takes
exactly the batches, and ends with exactly the parameters, of an uninterrupted one.
"""

from __future__ import annotations

import functools
import io
import json
import math
import os
import sys
from typing import Any, Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._io import atomic_write_bytes
from .._validate import require_callable, require_float_tree
from ._optimize_result import OptimizeResult


_MAGIC = b"MMLJAX-CHECKPOINT-1\n"


def _tree_norm(tree: Any) -> jax.Array:
    leaves = jax.tree_util.tree_leaves(tree)
    return jnp.sqrt(sum(jnp.sum(jnp.abs(leaf) ** 2) for leaf in leaves))


def _tree_finite(tree: Any) -> jax.Array:
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree_util.tree_leaves(tree)]))


def _data_size(data: Any, where: str) -> int:
    leaves = jax.tree_util.tree_leaves(data)
    if not leaves:
        raise ValueError(f"{where}: data has no arrays")
    sizes = {int(jnp.shape(leaf)[0]) if jnp.ndim(leaf) else -1 for leaf in leaves}
    if len(sizes) != 1 or -1 in sizes:
        raise ValueError(f"{where}: every array in data must have the same leading (example) axis; got leading "
                         f"sizes {sorted(sizes)}")
    n = sizes.pop()
    if n == 0:
        raise ValueError(f"{where}: data has 0 examples")
    return n


def _checkpoint_meta(steps: int, batch_size: int, n: int, seed: int, n_params: int) -> dict:
    return {"steps": steps, "batch_size": batch_size, "n_examples": n, "seed": seed, "n_params": n_params}


def _save(path: str, meta: dict, state: Any) -> None:
    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, state)
    atomic_write_bytes(path, _MAGIC + json.dumps(meta).encode() + b"\n" + buf.getvalue())


def _load(path: str, meta: dict, like: Any, where: str) -> Any:
    with open(path, "rb") as fh:
        raw = fh.read()
    if not raw.startswith(_MAGIC):
        raise ValueError(f"{where}: {path} is not an mmljax checkpoint; delete it or pass resume=False")
    head, _, payload = raw[len(_MAGIC):].partition(b"\n")
    try:
        saved = json.loads(head)
    except ValueError:
        raise ValueError(f"{where}: checkpoint {path} has an unreadable header; delete it or pass resume=False") from None
    if saved != meta:
        diff = {k: (saved.get(k), v) for k, v in meta.items() if saved.get(k) != v}
        raise ValueError(f"{where}: checkpoint {path} belongs to a different run (saved vs now: {diff}); "
                         f"delete it or pass resume=False")
    try:
        return eqx.tree_deserialise_leaves(io.BytesIO(payload), like)
    except Exception as e:  # truncated or mismatched payload
        raise ValueError(f"{where}: checkpoint {path} is unreadable ({type(e).__name__}: {e}); delete it or pass "
                         f"resume=False") from None


def _mix32(h: jax.Array) -> jax.Array:
    """murmur3's 32-bit finaliser: a cheap, well-mixing bijection of uint32."""
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def _batch_indices(seed: int, step: jax.Array, n: int, batch_size: int) -> jax.Array:
    """Examples of mini-batch `step`: slice `step % epochs` of a permutation drawn per epoch.

    The permutation sorts hashes of `(seed, epoch, index)`; it compiles much faster than
    `jax.random.permutation` and, like it, depends only on its arguments.
    """
    per_epoch = n // batch_size
    epoch, i = step // per_epoch, step % per_epoch
    salt = _mix32(epoch.astype(jnp.uint32) + _mix32(jnp.uint32(seed & 0xFFFFFFFF)))
    perm = jnp.argsort(_mix32(jnp.arange(n, dtype=jnp.uint32) * jnp.uint32(0x9E3779B1) + salt))
    return jax.lax.dynamic_slice(perm, (i * batch_size,), (batch_size,))


@functools.lru_cache(maxsize=16)
def _make_chunk(loss: Callable, optimizer: optax.GradientTransformation, has_data: bool, n: int,
                batch_size: int | None, seed: int, tol: float | None, length: int):
    """A jit-compiled run of `length` steps. Cached, so repeated runs with the same loss and
    optimiser objects (a resumed run, a sweep) compile once; the data are an argument, not a
    constant baked into the program."""
    optimizer = optax.with_extra_args_support(optimizer)

    def batch_of(data, step):
        if not has_data or batch_size is None:
            return data
        idx = _batch_indices(seed, step, n, batch_size)
        return jax.tree_util.tree_map(lambda a: jnp.take(a, idx, axis=0), data)

    def call(params, batch):
        return loss(params, batch) if has_data else loss(params)

    def chunk(params, opt_state, start, data):
        def body(carry, step):
            params, opt_state, bad_step, bad_value, done = carry
            batch = batch_of(data, step)
            value, grads = jax.value_and_grad(call)(params, batch)
            finite = jnp.isfinite(value) & _tree_finite(grads)
            updates, new_state = optimizer.update(grads, opt_state, params, value=value, grad=grads,
                                                  value_fn=lambda p: call(p, batch))
            new_params = optax.apply_updates(params, updates)
            met = (_tree_norm(grads) <= tol) if tol is not None else jnp.asarray(False)
            move = finite & (bad_step < 0) & ~done & ~met
            keep = lambda new, old: jax.tree_util.tree_map(lambda a, b: jnp.where(move, a, b), new, old)  # noqa: E731
            first_bad = ~finite & (bad_step < 0) & ~done
            bad_step = jnp.where(first_bad, step, bad_step)
            bad_value = jnp.where(first_bad, jnp.where(jnp.isfinite(value), _tree_norm(grads), value), bad_value)
            done = done | (met & finite)
            loss_out = jnp.where((bad_step < 0) | first_bad, value, jnp.nan)
            return (keep(new_params, params), keep(new_state, opt_state), bad_step, bad_value, done), (loss_out, done)

        carry = (params, opt_state, jnp.asarray(-1, jnp.int32), jnp.zeros((), jnp.result_type(float)),
                 jnp.asarray(False))
        steps = start + jnp.arange(length, dtype=jnp.int32)
        return jax.lax.scan(body, carry, steps)

    return jax.jit(chunk)


def _cached(builder: Callable, *args: Any) -> Any:
    """`builder(*args)` through its cache when the arguments are hashable (an equinox module holding
    arrays is not), else built afresh."""
    try:
        hash(args)
    except TypeError:
        return builder.__wrapped__(*args)
    return builder(*args)


@functools.lru_cache(maxsize=16)
def _full_value_and_grad(loss: Callable, has_data: bool):
    return jax.jit(jax.value_and_grad(lambda p, data: loss(p, data) if has_data else loss(p)))


def minimize(
    loss: Callable[..., jax.Array],
    params0: Any,
    optimizer: optax.GradientTransformation | None = None,
    *,
    steps: int,
    batch_size: int | None = None,
    data: Any = None,
    seed: int = 0,
    tol: float | None = None,
    progress: bool | None = None,
    checkpoint: str | os.PathLike | None = None,
    checkpoint_every: int = 1000,
    resume: bool = True,
    callback: Callable[[int, float], Any] | None = None,
    mesh: Any = None,
) -> OptimizeResult:
    """Run an optax optimiser for `steps` updates, optionally on mini-batches, with checkpoints.

    **Arguments:**

    - `loss`: `loss(params)`, or `loss(params, batch)` when `data` is given; returns a scalar.
    - `params0`: starting parameters (pytree of floating arrays).
    - `optimizer`: an optax `GradientTransformation` (default `optax.adam(1e-3)`); optimisers that
      need the loss (e.g. `optax.lbfgs()`) get `value`, `grad` and `value_fn` too.
    - `steps`: number of optimiser updates.
    - `data`, `batch_size`: a pytree of arrays sharing a leading example axis `n`; each step uses
      `batch_size` examples (a fresh permutation each epoch, remainder dropped), or all of them
      when `batch_size` is None.
    - `seed`: seed of the mini-batch permutations.
    - `tol`: stop early once the gradient norm of a step is `<= tol` (meaningful full-batch);
      `converged` reports `grad_norm <= tol` at the end (always False when `tol` is None).
    - `progress`: show a rich progress bar on stderr (default: when `steps >= 1000` and stderr is
      a terminal); `False` disables it.
    - `checkpoint`, `checkpoint_every`: write params, optimiser state, step and loss history every
      `checkpoint_every` steps (atomically: temp file then rename); with `resume=True` an existing
      checkpoint of the same run is continued, and the result is identical to an uninterrupted run.
    - `callback`: called on the host as `callback(step, loss)` after every chunk (every
      `checkpoint_every` steps with a checkpoint, else at most 100 times); raising aborts the run.
    - `mesh`: a `jax.sharding.Mesh` whose first axis splits each mini-batch over devices, parameters
      replicated (`mmljax.distributed.minimize_sharded`); the result equals the single-device run.

    **Returns:** an `OptimizeResult`: `loss` and `grad_norm` on the full data at the end,
    `history` the loss of every step `(steps,)` (mini-batch losses with `batch_size`).

    **Raises:** `DivergenceError` naming the step and the last finite loss when a loss or gradient
    becomes non-finite (parameters stay at the last finite step, available as `error.params`).
    """
    if mesh is not None:
        from ..distributed.training import minimize_sharded

        return minimize_sharded(loss, params0, optimizer, mesh=mesh, steps=steps, batch_size=batch_size, data=data,
                                seed=seed, tol=tol, progress=progress, checkpoint=checkpoint,
                                checkpoint_every=checkpoint_every, resume=resume, callback=callback)
    where = "minimize"
    require_callable(loss, where, "loss")
    require_float_tree(params0, where, "params0")
    steps = positive_int(steps, where, "steps", 0)
    checkpoint_every = positive_int(checkpoint_every, where, "checkpoint_every")
    tol = None if tol is None else nonneg_float(tol, where, "tol")
    if optimizer is None:
        optimizer = optax.adam(1e-3)
    if not (hasattr(optimizer, "init") and hasattr(optimizer, "update")):
        raise TypeError(f"{where}: optimizer must be an optax GradientTransformation (e.g. optax.adam(1e-3)); "
                        f"got {type(optimizer).__name__}")
    n = 0
    if data is not None:
        n = _data_size(data, where)
        if batch_size is not None:
            batch_size = positive_int(batch_size, where, "batch_size")
            if batch_size > n:
                raise ValueError(f"{where}: batch_size {batch_size} is larger than the data ({n} examples)")
    elif batch_size is not None:
        raise ValueError(f"{where}: batch_size needs data= (the arrays to draw mini-batches from)")
    params = jax.tree_util.tree_map(jnp.asarray, params0)
    opt_state = optax.with_extra_args_support(optimizer).init(params)
    history = np.full(steps, np.nan)
    start = 0
    n_params = sum(int(np.size(leaf)) for leaf in jax.tree_util.tree_leaves(params))
    meta = _checkpoint_meta(steps, batch_size or 0, n, int(seed), n_params)
    if checkpoint is not None:
        checkpoint = os.fspath(checkpoint)
        if resume and os.path.exists(checkpoint):
            like = {"params": params, "opt_state": opt_state, "step": jnp.asarray(0, jnp.int32),
                    "history": np.zeros(steps)}
            saved = _load(checkpoint, meta, like, where)
            params, opt_state, start = saved["params"], saved["opt_state"], int(saved["step"])
            history[:start] = np.asarray(saved["history"])[:start]

    chunk_len = checkpoint_every if checkpoint is not None else max(1, -(-steps // 100))
    show = progress if progress is not None else (steps >= 1000 and sys.stderr.isatty())
    bar = _Progress(show, steps, start)
    step = start
    converged_early = False
    try:
        while step < steps and not converged_early:
            length = min(chunk_len, steps - step)
            run = _cached(_make_chunk, loss, optimizer, data is not None, n, batch_size, int(seed), tol, length)
            (params_new, state_new, bad_step, bad_value, _), (losses, dones) = run(
                params, opt_state, jnp.asarray(step, jnp.int32), data)
            losses = np.asarray(losses)
            bad_step = int(bad_step)
            if bad_step >= 0:
                history[step:bad_step + 1] = losses[: bad_step - step + 1]
                raise_divergence(where, bad_step, history, float(bad_value),
                                 "lower the learning rate, clip gradients (optax.clip_by_global_norm) or check the "
                                 "loss for overflow", params=params_new)
            dones = np.asarray(dones)
            ran = int(np.argmax(dones)) if dones.any() else length  # updates made before tol was met
            history[step:step + ran] = losses[:ran]
            params, opt_state = params_new, state_new
            step += ran
            converged_early = bool(dones.any())
            if checkpoint is not None and (step % checkpoint_every == 0 or step == steps or converged_early):
                _save(checkpoint, meta, {"params": params, "opt_state": opt_state,
                                         "step": jnp.asarray(step, jnp.int32), "history": history})
            bar.update(step, float(history[step - 1]) if step else math.nan)
            if callback is not None:
                callback(step, float(history[step - 1]))
    finally:
        bar.close()

    value, grads = _cached(_full_value_and_grad, loss, data is not None)(params, data)
    gnorm = _tree_norm(grads)
    return OptimizeResult(params=params, loss=value, grad_norm=gnorm, steps=step,
                          converged=bool(tol is not None and float(gnorm) <= tol), history=jnp.asarray(history[:step]),
                          method="optax")


class _Progress:
    """A rich progress bar on stderr (or nothing)."""

    def __init__(self, show: bool, total: int, start: int):
        self._progress = None
        if show:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(TextColumn("minimize"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(),
                                      console=Console(stderr=True), transient=False)
            self._progress.start()
            self._task = self._progress.add_task("minimize", total=total, completed=start, loss="—")

    def update(self, step: int, loss: float) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=step, loss=f"{loss:.6g}")

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
