"""Packed packet sets (`core.reach.space.pack`): exact round trips, and as small as their runs; two boxes
coalesced without the general loops as with them."""

from __future__ import annotations

import sys

from hypothesis import given
from hypothesis import strategies as st

from portscope.core.reach.space import (
    SMALL,
    IntervalAxis,
    coalesce,
    coalesce_pair,
    one_atom,
    pack,
    pack_mask,
    runs,
    unpack,
    unpack_mask,
)


@st.composite
def masks(draw: st.DrawFn) -> int:
    """Non-empty masks over up to 70,000 atoms: a few runs anywhere, small or far up."""
    width = draw(st.sampled_from([8, SMALL, SMALL + 1, 1000, 70_000]))
    mask = 0
    for _ in range(draw(st.integers(1, 6))):
        first = draw(st.integers(0, width - 1))
        last = draw(st.integers(first, min(width - 1, first + draw(st.sampled_from([0, 1, 5, 2000])))))
        mask |= (2 << last) - (1 << first)
    return mask


def _runs_of(mask: int) -> list[tuple[int, int]]:
    """Runs of set bits, bit by bit (the reference for `runs`)."""
    out: list[tuple[int, int]] = []
    for i in range(mask.bit_length()):
        if mask >> i & 1:
            if out and out[-1][1] == i - 1:
                out[-1] = (out[-1][0], i)
            else:
                out.append((i, i))
    return out


@given(masks())
def test_a_mask_survives_packing(mask: int) -> None:
    kept = pack_mask(mask)
    assert unpack_mask(kept) == mask
    assert one_atom(kept) == (mask.bit_length() - 1 if mask & (mask - 1) == 0 else None)


@given(st.integers(0, 1 << 3000))
def test_runs_are_the_runs_of_set_bits(mask: int) -> None:
    assert list(runs(mask)) == _runs_of(mask)


@given(st.integers(SMALL, 200_000))
def test_one_port_far_up_is_kept_in_a_few_bytes(atom: int) -> None:
    kept = pack_mask(1 << atom)
    assert kept == (atom, atom)
    assert sys.getsizeof(kept) + sum(sys.getsizeof(i) for i in kept) < 200  # the int itself: atom / 8 bytes


@given(st.lists(st.tuples(*[masks()] * 6), max_size=4))
def test_a_packet_set_survives_packing(boxes: list[tuple[int, int, int, int, int, int]]) -> None:
    packed = pack(boxes)
    assert unpack(packed) == boxes
    assert pack(unpack(packed)) == packed  # one packed form per set of masks: memo keys can use it


@given(st.lists(st.integers(1, 65535), min_size=1, max_size=40), masks())
def test_ranges_of_a_packed_mask_are_the_masks_ranges(cuts: list[int], mask: int) -> None:
    axis = IntervalAxis(65535, cuts)
    mask &= axis.all
    if mask:
        assert axis.run_ranges(pack_mask(mask)) == axis.ranges(mask)
    assert unpack_mask(axis.every) == axis.all


#: Boxes whose masks are drawn from a few values, so that two often share dimensions, hold one another or match.
small_boxes = st.tuples(*[st.sampled_from([1, 2, 3, 4, 6, 7, 8, 15]) for _ in range(6)])


@given(small_boxes, small_boxes)
def test_two_boxes_coalesce_as_the_general_loops_do(a: tuple, b: tuple) -> None:
    general = coalesce([a, b, (0, 0, 0, 0, 0, 0)])  # three boxes: the general loops (the empty one is inside both)
    assert coalesce_pair(a, b) == [box for box in general if any(box)]
    assert coalesce([a, b]) == coalesce_pair(a, b)
