"""Helpers shared by the tests, the benchmarks and the scripts; it imports neither `tests` nor `bench`.

    ports        free ports, waiting for a URL or a condition
    launch       the app in a subprocess (`python app.py` from the checkout): start_app/serving, launch/AppProcess
    browser      headless Debian Chromium through playwright, opening the app, drawing, axe-core
    marks        pytest marks (needs_chromium); the only module here that imports pytest
    clients      gradio_client and plain-HTTP calls to the app's endpoints
    cli          the CLI in-process (run_cli)
    replay       a short recorded training (record_replay)
    soak         the many-users soak (tests/test_soak.py, bench/soak.py)
    kill_soak    the SIGKILL-and-resume soak (tests/test_crash_safety.py, bench/kill_soak.py)
    hostile      the hostile-visitor table (tests/test_hostile.py, bench/hostile_soak.py)
    lean_client  a light asyncio API client for load (bench/classroom.py, tests/test_lean_client.py)

Several of them start `app.py` from the checkout, so they are for a clone (or an editable install),
not for an installed wheel.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout: app.py, checkpoints/, tests/, bench/
