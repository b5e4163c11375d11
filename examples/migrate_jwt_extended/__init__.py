"""One small JSON API twice: on Flask-JWT-Extended (``before``) and on
Flask-Signoff (``after``), with the same routes and the same client.

Run either from the repository root::

    flask --app examples.migrate_jwt_extended.before run
    flask --app examples.migrate_jwt_extended.after run

Both keep their revocation state in the Redis server at ``FLASK_REDIS_URL``
(default ``redis://127.0.0.1:6379/0``).
``docs/migrating-from-flask-jwt-extended.md`` walks through the difference.
"""
