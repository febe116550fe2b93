"""Control-plane storage: the `Store` protocol and its SQL implementation.

`open_store("sqlite:///lockgate.db")` opens (creating if needed) a store.
"""

from control_plane.store.events import ChangeEvent
from control_plane.store.protocol import Reader, Store, Writer
from control_plane.store.sql import SqlStore, open_store

__all__ = ["ChangeEvent", "Reader", "SqlStore", "Store", "Writer", "open_store"]
