"""The handler contract: what a handler (plain Python or an agent) sees and may do.

This package never imports the ``events`` models; ``events`` builds a HandlerContext and calls
handlers through the registry.
"""
