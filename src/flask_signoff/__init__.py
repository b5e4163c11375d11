"""Flask-Signoff: login sessions and API tokens for Flask that really end."""
