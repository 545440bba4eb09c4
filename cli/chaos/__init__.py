"""``clearchain chaos``: the fault-injection harness (``harness``), its per-link TCP proxies
(``proxy``), the client traffic it keeps up (``traffic``) and the checks on the stores afterwards
(``checks``); docs/RELIABILITY.md records the runs."""
