"""The centre console ("Manage users"): Exams Officers and admins manage their centre's people;
board staff choose a centre and see the same pages for it. Who may see and do what is decided in
idp.admin and idp.policy; these pages ask, and show the answer with its reason.

    /users                         a centre's people (board staff: choose a centre)
    /centres/<number>/users        the same for a chosen centre (also .../invite, .../activity)
    /users/invite[/access|/check]  an invite in three steps
    /users/activity                the centre's activity, in words
    /users/<sub>                   a person; /access, /type, /email, /resend, /unlock, /reset-mfa, /remove

``views`` (lists, a person, activity), ``invite``, ``actions`` (changes to a person), ``activity``
(the audit trail in words), ``base`` (what they share), ``forms``."""
