"""Regenerate docs/screenshots/{ablation,dview,style}.png: start the app, run each teaching tab for real, photograph it.

    python -m demo.teach_screenshots --data-dir ../shared/data --train-seconds 60 --ablation-seconds 60

First trains a model in the Train tab (so D's view and the style grid show a trained model), then
runs the ablation with the given budget per objective and prints its results table.
Needs playwright and a Chromium (Debian's /usr/bin/chromium by default; nothing is downloaded).
"""

from __future__ import annotations

from pathlib import Path

from .screenshots import app_page, parser, train


def main() -> None:
    """Start the app, run the teaching tabs in a browser, save the screenshots."""
    p = parser(__doc__)
    p.add_argument("--train-seconds", type=int, default=60, help="Train-tab budget before D's view and style (0: skip)")
    p.add_argument("--ablation-seconds", type=int, default=60, help="ablation budget per objective")
    a = p.parse_args()
    out = Path(a.out)
    with app_page(a) as page:
        if a.train_seconds:
            train(page, a.train_seconds)

        page.get_by_role("tab", name="4 · Ablation").click()
        page.get_by_label("Time per objective (s)").fill(str(a.ablation_seconds))
        page.click("#abl-start")
        page.wait_for_selector("#abl-status .gc-done", timeout=(2 * a.ablation_seconds + 240) * 1000)
        page.wait_for_timeout(1500)  # let the plots finish their transition
        page.screenshot(path=str(out / "ablation.png"), full_page=True)
        print(page.inner_text("#abl-status"))
        print(page.inner_text("#abl-table"))
        print(page.inner_text("#abl-verdict"))

        page.get_by_role("tab", name="5 · D's view").click()
        page.wait_for_selector("#dview-heat img")
        page.click("#cell-btn")  # the default cell: real 4s told "9"
        page.wait_for_selector("#cell-gallery img")
        page.wait_for_timeout(800)
        page.screenshot(path=str(out / "dview.png"), full_page=True)
        print(page.inner_text("#dview-text"))

        page.get_by_role("tab", name="6 · Style vs label").click()
        page.click("#style-btn")
        page.click("#lab-btn")
        page.click("#noise-btn")
        for sel in ("#style-grid img", "#lab-strip img", "#noise-strip img"):
            page.wait_for_selector(sel)
        page.wait_for_timeout(800)
        page.screenshot(path=str(out / "style.png"), full_page=True)
    print(f"wrote {', '.join(str(out / n) for n in ('ablation.png', 'dview.png', 'style.png'))}")


if __name__ == "__main__":
    main()
