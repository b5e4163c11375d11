"""The pages of the example, the same before and after the move.

``csrf_token()`` is Flask-WTF's in the app before and Flask-Signoff's in
the app after: the forms do not change.
"""

from __future__ import annotations

LOGIN = """<!doctype html>
<title>Sign in</title>
{% if error %}<p>{{ error }}</p>{% endif %}
<form method="post" action="/login">
  <input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
  <input name="username" autocomplete="username">
  <input name="password" type="password" autocomplete="current-password">
  <button>Sign in</button>
</form>
<form method="post" action="/lang">
  <input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
  <input name="lang" value="{{ lang or '' }}"><button>Language</button>
</form>
"""

HOME = """<!doctype html>
<title>Home</title>
<p>Signed in as {{ user }}.</p>
<form method="post" action="/lang">
  <input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
  <input name="lang" value="{{ lang or '' }}"><button>Language</button>
</form>
<form method="post" action="/logout">
  <input type="hidden" name="csrf_token" value="{{ csrf_token() }}">
  <button>Sign out</button>
</form>
"""

#: Longest language tag kept in the session.
MAX_LANG = 35
