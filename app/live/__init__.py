"""Live delivery to websockets: the hub (``hub.py``), its brokers (in-process or Redis), the
per-connection bounded subscription (``subscription.py``) and the websocket pump (``pump.py``)."""
