"""The utility protocol shared by every estimator, and a counting, caching wrapper."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, Sequence, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from shed_pipeline.core.progress import Progress
    from shed_pipeline.core.utilities.cache import StoreSession


@runtime_checkable
class Utility(Protocol):
    """U(S) for coalitions of `n_players` players, given as boolean membership masks.

    `value` of the all-False mask must be the utility's real value on the empty set (SHED's code
    used 0 for the base model, which skews the last-removed batch: we never do that).
    """

    n_players: int

    def value(self, members: np.ndarray) -> float: ...


class CachedUtility:
    """A utility with its evaluation cache: reuses values of coalitions already evaluated, in
    this run (memory) and, given `player_ids` (stable player identities) and a store session, in
    earlier runs (DuckDB).

    `evaluations` are values computed here; `cache_hits` are values answered without computing;
    `stored_hits` is the part of those answered by earlier runs. `coalitions` counts the distinct
    coalitions asked for, and `coalitions_changed` those holding a player flagged in `changed`
    (players new since the last run: only such coalitions can be missing from the cache).

    `share` = (i, n): one worker's share of an estimation split over n workers. A coalition missing
    from the cache is evaluated and stored only when its key falls in share i (`share_of`); any other
    gets a stand-in 0.0, never stored (its own share evaluates it), counted in `left_to_others`. Only
    for estimators whose coalitions do not depend on the values."""

    def __init__(
        self,
        inner: Utility,
        player_ids: Sequence[str] | None = None,
        store: StoreSession | None = None,
        *,
        changed: np.ndarray | None = None,
        progress: Progress | None = None,
        share: tuple[int, int] | None = None,
    ):
        if (store is not None or share is not None) and player_ids is None:
            raise ValueError(
                "a persistent cache, or a share of an estimation, needs the players' row ids (coalitions are keyed by "
                "them)"
            )
        if player_ids is not None and len(player_ids) != inner.n_players:
            raise ValueError(f"{len(player_ids)} player ids for {inner.n_players} players")
        self.inner = inner
        self.n_players = inner.n_players
        self.player_ids = list(player_ids) if player_ids is not None else None
        self.store = store
        self._memo: dict[bytes | str, float] = {}
        self.changed = None if changed is None else np.asarray(changed, dtype=bool)
        self.evaluations = 0
        self.cache_hits = 0
        self.stored_hits = 0
        self.coalitions = 0
        self.coalitions_changed = 0
        self.progress = progress  # advanced by one per value asked for (computed or cached)
        self.share = share
        self.left_to_others = 0

    def _key(self, mask: np.ndarray) -> bytes | str:
        if self.player_ids is None:
            return np.packbits(mask).tobytes()
        from shed_pipeline.core.utilities.cache import coalition_key

        return coalition_key(self.player_ids, mask)

    def value(self, members: np.ndarray) -> float:
        v = self._value(members)
        if self.progress is not None:
            self.progress.advance()
        return v

    def _value(self, members: np.ndarray) -> float:
        mask = np.asarray(members, dtype=bool)
        if mask.shape != (self.n_players,):
            raise ValueError(f"coalition mask must have shape ({self.n_players},), got {mask.shape}")
        key = self._key(mask)
        hit = self._memo.get(key)
        if hit is None:
            self.coalitions += 1
            if self.changed is not None and bool((mask & self.changed).any()):
                self.coalitions_changed += 1
        if hit is None and self.store is not None:
            hit = self.store.get(key)  # type: ignore[arg-type]  (memo holds this run's values: a hit here is an earlier run's)
            if hit is not None:
                self.stored_hits += 1
                self._memo[key] = hit
        if hit is not None:
            self.cache_hits += 1
            return hit
        if self.share is not None:
            from shed_pipeline.core.utilities.cache import share_of

            if share_of(key, self.share[1]) != self.share[0]:  # type: ignore[arg-type]
                self.left_to_others += 1
                self._memo[key] = 0.0
                return 0.0
        self.evaluations += 1
        v = float(self.inner.value(mask))
        self._memo[key] = v
        if self.store is not None:
            self.store.put(key, v)  # type: ignore[arg-type]
        return v
