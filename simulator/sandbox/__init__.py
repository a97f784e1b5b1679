"""``croupier sandbox``: a lobby, playable games in the browser, and every wallet call in view.

:mod:`.server` starts the reference wallet, the mock provider and the lobby;
:mod:`.app` is the lobby and the game pages' API; :mod:`.play` turns a page's
choices into a round of the games package and the round into what a page draws;
:mod:`.panel` keeps the live panel of wallet calls and its replay, duplicate and
timeout actions.  The browser side (``static/``) only renders: no game math.
"""
