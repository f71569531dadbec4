"""Skeleton graph of a crack mask: nodes (free ends, junctions) and the branches between them.

The skeleton is scikit-image's Lee thinning: on rotated straight cracks it leaves no spurs and
no false junctions, where Zhang's method forks at the ends of cracks wider than about 5 px. The
graph is built here with numpy (a table of 8-neighbours) rather than with skan, which would add
numba and pandas for a walk over a few thousand pixels.

Coordinates are (row, col) pixel centres throughout this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage as ndi
from skimage.morphology import skeletonize

# 8-neighbour offsets (row, col)
_OFFSETS = np.array([(-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1)])


@dataclass
class Branch:
    """A skeleton path between two nodes; ``path`` is (N, 2) float (row, col), ends included.

    ``start``/``end`` are node ids; a closed loop with no node has ``start == end == -1``.
    """

    start: int
    end: int
    path: np.ndarray
    closed: bool = False


@dataclass
class SkeletonGraph:
    """Nodes (``nodes`` (K, 2) float (row, col)) and branches of one mask's skeleton."""

    nodes: np.ndarray
    branches: list[Branch] = field(default_factory=list)

    def degree(self) -> np.ndarray:
        """Number of branch ends at each node (a loop on a node counts twice)."""
        deg = np.zeros(len(self.nodes), int)
        for b in self.branches:
            if b.start >= 0:
                deg[b.start] += 1
                deg[b.end] += 1
        return deg


def path_length(path: np.ndarray) -> float:
    """Sum of the Euclidean steps along a polyline."""
    return float(np.hypot(*np.diff(path, axis=0).T).sum()) if len(path) > 1 else 0.0


def skeleton_graph(mask: np.ndarray) -> tuple[np.ndarray, SkeletonGraph]:
    """Skeletonise ``mask`` and split the skeleton into branches at junctions.

    Junction pixels (3 or more neighbours) that touch are merged into one node at their centroid,
    so every branch meeting there starts at the same point.

    Examples:
        >>> m = np.zeros((20, 40), bool); m[8:12, 5:35] = True
        >>> sk, g = skeleton_graph(m)
        >>> len(g.branches), g.degree().tolist()
        (1, [1, 1])
    """
    sk = skeletonize(mask, method="lee").astype(bool)
    coords = np.argwhere(sk)
    n = len(coords)
    idx = np.full((sk.shape[0] + 2, sk.shape[1] + 2), -1, np.int64)
    idx[coords[:, 0] + 1, coords[:, 1] + 1] = np.arange(n)
    nbrs = np.stack([idx[coords[:, 0] + 1 + dr, coords[:, 1] + 1 + dc] for dr, dc in _OFFSETS], 1)
    deg = (nbrs >= 0).sum(1)

    # Node ids: every end or isolated pixel is a node; touching junction pixels share one node.
    node_of = np.full(n, -1, np.int64)
    junction = np.zeros(sk.shape, bool)
    junction[coords[deg >= 3, 0], coords[deg >= 3, 1]] = True
    jlab, nj = ndi.label(junction, structure=np.ones((3, 3)))
    node_of[deg >= 3] = jlab[coords[deg >= 3, 0], coords[deg >= 3, 1]] - 1
    ends = np.flatnonzero(deg <= 1)
    node_of[ends] = nj + np.arange(len(ends))
    nodes = np.zeros((nj + len(ends), 2))
    if nj:
        jc = np.flatnonzero(deg >= 3)
        sums = np.zeros((nj, 2))
        np.add.at(sums, node_of[jc], coords[jc])
        nodes[:nj] = sums / np.bincount(node_of[jc], minlength=nj)[:, None]
    nodes[nj:] = coords[ends]

    def point(i: int) -> np.ndarray:
        return nodes[node_of[i]] if node_of[i] >= 0 else coords[i].astype(float)

    branches: list[Branch] = []
    visited = np.zeros(n, bool)
    for u in np.flatnonzero(node_of >= 0):
        if deg[u] == 0:  # a lone pixel: a branch of one point
            branches.append(Branch(int(node_of[u]), int(node_of[u]), coords[u][None].astype(float)))
            continue
        for v in nbrs[u][nbrs[u] >= 0]:
            if node_of[v] >= 0:  # two nodes side by side: a one-step branch (once per pair)
                if node_of[v] != node_of[u] and u < v:
                    branches.append(Branch(int(node_of[u]), int(node_of[v]), np.array([point(u), point(v)])))
                continue
            if visited[v]:
                continue
            idx_path, prev, cur = [u], u, v
            while node_of[cur] < 0:
                visited[cur] = True
                idx_path.append(cur)
                a, b = nbrs[cur][nbrs[cur] >= 0]
                prev, cur = cur, (b if a == prev else a)
            idx_path.append(cur)
            path = coords[idx_path].astype(float)
            path[0], path[-1] = point(u), point(cur)  # junctions: their centroid
            branches.append(Branch(int(node_of[u]), int(node_of[cur]), path))
    # Whatever is left unvisited forms closed loops with no node on them.
    for s in np.flatnonzero(~visited & (node_of < 0)):
        if visited[s]:
            continue
        idx_path, prev, cur = [], -1, s
        while not visited[cur]:
            visited[cur] = True
            idx_path.append(cur)
            a, b = nbrs[cur][nbrs[cur] >= 0]
            prev, cur = cur, (b if a == prev else a)
        branches.append(Branch(-1, -1, coords[idx_path].astype(float), closed=True))
    return sk, SkeletonGraph(nodes, branches)


def prune_spurs(graph: SkeletonGraph, dist: np.ndarray, spur_factor: float = 2.0,
                min_branch_px: float = 0.0) -> SkeletonGraph:
    """Remove short end branches that only reach from a junction to the crack's own edge.

    A bump on the mask's outline grows a skeleton branch about one half-width long; a real side
    crack reaches beyond the edge. An end branch shorter than ``spur_factor`` times the distance
    transform at its junction (plus one pixel), or shorter than ``min_branch_px`` (a one-pixel
    spike on a hand-drawn outline), is therefore a spur. At a junction whose branches
    are all spurs the longest is kept. Nodes left with two branches are dissolved by joining the
    two, and the pass repeats until nothing changes.

    Examples:
        >>> m = np.zeros((40, 80), bool); m[15:25, 5:75] = True; m[25:27, 40:42] = True  # a bump
        >>> g = prune_spurs(skeleton_graph(m)[1], ndi.distance_transform_edt(m))
        >>> len(g.branches)
        1
    """
    branches = list(graph.branches)
    nodes = graph.nodes
    while True:
        g = SkeletonGraph(nodes, branches)
        deg = g.degree()
        doomed: set[int] = set()
        by_junction: dict[int, list[tuple[float, int, bool]]] = {}
        for i, b in enumerate(branches):
            if b.closed:
                continue
            for here, there in ((b.start, b.end), (b.end, b.start)):
                if deg[here] >= 3:
                    r, c = np.round(nodes[here]).astype(int)
                    length = path_length(b.path)
                    spur = deg[there] == 1 and length <= max(spur_factor * dist[r, c] + 1.0, min_branch_px)
                    by_junction.setdefault(here, []).append((length, i, spur))
        for ends in by_junction.values():
            spurs = [e for e in ends if e[2]]
            if len(spurs) == len(ends):
                spurs.remove(max(spurs))
            doomed.update(i for _, i, _ in spurs)
        branches = [b for i, b in enumerate(branches) if i not in doomed]
        merged = _join_through_degree_two(SkeletonGraph(nodes, branches))
        if not doomed and len(merged) == len(branches):
            break
        branches = merged
    # A ring that kept one node (two ends of one branch there, nothing else) is a closed loop.
    deg = SkeletonGraph(nodes, merged).degree()
    for b in merged:
        if b.start == b.end >= 0 and deg[b.start] == 2 and len(b.path) > 2:
            b.path, b.closed = b.path[:-1], True
    return SkeletonGraph(nodes, merged)


def _join_through_degree_two(graph: SkeletonGraph) -> list[Branch]:
    """Join pairs of branches that meet at a node with no third branch (one pass, linear time:
    a join never changes how many branch ends another node has)."""
    live = dict(enumerate(graph.branches))
    at: dict[int, list[int]] = {}
    for i, b in live.items():
        if b.start >= 0:
            at.setdefault(b.start, []).append(i)
            at.setdefault(b.end, []).append(i)
    key = len(live)
    for node, ids in at.items():
        if len(ids) != 2 or ids[0] == ids[1]:
            continue
        i, j = ids
        a, b = live.pop(i), live.pop(j)
        pa = a.path if a.end == node else a.path[::-1]
        pb = b.path if b.start == node else b.path[::-1]
        start = a.start if a.end == node else a.end
        end = b.end if b.start == node else b.start
        live[key] = Branch(start, end, np.vstack([pa, pb[1:]]))
        at[start][at[start].index(i)] = key
        at[end][at[end].index(j)] = key
        ids.clear()
        key += 1
    return list(live.values())
