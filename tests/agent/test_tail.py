"""Tailing log files: new lines, rotation by rename and by truncation, restarts (positions),
rotation while stopped, unfinished last lines. Every line arrives exactly once."""

from __future__ import annotations

import os

from kms.agent.tail import FileTailer, LogLine


class Sink:
    def __init__(self):
        self.lines: list[LogLine] = []

    def __call__(self, lines):
        self.lines += lines

    def texts(self) -> list[str]:
        return [ln.line for ln in self.lines]


def tailer(tmp_path, sink, **kw) -> FileTailer:
    return FileTailer([str(tmp_path / "logs" / "*.log")], tmp_path / "positions.json", sink, **kw)


def write(path, *lines, end="\n"):
    with open(path, "a") as f:
        f.write("".join(f"{ln}{end}" for ln in lines))


def test_new_lines_and_an_unfinished_last_line(tmp_path):
    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "app.log"
    write(log, "one", "two")
    sink = Sink()
    t = tailer(tmp_path, sink)
    t.poll()
    write(log, "thr", end="")  # no newline yet: not a line
    t.poll()
    assert sink.texts() == ["one", "two"]
    write(log, "ee", "four")
    t.poll()
    assert sink.texts() == ["one", "two", "three", "four"]
    assert {ln.path for ln in sink.lines} == {str(log)}


def test_rotation_by_rename_reads_the_old_file_to_its_end_first(tmp_path):
    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "app.log"
    sink = Sink()
    t = tailer(tmp_path, sink)
    write(log, *[f"a{i}" for i in range(5)])
    t.poll()
    write(log, "a5", "a6")  # written just before the rotation, not yet read
    os.rename(log, tmp_path / "logs" / "app.log.1")
    write(log, "b0", "b1")
    t.poll()
    t.poll()
    assert sink.texts() == [f"a{i}" for i in range(7)] + ["b0", "b1"]


def test_copytruncate_starts_over_at_the_beginning(tmp_path):
    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "app.log"
    sink = Sink()
    t = tailer(tmp_path, sink)
    write(log, "old-1", "old-2", "old-3")
    t.poll()
    with open(log, "w"):
        pass  # truncated in place
    write(log, "new")
    t.poll()
    assert sink.texts() == ["old-1", "old-2", "old-3", "new"]


def test_restart_resumes_from_the_saved_position(tmp_path):
    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "app.log"
    sink = Sink()
    t = tailer(tmp_path, sink)
    write(log, "1", "2")
    t.poll()
    t.stop()
    write(log, "3", "4")  # while stopped
    sink2 = Sink()
    t2 = tailer(tmp_path, sink2)
    t2.poll()
    assert sink.texts() == ["1", "2"] and sink2.texts() == ["3", "4"]


def test_rotation_while_stopped_finishes_the_rotated_file(tmp_path):
    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "app.log"
    sink = Sink()
    t = tailer(tmp_path, sink)
    write(log, "x1")
    t.poll()
    t.stop()
    write(log, "x2")  # written after the stop, then rotated away before the restart
    os.rename(log, tmp_path / "logs" / "app.log.1")
    write(log, "y1")
    sink2 = Sink()
    t2 = tailer(tmp_path, sink2)
    t2.poll()
    t2.poll()
    assert sink.texts() == ["x1"] and sorted(sink2.texts()) == ["x2", "y1"]


def test_start_at_end_skips_what_files_held_before(tmp_path):
    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "app.log"
    write(log, "history")
    sink = Sink()
    t = tailer(tmp_path, sink, start_at_end=True)
    t.poll()
    write(log, "fresh")
    other = tmp_path / "logs" / "later.log"
    write(other, "from a file that appeared later")  # read whole: it appeared after the start
    t.poll()
    assert sink.texts() == ["fresh", "from a file that appeared later"]


def test_a_failing_sink_moves_no_position(tmp_path):
    (tmp_path / "logs").mkdir()
    log = tmp_path / "logs" / "app.log"
    write(log, "keep-me")

    def broken(lines):
        raise OSError("disk full")

    t = tailer(tmp_path, broken)
    try:
        t.poll()
    except OSError:
        pass
    sink = Sink()
    t2 = tailer(tmp_path, sink)
    t2.poll()
    assert sink.texts() == ["keep-me"]
