"""Progress lines on a fake clock: exact, without sleeping."""

from shed_pipeline.core.progress import Progress, format_rate, format_seconds, throttled


class FakeClock:
    def __init__(self, t: float = 0.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_progress_logs_at_most_every_interval_and_always_at_the_end():
    clock, lines = FakeClock(100.0), []
    p = Progress(493, "probe features", lines.append, every_s=10, clock=clock)
    for t, n in [(104, 64), (110, 61), (115, 125), (120, 6), (125, 100), (140, 137)]:
        clock.t = t
        p.advance(n)
    assert p.done == 493
    assert lines == [
        "probe features: 125/493 rows (12.5 rows/s, ~29s left)",  # 10 s in; the line at 4 s was held back
        "probe features: 256/493 rows (12.8 rows/s, ~19s left)",  # 10 s after the last line; 15 s was too soon
        "probe features: 493/493 rows (12.3 rows/s, done in 40s)",  # the end, 15 s after the last line
    ]


def test_progress_end_line_comes_even_when_quick_and_every_step_with_no_interval():
    clock, lines = FakeClock(), []
    p = Progress(3, "LoRA fine-tune", lines.append, unit="steps", clock=clock)
    for _ in range(3):
        clock.t += 0.5
        p.advance()
    assert lines == ["LoRA fine-tune: 3/3 steps (2.0 steps/s, done in 2s)"]
    clock, lines = FakeClock(), []
    p = Progress(4, "test_split", lines.append, unit="sequences", every_s=0, clock=clock)
    p.advance(2)  # no time has passed: no rate to tell
    clock.t = 400
    p.advance(1)
    clock.t = 4000
    p.advance(1)
    assert lines == [
        "test_split: 2/4 sequences",
        "test_split: 3/4 sequences (0.0075 sequences/s, ~2m13s left)",
        "test_split: 4/4 sequences (0.001 sequences/s, done in 1h06m)",
    ]


def test_progress_without_a_total_counts_and_says_its_rate():
    clock, lines = FakeClock(), []
    p = Progress(None, "lm utility", lines.append, unit="evaluations", every_s=0, clock=clock)
    clock.t = 20
    p.advance()
    clock.t = 40
    p.advance(2)
    assert lines == [
        "lm utility: 1 evaluations (0.05 evaluations/s)",
        "lm utility: 3 evaluations (0.075 evaluations/s)",
    ]
    assert Progress(5, "silent by default").log("anything") is None  # the default log says nothing


def test_throttled_passes_one_message_per_interval():
    clock, lines = FakeClock(), []
    log = throttled(lines.append, 10, clock)
    for t, msg in [(0, "a"), (3, "b"), (9.9, "c"), (10, "d"), (19, "e"), (31, "f")]:
        clock.t = t
        log(msg)
    assert lines == ["a", "d", "f"]


def test_number_formats():
    assert [format_rate(r) for r in (1234.4, 123.4, 12.34, 2.5, 0.0423, 0.0)] == [
        "1234",
        "123",
        "12.3",
        "2.5",
        "0.042",
        "0",
    ]
    assert [format_seconds(s) for s in (0.4, 19.4, 59, 60, 125, 3599, 3600, 3780, -3)] == [
        "0s",
        "19s",
        "59s",
        "1m00s",
        "2m05s",
        "59m59s",
        "1h00m",
        "1h03m",
        "0s",
    ]


def test_finish_closes_work_that_ended_below_its_bound_once():
    clock, lines = FakeClock(), []
    p = Progress(100, "tmc on probe", lines.append, unit="coalitions", every_s=1e9, clock=clock)
    clock.t = 4.0
    p.advance(40)
    p.finish()
    assert lines == ["tmc on probe: 40/40 coalitions (10.0 coalitions/s, done in 4s)"]
    q = Progress(2, "x", lines.append, clock=clock)
    q.advance(2)
    q.finish()  # the end line came with the last advance: no second one
    assert lines[-1] == "x: 2/2 rows (done in 0s)" and len(lines) == 2
