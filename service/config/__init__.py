"""Configuration: what the environment says (settings, tuning), the constants everything
else is tuned by (defaults), and the errors the service raises (errors).

The bottom layer: it imports nothing of ours but itself, and everything may import it.
"""
