"""demo/harness/lean_client.py, the classroom benchmark's light client, against the real app: it must get what
gradio_client gets (the same outputs, the same errors), or the latency it measures means nothing."""

from __future__ import annotations

import asyncio
import io
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from PIL import Image

from demo.harness.lean_client import AppError, LeanApp

pytestmark = pytest.mark.slow


def test_the_same_answers_as_gradio_client(app_url: str, tmp_path: Path) -> None:
    canvas = np.full((280, 280), 255, np.uint8)
    canvas[60:220, 130:150] = 0  # a drawn "1"
    drawing = tmp_path / "drawing.png"
    Image.fromarray(canvas).save(drawing)

    async def lean() -> tuple[list, list, str]:
        app = await LeanApp.open(app_url, users=1)
        try:
            me = app.user()
            generated = await me.predict("generate", [7], 3, 5, False)
            probed = await me.predict("probe", await me.upload(drawing), 1)
            with pytest.raises(AppError) as bad:
                await me.predict("join", "NOSUCH")
            return generated, probed, str(bad.value)
        finally:
            await app.close()

    generated, probed, refused = asyncio.run(lean())
    client = Client(app_url, verbose=False)
    image, _file = client.predict([7], 3, 5, False, api_name="/generate")
    # The same grid: same model, labels, count and seed.
    with urllib.request.urlopen(generated[0]["url"]) as r:  # what a page would show
        assert np.array_equal(np.array(Image.open(image)), np.array(Image.open(io.BytesIO(r.read()))))
    sentence, *_ = client.predict(handle_file(str(drawing)), 1, api_name="/probe")
    assert probed[0] == sentence and sentence.startswith("### D(image, 1) = ")
    with pytest.raises(Exception) as bad:
        client.predict("NOSUCH", api_name="/join")
    sentence = refused.split(" e.g. ")[0]  # (the example code is a fresh random one each time)
    assert "is not a class code" in sentence and sentence in str(bad.value)
