"""The app gunicorn serves: ``BENCH_CONTENDER`` names it, ``BENCH_ENV`` says
where the servers are (JSON of :class:`~benchmarks.contenders.Env`)."""

from __future__ import annotations

import json
import logging
import os

from benchmarks.contenders import BY_NAME, Env

logging.getLogger("flask_signoff").setLevel(logging.ERROR)
app = BY_NAME[os.environ["BENCH_CONTENDER"]].build(
    Env(**json.loads(os.environ["BENCH_ENV"]))
)
