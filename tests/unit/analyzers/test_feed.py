"""The analyzers' feed (``analyzers/feed.py``): each pass reads only what is new, once."""

from __future__ import annotations

from sysops_agent.analyzers.feed import Feed
from sysops_agent.model import SeriesKey, make_labels
from sysops_agent.storage.store import Cursors, Store

T0 = 1_780_000_000.0
DISK = make_labels(mountpoint="/srv")


def everything(key: SeriesKey) -> bool:
    return key.metric != "ignored"


def test_each_pass_hands_over_the_new_points_once() -> None:
    store, feed = Store(), Feed(everything, backlog=3)
    for i in range(5):
        store.add(T0 + 10 * i, "load_1m", float(i))
    store.add(T0, "ignored", 1.0)
    batches, gone = feed.pull(store, T0 + 40)
    assert [(b.key.metric, [v for _, v in b.points], b.fresh) for b in batches] == [
        ("load_1m", [2.0, 3.0, 4.0], True)  # a new series: its backlog
    ]
    assert gone == []
    assert feed.pull(store, T0 + 45) == ([], [])  # nothing new: no batch
    store.add(T0 + 50, "load_1m", 5.0)
    store.add(T0 + 60, "load_1m", 6.0)
    batches, _ = feed.pull(store, T0 + 60)
    assert [([v for _, v in b.points], b.fresh) for b in batches] == [([5.0, 6.0], False)]


def test_a_series_that_left_the_store_is_said_gone_once_and_is_fresh_when_back() -> None:
    store, feed = Store(), Feed(everything, backlog=10)
    store.add(T0, "disk_usage_percent", 50.0, DISK)
    store.add(T0, "load_1m", 1.0)
    feed.pull(store, T0)
    store.add(T0 + 500, "load_1m", 1.0)
    store.drop_stale(T0 + 500, 300)  # the disk's series is forgotten
    batches, gone = feed.pull(store, T0 + 500)
    assert [k.metric for k in gone] == ["disk_usage_percent"]
    assert [b.key.metric for b in batches] == ["load_1m"]
    assert feed.pull(store, T0 + 501) == ([], [])  # said once
    store.add(T0 + 600, "disk_usage_percent", 60.0, DISK)  # mounted again: a new buffer
    batches, gone = feed.pull(store, T0 + 600)
    assert [(b.key.metric, b.fresh) for b in batches] == [("disk_usage_percent", True)]
    assert gone == []


def test_take_counts_the_new_samples_and_marks_them_read() -> None:
    store, cursors = Store(), Cursors()
    store.add(T0, "load_1m", 1.0)
    key, buf = next(store.series())
    assert cursors.take(key, buf) is None  # new to this reader
    assert cursors.take(key, buf) == 0
    store.add(T0 + 10, "load_1m", 2.0)
    store.add(T0 + 20, "load_1m", 3.0)
    assert cursors.take(key, buf) == 2
    assert cursors.take(key, buf) == 0
    store.drop_stale(T0 + 1000, 300)
    store.add(T0 + 1000, "load_1m", 4.0)
    _, new_buf = next(store.series())
    assert cursors.take(key, new_buf) is None  # the series was re-created


class CountingStore(Store):
    """A store that counts the walks over all of its series."""

    walks = 0

    def series(self):  # type: ignore[no-untyped-def]
        self.walks += 1
        return super().series()


def test_a_pass_walks_the_selected_series_and_the_store_only_when_its_series_change() -> None:
    store = CountingStore()
    feed = Feed(lambda key: key.metric == "load_1m", backlog=10)
    store.add(T0, "load_1m", 1.0)
    for i in range(50):  # series this analyzer does not look at
        store.add(T0, "cpu_core_usage_percent", 1.0, make_labels(core=i))
    feed.pull(store, T0)
    walks = store.walks
    for i in range(1, 6):  # new samples of known series: no walk over the store
        store.add(T0 + 10 * i, "load_1m", float(i))
        store.add(T0 + 10 * i, "cpu_core_usage_percent", 1.0, make_labels(core=0))
        batches, gone = feed.pull(store, T0 + 10 * i)
        assert [[v for _, v in b.points] for b in batches] == [[float(i)]]
        assert gone == []
    assert store.walks == walks
    store.add(T0 + 60, "load_1m", 6.0, make_labels(host="b"))  # a new series: one walk
    batches, _ = feed.pull(store, T0 + 60)
    assert [(b.key.labels, b.fresh) for b in batches] == [(make_labels(host="b"), True)]
    assert store.walks == walks + 1
    store.drop_stale(T0 + 1000, 300)  # every series gone: one walk, each said once
    store.add(T0 + 1000, "load_1m", 7.0)  # and one back, in a new buffer
    batches, gone = feed.pull(store, T0 + 1000)
    assert [(b.key.labels, b.fresh) for b in batches] == [((), True)]
    assert [k.labels for k in gone] == [make_labels(host="b")]
    assert feed.pull(store, T0 + 1001) == ([], [])


def test_a_feed_pulled_from_another_store_reads_that_store() -> None:
    first, second = Store(), Store()
    feed = Feed(everything, backlog=10)
    first.add(T0, "load_1m", 1.0)
    second.add(T0, "load_1m", 2.0)  # same layout number, another store
    assert [[v for _, v in b.points] for b in feed.pull(first, T0)[0]] == [[1.0]]
    batches, gone = feed.pull(second, T0)
    assert [([v for _, v in b.points], b.fresh) for b in batches] == [([2.0], True)]
    assert gone == []
