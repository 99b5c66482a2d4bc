"""Protection of personal information (个人信息保护措施): encryption and keys, blind indexes, passwords,
pseudonyms, generalisation, statistics release, masking and the PI scanner.

Import from the submodules (``yinsi.protect.keys``, ``yinsi.protect.crypto``, ...); this package imports nothing.
"""
