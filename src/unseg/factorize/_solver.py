"""Batched NMF solvers on torch tensors: validated input in, factors out.

Every item of a batch is its own problem; all items advance together through batched tensor
operations (``bmm``), on the device and in the dtype of the input. The result of an item does not
depend on the batch it is in: an item stops at its own convergence and keeps its own step sizes.

Factors are kept as rows: ``Wt`` is ``(B, k, N)`` (``W`` transposed) and ``H`` is ``(B, k, C)``,
so that the update of either factor is the same row-wise coordinate descent (HALS).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

# One outer iteration of the free mode updates W, then H, each with this many HALS sweeps: the
# products with X cost far more than a sweep, so several sweeps per product pay off.
INNER_SWEEPS = 3
# Extrapolation with restarts (Ang & Gillis 2019, "Accelerating nonnegative matrix factorization
# algorithms using extrapolation"): initial step, its growth on success, the growth of its cap,
# and its shrink factor when the loss goes up.
BETA_START = 0.5
BETA_GROW = 1.05
BETA_CAP_GROW = 1.01
BETA_SHRINK = 1.5
# Convergence is judged on the change of the loss over this many iterations.
WINDOW = 5

State = dict[str, torch.Tensor]
# One iteration: state -> (loss per item, the factors to report for each item at this loss).
Step = Callable[[State], tuple[torch.Tensor, tuple[torch.Tensor, ...]]]


def hals_sweeps(A: torch.Tensor, G: torch.Tensor, P: torch.Tensor, n_sweeps: int) -> None:
    """Cyclic coordinate descent on the rows of ``A`` for ``min ||Y - A^T F||_F``, ``A >= 0``.

    ``Y (M, L)`` is the data (X for the update of W, X^T for that of H) and ``F (k, L)`` the
    other factor; the problem enters through ``G = F F^T`` and ``P = F Y^T``. Row ``t`` is set
    to its exact minimiser given the other rows. A row whose ``G[t, t]`` is zero or
    subnormal (a zero or vanishing row of ``F``, whose reciprocal would overflow) is left
    unchanged.

    Parameters
    ----------
    A : torch.Tensor, shape (B, k, M)
        Non-negative rows, updated in place.
    G : torch.Tensor, shape (B, k, k)
        ``F F^T``.
    P : torch.Tensor, shape (B, k, M)
        ``F Y^T``.
    n_sweeps : int
        Passes over the ``k`` rows.
    """
    diag = G.diagonal(dim1=1, dim2=2).unsqueeze(-1)
    live = diag > torch.finfo(G.dtype).tiny
    scale = torch.where(live, diag, torch.ones_like(diag)).reciprocal() * live
    # Row t becomes max(0, Ps[t] - Gs[t] @ A), where Gs has a zero diagonal on live rows and -1
    # on dead ones (which, with Ps[t] = 0, keeps a dead row as it is).
    Ps = P * scale
    Gs = G * scale
    Gs.diagonal(dim1=1, dim2=2).copy_(live.squeeze(-1).to(G.dtype) - 1)
    row = torch.empty_like(A[:, :1])
    rows = list(zip(Ps.split(1, dim=1), Gs.split(1, dim=1), A.split(1, dim=1), strict=True))
    for _ in range(n_sweeps):
        for p_t, g_t, a_t in rows:
            torch.baddbmm(p_t, g_t, A, alpha=-1, out=row)
            torch.clamp_min(row, 0, out=a_t)


def squared_error(
    xx: torch.Tensor, A: torch.Tensor, P: torch.Tensor, AAt: torch.Tensor, G: torch.Tensor
) -> torch.Tensor:
    """``||X - A^T F||^2`` from products already at hand, summed in float64.

    ``xx = ||X||^2`` per item, ``P = F X^T``, ``AAt = A A^T``, ``G = F F^T``; returns ``(B,)``.
    """
    cross = (A * P).sum(dim=(1, 2), dtype=torch.float64)
    quad = (AAt * G).sum(dim=(1, 2), dtype=torch.float64)
    return xx - 2 * cross + quad


def squared_norm(X: torch.Tensor) -> torch.Tensor:
    """``||X||_F^2`` of each item of ``X (B, N, C)`` as float64, without a copy of X."""
    return torch.linalg.vector_norm(X, dim=(1, 2)).double().square()


def _extrapolate(new: torch.Tensor, old: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """``max(0, new + beta (new - old))``."""
    return torch.lerp(new, old, -beta).clamp_min_(0)


def _adapt_steps(state: State, loss: torch.Tensor, prev: torch.Tensor | None) -> torch.Tensor:
    """Update the extrapolation steps; returns ``(B, 1, 1)`` True where the loss went up."""
    if prev is None:
        return torch.zeros_like(state["beta"], dtype=torch.bool)
    up = (loss > prev).view(-1, 1, 1)
    beta, cap = state["beta"], state["beta_cap"]
    state["beta_cap"] = torch.where(up, beta, (cap * BETA_CAP_GROW).clamp_max(1))
    state["beta"] = torch.where(up, beta / BETA_SHRINK, torch.minimum(cap, beta * BETA_GROW))
    return up


def run(
    state: State, step: Step, outputs: tuple[torch.Tensor, ...], max_iter: int, tol: float
) -> None:
    """Iterate ``step`` until each item's loss changes by at most ``tol`` (relative) per
    iteration, on average over the last ``WINDOW`` iterations.

    The window smooths the uneven steps of extrapolation: a single step can be small at the turn
    of a restart while the loss still has far to go. ``state`` holds per-item tensors (first
    dimension B); ``step`` finds the last loss in ``state["prev"]``. Each item's factors go to
    ``outputs`` at the iteration it converges (or at ``max_iter``) and the item leaves the
    working tensors, so the work shrinks as items converge.
    """
    index = torch.arange(len(outputs[0]), device=outputs[0].device)  # of the working items
    for it in range(max_iter):
        loss, factors = step(state)
        state["prev"] = loss
        # history[:, 0] is the loss WINDOW iterations back
        if it == 0:
            state["history"] = loss.unsqueeze(1).repeat(1, WINDOW)
        back = state["history"][:, 0]
        state["history"] = torch.cat([state["history"][:, 1:], loss.unsqueeze(1)], dim=1)
        if it == max_iter - 1:
            done = torch.ones_like(index, dtype=torch.bool)
        elif it < WINDOW:
            continue
        else:
            done = (back - loss).abs() <= WINDOW * tol * back
        if not bool(done.any()):
            continue
        for out, factor in zip(outputs, factors, strict=True):
            out[index[done]] = factor[done]
        if bool(done.all()):
            return
        keep = ~done
        state = {name: value[keep] for name, value in state.items()}
        index = index[keep]


def free_step(state: State) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """One outer iteration of extrapolated HALS on both factors.

    State: ``X (B, N, C)``, ``xx (B,)``, ``Wt``/``H`` the last updates, ``Wt_hat``/``H_hat`` the
    extrapolated points the next updates start from, ``beta``/``beta_cap`` ``(B, 1, 1)`` and,
    after the first iteration, ``prev`` the last loss.
    """
    X = state["X"]
    H_hat = state["H_hat"]
    Wt = state["Wt_hat"]  # swept in place: becomes the new W
    hals_sweeps(Wt, H_hat @ H_hat.transpose(1, 2), H_hat @ X.transpose(1, 2), INNER_SWEEPS)
    Wt_hat = _extrapolate(Wt, state["Wt"], state["beta"])
    G = Wt_hat @ Wt_hat.transpose(1, 2)
    P = Wt_hat @ X
    H = H_hat  # swept in place: becomes the new H
    hals_sweeps(H, G, P, INNER_SWEEPS)
    loss = squared_error(state["xx"], H, P, H @ H.transpose(1, 2), G)
    H_hat = _extrapolate(H, state["H"], state["beta"])
    up = _adapt_steps(state, loss, state.get("prev"))
    state["Wt"], state["H"] = Wt, H
    state["Wt_hat"] = torch.where(up, Wt, Wt_hat)
    state["H_hat"] = torch.where(up, H, H_hat)
    return loss, (Wt_hat, H)


def fixed_step(state: State) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    """One extrapolated HALS sweep over the rows of W, H fixed.

    State: ``P = H X^T (B, k, N)``, ``G = H H^T (B, k, k)``, ``xx (B,)``, ``Wt``, ``Wt_hat``,
    ``beta``, ``beta_cap`` and, after the first iteration, ``prev``.
    """
    G = state["G"]
    Wt = state["Wt_hat"]
    hals_sweeps(Wt, G, state["P"], 1)
    loss = squared_error(state["xx"], Wt, state["P"], Wt @ Wt.transpose(1, 2), G)
    Wt_hat = _extrapolate(Wt, state["Wt"], state["beta"])
    up = _adapt_steps(state, loss, state.get("prev"))
    state["Wt"] = Wt
    state["Wt_hat"] = torch.where(up, Wt, Wt_hat)
    return loss, (Wt,)


def steps_state(batch: int, like: torch.Tensor) -> State:
    """Initial extrapolation steps for ``batch`` items."""
    beta = torch.full((batch, 1, 1), BETA_START, dtype=like.dtype, device=like.device)
    return {"beta": beta, "beta_cap": torch.ones_like(beta)}


def top_singular(X: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The ``k`` leading singular triplets of each item, from the smaller Gram matrix.

    Returns ``U (B, N, k)``, ``S (B, k)`` descending, ``V (B, C, k)``. Directions whose singular
    value is at round-off level (rank below ``k``) are returned as zero vectors.
    """
    _, N, C = X.shape
    if N <= C:
        evals, vecs = torch.linalg.eigh(X @ X.transpose(1, 2))
    else:
        evals, vecs = torch.linalg.eigh(X.transpose(1, 2) @ X)
    evals, vecs = evals.flip(-1)[:, :k], vecs.flip(-1)[:, :, :k]
    floor = evals[:, :1].clamp_min(0) * (max(N, C) * torch.finfo(X.dtype).eps)
    kept = evals > floor
    S = torch.where(kept, evals, torch.zeros_like(evals)).sqrt()
    inv = torch.where(kept, S, torch.ones_like(S)).reciprocal() * kept
    if N <= C:
        U = vecs * kept.unsqueeze(1)
        V = (X.transpose(1, 2) @ vecs) * inv.unsqueeze(1)
    else:
        V = vecs * kept.unsqueeze(1)
        U = (X @ vecs) * inv.unsqueeze(1)
    return U, S, V


def nndsvd(X: torch.Tensor, k: int, fill_mean: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """NNDSVD initialisation (Boutsidis & Gallopoulos 2008), batched.

    Each singular pair is split into its positive and negative parts and the part with the larger
    norm product is kept. With ``fill_mean`` (NNDSVDa) the zeros are set to the mean of ``X``.
    Returns ``Wt (B, k, N)`` and ``H (B, k, C)``.
    """
    U, S, V = top_singular(X, k)
    u_pos, u_neg = U.clamp_min(0), (-U).clamp_min(0)
    v_pos, v_neg = V.clamp_min(0), (-V).clamp_min(0)
    nu_pos, nu_neg = u_pos.norm(dim=1), u_neg.norm(dim=1)  # (B, k)
    nv_pos, nv_neg = v_pos.norm(dim=1), v_neg.norm(dim=1)
    pos = nu_pos * nv_pos >= nu_neg * nv_neg
    u = torch.where(pos.unsqueeze(1), u_pos, u_neg)
    v = torch.where(pos.unsqueeze(1), v_pos, v_neg)
    nu, nv = u.norm(dim=1), v.norm(dim=1)
    # sigma_j * ||u_j|| * ||v_j|| shared evenly by the two unit vectors
    size = (S * nu * nv).sqrt()
    Wt = (u * (size / torch.where(nu > 0, nu, torch.ones_like(nu))).unsqueeze(1)).transpose(1, 2)
    H = (v * (size / torch.where(nv > 0, nv, torch.ones_like(nv))).unsqueeze(1)).transpose(1, 2)
    if fill_mean:
        mean = X.mean(dim=(1, 2)).view(-1, 1, 1)
        Wt = torch.where(Wt == 0, mean, Wt)
        H = torch.where(H == 0, mean, H)
    return Wt.contiguous(), H.contiguous()


def random_init(
    X: torch.Tensor, k: int, random_state: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``|N(0, 1)|`` factors scaled by ``sqrt(mean(X) / k)`` per item.

    The draws come from a CPU generator seeded with ``random_state`` (a fresh seed for None),
    the same for every item and every device, so an item's start does not depend on its batch
    or device.
    """
    _, N, C = X.shape
    gen = torch.Generator()
    if random_state is None:
        gen.seed()
    else:
        gen.manual_seed(random_state)
    h = torch.randn(k, C, generator=gen, dtype=torch.float64).abs_()
    w = torch.randn(k, N, generator=gen, dtype=torch.float64).abs_()
    h, w = h.to(X.device, X.dtype), w.to(X.device, X.dtype)
    scale = (X.mean(dim=(1, 2)) / k).sqrt().view(-1, 1, 1)
    return (scale * w).contiguous(), (scale * h).contiguous()


def solve_free(
    X: torch.Tensor, k: int, init: str, max_iter: int, tol: float, random_state: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Free NMF of each item of ``X (B, N, C)``: returns ``Wt (B, k, N)``, ``H (B, k, C)``."""
    if init == "random":
        Wt, H = random_init(X, k, random_state)
    else:
        Wt, H = nndsvd(X, k, fill_mean=init == "nndsvda")
    out_Wt, out_H = torch.empty_like(Wt), torch.empty_like(H)
    state = {
        "X": X,
        "xx": squared_norm(X),
        "Wt": Wt,
        "H": H,
        "Wt_hat": Wt.clone(),
        "H_hat": H.clone(),
        **steps_state(len(X), X),
    }
    run(state, free_step, (out_Wt, out_H), max_iter, tol)
    return out_Wt, out_H


def solve_fixed(X: torch.Tensor, H: torch.Tensor, max_iter: int, tol: float) -> torch.Tensor:
    """Non-negative least squares of each row of ``X (B, N, C)`` on ``H (B or 1, k, C)``.

    Returns ``Wt (B, k, N)``; the start is ``W = 0``.
    """
    B, N, _ = X.shape
    k = H.shape[1]
    P = H @ X.transpose(1, 2) if len(H) == B else torch.matmul(H[0], X.transpose(1, 2))
    G = (H @ H.transpose(1, 2)).expand(B, k, k).contiguous()
    Wt = torch.zeros(B, k, N, dtype=X.dtype, device=X.device)
    out = torch.empty_like(Wt)
    state = {
        "P": P,
        "G": G,
        "xx": squared_norm(X),
        "Wt": Wt,
        "Wt_hat": Wt.clone(),
        **steps_state(B, X),
    }
    run(state, fixed_step, (out,), max_iter, tol)
    return out
