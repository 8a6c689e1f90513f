"""The many-users soak: concurrent gradio_client sessions generate and probe while some sessions train.

Against a running app (`demo.harness.launch.launch`):
  * a reference session records the pretrained model's answers to a few fixed requests;
  * `trainers` sessions each train a small model (different seeds) for `train_steps` steps,
    at most the app's `--train-concurrency` at a time (its queue), then generate and download;
  * `users` sessions loop over Generate and label scores until `seconds` have passed, and every
    answer must equal the pretrained model's (a session that did not train must never see
    another session's model);
  * the server's RSS (psutil) is sampled before, during and after, the last after every client
    has closed and the server has unloaded its sessions.
Pass: no failed request, no wrong answer, never more trainings at once than the limit, each
trainer's Generate equals its own downloaded checkpoint's output, and RSS back near the baseline.
bench/soak.py runs it at length and saves the figures; tests/test_soak.py runs a short version.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from .clients import TRAIN, expected_generate, png
from .launch import AppProcess
from .ports import wait_for

# (labels, samples per label, seed): the fixed Generate requests every user session cycles through.
REQUESTS = [([3], 2, 0), ([0, 7], 2, 11), ([1, 2, 5], 1, 42), ([9], 3, 7)]


@dataclass
class Tally:
    """What the soak saw, shared by its threads."""

    served: int = 0
    failures: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ok(self) -> None:
        with self.lock:
            self.served += 1

    def fail(self, what: str, kind: str = "failures") -> None:
        with self.lock:
            getattr(self, kind).append(what[:300])


def user_loop(url: str, deadline: float, reference: dict, digit_file: str, tally: Tally, rng: random.Random) -> None:
    """One visitor who never trains: Generate and label scores until `deadline`; every answer must be the pretrained one."""
    import numpy as np
    from gradio_client import Client, handle_file

    try:
        client = Client(url, verbose=False)
    except Exception as e:  # noqa: BLE001 - a failed connection is a failed request
        tally.fail(f"connect: {e!r}")
        return
    try:
        while time.monotonic() < deadline:
            if rng.random() < 0.6:
                i = rng.randrange(len(REQUESTS))
                labels, per, seed = REQUESTS[i]
                try:
                    image, _ = client.predict(labels, per, seed, False, api_name="/generate")
                except Exception as e:  # noqa: BLE001
                    tally.fail(f"generate: {e!r}")
                    continue
                tally.ok()
                if not np.array_equal(png(image), reference["generate"][i]):
                    tally.fail(f"generate {REQUESTS[i]} differs from the pretrained model's", "wrong")
            else:
                try:
                    scores = client.predict(handle_file(digit_file), api_name="/label_scores")
                except Exception as e:  # noqa: BLE001
                    tally.fail(f"label_scores: {e!r}")
                    continue
                tally.ok()
                if scores != reference["scores"]:
                    tally.fail("label scores differ from the pretrained model's", "wrong")
    finally:
        client.close()


def trainer_job(url: str, seed: int, steps: int, tally: Tally, result: dict) -> None:
    """One visitor who trains `steps` steps (seed `seed`), then generates and downloads its checkpoint."""
    from gradio_client import Client

    client = Client(url, verbose=False)
    result["client"] = client
    try:
        args = list(TRAIN)
        args[4], args[9] = steps, seed
        out = client.predict(*args, api_name="/train")
        result["using"] = out[4]
        tally.ok()
        labels, per, s = REQUESTS[0]
        result["generate"] = png(client.predict(labels, per, s, False, api_name="/generate")[0])
        result["checkpoint"] = client.predict(api_name="/download")
        tally.ok()
        tally.ok()
    except Exception as e:  # noqa: BLE001
        tally.fail(f"trainer {seed}: {e!r}")


def server_spans(app: AppProcess, seeds: set[int], since: float) -> list[tuple[float, float]]:
    """(start, end) wall-clock seconds of the kept runs trained with `seeds`, as the server timed them.

    end = the final checkpoint's mtime; start = end - the run's elapsed time at its last metrics read
    (a few ms before the final save, so a span is if anything a little long, never short).
    """
    spans = []
    for d in app.kept_runs():
        meta = json.loads((d / "gancls.json").read_text())
        end = (d / "gancls.safetensors").stat().st_mtime
        if meta["train_config"]["seed"] in seeds and end >= since:
            spans.append((end - float(meta["last_metrics"]["elapsed"]), end))
    return sorted(spans)


def soak(app: AppProcess, *, users: int = 20, trainers: int = 2, seconds: float = 30, train_steps: int = 30,
         digit: Any = None, settle: float = 20, warmup_steps: int = 20, pretrained: Any = None) -> dict[str, Any]:
    """Run the soak against a running app; returns the figures (see the module docstring).

    With `pretrained` (the app's shared model, loaded here), also checks the reference answers are its own.
    """
    import numpy as np
    from gradio_client import Client
    from PIL import Image

    if digit is None:
        from gancls.data import load_embedded

        digit = load_embedded().test_images[0].numpy()
    digit_file = str(app.tmp.parent / "soak_digit.png")
    Image.fromarray(np.asarray(digit, np.uint8)).save(digit_file)

    # The pretrained model's answers, from a session that never trains.
    from gradio_client import handle_file

    ref = Client(app.url, verbose=False)
    reference = {"generate": [png(ref.predict(l, p, s, False, api_name="/generate")[0]) for l, p, s in REQUESTS],
                 "scores": ref.predict(handle_file(digit_file), api_name="/label_scores")}
    ref.close()
    reference_ok = None if pretrained is None else all(
        np.array_equal(got, expected_generate(pretrained, *req)) for got, req in zip(reference["generate"], REQUESTS))
    # Warm-up: one short training, so one-time allocations (autograd, optimiser, kernels) are in the baseline.
    if warmup_steps:
        warm: dict = {}
        trainer_job(app.url, 99, warmup_steps, Tally(), warm)
        warm["client"].close()
    wait_for(lambda: not app.live_runs(), 10)
    time.sleep(1.0)
    rss_before = app.rss()

    tally, peak, stop_sampling = Tally(), [rss_before], threading.Event()

    def sample() -> None:
        while not stop_sampling.wait(0.25):
            try:
                peak.append(app.rss())
            except Exception:  # noqa: BLE001 - the server went away: the checks below will say so
                return

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.monotonic()
    deadline = t0 + seconds
    results = [dict() for _ in range(trainers)]
    threads = [threading.Thread(target=trainer_job, args=(app.url, 100 + k, train_steps, tally, results[k]))
               for k in range(trainers)]
    threads += [threading.Thread(target=user_loop, args=(app.url, deadline, reference, digit_file, tally,
                                                          random.Random(k))) for k in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 600)
    elapsed = time.monotonic() - t0

    # Trainers: their own model, not the pretrained one, not each other's.
    from gancls.checkpoint import load_checkpoint

    own = []
    for k, r in enumerate(results):
        if "checkpoint" not in r:
            own.append(False)
            continue
        model = load_checkpoint(r["checkpoint"]).model
        own.append(bool(np.array_equal(r["generate"], expected_generate(model, *REQUESTS[0]))))
    generated = [r["generate"] for r in results if "generate" in r]
    distinct = all(not np.array_equal(a, b) for i, a in enumerate(generated)
                   for b in generated[i + 1:] + [reference["generate"][0]])

    # Everyone leaves: the server unloads each session; per-session models must be freed.
    for r in results:
        if "client" in r:
            r["client"].close()
    unloaded = wait_for(lambda: not app.live_runs(), settle, every=0.25)
    spans = server_spans(app, {100 + k for k in range(trainers)}, since=time.time() - (time.monotonic() - t0))
    overlap = max([0.0] + [a_end - b_start for (_, a_end), (b_start, _) in zip(spans, spans[1:])])
    time.sleep(2.0)
    stop_sampling.set()
    rss_after = app.rss()
    return {
        "reference_is_pretrained": reference_ok, "users": users, "trainers": trainers, "seconds": round(elapsed, 1), "served": tally.served,
        "requests_per_s": round(tally.served / max(elapsed, 1e-9), 1),
        "failures": tally.failures, "wrong": tally.wrong, "trainers_own_model": own, "trainers_distinct": distinct,
        "training_overlap_s": round(overlap, 3), "train_spans_s": [[round(a - spans[0][0], 2), round(b - spans[0][0], 2)]
                                                                  for a, b in spans],
        "sessions_unloaded": unloaded, "kept_runs": len(app.kept_runs()),
        "rss_before_mb": round(rss_before / 2**20, 1), "rss_peak_mb": round(max(peak) / 2**20, 1),
        "rss_after_mb": round(rss_after / 2**20, 1),
    }
