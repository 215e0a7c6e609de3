"""Streamlit web UI (``lychee ui``): gallery ranking, single-pair analysis, batch text ranking."""
