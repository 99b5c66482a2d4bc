"""The API's routes, one module per audience or area; each module's ``router`` is included by
:func:`yinsi.api.app.create_app`. Every route depends on exactly one of the authentication dependencies in
:mod:`yinsi.api.deps` (``public``, ``app_principal``, ``person_principal``, ``staff_principal``)."""
