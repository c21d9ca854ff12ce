"""beam-ecommerce: one Apache Beam transform core for e-commerce events, batch and streaming."""

__version__ = "0.1.0"
