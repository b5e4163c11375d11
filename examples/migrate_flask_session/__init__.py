"""One small app twice: on Flask-Session (``before``) and on Flask-Signoff
(``after``), with the same routes and pages.

Run either from the repository root::

    flask --app examples.migrate_flask_session.before run
    flask --app examples.migrate_flask_session.after run

Both keep sessions in the Redis server at ``FLASK_REDIS_URL`` (default
``redis://127.0.0.1:6379/0``). ``docs/migrating-from-flask-session.md``
walks through the difference.
"""
