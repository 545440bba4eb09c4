"""Local networks on one machine: the dev genesis and keys (``devnet``), a network folder
(``network``: ``net init``), node processes (``process``) and their control (``control``: ``net up
| down | status | reset``); ``commands`` holds the ``clearchain net`` group."""
