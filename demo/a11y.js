() => {
  // Names Gradio 6 leaves out or gets wrong, filled in from what the page shows (axe-core checks them in
  // tests/test_accessibility.py). Runs again whenever Gradio redraws part of the page.
  const name = (el, text) => { if (text && el.getAttribute("aria-label") !== text) el.setAttribute("aria-label", text); };
  const fix = () => {
    // Empty image/file boxes carry aria-label on a plain div, which has no role to name.
    document.querySelectorAll(".empty[aria-label]:not([role])").forEach((el) => el.setAttribute("role", "img"));
    // A clickable image (e.g. "D sees", the heat map) is a button with only an unnamed image inside.
    document.querySelectorAll(".image-container > button").forEach((b) => {
      if (b.getAttribute("aria-label")) return;
      const label = b.closest(".block")?.querySelector("[data-testid='block-label']")?.innerText?.trim();
      name(b, label || "image");
    });
    // Gallery thumbnails are announced "Thumbnail n of 50"; say what they show, as the caption does.
    document.querySelectorAll("button.thumbnail-item").forEach((b) => {
      const caption = b.querySelector(".caption-label")?.innerText?.trim();
      const label = b.getAttribute("aria-label") || "";
      if (caption && !label.startsWith(caption)) name(b, `${caption}, ${label.replace("Thumbnail", "digit")}`);
      b.querySelectorAll("img").forEach((img) => { if (caption && !img.alt) img.alt = `digit, ${caption}`; });
    });
    // Upload boxes: the name must contain the words on the box.
    document.querySelectorAll("button[aria-label='Click to upload or drop files']").forEach((b) => {
      name(b, b.innerText.replace(/\s+/g, " ").trim());
    });
  };
  fix();
  new MutationObserver(fix).observe(document.body, { subtree: true, childList: true, attributes: true,
                                                     attributeFilter: ["aria-label", "class"] });
}
