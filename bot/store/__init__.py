"""The bot's Redis storage: key names (`Keys`), Lua programs (`Script`), round trips made of typed
steps (`Batch`, `Result`), and the thread store. Every redis-py error is translated into
`StoreUnavailable` here, at the boundary (`bot.errors.redis_unavailable`)."""

from bot.store.batch import Batch, Result
from bot.store.keys import Keys
from bot.store.messages import HeldLock, Queued, ThreadTurn, decode_messages
from bot.store.scripts import Script
from bot.store.threads import ThreadStore

__all__ = [
    "Batch",
    "HeldLock",
    "Keys",
    "Queued",
    "Result",
    "Script",
    "ThreadStore",
    "ThreadTurn",
    "decode_messages",
]
