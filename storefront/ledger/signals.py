from blinker import Namespace

_signals = Namespace()
# Sent with the account's user id whenever a balance changes (inside the transaction).
credits_changed = _signals.signal("credits-changed")
