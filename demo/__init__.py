"""The Gradio app for gancls.

`layout` lays out and wires, `adapters` talk to the library, `session` keeps per-visitor state.
"""
