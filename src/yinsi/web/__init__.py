"""Web pages on the service (zh-CN, server-rendered): the privacy center (个人信息保护中心, ``/privacy/{tenant}/``)
and the staff console (``/console/``).

How to add a page
-----------------
1. **Router.** Put the route in a module of :mod:`yinsi.web.routes` that has ``router = APIRouter(...)``;
   :func:`yinsi.web.app.mount` includes every such module (outside the OpenAPI document). Use
   ``response_class=HTMLResponse`` and return :func:`yinsi.web.render.page`.
2. **Auth dependency.** Every page but a log-in page takes its principal from a dependency that reads the
   session cookie, asks the session service (``services(request).need("people" | "staff")``) to
   authenticate it, checks the tenant (and for staff the role of the action, as
   :func:`yinsi.api.deps.check_staff` does) and sets ``request.state.web_cookie`` to the cookie's name (the
   CSRF token is keyed by it). When there is no valid session it raises
   :class:`yinsi.web.app.LoginRequired` (a 303 to the log-in page); see :func:`yinsi.web.auth.session_principal`.
3. **Template.** ``templates/<area>/<page>.html`` extends ``base.html`` and fills ``title``, ``header_nav``
   and ``content``. No inline ``<script>``, no ``style=`` attribute, no ``on…=`` handler (the CSP forbids
   them): classes from ``static/yinsi.css``. Each input has a ``<label for>``; buttons say what they do.
4. **CSRF.** Every ``<form method="post">`` carries ``<input type="hidden" name="csrf" value="{{ csrf }}">``;
   the POST route reads its fields with ``form = await checked_form(request, COOKIE)``
   (:func:`yinsi.web.security.checked_form`), which refuses a missing or wrong token (403 page). After a
   successful POST, answer with a page showing the result or a 303 redirect (never a 200 on the same URL
   that a reload would post again).
5. **No rules in pages.** A route parses the form, authorises, calls one use case (``yinsi.services.me``,
   ``yinsi.staff.actions``, ``yinsi.services.staff_desk`` …) and renders what it returns. A use case's own
   error (``PersonError``, ``StaffError``, ``AuthError``) is shown with its Chinese detail: raise
   :class:`yinsi.web.app.PageError` or re-render the form with the message. Every page must work without
   JavaScript.

The security headers (CSP ``default-src 'self'`` without inline script or style, frame-ancestors 'self',
nosniff, no-referrer, no-store) are added to every path under :data:`yinsi.web.security.WEB_PREFIXES`.
"""
