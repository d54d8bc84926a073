"""The dialogue engine: pure functions from (flow, state, inbound, now) to a turn.

Nothing in this package does I/O, reads the clock or draws random numbers; time arrives as
an argument. A test enforces that. The entry point is `bot.engine.step`.
"""
