"""Publishing a model folder: its model card (card.py) and the push to the Hub (hub.py)."""
