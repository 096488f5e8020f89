"""The model families of the lectures as pure functions `(params, inputs) -> outputs`.

- `linear`: `f(x) = Θᵀx + b` (and the scalar model `a·x`);
- `basis`: feature-basis regression `f(x) = Θᵀφ(x)` (polynomial, RBF, Fourier, learned `σ(Ax + b)`);
- `mlp`: deep regression `f_l = σ(A_l f_{l−1} + b_l)` with a final linear layer.

Each module has `init`, `apply`, `hand_gradient` (of `½ Σ ||y_n − f(x_n)||²`, written by hand)
and `hand_jacobian` (per-example, `(n·k, P)`); `linear` and `basis` also `hand_hessian`, `mlp`
`hand_gauss_newton`. Flat parameter order is always `mmljax.ravel_vec(params)`.
"""

from . import activations as activations
from . import basis as basis
from . import linear as linear
from . import mlp as mlp
