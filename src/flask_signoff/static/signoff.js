/* Flask-Signoff: when one tab signs out, the other tabs of the app follow.
 *
 * Included with {{ signoff_script() }}. The sign-out response leaves a
 * short-lived cookie "signoff_signed_out" ("__Host-signoff_signed_out" when
 * the app's cookies are Secure); the next page of the app that loads
 * this script announces the sign-out on BroadcastChannel('flask-signoff') (and
 * through a localStorage "storage" event where BroadcastChannel is missing)
 * and drops the cookie. Every other open tab whose page was shown to a
 * signed-in user then goes to the login page. The server has already ended
 * the session: this only stops stale pages from staying on screen.
 *
 * No inline script and no third-party code: it runs under
 * Content-Security-Policy: script-src 'self'.
 */
(function () {
  "use strict";
  var NAME = "flask-signoff";
  var MARKER = "signoff_signed_out";
  var script = document.currentScript;
  var loginUrl = (script && script.getAttribute("data-login-url")) || "/";
  var signedIn = !!script && script.getAttribute("data-signed-in") === "1";
  var leaving = false;

  function leave() {
    if (signedIn && !leaving) {
      leaving = true;
      window.location.replace(loginUrl);
    }
  }

  function receive(data) {
    if (data && data.type === "signed-out") {
      leave();
    }
  }

  var channel = null;
  if (typeof BroadcastChannel === "function") {
    channel = new BroadcastChannel(NAME);
    channel.onmessage = function (event) { receive(event.data); };
  }
  window.addEventListener("storage", function (event) {
    if (event.key === NAME && event.newValue) {
      try { receive(JSON.parse(event.newValue)); } catch (e) { /* not ours */ }
    }
  });

  function announce() {
    var message = { type: "signed-out", at: Date.now() };
    if (channel) {
      channel.postMessage(message);
    }
    try {
      // Setting then removing fires "storage" in the other tabs, leaves nothing.
      window.localStorage.setItem(NAME, JSON.stringify(message));
      window.localStorage.removeItem(NAME);
    } catch (e) { /* storage disabled */ }
  }

  // "__Host-" + MARKER where the app's cookies are Secure, MARKER on plain
  // http; each is deleted with the attributes it was set with.
  var cookies = document.cookie ? document.cookie.split("; ") : [];
  var secure = cookies.indexOf("__Host-" + MARKER + "=1") !== -1;
  if (secure || cookies.indexOf(MARKER + "=1") !== -1) {
    document.cookie = (secure ? "__Host-" : "") + MARKER +
      "=; Max-Age=0; Path=/; SameSite=Lax" + (secure ? "; Secure" : "");
    announce();
  }

  // A signed-in page restored from the back/forward cache: ask the server
  // again, which sends it to the login page if the session has ended.
  window.addEventListener("pageshow", function (event) {
    if (event.persisted && signedIn) {
      window.location.reload();
    }
  });
})();
