"""The sections of the data card, one module per section or group of related sections; curate.card.writer assembles them."""
