"""The Gradio app for gancls.

`main` parses the flags and serves; `page` puts the nine tabs together, and each module in `tabs/` holds one
tab's layout, handlers and help text (`forms` parses the Train tab's fields). A visitor's state is a
`session.Session`, changed only through its methods; `gate` is the training line, `store` the session store
with disk housekeeping and quotas, and `pipeline` what runs on the training thread beside training (the
classroom snapshot, `live_judge`, the kept copy). `context` holds what all visitors share, `classroom` the
class codes and shared runs, `limits` the cost model, `compute` the training threads, `live`, `runstate`,
`curves` and `replay_view` the live views, `ui` and `components` what tabs share, `zerogpu` GPU chunks on a
Space, `frame_guard` a script the page runs before Gradio's. `harness/` holds the helpers that tests,
benchmarks and scripts share. See docs/architecture.md.
"""
