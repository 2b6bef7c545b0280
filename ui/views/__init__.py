"""Console pages; `ui/app.py` routes to them with st.navigation."""
