"""Channels: one thin adapter per medium, and no dialogue decisions in any of them.

Each adapter verifies what its provider sent, parses it into a `bot.messages.Inbound`, hands
it to the turn handler and renders the `Outbound` replies for its medium. A web channel
exposes `blueprint(runtime) -> flask.Blueprint`, registered by `dibot.web.create_app`.
"""
