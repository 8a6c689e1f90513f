// Runs before Gradio's own code (demo/frame_guard.py puts it at the top of the page's <head>).
// Gradio 6's status tracker counts a pending event's seconds with a requestAnimationFrame loop, and a
// loop it starts while the page loads never stops: an idle page, even one with a single textbox, asks
// for a new frame 60 times a second for as long as it is open, and each frame costs the browser a pass
// of its rendering pipeline whether or not anything changed. On a laptop that also trains, that CPU is
// training's. So the tracker's callbacks run from a 100 ms timer instead (the counter shows tenths of a
// second, so it still shows every tenth): the loop goes on, but the browser draws a frame only when a
// counter on screen changes. Every other caller gets its frame as usual.
(() => {
  const frame = window.requestAnimationFrame.bind(window);
  window.requestAnimationFrame = (callback) =>
    (new Error().stack || "").includes("/statustracker-")
      ? setTimeout(() => callback(performance.now()), 100)
      : frame(callback);
})();
