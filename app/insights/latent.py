"""Two more never-bought-product signals: implicit ALS factors and same-basket co-purchase.

- **ALS** (Hu, Koren and Volinsky 2008, the ``implicit`` package): customers x products
  factorised from the recency-weighted purchases (confidence ``1 + ALPHA * weight``); a
  product's score for a customer is the dot product of their factors. Fitted single-threaded
  from a fixed seed, so the same data gives the same factors.
- **basket co-purchase**: cosine between products over invoices (bought on the same order),
  applied to the customer's recency-weighted purchases like the customer-level co-purchase.
"""

from __future__ import annotations

import numpy as np
from implicit.cpu.als import AlternatingLeastSquares
from scipy import sparse
from threadpoolctl import threadpool_limits

from app.insights.history import F32, Ints

FACTORS = 64
ITERATIONS = 15
REGULARIZATION = 0.05
ALPHA = 20.0
SEED = 7


def als_factors(weights: sparse.csr_matrix) -> tuple[F32, F32]:
    """Customer and product factors of the customers x products ``weights``."""
    n_c, n_i = weights.shape
    if weights.nnz == 0 or min(n_c, n_i) < 2:
        return np.zeros((n_c, 1), np.float32), np.zeros((n_i, 1), np.float32)
    # One BLAS thread: implicit asks for it (and warns otherwise); the fit stays reproducible.
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=min(FACTORS, n_i - 1),
            regularization=REGULARIZATION,
            alpha=ALPHA,
            iterations=ITERATIONS,
            num_threads=1,
            random_state=SEED,
        )
        model.fit(sparse.csr_matrix(weights, dtype=np.float32), show_progress=False)
    return (
        np.asarray(model.user_factors, dtype=np.float32),
        np.asarray(model.item_factors, dtype=np.float32),
    )


def basket_similarity(order: Ints, item: Ints, n_items: int) -> F32:
    """Items x items cosine over orders (zero diagonal) from (order, product) rows."""
    if not len(order):
        return np.zeros((n_items, n_items), np.float32)
    _, rows = np.unique(order, return_inverse=True)
    b = sparse.csr_matrix(
        (np.ones(len(rows), np.float32), (rows, item)), shape=(int(rows.max()) + 1, n_items)
    )
    co: F32 = np.asarray((b.T @ b).toarray(), dtype=np.float32)
    norm = np.sqrt(np.maximum(np.diag(co), 1.0)).astype(np.float32)
    co /= norm[:, None]
    co /= norm[None, :]
    np.fill_diagonal(co, 0.0)
    return co
