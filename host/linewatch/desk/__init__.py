"""The commission's desk: a web page and its JSON API, served by the aggregator (docs/desk.md).

    app.py      the aiohttp application: routes, security headers, start/stop in the service's loop
    auth.py     operators (scrypt), sessions, CSRF; who may read and who may act
    params.py   query parameters checked, with a 400 and a clear message when malformed
    views.py    what the page shows, read from the store (the same queries as the commands)
    api.py      the JSON API: the handlers that serve views, and the two acts (judge, command)
    live.py     server-sent events: incidents and health changes as they happen
    pages.py    the page and its assets, all shipped in static/ (no CDN, no tile server)
    client.py   the desk from the command line (`linewatch nodes command`)
"""
