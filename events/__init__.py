"""The pipeline: sources, events, routes, deliveries and the work that moves them."""
