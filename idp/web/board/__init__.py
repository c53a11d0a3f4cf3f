"""The board console: what exam-board staff (and the helpdesk) do in the browser instead of a shell
or a hand-made bearer token. One module per part, each on the same administration services as the
centre console, the JSON API and the command line:

    base       the blueprint, who may open which part (idp.admin.board), refusals as pages, words
    views      the console's home page, and the parts' modules imported so their routes exist
    centres    centres (list, create, rename, suspend) and their Exams Officers
    people     the helpdesk (find anyone; unlock, MFA reset, resend invite, change email, with a
               reason) and the board's own staff
    clients    client services (register, change, secret, disable, delete, as TOML, logos) and
               initial access tokens
    keys       signing keys (rotate, retire)
    audit      the whole audit trail (search, CSV)
"""
