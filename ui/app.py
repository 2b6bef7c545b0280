"""Console entry point: only routes to the pages in ui/views/."""

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `streamlit run ui/app.py` puts only ui/ on sys.path

# An emoji favicon is drawn in the page itself; a ":material/...:" one is fetched from Google's
# font servers, the one request the console would make outside this machine.
st.set_page_config(page_title="Call center", page_icon="📞", layout="wide")
st.navigation(
    [
        st.Page("views/calls.py", title="Calls", icon=":material/call:", default=True),
        st.Page("views/live.py", title="Live call", icon=":material/graphic_eq:", url_path="live"),
        st.Page("views/history.py", title="History", icon=":material/history:"),
        st.Page("views/personas.py", title="Personas", icon=":material/badge:"),
        st.Page("views/playground.py", title="Playground", icon=":material/forum:"),
    ]
).run()
