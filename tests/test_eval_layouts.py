"""The fast evaluator takes a distance matrix in any memory layout and dtype a caller can pass:
a seeded fuzz against the per-query reference (ties, float16/32/64 and bfloat16, NumPy C / Fortran
order, strided and reversed views, non-native byte order, tensors with any strides)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from muva_lib.eval import evaluate_rank, evaluate_rank_reference
from muva_lib.eval import rank as rank_mod
from muva_lib.eval.rank import NoValidQueryError

NUMPY_DTYPES = (np.float16, np.float32, np.float64)
TORCH_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def numpy_layout(values: np.ndarray, how: str, rng: np.random.Generator) -> np.ndarray:
    """values [Q, G] (C order) laid out as ``how``; the result holds the same numbers."""
    q, g = values.shape
    if how == "C":
        return values.copy()
    if how == "F":
        return np.asfortranarray(values)
    if how == "transposed":  # dist.T of a gallery-by-query matrix
        return np.ascontiguousarray(values.T).T
    if how == "strided":  # a slice of a larger matrix, every other row and every third column
        big = rng.random((2 * q + 1, 3 * g + 2)).astype(values.dtype)
        big[1:2 * q + 1:2, 2:3 * g + 2:3] = values
        return big[1:2 * q + 1:2, 2:3 * g + 2:3]
    if how == "reversed":  # negative strides on both axes
        return np.ascontiguousarray(values[::-1, ::-1])[::-1, ::-1]
    if how == "byteswapped":  # non-native byte order (as read from some files)
        return values.astype(values.dtype.newbyteorder("S"))
    raise ValueError(how)


def torch_layout(values: torch.Tensor, how: str) -> torch.Tensor:
    q, g = values.shape
    if how == "contiguous":
        return values.clone()
    if how == "transposed":
        return values.T.contiguous().T
    if how == "strided":  # step slices of a larger tensor
        big = torch.zeros(2 * q, 3 * g, dtype=values.dtype)
        big[::2, ::3] = values
        return big[::2, ::3]
    if how == "as_strided":  # a column-major buffer read through explicit strides
        buf = values.T.contiguous().reshape(-1)
        return torch.as_strided(buf, (q, g), (1, q))
    if how == "from_fortran_numpy":
        return torch.from_numpy(np.asfortranarray(values.to(torch.float64).numpy())).to(values.dtype) \
            if values.dtype == torch.bfloat16 else torch.from_numpy(np.asfortranarray(values.numpy()))
    raise ValueError(how)


NUMPY_LAYOUTS = ("C", "F", "transposed", "strided", "reversed", "byteswapped")
TORCH_LAYOUTS = ("contiguous", "transposed", "strided", "as_strided", "from_fortran_numpy")


def random_problem(rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    q, g = int(rng.integers(1, 13)), int(rng.integers(1, 41))
    q_pids = rng.integers(0, 5, q)
    g_pids = rng.integers(0, 5, g)
    q_cams, g_cams = rng.integers(0, 3, q), rng.integers(0, 3, g)
    kind = rng.integers(3)
    if kind == 0:  # many ties: a handful of distinct values
        dist = rng.integers(0, 4, (q, g)).astype(np.float64)
    elif kind == 1:  # continuous values
        dist = rng.random((q, g)) * 4
    else:  # continuous with repeated blocks and an all-equal row
        dist = np.round(rng.random((q, g)) * 8) / 8
        dist[0] = 0.5
    return dist, q_pids, g_pids, q_cams, g_cams


def outcome(fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except NoValidQueryError:
        return "no valid query"


def assert_same(fast, ref) -> None:
    if isinstance(ref, str) or isinstance(fast, str):
        assert fast == ref
        return
    for key in ("mAP", "mINP", "rank1", "rank5", "rank10", "rank20", "num_valid_queries", "num_queries"):
        np.testing.assert_allclose(fast[key], ref[key], rtol=0, atol=1e-12, err_msg=key)
    np.testing.assert_allclose(fast["cmc"], ref["cmc"], rtol=0, atol=1e-12, err_msg="cmc")


@pytest.mark.parametrize("block", [1, 0])
def test_fuzz_every_layout_and_dtype_against_the_reference(block, monkeypatch):
    if block:  # tiny ranking blocks: each block of a strided chunk is made contiguous on its own
        monkeypatch.setattr(rank_mod, "BLOCK_ELEMENTS", 7)
    rng = np.random.default_rng(1234 + block)
    seen = set()
    for case in range(200):
        dist, q_pids, g_pids, q_cams, g_cams = random_problem(rng)
        chunk = int(rng.integers(1, 6))
        if case % 2 == 0:
            dtype = NUMPY_DTYPES[int(rng.integers(len(NUMPY_DTYPES)))]
            how = NUMPY_LAYOUTS[int(rng.integers(len(NUMPY_LAYOUTS)))]
            values = dist.astype(dtype)
            laid = numpy_layout(values, how, rng)
            assert np.array_equal(laid, values)
            reference_input = values
        else:
            dtype = TORCH_DTYPES[int(rng.integers(len(TORCH_DTYPES)))]
            how = TORCH_LAYOUTS[int(rng.integers(len(TORCH_LAYOUTS)))]
            values = torch.as_tensor(dist).to(dtype)
            laid = torch_layout(values, how)
            assert torch.equal(laid, values)
            reference_input = values.float().numpy() if dtype == torch.bfloat16 else values.numpy()
        seen.add((how, str(dtype)))
        ref = outcome(evaluate_rank_reference, reference_input, q_pids, g_pids, q_cams, g_cams, max_rank=10)
        fast = outcome(evaluate_rank, laid, q_pids, g_pids, q_cams, g_cams, max_rank=10, chunk_size=chunk)
        try:
            assert_same(fast, ref)
        except AssertionError as err:
            raise AssertionError(f"case {case}: layout {how}, dtype {dtype}, shape {dist.shape}: {err}") from err
    assert len(seen) >= 25  # the draw covered most layout x dtype pairs


def test_expanded_and_sliced_tensors():
    # stride 0 (every gallery distance equal: pure ties) and a column slice of a bigger matrix
    q_pids, g_pids = np.array([1, 2]), np.array([1, 2, 1, 3, 2])
    q_cams, g_cams = np.array([0, 0]), np.array([1, 1, 1, 1, 0])
    flat = torch.tensor([[0.3], [0.7]]).expand(2, 5)
    assert flat.stride() == (1, 0)
    assert_same(evaluate_rank(flat, q_pids, g_pids, q_cams, g_cams, max_rank=5),
                evaluate_rank_reference(flat.contiguous(), q_pids, g_pids, q_cams, g_cams, max_rank=5))
    big = torch.rand(2, 9, generator=torch.Generator().manual_seed(0))
    assert_same(evaluate_rank(big[:, 2:7], q_pids, g_pids, q_cams, g_cams, max_rank=5),
                evaluate_rank_reference(big[:, 2:7].contiguous(), q_pids, g_pids, q_cams, g_cams, max_rank=5))
    grad = torch.rand(2, 5, requires_grad=True)  # a tensor still in an autograd graph
    assert_same(evaluate_rank(grad * 2, q_pids, g_pids, q_cams, g_cams, max_rank=5),
                evaluate_rank_reference((grad * 2).detach(), q_pids, g_pids, q_cams, g_cams, max_rank=5))
