"""Model-family checks (linear, feature-basis, MLP): hand gradients, Hessians and per-example
Jacobians against autodiff and finite differences. Rows are added by the models issue."""

IDENTITIES = ()
