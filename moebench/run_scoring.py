"""Scoring a run's records: at once in the request worker, or deferred until the judged model
is unloaded (judge-style scorers, `DEFERRED`). A scorer that raises never loses the output:
the record becomes an error row `scorer NAME: message` with the output kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace

from moebench.scorers import score_stripped
from moebench.types import Record


def scored(record: Record) -> Record:
    """`record` with its score; a scorer that cannot decide (ScorerFailed) or raises makes it
    an error row with the output kept."""
    try:
        score = score_stripped(record.request.scorer, record.stripped or "", record.request.case)
    except Exception as error:  # noqa: BLE001 - any scorer bug must not lose the output
        message = " ".join(str(error).split())[:500] or type(error).__name__
        return replace(record, error=f"scorer {record.request.scorer.name}: {message}")
    return replace(record, score=score)


def held_back(records: Iterable[tuple[int, Record]],
               deferred: list[tuple[int, Record]]) -> Iterator[tuple[int, Record]]:
    """Pass records through, keeping back the ones a deferred scorer has still to grade."""
    for index, record in records:
        if record.score is None and record.error is None:
            deferred.append((index, record))
        else:
            yield index, record


def score_deferred(deferred: list[tuple[int, Record]]) -> Iterator[tuple[int, Record]]:
    """Grade the held-back records (after their model was unloaded)."""
    for index, record in deferred:
        yield index, scored(record)
