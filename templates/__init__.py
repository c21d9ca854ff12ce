"""Dataflow Flex Templates of beam-ecommerce: the launchers, their metadata and the image that runs both."""
