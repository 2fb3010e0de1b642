"""The vectorised ``| logfmt`` of summed range aggregations gives each line the label values the
per-line parser gives, quotes (which can hide ``key=`` text) included."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

from kms.logs.logql.hints import _python_value, hinted_batch
from kms.logs.logql.scan import Batch

TOKENS = ["level=info", "level=warn", "level=", "level", 'level="quoted x"', 'level=a"b', 'msg="level=hidden y"',
          '"GET', "/x?level=2", 'HTTP/1.1"', "lvl=debug", 'a="b c"', "x=1", "le.vel=dot", '=bad', 'k="unterminated',
          'msg="esc \\" level=z"', "level=last"]


@pytest.mark.parametrize("keep_empty", [False, True])
def test_hinted_values_equal_the_per_line_parser(keep_empty):
    rnd = random.Random(3)
    lines = [" ".join(rnd.choice(TOKENS) for _ in range(rnd.randrange(1, 6))) for _ in range(3000)]
    b = Batch(np.zeros(len(lines), np.int64), np.zeros(len(lines), np.int32), ["{}"], pa.array(lines),
              pa.array(["{}"] * len(lines)))
    codes, series = hinted_batch(b, ("level", "le_vel"), keep_empty)
    for line, code in zip(lines, codes.tolist(), strict=True):
        want = {k: v for k in ("level", "le_vel") if (v := _python_value(line, k, keep_empty))}
        assert series[code] == want, line
