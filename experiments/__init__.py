"""Research experiments: the lectures' studies as reproducible scripts (public API only).

Run one with `python -m experiments NAME [--quick] [--out DIR] [--seed S] [--device cpu|gpu]`
or `python experiments/NAME.py ...`; each writes PNG figures and `results.json` to
`results/NAME/` by default. See `experiments/README.md`.
"""

EXPERIMENTS = ("curve_fitting", "loss_landscape", "critical_points", "deep_regression", "derivative_accuracy")
