"""Structure-aware derivative kernels: what autodiff of the plain formula cannot see.

- `least_squares_gradient` and `least_squares_hvp`: the gradient `−Φᵀ(y − Φθ)` and the
  Hessian-vector product `Φᵀ(Φv)` of `½||y − Φθ||²` in **one pass** over `Φ`. The plain formula
  (and `jax.grad` of the loss) reads `Φ` twice — once for `Φθ`, once for `eᵀΦ` — and for a tall
  `Φ` both passes stream it from main memory. Here each block of rows is used twice while it is
  still in cache, so the cost is one streaming read.
- `gram`: `AᵀA` computing only the blocks on and above the diagonal (the symmetric rank-k
  update numpy's BLAS uses): about half the flops of `A.T @ A`.
- `per_example_jacobian` and `gauss_newton_matrix`: Jacobians of a per-example function with
  respect to shared parameters by `vmap` over examples. `jacfwd`/`jacrev` of the batched
  function build a `B × B × P` intermediate instead (GUIDE §6).

All are pure JAX, jit-compatible, and work in float32 and float64 on CPU and GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, ArrayLike, Float

from ._validate import check_choice, check_int, require_callable, require_float_tree
from .derivatives import jacobian
from .layout import ravel_vec, vec

__all__ = [
    "least_squares_gradient",
    "least_squares_hvp",
    "gram",
    "per_example_jacobian",
    "gauss_newton_matrix",
]

# A row block of about this many bytes stays in the per-core L2 cache (1 MiB on the machine the
# benchmarks ran on) between its two uses (Φ_b θ, then e_bᵀ Φ_b); 64 KiB-1 MiB measured within 20%.
_BLOCK_BYTES = 512 * 1024
# Below this size Φ stays in a typical last-level cache between the two passes of the plain formula.
_CACHED_BYTES = 16 * 2**20


def _check_design(Phi: Any, where: str) -> None:
    if jnp.ndim(Phi) != 2:
        raise ValueError(
            f"{where}: Phi must be a 2-D design matrix of shape (n, d); got shape {jnp.shape(Phi)}"
            " — reshape a single feature with Phi[:, None]"
        )
    if not jnp.issubdtype(jnp.result_type(Phi), jnp.floating):
        raise TypeError(f"{where}: Phi must be floating; got dtype {jnp.result_type(Phi)} — use Phi.astype(float)")


def _check_vector(v: Any, n: int, name: str, where: str, hint: str) -> None:
    if jnp.shape(v) != (n,):
        raise ValueError(f"{where}: {name} must have shape ({n},) {hint}; got shape {jnp.shape(v)}")


def _block_rows(n: int, d: int, itemsize: int, block_rows: int | None, where: str) -> int:
    if block_rows is None:
        if jax.default_backend() != "cpu" or n * d * itemsize <= _CACHED_BYTES:
            # Accelerators stream Φ at TB/s and pay a kernel launch per loop step; and a Φ that
            # fits the last-level cache is read from cache twice faster than a loop of small
            # single-threaded products (measured 1.8× slower at 8 MB): one block, the plain formula.
            return n
        return max(8, min(n, _BLOCK_BYTES // max(1, d * itemsize)))
    return min(n, check_int(block_rows, where, "block_rows", minimum=1))


def _row_blocked(Phi: ArrayLike, vecs: tuple[ArrayLike, ...], block: int, step: Callable) -> Array:
    """`Σ_b step(Φ_b, *vecs_b)` over row blocks, one pass over `Φ` (tail block done separately).

    `lax.dynamic_slice` on the original array reads each block in place; slicing `Φ[:m]` and
    reshaping it to `(m/block, block, d)` would first copy the whole matrix.
    """
    n, d = Phi.shape
    full = n // block

    def body(i, acc):
        start = i * block
        Pb = lax.dynamic_slice_in_dim(Phi, start, block, axis=0)
        vb = [lax.dynamic_slice_in_dim(v, start, block, axis=0) for v in vecs]
        return acc + step(Pb, *vb)

    acc = jnp.zeros((d,), Phi.dtype)
    if full:
        acc = lax.fori_loop(0, full, body, acc)
    if full * block < n:
        tail = full * block
        acc = acc + step(Phi[tail:], *(v[tail:] for v in vecs))
    return acc


def least_squares_gradient(
    Phi: Float[ArrayLike, "n d"],
    y: Float[ArrayLike, " n"],
    theta: Float[ArrayLike, " d"],
    *,
    block_rows: int | None = None,
) -> Float[Array, " d"]:
    """Gradient of `½||y − Φθ||²` with respect to `θ`, `−Φᵀ(y − Φθ)`, in one pass over `Φ`.

    **Arguments:** `Phi` the `(n, d)` design matrix; `y` the `(n,)` targets; `theta` the `(d,)`
    parameters; `block_rows` the rows per block (default on CPU: a block of about 512 KiB, so
    that it is still in cache for its second use; all rows — the plain formula — when `Φ` is at
    most 16 MiB or on accelerators).

    **Returns:** the `(d,)` gradient, equal to `jax.grad(lambda t: 0.5 * jnp.sum((y - Phi @ t)**2))(theta)`
    up to rounding (the sum is accumulated block by block). Differentiable and jit-compatible.
    """
    _check_design(Phi, "least_squares_gradient")
    n, d = Phi.shape
    _check_vector(y, n, "y", "least_squares_gradient", "(one target per row of Phi)")
    _check_vector(theta, d, "theta", "least_squares_gradient", "(one parameter per column of Phi)")
    block = _block_rows(n, d, jnp.dtype(Phi.dtype).itemsize, block_rows, "least_squares_gradient")
    return _row_blocked(Phi, (y,), block, lambda Pb, yb: -((yb - Pb @ theta) @ Pb))


def least_squares_hvp(
    Phi: Float[ArrayLike, "n d"], v: Float[ArrayLike, " d"], *, block_rows: int | None = None
) -> Float[Array, " d"]:
    """Hessian-vector product of `½||y − Φθ||²`: `ΦᵀΦ v = Φᵀ(Φv)`, in one pass over `Φ`.

    **Arguments:** `Phi` of shape `(n, d)`; `v` of shape `(d,)`; `block_rows` as in
    `least_squares_gradient`.

    **Returns:** the `(d,)` vector `ΦᵀΦ v` (the Hessian does not depend on `θ` or `y`); the
    `(d, d)` matrix is never formed.
    """
    _check_design(Phi, "least_squares_hvp")
    n, d = Phi.shape
    _check_vector(v, d, "v", "least_squares_hvp", "(one entry per column of Phi)")
    block = _block_rows(n, d, jnp.dtype(Phi.dtype).itemsize, block_rows, "least_squares_hvp")
    return _row_blocked(Phi, (), block, lambda Pb: (Pb @ v) @ Pb)


def _gram_block(d: int) -> int:
    # Measured on a 2-core AVX-512 CPU (jax 0.10): products narrower than ~256 columns run well
    # below peak, so below 384 columns one full product wins; above, blocks of 256 columns.
    return d if d < 384 else 256


def gram(A: Float[ArrayLike, "n d"], *, block: int | None = None) -> Float[Array, "d d"]:
    """`AᵀA` from the blocks on and above the diagonal only (a symmetric rank-k update).

    The columns are split into blocks of `block`; the block row `i` is one matrix product
    `A_iᵀ A[:, i:]`, and the lower triangle is the transpose of the upper one. With `k` blocks the
    work is `(k + 1)/(2k)` of `A.T @ A`.

    **Arguments:** `A` of shape `(n, d)` (for least squares, the design `Φ`, or the residual
    Jacobian `J` for Gauss-Newton); `block` columns per block (default: `d` below 384 columns,
    else 256).

    **Returns:** the symmetric `(d, d)` matrix `AᵀA`, exactly symmetric.
    """
    _check_design(A, "gram")
    n, d = A.shape
    b = _gram_block(d) if block is None else check_int(block, "gram", "block", minimum=1)
    contract_rows = (((0,), (0,)), ((), ()))
    if b >= d:
        G = lax.dot_general(A, A, contract_rows)
        return 0.5 * (G + G.T)
    rows = []
    for s in range(0, d, b):
        e = min(s + b, d)
        blk = lax.dot_general(A[:, s:e], A[:, s:], contract_rows)  # (e - s, d - s)
        rows.append(jnp.pad(blk, ((0, 0), (s, 0))))
    upper = jnp.concatenate(rows, axis=0)
    return jnp.triu(upper) + jnp.triu(upper, 1).T


def per_example_jacobian(f: Callable[..., Any], mode: str = "auto") -> Callable[..., Any]:
    """Jacobian of a per-example function with respect to shared parameters, for a batch.

    **Arguments:** `f(params, *example)` maps parameters (a pytree) and one example (arrays
    without the batch axis) to an output of shape `out_shape`; `mode` as in `mmljax.jacobian`
    ("auto" is reverse mode, i.e. `grad`, for a scalar output).

    **Returns:** a function `(params, *batch)` where every array in `batch` has a leading batch
    axis of length `B`, giving the Jacobian with the structure of `params` and leaves of shape
    `(B,) + out_shape + leaf_shape` (numerator layout per example). This is `vmap` of the
    per-example Jacobian: cost and memory scale with `B·P`, not the `B·B·P` of `jacrev` of the
    batched function.
    """
    require_callable(f, "per_example_jacobian")
    check_choice(mode, "per_example_jacobian", "mode", ("auto", "fwd", "rev"))
    jac = jacobian(f, mode=mode)
    grad = jax.grad(f)

    def per_example(params, *batch):
        if not batch:
            raise TypeError("per_example_jacobian: call it as J(params, *batch) with at least one batched array")
        sizes = {jnp.shape(b)[0] if jnp.ndim(b) else None for b in jax.tree_util.tree_leaves(batch)}
        if len(sizes) != 1 or None in sizes:
            raise ValueError(
                "per_example_jacobian: every batched argument needs the same leading batch axis; "
                f"got leading sizes {sorted(s for s in sizes if s is not None)}"
                + (" and a scalar" if None in sizes else "")
            )
        one = jax.tree_util.tree_map(lambda b: b[0], batch)
        scalar = jnp.shape(jax.eval_shape(f, params, *one)) == ()
        # For a scalar output reverse mode is `grad` itself; `jacrev` would wrap it in a vmap over
        # a one-element basis, which XLA does not always simplify away.
        per = grad if scalar and mode in ("auto", "rev") else jac
        return jax.vmap(per, in_axes=(None,) + (0,) * len(batch))(params, *batch)

    return per_example


def gauss_newton_matrix(f: Callable[..., Any], params: Any, *batch: Any, mode: str = "auto") -> Float[Array, "P P"]:
    """Gauss-Newton matrix `JᵀJ` of a per-example residual function.

    **Arguments:** `f(params, *example)` returns the residual(s) of one example (shape
    `out_shape`); `params` a pytree of `P` numbers in total; `batch` arrays with a leading batch
    axis `B`.

    **Returns:** the `(P, P)` matrix `JᵀJ` where `J` is the `(B·prod(out_shape), P)` Jacobian of all
    residuals, columns in `ravel_vec` order (leaves in tree order, each column-major). `J` is built
    per example (`per_example_jacobian`) and `JᵀJ` by `gram` (one triangle). For
    `f = lambda t, phi, y: y - phi @ t` this is `ΦᵀΦ`.
    """
    require_callable(f, "gauss_newton_matrix")
    check_choice(mode, "gauss_newton_matrix", "mode", ("auto", "fwd", "rev"))
    require_float_tree(params, "gauss_newton_matrix", "params")
    flat, unravel = ravel_vec(params)
    J = per_example_jacobian(lambda p, *ex: vec(f(unravel(p), *ex)), mode=mode)(flat, *batch)
    return gram(J.reshape(-1, flat.shape[0]))


def _flops_gram(n: int, d: int, block: int | None = None) -> float:
    """Multiply-add flops `gram` executes (2 per multiply-add); used by the benchmarks."""
    b = _gram_block(d) if block is None else block
    if b >= d:
        return 2.0 * n * d * d
    return float(sum(2.0 * n * (min(s + b, d) - s) * (d - s) for s in range(0, d, b)))
