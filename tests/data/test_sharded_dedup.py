"""The global cluster step: exact groups first, near pairs between their roots, the smallest id of each kept."""

import json

import numpy as np

from fromscratch.data.dedup import DedupArguments
from fromscratch.data.sharded_dedup import EXACT, NEAR, Clusters, _components, removed


def test_components_are_rooted_at_the_smallest_id():
    ids, roots = _components(np.array([[5, 9], [9, 12], [3, 40], [40, 7], [100, 101], [12, 2]]))
    assert dict(zip(ids.tolist(), roots.tolist())) == {2: 2, 3: 3, 5: 2, 7: 3, 9: 2, 12: 2, 40: 3, 100: 100, 101: 100}


def test_a_near_pair_through_an_exact_copy_joins_the_groups(tmp_path):
    work = tmp_path / "work"
    (work / "pairs").mkdir(parents=True)
    (work / "stats" / "buckets").mkdir(parents=True)
    np.save(work / "pairs" / "000_00000.npy", np.array([[10, 20]]))  # 20 is an exact copy of 10
    np.save(work / "pairs" / "001_00000.npy", np.array([[20, 30], [40, 50]]))  # 30 is near the copy only
    (work / "stats" / "buckets" / "00000.json").write_text(json.dumps({"candidates": 3, "pairs": 3, "exact": False}))
    Clusters(str(work), DedupArguments(), 1).run()
    gone, why = removed(work)
    assert dict(zip(gone.tolist(), why.tolist())) == {20: EXACT, 30: NEAR, 50: NEAR}
    info = json.loads((work / "stats" / "clusters.json").read_text())
    assert info["verified_pairs"] == 3 and info["pair_bytes_read"] == 48 and info["lsh_candidate_pairs"] == 3
