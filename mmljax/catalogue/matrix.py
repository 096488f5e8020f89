"""Matrix-calculus identities (Matrix Cookbook, Petersen & Pedersen, version of November 15, 2012),
stored in mmljax's layout.

Layouts. The Cookbook writes the derivative of a scalar `f` by a matrix `X` as a matrix shaped
like `X` (`[∂f/∂X]_ij = ∂f/∂X_ij`) and the derivative by a vector as a column vector (denominator
layout). mmljax's gradient of a scalar is shaped like its argument, so those results carry over
unchanged. Matrix-valued results (the Cookbook's entrywise `∂(X⁻¹)_kl/∂X_ij`, `∂(XA)_ij/∂X_mn`,
`∂(XᵀBX)/∂X_ij`) are stored as numerator-layout tensors `out_shape + in_shape`
(`J[k, l, i, j] = ∂F_kl/∂X_ij`) or as `vec` matrices `(out.size, in.size)` in column-major order.

Unless a row says otherwise, `X` has independent entries (the Cookbook's standing assumption);
where the Cookbook assumes a symmetric argument (its §2.8.2, or `W = Wᵀ` in eqs. (84)–(88)) the
row says so and its sampler draws one.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax.numpy.linalg import det, inv

from ..layout import commutation_matrix, vec
from ._identity import Identity
from ._samplers import full_column_rank, normal, spd, well_conditioned

COOKBOOK = "Matrix Cookbook"
DET = COOKBOOK + " §2.1 (determinant)"
INV = COOKBOOK + " §2.2 (inverse)"
FORMS = COOKBOOK + " §2.4 (matrices, vectors and scalar forms)"
TRACE = COOKBOOK + " §2.5 (traces)"
NORMS = COOKBOOK + " §2.7 (matrix norms)"
STRUCT = COOKBOOK + " §2.8 (structured matrices)"
KRON = COOKBOOK + " §10.2 (Kronecker product and vec)"
SECOND = "Second order (Hessians)"


def _mpow(X, k: int):
    """`X^k` by repeated products (k >= 0)."""
    out = jnp.eye(X.shape[0], dtype=X.dtype)
    for _ in range(k):
        out = out @ X
    return out


def _scaled(rng, n):
    """A square matrix with spectral radius around 1 (powers stay moderate)."""
    return normal(rng, (n, n)) / np.sqrt(n)


# --- samplers: X first, then the constants -------------------------------------------------------


def _wc(rng, n):
    return well_conditioned(rng, n), ()


def _wc_ab(rng, n):
    return well_conditioned(rng, n), (normal(rng, (n,)), normal(rng, (n,)))


def _wc_AB_square(rng, n):
    return well_conditioned(rng, n), (well_conditioned(rng, n), well_conditioned(rng, n))


def _wc_A(rng, n):
    return well_conditioned(rng, n), (well_conditioned(rng, n),)


def _tall_spdA(rng, n):
    """X (n+2) x n with full column rank; A symmetric positive definite (the Cookbook's (53))."""
    return full_column_rank(rng, n + 2, n), (spd(rng, n + 2),)


def _tall_nonsymA(rng, n):
    """X (n+2) x n; A = SPD + skew, not symmetric, with XᵀAX invertible (its symmetric part is SPD)."""
    S = normal(rng, (n + 2, n + 2))
    return full_column_rank(rng, n + 2, n), (spd(rng, n + 2) + 0.5 * (S - S.T) / np.sqrt(n + 2),)


def _inv_trace_sample(rng, n):
    return well_conditioned(rng, n), (normal(rng, (n + 1, n)), normal(rng, (n, n + 1)))


def _shifted_inverse(rng, n):
    """X small, A well conditioned: X + A stays invertible."""
    return 0.2 * normal(rng, (n, n)) / np.sqrt(n), (well_conditioned(rng, n),)


def _rect_ab(rng, n):
    return normal(rng, (n, n + 1)), (normal(rng, (n,)), normal(rng, (n + 1,)))


def _rect_ba(rng, n):
    return normal(rng, (n, n + 1)), (normal(rng, (n + 1,)), normal(rng, (n,)))


def _rect_A_right(rng, n):
    """X (n+1) x n, A n x (n+2): X A is (n+1) x (n+2)."""
    return normal(rng, (n + 1, n)), (normal(rng, (n, n + 2)),)


def _rect_A_left_T(rng, n):
    """X (n+1) x n, A (n+1) x (n+2): Xᵀ A is n x (n+2)."""
    return normal(rng, (n + 1, n)), (normal(rng, (n + 1, n + 2)),)


def _rect_bc(rng, n):
    return normal(rng, (n + 1, n)), (normal(rng, (n,)), normal(rng, (n,)))


def _rect_bcD(rng, n):
    return normal(rng, (n + 1, n)), (normal(rng, (n,)), normal(rng, (n,)), normal(rng, (n + 1, n + 1)))


def _rect_bcD_affine(rng, n):
    return normal(rng, (n + 1, n)), (normal(rng, (n,)), normal(rng, (n + 1,)), normal(rng, (n + 1, n + 1)))


def _rect_B_left(rng, n):
    return normal(rng, (n + 1, n)), (normal(rng, (n + 1, n + 1)),)


def _rect_B_right(rng, n):
    return normal(rng, (n + 1, n)), (normal(rng, (n, n)),)


def _weighted_A(rng, n):
    """A n x k; x ∈ R^n, s ∈ R^k, W symmetric positive definite (the Cookbook assumes W = Wᵀ)."""
    k = max(n - 1, 1)
    return normal(rng, (n, k)), (normal(rng, (n,)), normal(rng, (k,)), spd(rng, n))


def _square_ab(rng, n):
    return _scaled(rng, n), (normal(rng, (n,)), normal(rng, (n,)))


def _square(rng, n):
    return normal(rng, (n, n)), ()


def _square_scaled(rng, n):
    return _scaled(rng, n), ()


def _square_B(rng, n):
    return normal(rng, (n, n)), (normal(rng, (n, n)),)


def _square_scaled_A(rng, n):
    return _scaled(rng, n), (normal(rng, (n, n)),)


def _rect_A(rng, n):
    """X (n+1) x n and A n x (n+1) (tr(XA) needs XA square)."""
    return normal(rng, (n + 1, n)), (normal(rng, (n, n + 1)),)


def _rect_same(rng, n):
    return normal(rng, (n + 1, n)), (normal(rng, (n + 1, n)),)


def _rect_AB(rng, n):
    """A p x m, X m x n, B n x p with m = n+1, p = n+2."""
    return normal(rng, (n + 1, n)), (normal(rng, (n + 2, n + 1)), normal(rng, (n, n + 2)))


def _rect_AB_T(rng, n):
    """A p x n, Xᵀ n x m, B m x p: tr(AXᵀB) with X m x n."""
    return normal(rng, (n + 1, n)), (normal(rng, (n + 2, n)), normal(rng, (n + 1, n + 2)))


def _rect_AB_XBX(rng, n):
    """X m x n, A n x m, B n x m: tr(AXBX)."""
    return normal(rng, (n + 1, n)), (normal(rng, (n, n + 1)), normal(rng, (n, n + 1)))


def _rect_BC(rng, n):
    return normal(rng, (n + 1, n)), (normal(rng, (n + 1, n + 1)), normal(rng, (n, n)))


def _rect_ABC(rng, n):
    """X m x n, A p x m, B n x n, C m x p: tr(AXBXᵀC)."""
    m, p = n + 1, n + 2
    return normal(rng, (m, n)), (normal(rng, (p, m)), normal(rng, (n, n)), normal(rng, (m, p)))


def _rect_affine(rng, n):
    """A p x m, X m x n, B n x q, C p x q."""
    m, p, q = n + 1, n + 2, max(n - 1, 1)
    return normal(rng, (m, n)), (normal(rng, (p, m)), normal(rng, (n, q)), normal(rng, (p, q)))


def _rect(rng, n):
    return normal(rng, (n + 1, n)), ()


def _Ab(rng, n):
    return normal(rng, (n,)), (normal(rng, (n + 2, n)), normal(rng, (n + 2,)))


def _xB(rng, n):
    return normal(rng, (n,)), (normal(rng, (n, n)),)


def _spd_only(rng, n):
    return spd(rng, n), ()


def _upper_spd(rng, n):
    """The free entries of a symmetric positive-definite X: its upper triangle (lower part is noise
    that the function ignores)."""
    return spd(rng, n) + np.tril(normal(rng, (n, n)), -1), ()


def _symmetrise_upper(U):
    """The symmetric matrix whose upper triangle is U's."""
    return jnp.triu(U) + jnp.triu(U, 1).T


IDENTITIES = (
    # ---- determinants -----------------------------------------------------------------------
    Identity(
        name="∂det X/∂X = det(X) X⁻ᵀ",
        source=DET + " eq. (49)",
        domain="matrix",
        f=lambda X: det(X),
        derivative=lambda X: det(X) * inv(X).T,
        sample=_wc,
    ),
    Identity(
        name="∂det(AXB)/∂X = det(AXB) X⁻ᵀ",
        source=DET + " eq. (51)",
        domain="matrix",
        f=lambda X, A, B: det(A @ X @ B),
        derivative=lambda X, A, B: det(A @ X @ B) * inv(X).T,
        sample=_wc_AB_square,
    ),
    Identity(
        name="∂det(XᵀAX)/∂X = 2 det(XᵀAX) X⁻ᵀ (X square)",
        source=DET + " eq. (52)",
        domain="matrix",
        f=lambda X, A: det(X.T @ A @ X),
        derivative=lambda X, A: 2 * det(X.T @ A @ X) * inv(X).T,
        sample=_wc_A,
    ),
    Identity(
        name="∂det(XᵀAX)/∂X = 2 det(XᵀAX) AX(XᵀAX)⁻¹ (X tall, A symmetric)",
        source=DET + " eq. (53)",
        domain="matrix",
        f=lambda X, A: det(X.T @ A @ X),
        derivative=lambda X, A: 2 * det(X.T @ A @ X) * A @ X @ inv(X.T @ A @ X),
        sample=_tall_spdA,
        note="the Cookbook assumes A = Aᵀ here; the sampler draws A symmetric positive definite",
    ),
    Identity(
        name="∂det(XᵀAX)/∂X = det(XᵀAX)(AX(XᵀAX)⁻¹ + AᵀX(XᵀAᵀX)⁻¹) (X tall, any A)",
        source=DET + " eq. (54)",
        domain="matrix",
        f=lambda X, A: det(X.T @ A @ X),
        derivative=lambda X, A: det(X.T @ A @ X) * (A @ X @ inv(X.T @ A @ X) + A.T @ X @ inv(X.T @ A.T @ X)),
        sample=_tall_nonsymA,
    ),
    Identity(
        name="∂ln|det X|/∂X = X⁻ᵀ",
        source=DET + " eq. (57)",
        domain="matrix",
        f=lambda X: jnp.linalg.slogdet(X)[1],
        derivative=lambda X: inv(X).T,
        sample=_wc,
    ),
    Identity(
        name="∂ln det X/∂X = X⁻¹ at symmetric positive-definite X (all n² entries free)",
        source=DET + " eq. (57) at X = Xᵀ ≻ 0",
        domain="matrix",
        f=lambda X: jnp.linalg.slogdet(X)[1],
        derivative=lambda X: inv(X),
        sample=_spd_only,
        note="differentiating w.r.t. all n² entries, X⁻ᵀ = X⁻¹ at a symmetric X; the Cookbook's "
        "2X⁻¹ − (X⁻¹ ∘ I) (§2.8.2) is the derivative w.r.t. the n(n+1)/2 free entries (next row)",
    ),
    Identity(
        name="∂ln det X/∂X = 2X⁻¹ − (X⁻¹ ∘ I) for symmetric X (free upper-triangular entries)",
        source=COOKBOOK + " §2.8.2 (symmetric matrices) eq. (141)",
        domain="matrix",
        f=lambda U: jnp.linalg.slogdet(_symmetrise_upper(U))[1],
        derivative=lambda U: jnp.triu(2 * inv(_symmetrise_upper(U)) - jnp.diag(jnp.diag(inv(_symmetrise_upper(U))))),
        sample=_upper_spd,
        note="X = sym(U) takes its n(n+1)/2 free entries from U's upper triangle; mmljax's gradient "
        "w.r.t. U is the Cookbook's symmetric-structure result on and above the diagonal, 0 below",
    ),
    Identity(
        name="∂det(Xᵏ)/∂X = k det(Xᵏ) X⁻ᵀ (k = 3)",
        source=DET + " eq. (58)",
        domain="matrix",
        f=lambda X: det(_mpow(X, 3)),
        derivative=lambda X: 3 * det(_mpow(X, 3)) * inv(X).T,
        sample=_wc,
    ),
    # ---- inverses ---------------------------------------------------------------------------
    Identity(
        name="d vec(X⁻¹)/d vec X = −(X⁻ᵀ ⊗ X⁻¹)",
        source=INV + " eq. (59) with (520)",
        domain="matrix",
        f=lambda X: inv(X),
        derivative=lambda X: -jnp.kron(inv(X).T, inv(X)),
        layout="vec",
        sample=_wc,
        note="the Cookbook's ∂X⁻¹ = −X⁻¹(∂X)X⁻¹, vectorised by vec(AXB) = (Bᵀ ⊗ A) vec X",
    ),
    Identity(
        name="∂(X⁻¹)_kl/∂X_ij = −(X⁻¹)_ki (X⁻¹)_jl (4-index tensor)",
        source=INV + " eq. (60)",
        domain="matrix",
        f=lambda X: inv(X),
        derivative=lambda X: -jnp.einsum("ki,jl->klij", inv(X), inv(X)),
        sample=_wc,
    ),
    Identity(
        name="∂aᵀX⁻¹b/∂X = −X⁻ᵀabᵀX⁻ᵀ",
        source=INV + " eq. (61)",
        domain="matrix",
        f=lambda X, a, b: a @ inv(X) @ b,
        derivative=lambda X, a, b: -inv(X).T @ jnp.outer(a, b) @ inv(X).T,
        sample=_wc_ab,
    ),
    Identity(
        name="∂det(X⁻¹)/∂X = −det(X⁻¹) X⁻ᵀ",
        source=INV + " eq. (62)",
        domain="matrix",
        f=lambda X: det(inv(X)),
        derivative=lambda X: -det(inv(X)) * inv(X).T,
        sample=_wc,
    ),
    Identity(
        name="∂tr(AX⁻¹B)/∂X = −(X⁻¹BAX⁻¹)ᵀ",
        source=INV + " eq. (63); §2.5 eq. (124)",
        domain="matrix",
        f=lambda X, A, B: jnp.trace(A @ inv(X) @ B),
        derivative=lambda X, A, B: -(inv(X) @ B @ A @ inv(X)).T,
        sample=_inv_trace_sample,
    ),
    Identity(
        name="∂tr((X + A)⁻¹)/∂X = −((X + A)⁻¹(X + A)⁻¹)ᵀ",
        source=INV + " eq. (64)",
        domain="matrix",
        f=lambda X, A: jnp.trace(inv(X + A)),
        derivative=lambda X, A: -(inv(X + A) @ inv(X + A)).T,
        sample=_shifted_inverse,
    ),
    # ---- linear, quadratic and cubic forms ----------------------------------------------------
    Identity(
        name="∂aᵀXb/∂X = abᵀ",
        source=FORMS + " eq. (70)",
        domain="matrix",
        f=lambda X, a, b: a @ X @ b,
        derivative=lambda X, a, b: jnp.outer(a, b),
        sample=_rect_ab,
    ),
    Identity(
        name="∂aᵀXᵀb/∂X = baᵀ",
        source=FORMS + " eq. (71)",
        domain="matrix",
        f=lambda X, a, b: a @ X.T @ b,
        derivative=lambda X, a, b: jnp.outer(b, a),
        sample=_rect_ba,
    ),
    Identity(
        name="∂(XA)_ij/∂X_mn = δ_im A_nj (4-index tensor)",
        source=FORMS + " eq. (74)",
        domain="matrix",
        f=lambda X, A: X @ A,
        derivative=lambda X, A: jnp.einsum("im,nj->ijmn", jnp.eye(X.shape[0]), A),
        sample=_rect_A_right,
    ),
    Identity(
        name="∂(XᵀA)_ij/∂X_mn = δ_in A_mj (4-index tensor)",
        source=FORMS + " eq. (75)",
        domain="matrix",
        f=lambda X, A: X.T @ A,
        derivative=lambda X, A: jnp.einsum("in,mj->ijmn", jnp.eye(X.shape[1]), A),
        sample=_rect_A_left_T,
    ),
    Identity(
        name="∂bᵀXᵀXc/∂X = X(bcᵀ + cbᵀ)",
        source=FORMS + " eq. (77)",
        domain="matrix",
        f=lambda X, b, c: b @ X.T @ X @ c,
        derivative=lambda X, b, c: X @ (jnp.outer(b, c) + jnp.outer(c, b)),
        sample=_rect_bc,
    ),
    Identity(
        name="d vec(XᵀBX)/d vec X = I ⊗ XᵀB + ((BX)ᵀ ⊗ I) K",
        source=FORMS + " eq. (80) with (520)",
        domain="matrix",
        f=lambda X, B: X.T @ B @ X,
        derivative=lambda X, B: (
            jnp.kron(jnp.eye(X.shape[1]), X.T @ B)
            + jnp.kron((B @ X).T, jnp.eye(X.shape[1])) @ commutation_matrix(*X.shape, dtype=X.dtype)
        ),
        layout="vec",
        sample=_rect_B_left,
        note="the Cookbook's entrywise XᵀBJⁱʲ + JʲⁱBX, vectorised; K vec X = vec Xᵀ is the commutation matrix",
    ),
    Identity(
        name="∂bᵀXᵀDXc/∂X = DᵀXbcᵀ + DXcbᵀ",
        source=FORMS + " eq. (82)",
        domain="matrix",
        f=lambda X, b, c, D: b @ X.T @ D @ X @ c,
        derivative=lambda X, b, c, D: D.T @ X @ jnp.outer(b, c) + D @ X @ jnp.outer(c, b),
        sample=_rect_bcD,
    ),
    Identity(
        name="∂(Xb + c)ᵀD(Xb + c)/∂X = (D + Dᵀ)(Xb + c)bᵀ",
        source=FORMS + " eq. (83)",
        domain="matrix",
        f=lambda X, b, c, D: (X @ b + c) @ D @ (X @ b + c),
        derivative=lambda X, b, c, D: jnp.outer((D + D.T) @ (X @ b + c), b),
        sample=_rect_bcD_affine,
    ),
    Identity(
        name="∂/∂A (x − As)ᵀW(x − As) = −2W(x − As)sᵀ, W symmetric",
        source=FORMS + " eq. (88)",
        domain="matrix",
        f=lambda A, x, s, W: (x - A @ s) @ W @ (x - A @ s),
        derivative=lambda A, x, s, W: -2 * jnp.outer(W @ (x - A @ s), s),
        sample=_weighted_A,
        note="the Cookbook assumes W = Wᵀ; the sampler draws W symmetric positive definite",
    ),
    Identity(
        name="cubic form ∂aᵀX³b/∂X = Σ_{r=0}^{2} (Xʳ)ᵀabᵀ(X²⁻ʳ)ᵀ",
        source=FORMS + " eq. (91), n = 3",
        domain="matrix",
        f=lambda X, a, b: a @ _mpow(X, 3) @ b,
        derivative=lambda X, a, b: sum(_mpow(X, r).T @ jnp.outer(a, b) @ _mpow(X, 2 - r).T for r in range(3)),
        sample=_square_ab,
    ),
    Identity(
        name="∂(X³)_kl/∂X_ij = Σ_r (Xʳ Jⁱʲ X²⁻ʳ)_kl (4-index tensor)",
        source=FORMS + " eq. (90), n = 3",
        domain="matrix",
        f=lambda X: _mpow(X, 3),
        derivative=lambda X: sum(jnp.einsum("ki,jl->klij", _mpow(X, r), _mpow(X, 2 - r)) for r in range(3)),
        sample=_square_scaled,
    ),
    # ---- traces -------------------------------------------------------------------------------
    Identity(
        name="∂tr(X)/∂X = I",
        source=TRACE + " eq. (99)",
        domain="matrix",
        f=lambda X: jnp.trace(X),
        derivative=lambda X: jnp.eye(X.shape[0]),
        sample=_square,
    ),
    Identity(
        name="∂tr(AX)/∂X = ∂tr(XA)/∂X = Aᵀ",
        source=TRACE + " eq. (100)",
        domain="matrix",
        f=lambda X, A: jnp.trace(A @ X),
        derivative=lambda X, A: A.T,
        sample=_rect_A,
    ),
    Identity(
        name="∂tr(AXB)/∂X = AᵀBᵀ",
        source=TRACE + " eq. (101)",
        domain="matrix",
        f=lambda X, A, B: jnp.trace(A @ X @ B),
        derivative=lambda X, A, B: A.T @ B.T,
        sample=_rect_AB,
    ),
    Identity(
        name="∂tr(AXᵀB)/∂X = BA",
        source=TRACE + " eq. (102)",
        domain="matrix",
        f=lambda X, A, B: jnp.trace(A @ X.T @ B),
        derivative=lambda X, A, B: B @ A,
        sample=_rect_AB_T,
    ),
    Identity(
        name="∂tr(XᵀA)/∂X = A",
        source=TRACE + " eq. (103)",
        domain="matrix",
        f=lambda X, A: jnp.trace(X.T @ A),
        derivative=lambda X, A: A,
        sample=_rect_same,
    ),
    Identity(
        name="∂tr(X²)/∂X = 2Xᵀ",
        source=TRACE + " eq. (106)",
        domain="matrix",
        f=lambda X: jnp.trace(X @ X),
        derivative=lambda X: 2 * X.T,
        sample=_square,
    ),
    Identity(
        name="∂tr(X²B)/∂X = (XB + BX)ᵀ",
        source=TRACE + " eq. (107)",
        domain="matrix",
        f=lambda X, B: jnp.trace(X @ X @ B),
        derivative=lambda X, B: (X @ B + B @ X).T,
        sample=_square_B,
    ),
    Identity(
        name="∂tr(XᵀBX)/∂X = BX + BᵀX",
        source=TRACE + " eq. (108)",
        domain="matrix",
        f=lambda X, B: jnp.trace(X.T @ B @ X),
        derivative=lambda X, B: B @ X + B.T @ X,
        sample=_rect_B_left,
    ),
    Identity(
        name="∂tr(XBXᵀ)/∂X = XBᵀ + XB",
        source=TRACE + " eq. (111)",
        domain="matrix",
        f=lambda X, B: jnp.trace(X @ B @ X.T),
        derivative=lambda X, B: X @ B.T + X @ B,
        sample=_rect_B_right,
    ),
    Identity(
        name="∂tr(AXBX)/∂X = AᵀXᵀBᵀ + BᵀXᵀAᵀ",
        source=TRACE + " eq. (114)",
        domain="matrix",
        f=lambda X, A, B: jnp.trace(A @ X @ B @ X),
        derivative=lambda X, A, B: A.T @ X.T @ B.T + B.T @ X.T @ A.T,
        sample=_rect_AB_XBX,
    ),
    Identity(
        name="∂tr(XᵀBXC)/∂X = BXC + BᵀXCᵀ",
        source=TRACE + " eq. (117)",
        domain="matrix",
        f=lambda X, B, C: jnp.trace(X.T @ B @ X @ C),
        derivative=lambda X, B, C: B @ X @ C + B.T @ X @ C.T,
        sample=_rect_BC,
    ),
    Identity(
        name="∂tr(AXBXᵀC)/∂X = AᵀCᵀXBᵀ + CAXB",
        source=TRACE + " eq. (118)",
        domain="matrix",
        f=lambda X, A, B, C: jnp.trace(A @ X @ B @ X.T @ C),
        derivative=lambda X, A, B, C: A.T @ C.T @ X @ B.T + C @ A @ X @ B,
        sample=_rect_ABC,
    ),
    Identity(
        name="∂tr[(AXB + C)(AXB + C)ᵀ]/∂X = 2Aᵀ(AXB + C)Bᵀ",
        source=TRACE + " eq. (119)",
        domain="matrix",
        f=lambda X, A, B, C: jnp.sum((A @ X @ B + C) ** 2),
        derivative=lambda X, A, B, C: 2 * A.T @ (A @ X @ B + C) @ B.T,
        sample=_rect_affine,
    ),
    Identity(
        name="∂tr(X ⊗ X)/∂X = ∂tr(X)²/∂X = 2 tr(X) I",
        source=TRACE + " eq. (120)",
        domain="matrix",
        f=lambda X: jnp.trace(jnp.kron(X, X)),
        derivative=lambda X: 2 * jnp.trace(X) * jnp.eye(X.shape[0]),
        sample=_square,
        medium_sizes=(8, 12, 16),
        note="X ⊗ X has n⁴ entries: medium sizes stop at 16 (finite differences build it n² times)",
    ),
    Identity(
        name="∂tr(Xᵏ)/∂X = k (Xᵏ⁻¹)ᵀ (k = 4)",
        source=TRACE + " eq. (121)",
        domain="matrix",
        f=lambda X: jnp.trace(_mpow(X, 4)),
        derivative=lambda X: 4 * _mpow(X, 3).T,
        sample=_square_scaled,
    ),
    Identity(
        name="∂tr(AXᵏ)/∂X = Σ_{r=0}^{k−1} (Xʳ A Xᵏ⁻ʳ⁻¹)ᵀ (k = 3)",
        source=TRACE + " eq. (122)",
        domain="matrix",
        f=lambda X, A: jnp.trace(A @ _mpow(X, 3)),
        derivative=lambda X, A: sum((_mpow(X, r) @ A @ _mpow(X, 2 - r)).T for r in range(3)),
        sample=_square_scaled_A,
    ),
    # ---- norms --------------------------------------------------------------------------------
    Identity(
        name="∂||X||_F²/∂X = ∂tr(XᵀX)/∂X = 2X",
        source=NORMS + " eq. (132); §2.5 eq. (115)",
        domain="matrix",
        f=lambda X: jnp.sum(X**2),
        derivative=lambda X: 2 * X,
        sample=_rect,
    ),
    # ---- Kronecker and vec --------------------------------------------------------------------
    Identity(
        name="d vec(AXB) / d vec X = Bᵀ ⊗ A",
        source=KRON + " eq. (520); Lecture 2 (vec trick)",
        domain="matrix",
        f=lambda X, A, B: A @ X @ B,
        derivative=lambda X, A, B: jnp.kron(B.T, A),
        layout="vec",
        sample=lambda rng, n: (normal(rng, (n, n + 1)), (normal(rng, (n + 2, n)), normal(rng, (n + 1, max(n - 1, 1))))),
    ),
    Identity(
        name="d vec(Xᵀ)/d vec X = K (commutation matrix)",
        source="Magnus & Neudecker, Matrix Differential Calculus (3rd ed.) §3.7 (commutation matrix)",
        domain="matrix",
        f=lambda X: X.T,
        derivative=lambda X: commutation_matrix(*X.shape, dtype=X.dtype),
        layout="vec",
        sample=_rect,
        note="K_mn vec(X) = vec(Xᵀ) for X m x n; checks mmljax.commutation_matrix",
    ),
    Identity(
        name="∂tr(AᵀX)/∂vec X = vec(A)ᵀ (a 1 x mn row)",
        source=COOKBOOK + " §10.2.2 eq. (521): tr(AᵀB) = vec(A)ᵀ vec(B)",
        domain="matrix",
        f=lambda X, A: jnp.trace(A.T @ X),
        derivative=lambda X, A: vec(A)[None, :],
        layout="vec",
        sample=_rect_same,
    ),
    # ---- second order -------------------------------------------------------------------------
    Identity(
        name="Hessian of xᵀBx = B + Bᵀ",
        source=SECOND + ": Cookbook §2.4.4 eq. (98); Lecture 1.5",
        domain="matrix",
        f=lambda x, B: x @ B @ x,
        derivative=lambda x, B: B + B.T,
        order=2,
        sample=_xB,
    ),
    Identity(
        name="Hessian of ||Ax − b||² = 2AᵀA",
        source=SECOND + ": Cookbook eq. (78) differentiated again",
        domain="matrix",
        f=lambda x, A, b: jnp.sum((A @ x - b) ** 2),
        derivative=lambda x, A, b: 2 * A.T @ A,
        order=2,
        sample=_Ab,
    ),
    Identity(
        name="Hessian of ln|det X| (vec) = −K (X⁻ᵀ ⊗ X⁻¹)",
        source=SECOND + ": Cookbook eqs. (57), (59), (520)",
        domain="matrix",
        f=lambda X: jnp.linalg.slogdet(X)[1],
        derivative=lambda X: -commutation_matrix(*X.shape, dtype=X.dtype) @ jnp.kron(inv(X).T, inv(X)),
        order=2,
        layout="vec",
        sample=_wc,
        note="d vec(X⁻ᵀ) = K d vec(X⁻¹) = −K (X⁻ᵀ ⊗ X⁻¹) d vec X",
    ),
    Identity(
        name="Hessian of tr(XᵀBX) (vec) = I ⊗ (B + Bᵀ)",
        source=SECOND + ": Cookbook eqs. (108), (520)",
        domain="matrix",
        f=lambda X, B: jnp.trace(X.T @ B @ X),
        derivative=lambda X, B: jnp.kron(jnp.eye(X.shape[1]), B + B.T),
        order=2,
        layout="vec",
        sample=_rect_B_left,
    ),
    Identity(
        name="Hessian of bᵀXᵀDXc (vec) = cbᵀ ⊗ Dᵀ + bcᵀ ⊗ D",
        source=SECOND + ": Cookbook eqs. (82), (520)",
        domain="matrix",
        f=lambda X, b, c, D: b @ X.T @ D @ X @ c,
        derivative=lambda X, b, c, D: jnp.kron(jnp.outer(c, b), D.T) + jnp.kron(jnp.outer(b, c), D),
        order=2,
        layout="vec",
        sample=_rect_bcD,
    ),
)
