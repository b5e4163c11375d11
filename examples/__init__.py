"""Example applications of Flask-Signoff (``examples.demo`` is the reference app)."""
