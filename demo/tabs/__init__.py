"""One module per tab: its layout, its handlers and its help text, side by side."""
