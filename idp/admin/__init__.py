"""Administration: the one place that decides who may act on people, centres and client services.

The JSON API, the command line and the consoles call these functions and decide nothing
themselves; every refusal is an ``AdminError`` (``errors``) and leaves an audit row.

    people    the account lifecycle: invite, resend, replace, edit, grant, change type, unlock,
              reset MFA, delete; search and view
    centres   create, suspend and reinstate, list; a centre's audit trail
    clients   client services: register, change, rotate secrets, disable, delete, import
"""
