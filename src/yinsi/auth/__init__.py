"""Authentication (身份认证) of Yinsi's three audiences: apps (API keys), people (one-time codes or the app's
signed deep link) and staff (password and a second factor). Entry points (``api/``, ``cli/``) turn a
credential into one of the principals in :mod:`yinsi.auth.principals` and pass it to the use cases; a typed
name is never an identity."""
