"""intentbridge: connect chatbots to the systems behind them."""

__version__ = "0.1.0"
