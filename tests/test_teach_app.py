"""The teaching tabs through gradio_client: ablation, D's view, style vs label, timeline/CSV and checkpoint upload."""

from __future__ import annotations

import csv
import pickle
import time
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from demo.harness.forge import with_meta
from gancls.draw import HEATMAP_CELL, heatmap_cell_at

# device, data, seconds, epochs, max_steps, arch, batch, lr_d, lr_g, seed, objective, loss
SHORT_TRAIN = ["auto", "embedded", 60, 0, 30, "small", 32, 4e-4, 1e-3, 0, "gan-cls", "lsgan"]
TEACH_ENDPOINTS = ("ablation", "ablation_stop", "match_matrix", "cell_examples", "style_grid", "label_interpolation",
                   "noise_interpolation", "timeline", "history_csv", "upload_checkpoint")


@pytest.fixture()
def client(app_url: str) -> Client:
    return Client(app_url, verbose=False)


def png(path: str) -> np.ndarray:
    return np.array(Image.open(path))


def test_every_teaching_view_is_an_endpoint(client: Client) -> None:
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    missing = [n for n in TEACH_ENDPOINTS if f"/{n}" not in names]
    assert not missing


def test_ablation_compares_both_arms(client: Client) -> None:
    t0 = time.monotonic()
    job = client.submit("gan-cls", "plain", 2, "small", 0, api_name="/ablation")
    status, head_a, plot_a, grid_a, head_b, plot_b, grid_b, table, heat_a, heat_b, verdict = job.result(timeout=120)
    print(f"2 s per arm on 'small', through the app: {time.monotonic() - t0:.1f} s, {len(job.outputs())} updates")
    assert len(job.outputs()) >= 3  # a start, at least one live update, the result
    assert "gc-done" in status and "Done." in status
    assert [row[0] for row in table["data"]] == ["gan-cls", "plain"]
    headers = table["headers"]
    for col in ("label accuracy", "mismatch AUC", "D-as-classifier acc.", "FD", "diversity"):
        values = [row[headers.index(col)] for row in table["data"]]
        assert all(isinstance(v, (int, float)) for v in values), (col, values)
    auc = [row[headers.index("mismatch AUC")] for row in table["data"]]
    assert all(0 <= v <= 1 for v in auc)
    steps = [row[headers.index("steps")] for row in table["data"]]
    assert all(s > 0 for s in steps)
    for grid in (grid_a, grid_b):
        assert grid is not None and png(grid).shape[0] > 280  # ten rows of digits
    for heat in (heat_a, heat_b):
        assert png(heat).shape[2] == 3
    # The live D-output curves of both arms carry the three named curves.
    for plot in (plot_a, plot_b):
        assert {c for _, _, c in plot["data"]} == {"D(real, right label)", "D(fake, right label)",
                                                   "D(real, wrong label)"}
    assert "What this run shows" in verdict and "gan-cls" in verdict and "plain" in verdict


def test_ablation_stop_still_compares(client: Client) -> None:
    job = client.submit("gan-cls", "seed", 60, "small", 1, api_name="/ablation")
    t0 = time.monotonic()
    while len(job.outputs()) < 2:
        assert time.monotonic() - t0 < 60 and not job.done(), "no live update"
        time.sleep(0.05)
    assert client.predict(api_name="/ablation_stop").startswith("Stopping")
    t0 = time.monotonic()
    status, *_, table, _, _, verdict = job.result(timeout=90)
    print(f"stop to result (both arms measured): {time.monotonic() - t0:.1f} s")
    assert "Stopped" in status and "Stopped early" in verdict
    assert [row[0] for row in table["data"]] == ["gan-cls", "seed"]
    assert all(row[1] > 0 for row in table["data"])


def test_ablation_bad_inputs(client: Client) -> None:
    with pytest.raises(AppError, match="(?i)different objectives"):
        client.predict("plain", "plain", 2, "small", 0, api_name="/ablation")
    with pytest.raises(AppError, match="(?i)minimum value 1"):  # Gradio checks the field's range first
        client.predict("gan-cls", "plain", 0, "small", 0, api_name="/ablation")
    with pytest.raises(AppError, match="(?i)seed must be a whole number"):
        client.predict("gan-cls", "plain", 2, "small", 2**64, api_name="/ablation")
    with pytest.raises(AppError, match="(?i)not in the list of choices"):
        client.predict("gan-cls", "plain", 2, "huge", 0, api_name="/ablation")
    assert client.predict(api_name="/ablation_stop") == "Nothing is training in this session."


def test_match_matrix_and_cell_examples(client: Client) -> None:
    image, text = client.predict(api_name="/match_matrix")
    heat = png(image)
    assert heat.ndim == 3 and heat.shape[1] > 10 * HEATMAP_CELL
    assert "D as a classifier" in text and "500 real test digits" in text and "judge" in text
    items, sentence = client.predict(3, 8, "highest", api_name="/cell_examples")
    assert len(items) == 10
    scores = [float(item["caption"].split("= ")[1]) for item in items]
    assert scores == sorted(scores, reverse=True) and all(0 <= s <= 1 for s in scores)
    assert "Real **3**s" in sentence and "a wrong label" in sentence
    low, _ = client.predict(3, 8, "lowest", api_name="/cell_examples")
    assert float(low[0]["caption"].split("= ")[1]) <= scores[-1]
    with pytest.raises(AppError, match="(?i)choose a true digit"):
        client.predict(None, 8, "highest", api_name="/cell_examples")
    with pytest.raises(AppError, match="(?i)not in the list of choices"):
        client.predict(12, 8, "highest", api_name="/cell_examples")


def test_heatmap_click_maps_to_the_cell_under_it() -> None:
    from gancls.draw import heatmap_image

    image = np.asarray(heatmap_image(np.zeros((10, 10)), cell=HEATMAP_CELL))  # all cells dark purple
    for i, j in [(0, 0), (3, 8), (9, 9)]:
        x, y = HEATMAP_CELL + 24 + j * HEATMAP_CELL + 5, HEATMAP_CELL + i * HEATMAP_CELL + 5
        assert heatmap_cell_at(x, y) == (i, j)
        assert tuple(image[y, x]) == (68, 1, 84)  # the pixel really is inside a cell
    assert heatmap_cell_at(5, 5) is None and heatmap_cell_at(HEATMAP_CELL + 24 + 10 * HEATMAP_CELL + 3, 100) is None


def test_style_grid_and_interpolations_are_seeded(client: Client) -> None:
    a = png(client.predict(4, 7, api_name="/style_grid"))
    b = png(client.predict(4, 7, api_name="/style_grid"))
    c = png(client.predict(4, 8, api_name="/style_grid"))
    assert a.shape == b.shape and (a == b).all() and not (a == c).all()
    assert a.shape[0] > 4 * 56 and a.shape[1] > 10 * 56  # 4 rows, 10 label columns at 2x
    lab = png(client.predict(1, 7, 9, 0, api_name="/label_interpolation"))
    noise = png(client.predict(3, 0, 1, 5, api_name="/noise_interpolation"))
    assert lab.shape[1] > noise.shape[1] > 5 * 84  # 9 and 5 digits at 3x
    with pytest.raises(AppError, match="(?i)minimum value 1"):
        client.predict(0, 7, api_name="/style_grid")
    with pytest.raises(AppError, match="(?i)seed must be a whole number"):
        client.predict(4, 2**64, api_name="/style_grid")
    with pytest.raises(AppError, match="(?i)minimum value 2"):
        client.predict(1, 7, 1, 0, api_name="/label_interpolation")
    with pytest.raises(AppError, match="(?i)second seed must be a whole number"):
        client.predict(3, 0, 2**64, 5, api_name="/noise_interpolation")


def test_timeline_and_history_csv_after_training(client: Client) -> None:
    with pytest.raises(AppError, match="(?i)no training run"):
        client.predict(4, api_name="/timeline")
    with pytest.raises(AppError, match="(?i)no training run"):
        client.predict(api_name="/history_csv")
    client.predict(*SHORT_TRAIN, api_name="/train")
    shown, gif = client.predict(4, api_name="/timeline")
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames >= 1
    path = client.predict(api_name="/history_csv")
    rows = list(csv.DictReader(Path(path).open()))
    assert rows and {"step", "loss_d", "loss_g", "d_real", "d_fake", "d_wrong"} <= set(rows[0])
    assert int(rows[-1]["step"]) == 30
    with pytest.raises(AppError, match="(?i)minimum value 1"):
        client.predict(0, api_name="/timeline")


def test_upload_good_checkpoint_switches_model(client: Client, tiny_checkpoint: Path) -> None:
    assert "pretrained" in client.predict(api_name="/using")
    message, using = client.predict(handle_file(str(tiny_checkpoint / "gancls.safetensors")),
                                    api_name="/upload_checkpoint")
    assert "Loaded" in message and "5 steps" in message
    assert "trained for 5 steps" in using
    assert "trained for 5 steps" in client.predict(api_name="/using")
    assert Path(client.predict(api_name="/download")).is_file()  # Download hands the uploaded model back
    client.predict(api_name="/match_matrix")  # the views run on the uploaded model


def test_bad_uploads_are_refused_and_change_nothing(client: Client, tmp_path: Path) -> None:
    before = client.predict(api_name="/using")
    random_bytes = tmp_path / "random.safetensors"
    random_bytes.write_bytes(np.random.default_rng(0).bytes(4096))
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps({"model": "not weights", "code": print}))
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    for bad in (random_bytes, evil, empty):
        with pytest.raises(AppError) as err:
            client.predict(handle_file(str(bad)), api_name="/upload_checkpoint")
        text = str(err.value)
        assert bad.name in text and "Traceback" not in text, text
    with pytest.raises(AppError, match="(?i)no file"):
        client.predict(None, api_name="/upload_checkpoint")
    assert client.predict(api_name="/using") == before


def test_uploads_are_bounded_by_what_they_cost(client: Client, tiny_checkpoint: Path, tmp_path: Path) -> None:
    """A model wider than the app can run is refused; a run whose batch is over --max-batch loads but cannot resume."""
    src = tiny_checkpoint / "gancls.safetensors"
    before = client.predict(api_name="/using")
    wide = tmp_path / "wide.safetensors"
    wide.write_bytes(with_meta(src, **{"model_config.g_deconv": 65536, "model_config.g_ch": 1}))
    with pytest.raises(AppError, match="model too large to run here") as err:
        client.predict(handle_file(str(wide)), api_name="/upload_checkpoint")
    assert "wide.safetensors" in str(err.value)
    assert client.predict(api_name="/using") == before

    big_batch = tmp_path / "batch8192.safetensors"
    big_batch.write_bytes(with_meta(src, **{"train_config.batch_size": 8192}))
    message, _ = client.predict(handle_file(str(big_batch)), api_name="/upload_checkpoint")
    assert "It cannot be resumed: it trains with batch 8192, above this server's limit of 1,024" in message
    with pytest.raises(AppError, match="(?i)nothing to resume"):
        client.predict(1, 0, 0, api_name="/resume")


def test_a_run_over_the_servers_batch_limit_is_refused_with_the_reason() -> None:
    """Resume (and an upload's resume offer) check the run's own batch against --max-batch."""
    from demo.limits import Limits

    limits = Limits(max_batch=256)
    assert limits.batch_refusal(256) is None
    assert limits.batch_refusal(8192) == "it trains with batch 8192, above this server's limit of 256 (--max-batch)"
    assert limits.batch_refusal("64") is not None and limits.batch_refusal(None) is not None
