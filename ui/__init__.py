"""The Streamlit operator console: talks to the server only through the API."""
