"""Draws docs/assets/layouts.png, the figure of mmljax's layouts on the Conventions page.

Run `python docs/assets/layouts.py` after changing it and commit the PNG. The numbers drawn are
computed with mmljax itself (`vec`, `ravel_vec`, `jacobian`), so the figure shows what the code does.
"""

from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import FancyArrowPatch, Rectangle

import mmljax as mj

OUT = Path(__file__).with_name("layouts.png")
C_IN, C_OUT, C_A, C_B = "#4c72b0", "#dd8452", "#55a868", "#c44e52"


def cell(ax, x, y, text, color, w=1.0, h=1.0, alpha=0.25, fontsize=10):
    ax.add_patch(Rectangle((x, y), w, h, facecolor=color, alpha=alpha, edgecolor="black", lw=0.8))
    ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=fontsize)


def jacobian_panel(ax):
    """J = df/dx for f: R³ -> R²: rows are outputs, columns inputs (numerator layout)."""
    A = jnp.array([[1.0, 2.0, 0.0], [0.0, 1.0, 3.0]])
    J = np.asarray(mj.jacobian(lambda x: A @ x)(jnp.ones(3)))
    for m in range(2):
        for n in range(3):
            cell(ax, n, 1 - m, f"∂f{m + 1}/∂x{n + 1}\n= {J[m, n]:g}", C_OUT, fontsize=9)
    for n in range(3):
        cell(ax, n, 2.4, f"x{n + 1}", C_IN, h=0.6)
    for m in range(2):
        cell(ax, -1.0, 1 - m, f"f{m + 1}", C_OUT, w=0.7)
    ax.set_title("jacobian(f)(x): shape out + in\nJ[m, n] = ∂f_m/∂x_n  (f: R³ → R², J is 2 × 3)", fontsize=10)
    ax.set_xlim(-1.2, 3.2)
    ax.set_ylim(-0.3, 3.3)


def vec_panel(ax):
    """vec(X) stacks the columns of X: element k of vec(X) is drawn in X at its place."""
    X = jnp.arange(1.0, 7.0).reshape(2, 3)  # [[1, 2, 3], [4, 5, 6]]
    v = np.asarray(mj.vec(X))
    order = {float(val): k for k, val in enumerate(v)}
    for i in range(2):
        for j in range(3):
            val = float(X[i, j])
            cell(ax, j, 1 - i + 1.5, f"X[{i},{j}]={val:g}\nvec #{order[val]}", C_A, fontsize=8)
    for k, val in enumerate(v):
        cell(ax, k * 0.75 - 0.6, 0, f"{val:g}", C_A, w=0.75, h=0.7)
    for j in range(3):  # arrows down each column
        ax.add_patch(FancyArrowPatch((j + 0.1, 3.4), (j + 0.1, 1.6), arrowstyle="->", mutation_scale=12, lw=1.2))
    ax.set_title("vec(X): column-major, vec(X) == X.T.ravel()\nX is 2 × 3; vec(X) = [1, 4, 2, 5, 3, 6]", fontsize=10)
    ax.set_xlim(-0.8, 3.9)
    ax.set_ylim(-0.3, 3.6)


def ravel_panel(ax):
    """ravel_vec of a pytree: leaves in tree order, each leaf column-major."""
    params = {"A": jnp.array([[1.0, 3.0], [2.0, 4.0]]), "b": jnp.array([5.0, 6.0])}
    flat, _ = mj.ravel_vec(params)
    colors = [C_A] * 4 + [C_B] * 2
    for i in range(2):
        for j in range(2):
            cell(ax, j, 2.2 - i, f"A[{i},{j}]={float(params['A'][i, j]):g}", C_A, fontsize=8)
    for i in range(2):
        cell(ax, 2.6, 2.2 - i, f"b[{i}]={float(params['b'][i]):g}", C_B, fontsize=8)
    for k, (val, c) in enumerate(zip(np.asarray(flat), colors)):
        cell(ax, k * 0.62, 0, f"{val:g}", c, w=0.62, h=0.7)
    ax.text(1.2, 0.85, "vec(A)", ha="center", fontsize=9)
    ax.text(3.1, 0.85, "b", ha="center", fontsize=9)
    ax.set_title(
        "ravel_vec({'A': A, 'b': b}): leaves in tree order,\neach column-major  →  [1, 2, 3, 4, 5, 6]", fontsize=10
    )
    ax.set_xlim(-0.3, 3.9)
    ax.set_ylim(-0.3, 3.6)


def main():
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.8))
    for panel, ax in zip((jacobian_panel, vec_panel, ravel_panel), axes):
        panel(ax)
        ax.set_aspect("equal")
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
