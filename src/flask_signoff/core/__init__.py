"""The framework-free core of Flask-Signoff. See README.md beside this file."""
